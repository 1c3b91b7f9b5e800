"""Shared, session-scoped fixtures of the export tests (SavedModel saves are slow)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import spanbert_tf  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_POSITIONS = 64
SEQ_LENGTH = 16


def tiny_config():
    from spanbert_tf.modeling.config import ModelConfig, OptimizerConfig, SpanBertConfig

    # The real cased vocabulary (28996 entries), so the preprocessor is the real one.
    model = ModelConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                        max_position_embeddings=MAX_POSITIONS, max_pair_targets=5,
                        sbo_position_embedding_size=8)
    return SpanBertConfig(name="export-test", model=model, optimizer=OptimizerConfig())


def randomize(model, seed):
    """Non-trivial values everywhere (biases and LayerNorms too), reproducibly."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign((0.05 * rng.standard_normal(v.shape) + (1.0 if "gamma" in v.path else 0.0))
                 .astype(v.dtype))


@pytest.fixture(scope="session")
def pretrained_model_dir(tmp_path_factory, cased_vocab):
    """A model dir as run_pretraining writes it: (path, the Keras pretrainer)."""
    import tensorflow as tf

    from spanbert_tf.modeling import model_dir as model_dir_lib
    from spanbert_tf.modeling.pretrainer import build_pretrainer

    path = str(tmp_path_factory.mktemp("model_dir"))
    config = tiny_config()
    model = build_pretrainer(config, dtype="float32")
    randomize(model, 0)
    model_dir_lib.write_model_dir_metadata(path, config, cased_vocab, do_lower_case=False)
    step = tf.Variable(7, dtype=tf.int64)
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model, step=step), path, 1,
                               checkpoint_name="ckpt").save(checkpoint_number=7)
    return path, model


@pytest.fixture(scope="session")
def exported(pretrained_model_dir, tmp_path_factory):
    """export_saved_models() once for all tests: (export_dir, {name: path})."""
    from spanbert_tf.tasks.pretraining.export import export_saved_models

    export_dir = str(tmp_path_factory.mktemp("export"))
    paths = export_saved_models(pretrained_model_dir[0], export_dir, seq_length=SEQ_LENGTH)
    return export_dir, paths


@pytest.fixture(scope="session")
def fresh_process():
    """The function that runs fresh_process_check.py (see `run_fresh_process`)."""
    return run_fresh_process


def run_fresh_process(job, tmp_dir):
    """Runs fresh_process_check.py on `job`; returns (outputs npz dict, report)."""
    job = dict(job, output_npz=os.path.join(tmp_dir, "out.npz"),
               output_json=os.path.join(tmp_dir, "out.json"))
    job_file = os.path.join(tmp_dir, "job.json")
    with open(job_file, "w") as f:
        json.dump(job, f)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, os.path.join(HERE, "fresh_process_check.py"), job_file],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(job["output_json"]) as f:
        report = json.load(f)
    return dict(np.load(job["output_npz"])), report


# ---------------------------------------------------------------- HF parity helpers
