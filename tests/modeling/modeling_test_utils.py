"""Helpers for the modeling tests: a very small model config, random features and weights,
and the fresh processes of the backend parity tests."""

import os
import subprocess
import sys

import numpy as np

from spanbert_tf.data import features as feature_spec
from spanbert_tf.modeling.config import ModelConfig, OptimizerConfig, SpanBertConfig

SMALL_VOCAB = 97


def small_model_config(**overrides):
    values = dict(
        vocab_size=SMALL_VOCAB,
        hidden_size=16,
        num_layers=2,
        num_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        dropout=0.0,
        max_pair_targets=5,
        sbo_position_embedding_size=6,
    )
    values.update(overrides)
    return ModelConfig(**values)


def small_config(**overrides):
    return SpanBertConfig(name="test-small", model=small_model_config(**overrides),
                          optimizer=OptimizerConfig())


def random_features(batch=2, seq_len=12, slots=4, vocab=SMALL_VOCAB, seed=0, max_pair_targets=5):
    """A batch in the feature-spec layout: the last slot of each row is padding."""
    rng = np.random.default_rng(seed)
    f = {
        "input_ids": rng.integers(0, vocab, (batch, seq_len)),
        "input_mask": np.ones((batch, seq_len)),
        "segment_ids": np.zeros((batch, seq_len)),
        "masked_lm_positions": np.sort(rng.integers(1, seq_len - 1, (batch, slots)), axis=1),
        "masked_lm_ids": rng.integers(0, vocab, (batch, slots)),
        "masked_lm_weights": np.ones((batch, slots)),
        "span_left_positions": rng.integers(0, seq_len, (batch, slots)),
        "span_right_positions": rng.integers(0, seq_len, (batch, slots)),
        "span_relative_positions": rng.integers(0, max_pair_targets, (batch, slots)),
        "sbo_weights": np.ones((batch, slots)),
    }
    f["input_mask"][:, -2:] = 0
    for name in ("masked_lm_positions", "masked_lm_ids", "span_left_positions",
                 "span_right_positions", "span_relative_positions"):
        f[name][:, -1] = 0
    f["masked_lm_weights"][:, -1] = 0
    f["sbo_weights"][:, -1] = 0
    f["sbo_weights"][0, 0] = 0  # a masked token without an SBO target
    assert set(f) == set(feature_spec.FEATURE_NAMES)
    return {
        k: v.astype("float32" if k in feature_spec.FLOAT_FEATURES else "int32")
        for k, v in f.items()
    }


def randomize(model, seed):
    """Non-trivial weights everywhere (biases, LayerNorm too) so every term is compared."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        values = rng.normal(0.0, 0.1, tuple(variable.shape)).astype("float32")
        if variable.path.endswith("gamma"):
            values += 1.0
        variable.assign(values)


def run_on_other_backends(script, work_dir, backends, timeout):
    """Runs `python script work_dir` once per Keras backend in `backends`, all at once, each
    in a fresh process on the CPU; fails the test with the log of any that fails."""
    processes = {}
    for backend in backends:
        env = dict(os.environ, KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="",
                   JAX_PLATFORMS="cpu")
        processes[backend] = subprocess.Popen(
            [sys.executable, script, str(work_dir)], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for backend, process in processes.items():
        log, _ = process.communicate(timeout=timeout)
        assert process.returncode == 0, f"{backend} process failed:\n{log[-4000:]}"
