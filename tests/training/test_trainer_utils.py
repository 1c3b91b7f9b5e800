"""Tests of spanbert_tf/training/trainer_utils.py."""

import pytest

import spanbert_tf  # noqa: F401
import keras
import tensorflow as tf

from spanbert_tf.training import trainer_utils


def test_dummy_batch_and_count_tokens():
    spec = {"input_mask": tf.TensorSpec([None, 7], tf.int32),
            "weights": tf.TensorSpec([4, None], tf.float32),
            "text": tf.TensorSpec([None], tf.string)}
    batch = trainer_utils.dummy_batch(spec)
    assert batch["input_mask"].shape == (1, 7) and batch["weights"].shape == (1, 1)
    assert batch["text"].dtype == tf.string
    mask = tf.constant([[1, 1, 0], [1, 0, 0]])
    assert float(trainer_utils.count_tokens({"input_mask": mask})) == 3.0
    assert float(trainer_utils.count_tokens(({"padding_mask": mask}, tf.zeros([2])))) == 3.0
    assert float(trainer_utils.count_tokens({"x": mask})) == 0.0


def test_mixed_precision_policy_is_restored():
    before = keras.config.dtype_policy().name
    with trainer_utils.mixed_precision_policy("mixed_bfloat16"):
        assert keras.layers.Dense(2).compute_dtype == "bfloat16"
    assert keras.config.dtype_policy().name == before
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        with trainer_utils.mixed_precision_policy("float64"):
            pass


def test_outputs_to_dict_and_model_inputs():
    assert trainer_utils.outputs_to_dict({"a": 1}) == {"a": 1}
    assert trainer_utils.outputs_to_dict(5) == {"output": 5}
    assert trainer_utils.outputs_to_dict((1, 2)) == {"output_0": 1, "output_1": 2}
    assert trainer_utils.model_inputs(({"x": 1}, 2)) == {"x": 1}


def test_gradient_aggregation_is_disabled_on_the_inner_optimizer():
    opt = keras.optimizers.LossScaleOptimizer(keras.optimizers.AdamW())
    trainer_utils.disable_optimizer_gradient_aggregation(opt)
    pairs = [(tf.ones(2), "v")]
    assert opt.inner_optimizer._all_reduce_sum_gradients(pairs) == pairs
