"""Tests of spanbert_tf/training/batches.py."""

import spanbert_tf  # noqa: F401
import tensorflow as tf

from spanbert_tf.training import batches


def test_dummy_batch_and_count_tokens():
    spec = {"input_mask": tf.TensorSpec([None, 7], tf.int32),
            "weights": tf.TensorSpec([4, None], tf.float32),
            "text": tf.TensorSpec([None], tf.string)}
    batch = batches.dummy_batch(spec)
    assert batch["input_mask"].shape == (1, 7) and batch["weights"].shape == (1, 1)
    assert batch["text"].dtype == tf.string
    mask = tf.constant([[1, 1, 0], [1, 0, 0]])
    assert float(batches.count_tokens({"input_mask": mask})) == 3.0
    assert float(batches.count_tokens(({"padding_mask": mask}, tf.zeros([2])))) == 3.0
    assert float(batches.count_tokens({"x": mask})) == 0.0


def test_outputs_to_dict_and_model_inputs():
    assert batches.outputs_to_dict({"a": 1}) == {"a": 1}
    assert batches.outputs_to_dict(5) == {"output": 5}
    assert batches.outputs_to_dict((1, 2)) == {"output_0": 1, "output_1": 2}
    assert batches.model_inputs(({"x": 1}, 2)) == {"x": 1}
