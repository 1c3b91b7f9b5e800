"""`SpanBertTextClassifier`: `TextClassifier.from_preset` gives ours; `fit` on raw MRPC pairs learns.

Task presets (save, `from_preset`, `predict` equal to run_classifier's) are tested in
test_preset_io.py::test_run_classifier_fine_tunes_from_a_preset.
"""

import numpy as np
import pytest

import keras
import keras_hub

import spanbert_tf.presets  # noqa: F401
from spanbert_tf.hub import (TASK_PRESETS, SpanBertTextClassifier,
                             SpanBertTextClassifierPreprocessor)
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


def _tiny_classifier_model_dir(path, cased_vocab, name, num_classes, **task_fields):
    """A run_classifier.py model dir (config.json "task" + checkpoint) of a tiny random model."""
    import tensorflow as tf

    from spanbert_tf.modeling.config import ModelConfig, OptimizerConfig, SpanBertConfig
    from spanbert_tf.modeling.model_dir import (CHECKPOINT_NAME, task_entry,
                                                write_model_dir_metadata)
    from spanbert_tf.tasks.classification.task import ClassificationTask

    keras.utils.set_random_seed(4)
    config = SpanBertConfig("tiny-cls", ModelConfig(
        hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
        max_position_embeddings=128), OptimizerConfig())
    model = ClassificationTask(config.model, num_classes, is_regression=num_classes == 1,
                               dtype="float32").build_model()
    rng = np.random.default_rng(4)
    for v in model.weights:
        v.assign((0.1 * rng.standard_normal(v.shape) + (1.0 if "gamma" in v.path else 0.0))
                 .astype(v.dtype))
    write_model_dir_metadata(path, config, cased_vocab, do_lower_case=False,
                             task=task_entry("classification", name, max_seq_length=64,
                                             **task_fields))
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(path), 1,
                               checkpoint_name=CHECKPOINT_NAME).save()
    return model


def test_sts_b_regression_is_a_one_output_text_classifier(tmp_path, cased_vocab, shared_data):
    """An STS-B model dir → task preset: predict = the run_classifier model's score; fit on MSE.

    (STS-B is not in the shared data: MRPC's real pairs, labels as 0 / 5 scores.)
    """
    from spanbert_tf.convert.checkpoint import convert_checkpoint
    from spanbert_tf.tasks.classification.model import encode_pairs
    from spanbert_tf.tokenization import BertWordpieceTokenizer

    model = _tiny_classifier_model_dir(tmp_path / "stsb", cased_vocab, "sts-b", 1, labels=None)
    convert_checkpoint("keras", str(tmp_path / "stsb"), "keras_hub_preset", str(tmp_path / "preset"),
                       task_presets=TASK_PRESETS)
    regressor = keras_hub.models.TextClassifier.from_preset(str(tmp_path / "preset"))
    assert type(regressor) is SpanBertTextClassifier and regressor.num_classes == 1
    assert isinstance(regressor.loss, keras.losses.MeanSquaredError)
    texts_a, texts_b, labels = mrpc_pairs(shared_data, 16)
    regressor.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    got = regressor.predict((np.array(texts_a), np.array(texts_b)), verbose=0)
    features = encode_pairs(BertWordpieceTokenizer(cased_vocab), texts_a, texts_b, 64)
    want = model({k: features[k] for k in ("token_ids", "segment_ids", "padding_mask")})["logits"]
    assert got.shape == (16, 1)
    np.testing.assert_allclose(got, np.asarray(want), atol=1e-5, rtol=0)
    scores = 5.0 * labels.astype(np.float32)
    history = regressor.fit((np.array(texts_a), np.array(texts_b)), scores, batch_size=8,
                            epochs=4, verbose=0).history["loss"]
    assert history[-1] < 0.75 * history[0], history   # at least the mean score is learnt


# Hand-made relation mentions in TACRED's layout (TACRED itself is licensed, not in the shared data).
RELATIONS = [
    (["Tom", "Thabane", "resigned", "as", "-LRB-", "minister", "-RRB-", "in", "2006", "."],
     0, 1, "PERSON", 5, 5, "TITLE"),
    (["He", "lives", "in", "Paris", "with", "Anna", "Schmidt"], 5, 6, "PERSON", 3, 3, "LOCATION"),
    (["Mayor", "Smith", "spoke"], 1, 1, "PERSON", 0, 0, "TITLE"),
    (["Acme", "hired", "Bo", "Li", "in", "Oslo", "."], 2, 3, "PERSON", 5, 5, "CITY"),
]


def test_tacred_model_dir_converts_with_entity_markers(tmp_path, cased_vocab):
    """A TACRED model dir → task preset whose preprocessor adds the markers: predict on raw
    mentions = the run_classifier model on `encode_tacred`'s ids."""
    from spanbert_tf.convert.checkpoint import convert_checkpoint
    from spanbert_tf.hub import SpanBertRelationClassifierPreprocessor
    from spanbert_tf.tasks.classification import tacred
    from spanbert_tf.tasks.classification.model import MODEL_INPUTS
    from spanbert_tf.tokenization import BertWordpieceTokenizer

    ours = BertWordpieceTokenizer(cased_vocab)
    examples = [tacred.TacredExample(str(i), t, ss, se, os_, oe, st, ot, None)
                for i, (t, ss, se, st, os_, oe, ot) in enumerate(RELATIONS)]
    # "CITY" is left out of the mapping: an unseen type falls back as in run_classifier.
    markers = tacred.TacredMarkers.build([examples[:3]], ours.vocab)
    model = _tiny_classifier_model_dir(tmp_path / "tacred", cased_vocab, "tacred", 3,
                                       labels=["no_relation", "per:title", "org:founded"],
                                       markers=markers.to_json())
    convert_checkpoint("keras", str(tmp_path / "tacred"), "keras_hub_preset",
                       str(tmp_path / "preset"), task_presets=TASK_PRESETS)
    classifier = keras_hub.models.TextClassifier.from_preset(str(tmp_path / "preset"))
    assert type(classifier) is SpanBertTextClassifier and classifier.num_classes == 3
    assert type(classifier.preprocessor) is SpanBertRelationClassifierPreprocessor
    width = max(len(t) for t, *_ in RELATIONS)
    x = {"tokens": np.array([t + [""] * (width - len(t)) for t, *_ in RELATIONS]),
         "subj_start": np.array([r[1] for r in RELATIONS]), "subj_end": np.array([r[2] for r in RELATIONS]),
         "obj_start": np.array([r[4] for r in RELATIONS]), "obj_end": np.array([r[5] for r in RELATIONS]),
         "subj_type": np.array([r[3] for r in RELATIONS]), "obj_type": np.array([r[6] for r in RELATIONS])}
    classifier.compile(jit_compile=False)
    got = classifier.predict(x, batch_size=4, verbose=0)
    features = tacred.encode_tacred(examples, ours, markers, 64)
    ids = classifier.preprocessor(x, y=None)["token_ids"]
    np.testing.assert_array_equal(np.asarray(ids), features["token_ids"])
    assert markers.ids(ours)["[SUBJ-PERSON]"] in features["token_ids"][0]
    want = model({k: features[k] for k in MODEL_INPUTS})["logits"]
    np.testing.assert_allclose(got, np.asarray(want), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="subj span"):
        classifier.preprocessor(dict(x, subj_end=x["subj_end"] + 9), y=None)
