"""Classifier model, Task protocol terms and BERT sentence-pair packing."""


import keras
import numpy as np
import pytest
import tensorflow as tf

from spanbert_tf.modeling.config import load_config
from spanbert_tf.modeling.model_dir import restore_backbone
from spanbert_tf.tasks.classification import model as classification
from spanbert_tf.tasks.classification.task import ClassificationTask
from spanbert_tf.tokenization import BertWordpieceTokenizer


@pytest.fixture(scope="module")
def tokenizer(cased_vocab):
    return BertWordpieceTokenizer(cased_vocab)


def reference_truncate(tokens_a, tokens_b, max_length):
    """BERT's _truncate_seq_pair, on lists (the behaviour to reproduce)."""
    tokens_a, tokens_b = list(tokens_a), list(tokens_b)
    while len(tokens_a) + len(tokens_b) > max_length:
        (tokens_a if len(tokens_a) > len(tokens_b) else tokens_b).pop()
    return len(tokens_a), len(tokens_b)


def test_encode_pairs_layout(tokenizer):
    f = classification.encode_pairs(
        tokenizer, ["A man sleeps in the park today.", "Hi"], ["Nobody sleeps.", "there"], 10)
    ids = f["token_ids"]
    a = tokenizer.tokenize_to_ids(["A man sleeps in the park today."])[0]
    b = tokenizer.tokenize_to_ids(["Nobody sleeps."])[0]
    la, lb = reference_truncate(a, b, 7)
    assert ids[0].tolist() == [tokenizer.cls_id, *a[:la], tokenizer.sep_id, *b[:lb],
                               tokenizer.sep_id]
    assert f["segment_ids"][0].tolist() == [0] * (la + 2) + [1] * (lb + 1)
    assert tokenizer.convert_ids_to_tokens(ids[1][:5]) == ["[CLS]", "Hi", "[SEP]", "there",
                                                           "[SEP]"]
    assert f["segment_ids"][1].tolist() == [0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
    assert f["padding_mask"][1].tolist() == [1] * 5 + [0] * 5
    assert ids[1][5:].tolist() == [tokenizer.pad_id] * 5
    assert f["num_truncated"] == 1
    single = classification.encode_pairs(tokenizer, ["one two three four"], None, 4)
    assert tokenizer.convert_ids_to_tokens(single["token_ids"][0]) == [
        "[CLS]", "one", "two", "[SEP]"]
    assert single["segment_ids"].sum() == 0
    with pytest.raises(ValueError, match="leaves no room"):
        classification.encode_pairs(tokenizer, ["x"], ["y"], 3)


@pytest.fixture(scope="module")
def tiny_config():
    return load_config("tiny").model


def _batch(tokenizer, labels):
    f = classification.encode_pairs(tokenizer, ["good film", "bad film ever"], None, 8)
    return {**{k: f[k] for k in classification.MODEL_INPUTS}, "label": np.array(labels)}


def test_loss_terms_match_manual_cross_entropy(tiny_config, tokenizer):
    task = ClassificationTask(tiny_config, num_classes=3)
    model = task.build_model()
    assert model.backbone.hidden_dim == tiny_config.hidden_size
    batch = _batch(tokenizer, [2, 0])
    logits = model({k: batch[k] for k in classification.MODEL_INPUTS})["logits"].numpy()
    assert logits.shape == (2, 3) and logits.dtype == np.float32
    terms = task.loss_terms(model, batch, training=False)
    log_probs = np.log(classification.softmax(logits))
    expected = -(log_probs[0, 2] + log_probs[1, 0])
    assert float(terms["loss"][0]) == pytest.approx(expected, rel=1e-5)
    assert float(terms["loss"][1]) == 2.0
    correct = float(np.sum(logits.argmax(-1) == [2, 0]))
    assert float(terms["accuracy"][0]) == correct
    # Weights and (inputs, targets) tuples, as in evaluation datasets.
    inputs = {k: batch[k] for k in classification.MODEL_INPUTS}
    weighted = task.loss_terms(model, (inputs, {"label": batch["label"],
                                                "example_weight": np.array([1.0, 0.0])}), False)
    assert float(weighted["loss"][0]) == pytest.approx(-log_probs[0, 2], rel=1e-5)
    assert float(weighted["loss"][1]) == 1.0


def test_regression_terms(tiny_config, tokenizer):
    task = ClassificationTask(tiny_config, num_classes=1, is_regression=True)
    model = task.build_model()
    batch = _batch(tokenizer, [4.5, 1.0])
    pred = model({k: batch[k] for k in classification.MODEL_INPUTS})["logits"].numpy()[:, 0]
    num, den = task.loss_terms(model, batch, training=False)["loss"]
    assert float(num) == pytest.approx(float(np.sum((pred - [4.5, 1.0]) ** 2)), rel=1e-5)
    assert float(den) == 2.0
    with pytest.raises(ValueError, match="num_classes=1"):
        ClassificationTask(tiny_config, num_classes=2, is_regression=True)


def test_config_round_trip_and_backbone_restore(tiny_config, tokenizer, tmp_path):
    model = ClassificationTask(tiny_config, 2).build_model()
    clone = classification.SpanBertClassifier.from_config(model.get_config())
    assert clone.num_classes == 2 and clone.count_params() == model.count_params()
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    # The classifier's encoder moves to another task's model (here: a 3-class head).
    other = ClassificationTask(tiny_config, 3).build_model()
    restore_backbone(other.backbone, path)
    for a, b in zip(model.backbone.weights, other.backbone.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_train_dataset_is_seeded_and_sharded():
    features = {k: np.arange(10, dtype=np.int32)[:, None] * np.ones((1, 4), np.int32)
                for k in classification.MODEL_INPUTS}
    labels = np.arange(10) % 2
    fn = classification.make_train_dataset_fn(features, labels, 4, seed=3)
    ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1)
    first = [b["token_ids"][:, 0].numpy().tolist() for b in fn(ctx).take(3)]
    again = [b["token_ids"][:, 0].numpy().tolist() for b in fn(ctx).take(3)]
    assert first == again
    assert all(len(b) == 4 for b in first)
    assert set(sum(first, [])) <= {1, 3, 5, 7, 9}
    eval_ds = classification.make_eval_dataset(features, labels, 4)
    sizes = [int(x["token_ids"].shape[0]) for x, _ in eval_ds]
    assert sizes == [4, 4, 2]
    assert keras.backend.backend() == "tensorflow"
