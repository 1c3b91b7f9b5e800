"""SIGTERM/SIGINT while training: the Trainer stops at a step boundary with a checkpoint, and
the resumed run ends with the weights of an uninterrupted one (real signals, this process)."""

import os
import signal
import threading

import numpy as np
import pytest
import tensorflow as tf

from spanbert_tf.errors import TrainingInterrupted
from spanbert_tf.modeling.config import OptimizerConfig
from spanbert_tf.training import distribute
from spanbert_tf.training.preemption import StopOnSignals, continued_dataset_fn
from spanbert_tf.training.train_log import read_train_log
from spanbert_tf.training.trainer import Trainer
from training_toy_task import ToyTask, toy_dataset_fn


def _trainer(model_dir, dataset_fn, steps=30):
    return Trainer(ToyTask(), distribute.get_strategy("default"), str(model_dir),
                   OptimizerConfig(learning_rate=0.05, num_warmup_steps=3, num_train_steps=steps),
                   dataset_fn, steps, steps_per_loop=2, log_every=1, save_checkpoints_steps=100,
                   show_progress=False)


def _signalling_dataset_fn(signum, at_element, sent):
    """toy_dataset_fn(32) whose pipeline sends `signum` to this process while it makes batch
    number `at_element` (a real signal, arriving while the train loop runs). The trainer's
    step at that moment goes to `sent["step"]` (`sent["trainer"]` is the Trainer): the
    pipeline runs ahead of the loop by its prefetch depth, so batch 6 may be made during
    step 4, 5 or 6."""
    base = toy_dataset_fn(32)

    def send(i):
        if int(i) == at_element:
            sent["step"] = int(sent["trainer"].global_step.numpy())
            os.kill(os.getpid(), signum)
        return i

    def dataset_fn(ctx):
        ds = tf.data.Dataset.zip((base(ctx), tf.data.Dataset.range(1 << 40)))
        return ds.map(lambda batch, i: (batch, tf.py_function(send, [i], tf.int64))[0])

    return dataset_fn


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_checkpoints_at_a_step_boundary_and_resume_equals_uninterrupted(tmp_path, signum):
    before = signal.getsignal(signum)
    sent = {}
    trainer = sent["trainer"] = _trainer(tmp_path / "run", _signalling_dataset_fn(signum, 6, sent))
    with pytest.raises(TrainingInterrupted) as caught:
        trainer.train()
    e = caught.value
    step = int(trainer.global_step.numpy())
    # It stops at the first step boundary after the signal (each loop is one step here).
    assert e.step == step and 1 <= sent["step"] <= step <= sent["step"] + 2 and step < 30
    assert e.signal_name == signal.Signals(signum).name and e.exit_code == 128 + signum
    assert e.checkpoint.endswith(f"ckpt-{step}")
    assert tf.train.latest_checkpoint(str(tmp_path / "run")).endswith(f"ckpt-{step}")
    assert signal.getsignal(signum) is before  # handlers only while training

    resumed = _trainer(tmp_path / "run", toy_dataset_fn(32))
    assert int(resumed.global_step.numpy()) == step
    resumed.train()
    reference = _trainer(tmp_path / "reference", toy_dataset_fn(32))
    reference.train()
    for a, b in zip(resumed.model.trainable_variables, reference.model.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    got, want = read_train_log(tmp_path / "run"), read_train_log(tmp_path / "reference")
    assert [r["step"] for r in got] == [r["step"] for r in want] == list(range(1, 31))
    np.testing.assert_allclose([r["loss"] for r in got], [r["loss"] for r in want], rtol=1e-5)


def test_handlers_only_in_the_main_thread_and_restored():
    before = signal.getsignal(signal.SIGTERM)
    with StopOnSignals(announce=False) as stop:
        assert signal.getsignal(signal.SIGTERM) == stop._handle
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.signal_name == "SIGTERM"
        with pytest.raises(KeyboardInterrupt, match="SIGTERM again"):
            os.kill(os.getpid(), signal.SIGTERM)  # a second signal: stop at once
    assert signal.getsignal(signal.SIGTERM) is before

    seen = []

    def in_a_thread():
        with StopOnSignals() as stop:
            seen.append((signal.getsignal(signal.SIGTERM), stop.requested))

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert seen == [(before, False)]


def test_continued_dataset_fn_skips_the_consumed_batches():
    def numbers(ctx):
        return tf.data.Dataset.range(100).batch(2)

    ctx = tf.distribute.InputContext()
    assert continued_dataset_fn(numbers, 0) is numbers
    first = next(iter(continued_dataset_fn(numbers, 3, grad_accum_steps=2)(ctx)))
    np.testing.assert_array_equal(first.numpy(), [12, 13])  # 3 steps x 2 micro-batches
    mirrored = tf.distribute.InputContext(num_input_pipelines=1, num_replicas_in_sync=2)
    first = next(iter(continued_dataset_fn(numbers, 3)(mirrored)))
    np.testing.assert_array_equal(first.numpy(), [12, 13])  # 3 steps x 2 replicas

    class Resumable:
        def resume_at_step(self, step):
            self.step = step

    fn = Resumable()
    assert continued_dataset_fn(fn, 7) is fn and fn.step == 7
