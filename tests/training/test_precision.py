"""Tests of spanbert_tf/training/precision.py."""

import pytest

import spanbert_tf  # noqa: F401
import keras

from spanbert_tf.training.precision import mixed_precision_policy


def test_mixed_precision_policy_is_restored():
    before = keras.config.dtype_policy().name
    with mixed_precision_policy("mixed_bfloat16"):
        assert keras.layers.Dense(2).compute_dtype == "bfloat16"
    assert keras.config.dtype_policy().name == before
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        with mixed_precision_policy("float64"):
            pass
