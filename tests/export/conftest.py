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

def write_vocab(path, size):
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += [f"tok{i}" for i in range(size - len(tokens))]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(tokens) + "\n")
    return str(path)


def parity_inputs(vocab_size, batch=2, length=12, seed=3):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab_size, size=(batch, length)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[-1, length - 4:] = 0
    types = np.zeros_like(ids)
    types[0, length // 2:] = 1
    return ids, mask, types


def keras_outputs(model, ids, mask, types):
    """Our pretrainer on the parity inputs: sequence/pooled outputs and MLM logits at every position."""
    positions = np.tile(np.arange(ids.shape[1], dtype=np.int32), (ids.shape[0], 1))
    zeros = np.zeros_like(positions)
    features = {"input_ids": ids, "input_mask": mask, "segment_ids": types,
                "masked_lm_positions": positions, "span_left_positions": zeros,
                "span_right_positions": zeros, "span_relative_positions": zeros}
    backbone = model.backbone({"token_ids": ids, "segment_ids": types, "padding_mask": mask})
    return {"sequence_output": np.asarray(backbone["sequence_output"]),
            "pooled_output": np.asarray(backbone["pooled_output"]),
            "mlm_logits": np.asarray(model(features)["mlm_logits"])}


def torch_outputs(model, ids, mask, types):
    """A transformers model on the same inputs: whatever of the three outputs it has."""
    import torch

    feed = dict(input_ids=torch.tensor(ids, dtype=torch.long),
                attention_mask=torch.tensor(mask, dtype=torch.long),
                token_type_ids=torch.tensor(types, dtype=torch.long))
    base = getattr(model, "bert", model)
    with torch.no_grad():
        out = base(**feed)
        result = {"sequence_output": out.last_hidden_state.numpy()}
        if getattr(out, "pooler_output", None) is not None:
            result["pooled_output"] = out.pooler_output.numpy()
        if base is not model:
            full = model(**feed)
            logits = getattr(full, "prediction_logits", None)
            result["mlm_logits"] = (logits if logits is not None else full.logits).numpy()
    return result


def load_model_dir(path):
    from spanbert_tf.modeling import model_dir as model_dir_lib
    from spanbert_tf.modeling.pretrainer import build_pretrainer

    info = model_dir_lib.read_model_dir(path)
    model = build_pretrainer(info.config, dtype="float32")
    model_dir_lib.restore_model(model, info.checkpoint_path)
    return model, info


@pytest.fixture(scope="session")
def parity():
    """Helpers shared by the conversion tests."""
    import types

    return types.SimpleNamespace(write_vocab=write_vocab, inputs=parity_inputs,
                                 keras_outputs=keras_outputs, torch_outputs=torch_outputs,
                                 load_model_dir=load_model_dir)


@pytest.fixture(scope="session")
def hf_bert(tmp_path_factory):
    """A random tiny transformers.BertForPreTraining (exact GeLU) saved as an HF folder."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, max_position_embeddings=40, hidden_act="gelu")
    model = transformers.BertForPreTraining(config).eval()
    with torch.no_grad():  # biases and LayerNorms away from 0/1 so that a mix-up shows
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    folder = tmp_path_factory.mktemp("hf_bert")
    model.save_pretrained(folder)
    write_vocab(folder / "vocab.txt", 99)
    return str(folder), model
