"""The QA model (start/end logits on the backbone) and the Trainer task's loss terms."""

import numpy as np
import pytest

import spanbert_tf  # noqa: F401

from spanbert_tf.modeling.config import load_config
from spanbert_tf.tasks.squad.task import SquadTask, span_loss_terms


def test_span_loss_terms_hand_checked():
    start = np.array([[0.0, 1.0, 2.0], [3.0, 0.0, 0.0]], np.float32)
    end = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 5.0]], np.float32)
    terms = span_loss_terms(start, end, np.array([2, 1]), np.array([0, 2]))
    log_softmax = lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True))  # noqa: E731
    want_start = -(log_softmax(start[0])[2] + log_softmax(start[1])[1])
    want_end = -(log_softmax(end[0])[0] + log_softmax(end[1])[2])
    assert float(terms["start_loss"][0]) == pytest.approx(want_start, rel=1e-5)
    assert float(terms["end_loss"][0]) == pytest.approx(want_end, rel=1e-5)
    assert float(terms["start_loss"][1]) == 2.0
    # argmax start: [2, 0] vs labels [2, 1] → 1 correct; end: argmax [0, 2] → 2 correct.
    assert float(terms["start_accuracy"][0]) == 1.0 and float(terms["end_accuracy"][0]) == 2.0
    assert SquadTask.loss_weights == {"start_loss": 0.5, "end_loss": 0.5}


def test_model_outputs_and_task():
    import keras

    config = load_config("tiny").model
    task = SquadTask(config)
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = task.build_model()
    finally:
        keras.config.set_dtype_policy("float32")
    ids = np.array([[101, 1109, 102, 170, 102, 0]], np.int32)
    batch = {"token_ids": ids, "segment_ids": np.array([[0, 0, 0, 1, 1, 0]], np.int32),
             "padding_mask": (ids > 0).astype(np.int32),
             "start_positions": np.array([3]), "end_positions": np.array([3])}
    out = model({k: batch[k] for k in ("token_ids", "segment_ids", "padding_mask")})
    assert out["start_logits"].shape == out["end_logits"].shape == (1, 6)
    assert out["start_logits"].dtype == "float32"       # logits in float32 under bf16
    assert model.backbone is not None and model.qa_outputs.kernel.shape == (128, 2)
    terms = task.loss_terms(model, batch, training=False)
    assert np.isfinite(float(terms["start_loss"][0]))


def test_get_config_round_trip():
    from spanbert_tf.tasks.squad.model import SpanBertQuestionAnswering

    model = SquadTask(load_config("tiny").model).build_model()
    config = model.get_config()
    assert set(config) == {"name", "trainable", "backbone", "initializer_range"}
    clone = SpanBertQuestionAnswering.from_config(config)
    assert clone.get_config() == config and clone.count_params() == model.count_params()
