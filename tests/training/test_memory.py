"""memory: the start-up estimate of parameters and step memory."""

import sys
import pathlib

import numpy as np

from spanbert_tf.modeling.config import load_config
from spanbert_tf.training import memory

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "modeling"))
from modeling_test_utils import random_features, small_config  # noqa: E402


def test_parameter_count_equals_the_built_model():
    from spanbert_tf.modeling.pretrainer import build_pretrainer

    config = small_config()
    model = build_pretrainer(config)
    model(random_features(max_pair_targets=config.model.max_pair_targets), training=False)
    assert memory.parameter_count(config.model) == model.count_params()


def test_published_sizes_and_scaling():
    base, large = load_config("base").model, load_config("large").model
    # BERT-base / large with cased vocab + pretraining heads: ~110 M / ~335 M.
    assert 105e6 < memory.parameter_count(base) < 125e6
    assert 330e6 < memory.parameter_count(large) < 360e6
    one = memory.step_plan(base, 256, 128, 20)
    half = memory.step_plan(base, 256, 128, 20, grad_accum_steps=2)
    assert half["micro_batch"] == 128 and half["step_bytes"] < one["step_bytes"]
    # The config that the kernel killed on a 23 GB CPU machine is estimated above that.
    assert one["step_bytes"] > 23 * memory.GB
    assert np.isfinite(memory.host_available_bytes())
