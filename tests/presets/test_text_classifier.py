"""`SpanBertTextClassifier`: `TextClassifier.from_preset` gives ours; `fit` on raw MRPC pairs learns.

Task presets (save, `from_preset`, `predict` equal to run_classifier's) are tested in
test_preset_io.py::test_run_classifier_fine_tunes_from_a_preset.
"""

import numpy as np

import keras
import keras_hub

import spanbert_tf.presets  # noqa: F401
from spanbert_tf.presets import SpanBertTextClassifier, SpanBertTextClassifierPreprocessor
from tests.presets.conftest import mrpc_pairs


def test_from_preset_and_fit_on_raw_mrpc_pairs(tiny_cased_preset, shared_data):
    preset, _ = tiny_cased_preset
    keras.utils.set_random_seed(1)
    classifier = keras_hub.models.TextClassifier.from_preset(preset, num_classes=2, dropout=0.0)
    assert type(classifier) is SpanBertTextClassifier
    assert type(classifier.preprocessor) is SpanBertTextClassifierPreprocessor
    classifier.preprocessor.sequence_length = 64
    texts_a, texts_b, labels = mrpc_pairs(shared_data, 16)
    x = (np.array(texts_a), np.array(texts_b))
    # jit_compile=False: XLA compilation costs more than these few CPU steps.
    classifier.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    history = classifier.fit(x, labels, batch_size=8, epochs=8, verbose=0).history["loss"]
    assert history[-1] < 0.8 * history[0], history
