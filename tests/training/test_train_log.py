"""Tests of spanbert_tf/training/train_log.py."""

import json

import tensorflow as tf

from spanbert_tf.training.train_log import TrainLogger, read_train_log


def test_logger_writes_jsonl_and_tensorboard_scalars(tmp_path):
    logger = TrainLogger(tmp_path, start_step=0, until_step=20, show_progress=True)
    logger.log(10, {"loss": 2.5, "learning_rate": 1e-4, "examples_per_sec": 3.0})
    logger.log(20, {"loss": float("nan"), "learning_rate": 0.0})
    logger.close()
    log = read_train_log(tmp_path)
    assert log == [{"step": 10, "loss": 2.5, "learning_rate": 1e-4, "examples_per_sec": 3.0},
                   {"step": 20, "loss": None, "learning_rate": 0.0}]
    events = list((tmp_path / "train").glob("events.out.tfevents.*"))
    assert events
    seen = {}
    for record in tf.data.TFRecordDataset([str(e) for e in events]):
        event = tf.compat.v1.Event.FromString(record.numpy())
        for value in event.summary.value:
            seen[(value.tag, event.step)] = (
                tf.make_ndarray(value.tensor).item(), value.metadata.plugin_data.plugin_name)
    assert seen[("loss", 10)] == (2.5, "scalars")
    assert ("loss", 20) not in seen  # non-finite values are not plotted


def test_restart_drops_records_after_the_restored_step(tmp_path):
    with open(tmp_path / "train_log.jsonl", "w") as f:
        for step in (1, 2, 3, 4):
            f.write(json.dumps({"step": step}) + "\n")
        f.write('{"step": 5, "lo')
    TrainLogger(tmp_path, start_step=2, until_step=10, show_progress=False).close()
    assert [r["step"] for r in read_train_log(tmp_path)] == [1, 2]
    assert (tmp_path / "train_log.jsonl").read_text().endswith("\n")


def test_non_chief_writes_nothing(tmp_path):
    logger = TrainLogger(tmp_path / "m", start_step=0, until_step=5, enabled=False)
    logger.log(1, {"loss": 1.0})
    logger.close()
    assert not (tmp_path / "m").exists()
