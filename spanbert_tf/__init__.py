"""spanbert-tf: SpanBERT (Joshi et al., TACL 2020) in TensorFlow / Keras 3."""

import os

# Keras 3 must run on the TensorFlow backend: tf.distribute, SavedModel export
# and TF Serving all depend on it. Set before anything imports keras.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

import sys as _sys

if "keras_hub" in _sys.modules:
    # keras-hub is loaded: register SpanBERT's keras-hub classes (presets, Tasks)
    # now, so that keras_hub.models.*.from_preset finds them. Otherwise
    # `import spanbert_tf.presets` does it (keras-hub and TF are not imported here).
    import spanbert_tf.presets  # noqa: E402,F401
