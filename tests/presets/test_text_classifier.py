"""`SpanBertTextClassifier`: `TextClassifier.from_preset` gives ours; `fit` on raw MRPC pairs learns."""

import numpy as np

import keras
import keras_hub

import spanbert_tf.presets  # noqa: F401
from spanbert_tf.presets import SpanBertTextClassifier, SpanBertTextClassifierPreprocessor
from tests.presets.conftest import mrpc_pairs


def test_from_preset_and_fit_on_raw_mrpc_pairs(tiny_cased_preset, shared_data, tmp_path):
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

    # The fine-tuned task saves as a task preset and comes back with the same predictions.
    task_preset = str(tmp_path / "mrpc_task")
    spanbert_tf.presets.save_preset(task_preset, classifier.backbone,
                                    classifier.preprocessor.tokenizer, task=classifier)
    restored = keras_hub.models.TextClassifier.from_preset(task_preset)
    assert type(restored) is SpanBertTextClassifier and restored.preprocessor.sequence_length == 64
    pairs = (np.array(texts_a[:4]), np.array(texts_b[:4]))
    np.testing.assert_allclose(restored.predict(pairs, verbose=0), classifier.predict(pairs, verbose=0),
                               atol=1e-6)
