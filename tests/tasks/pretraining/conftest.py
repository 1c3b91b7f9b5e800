"""Shared fixtures of the pretraining program tests."""

import json

import pytest

from spanbert_tf.modeling.config import load_config


def _write_micro_config(path, **optimizer):
    """A very small model (1 layer, 32 hidden, no dropout) on the real 28,996 vocab, as JSON at
    `path`; `optimizer` overrides the optimizer section (batch 8, 2 warmup steps, lr 1e-3)."""
    data = load_config("tiny").to_dict()
    data["name"] = "micro"
    data["model"].update(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                         dropout=0.0, sbo_position_embedding_size=16)
    data["optimizer"].update({"train_batch_size": 8, "num_warmup_steps": 2,
                              "learning_rate": 1e-3, **optimizer})
    path.write_text(json.dumps(data))
    return str(path)


@pytest.fixture(scope="session")
def write_micro_config():
    """`write_micro_config(path, **optimizer)` -> the path of a micro config written there."""
    return _write_micro_config


@pytest.fixture(scope="module")
def micro_config(tmp_path_factory):
    return _write_micro_config(tmp_path_factory.mktemp("cfg") / "micro.json")
