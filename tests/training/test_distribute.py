"""Tests of spanbert_tf/training/distribute.py (mirrored/multi-worker runs: test_trainer.py)."""

import json
import socket
import time

import pytest
import tensorflow as tf

from spanbert_tf.training import distribute
from spanbert_tf.training.distribute import StrategyError


def test_default_and_one_device():
    assert distribute.get_strategy("default") is tf.distribute.get_strategy()
    one = distribute.get_strategy("one_device")
    assert isinstance(one, tf.distribute.OneDeviceStrategy)
    assert one.num_replicas_in_sync == 1
    assert distribute.is_chief(one) and distribute.worker_id(one) == 0


def test_unknown_strategy_and_too_many_gpus():
    with pytest.raises(StrategyError, match="unknown strategy 'horovod'"):
        distribute.get_strategy("horovod")
    with pytest.raises(StrategyError, match="num_gpus=8 but only 0 GPU"):
        distribute.get_strategy("mirrored", num_gpus=8)


def test_cpu_devices_after_initialisation_is_a_clear_error():
    tf.constant(1.0) + 1.0  # the runtime is initialised with 1 CPU device
    n = len(tf.config.list_logical_devices("CPU"))
    distribute.configure_cpu_devices(n)  # the current split: fine
    with pytest.raises(StrategyError, match="before running any TensorFlow op"):
        distribute.configure_cpu_devices(n + 3)
    with pytest.raises(StrategyError, match="cpu_devices must be >= 1"):
        distribute.configure_cpu_devices(0)


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("tpu, message", [
    (None, "needs --tpu"),
    ("grpc://127.0.0.1:{port}", "no TPU reachable at grpc://127.0.0.1"),
    ("my-tpu", "not on Google Cloud"),
    ("local", "no TPU chips"),
])
def test_tpu_without_tpu_fails_fast(monkeypatch, tpu, message):
    monkeypatch.delenv("TPU_NAME", raising=False)
    if tpu and "{port}" in tpu:
        tpu = tpu.format(port=_closed_port())
    start = time.monotonic()
    with pytest.raises(StrategyError, match=message):
        distribute.get_strategy("tpu", tpu=tpu)
    assert time.monotonic() - start < 10


def test_bad_tf_config(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"]},
                                                "task": {"type": "worker", "index": 3}}))
    with pytest.raises(StrategyError, match="TF_CONFIG is not a valid cluster"):
        distribute.get_strategy("multi_worker_mirrored")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(StrategyError, match="TF_CONFIG"):
        distribute.get_strategy("multi_worker_mirrored")
