"""spanbert-tf: SpanBERT (Joshi et al., TACL 2020) in TensorFlow / Keras 3."""

import os

# Keras 3 must run on the TensorFlow backend: tf.distribute, SavedModel export
# and TF Serving all depend on it. Set before anything imports keras.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

# SpanBERT's keras-hub classes (presets, Tasks) are registered as soon as keras-hub is imported,
# before or after this package, without importing keras-hub (or TensorFlow) here.
import spanbert_tf.keras_hub_hook as _keras_hub_hook  # noqa: E402

_keras_hub_hook.install()
