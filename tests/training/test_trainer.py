"""Tests of the one training loop on a small toy Task (training_toy_task.py)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from spanbert_tf.modeling.config import OptimizerConfig
from spanbert_tf.training import distribute
from spanbert_tf.training.train_log import read_train_log
from spanbert_tf.training.trainer import Trainer
from training_toy_task import ToyTask, toy_arrays, toy_dataset_fn

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "training_toy_worker.py")
ACCUMULATION_WORKER = os.path.join(HERE, "training_accumulation_worker.py")


def _opt(steps, lr=0.05):
    return OptimizerConfig(learning_rate=lr, num_warmup_steps=3, num_train_steps=steps,
                           weight_decay=0.01, clip_norm=1.0)


def _trainer(model_dir, steps=60, **kwargs):
    kwargs.setdefault("log_every", 1)
    kwargs.setdefault("steps_per_loop", 7)
    kwargs.setdefault("save_checkpoints_steps", 20)
    return Trainer(ToyTask(), distribute.get_strategy("default"), str(model_dir), _opt(steps),
                   toy_dataset_fn(32), steps, show_progress=False, **kwargs)


def test_trains_logs_and_resumes(tmp_path):
    trainer = _trainer(tmp_path)
    summary = trainer.train(until_step=40)
    assert summary["step"] == 40 and int(trainer.global_step.numpy()) == 40
    log = read_train_log(tmp_path)
    assert [r["step"] for r in log] == list(range(1, 41))
    for key in ("loss", "ce", "accuracy", "learning_rate", "examples_per_sec"):
        assert key in log[0]
    assert log[-1]["loss"] < 0.5 * log[0]["loss"]
    np.testing.assert_array_equal(trainer.model.unused_kernel.numpy(), np.ones(3))
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-40")
    assert (tmp_path / "train").is_dir()  # TensorBoard events

    # A new process (here: a new Trainer) resumes from the checkpoint.
    resumed = _trainer(tmp_path)
    assert int(resumed.global_step.numpy()) == 40
    for a, b in zip(trainer.model.trainable_variables, resumed.model.trainable_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(resumed.optimizer.iterations.numpy()) == 40
    resumed.train()
    log = read_train_log(tmp_path)
    assert [r["step"] for r in log] == list(range(1, 61))
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-60")
    reader = tf.train.load_checkpoint(str(tmp_path))
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 60
    # The learning rate decays linearly to 0 at the last step.
    assert log[-1]["learning_rate"] == pytest.approx(0.0, abs=1e-9)
    assert log[2]["learning_rate"] == pytest.approx(0.05)


def test_killed_run_log_is_truncated_to_checkpoint(tmp_path):
    _trainer(tmp_path, steps=30).train(until_step=20)
    # A run killed after step 25 (its last checkpoint was 20) left records 21-25.
    with open(tmp_path / "train_log.jsonl", "a") as f:
        for step in range(21, 26):
            f.write(json.dumps({"step": step, "loss": 1.0}) + "\n")
        f.write('{"step": 26, "lo')  # cut mid-line by SIGKILL
    _trainer(tmp_path, steps=30).train()
    assert [r["step"] for r in read_train_log(tmp_path)] == list(range(1, 31))


def test_predict_concatenates_in_order(tmp_path):
    trainer = _trainer(tmp_path, steps=5)
    assert trainer.train(until_step=3)["step"] == 3
    assert trainer.train()["step"] == 5  # train() may be called again
    assert [r["step"] for r in read_train_log(tmp_path)] == [1, 2, 3, 4, 5]
    arrays = toy_arrays(50)
    out = trainer.predict(tf.data.Dataset.from_tensor_slices(arrays).batch(16))
    assert out["logits"].shape == (50, 4)
    expected = trainer.model({"x": tf.constant(arrays["x"])}, training=False)["logits"]
    np.testing.assert_allclose(out["logits"], expected.numpy(), rtol=1e-5, atol=1e-6)


def test_predict_elements_one_dict_per_element_of_any_shape(tmp_path):
    trainer = _trainer(tmp_path, steps=1)
    x = toy_arrays(12)["x"]
    sizes = (5, 3, 4)
    pieces = np.split(x, np.cumsum(sizes)[:-1])
    dataset = tf.data.Dataset.from_generator(
        lambda: ({"x": p} for p in pieces),
        output_signature={"x": tf.TensorSpec([None, x.shape[1]], tf.float32)})
    outs = trainer.predict_elements(dataset)
    assert [o["logits"].shape[0] for o in outs] == list(sizes)
    expected = trainer.model({"x": tf.constant(x)}, training=False)["logits"].numpy()
    np.testing.assert_allclose(np.concatenate([o["logits"] for o in outs]), expected,
                               rtol=1e-5, atol=1e-6)


def test_predict_only_trainer_restores_checkpoint(tmp_path):
    trained = _trainer(tmp_path, steps=5)
    trained.train()
    predictor = Trainer(ToyTask(), distribute.get_strategy("default"), str(tmp_path), _opt(5),
                        None, 5, show_progress=False)
    x = {"x": toy_arrays(8)["x"]}
    out = predictor.predict(tf.data.Dataset.from_tensor_slices(x).batch(8))
    expected = trained.model({"x": tf.constant(x["x"])}, training=False)["logits"]
    np.testing.assert_allclose(out["logits"], expected.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="only predict"):
        predictor.train()


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains(tmp_path, policy):
    trainer = _trainer(tmp_path, steps=30, mixed_precision=policy, log_every=10)
    assert trainer.model.head.compute_dtype == policy.split("_")[1]
    assert trainer.model.head.kernel.dtype == "float32"
    trainer.train()
    log = read_train_log(tmp_path)
    assert np.isfinite(log[-1]["loss"]) and log[-1]["loss"] < log[0]["loss"]


def test_jit_compile_matches_eager_graph(tmp_path):
    plain = _trainer(tmp_path / "plain", steps=6, seed=3)
    plain.train()
    jit = _trainer(tmp_path / "jit", steps=6, seed=3, jit_compile=True)
    jit.train()
    a = [r["loss"] for r in read_train_log(tmp_path / "plain")]
    b = [r["loss"] for r in read_train_log(tmp_path / "jit")]
    np.testing.assert_allclose(a, b, rtol=1e-4)


def test_data_running_out_is_a_clear_error(tmp_path):
    def finite_fn(ctx):
        return tf.data.Dataset.from_tensor_slices(toy_arrays(64)).batch(32, drop_remainder=True)

    trainer = Trainer(ToyTask(), distribute.get_strategy("default"), str(tmp_path), _opt(5),
                      finite_fn, 5, show_progress=False)
    with pytest.raises(ValueError, match="ran out within steps 1-5"):
        trainer.train()


def test_unknown_loss_weight_name(tmp_path):
    task = ToyTask()
    task.loss_weights = {"nope": 1.0}
    with pytest.raises(KeyError, match="nope"):
        Trainer(task, distribute.get_strategy("default"), str(tmp_path), _opt(5),
                toy_dataset_fn(32), 5, show_progress=False)


def test_grad_accum_needs_loss_denominators(tmp_path):
    class NoDenominators:  # the Task protocol without loss_denominators
        loss_weights = {"ce": 1.0}

    with pytest.raises(ValueError, match="NoDenominators has no loss_denominators"):
        Trainer(NoDenominators(), distribute.get_strategy("default"), str(tmp_path), _opt(5),
                toy_dataset_fn(32), 5, grad_accum_steps=2, show_progress=False)


@pytest.mark.slow
def test_accumulated_gradients_are_exact_for_every_task(tmp_path, shared_data):
    """k micro-batches (and replicas) give the gradient of one k-times batch, every term:
    MLM + SBO, SQuAD, classification (the toy task's two terms: the test below)."""
    out = tmp_path / "grads.npz"
    data = tmp_path / "data.json"
    squad = "squad/DERIVED_squad-v1.1-format_from_haystack-small_answerable.json"
    data.write_text(json.dumps({
        "corpus": str(shared_data / "corpus/bert_sample_text.txt"),
        "squad_v1": str(shared_data / squad),
        "squad_v2": str(shared_data / "squad/squad-v2.0-dev-subset_haystack-small.json"),
        "vocab": str(shared_data / "vocab/bert-base-cased-vocab.txt")}))
    subprocess.run([sys.executable, ACCUMULATION_WORKER, str(out), str(data)], check=True,
                   timeout=400)
    res = np.load(out)
    assert int(res["num_replicas"]) == 2
    for task in ("pretraining", "squad", "classification"):
        dens = res[f"{task}/denominators"]
        np.testing.assert_array_equal(dens[:, 0], dens[:, 1], err_msg=task)
        count = sum(1 for k in res.files if k.startswith(f"{task}/default/")) - 1
        base = [res[f"{task}/default/{i}"] for i in range(count)]
        scale = max(float(np.abs(g).max()) for g in base)
        assert count > 2 and scale > 0
        for layout in ("accum", "mirrored", "mirrored_accum"):
            err = f"{task} {layout}"
            assert float(res[f"{task}/{layout}/loss"]) == pytest.approx(
                float(res[f"{task}/default/loss"]), rel=1e-6), err
            for i, want in enumerate(base):
                np.testing.assert_allclose(res[f"{task}/{layout}/{i}"], want, rtol=1e-5,
                                           atol=1e-5 * scale, err_msg=f"{err} {i}")


@pytest.mark.slow
def test_mirrored_and_grad_accum_equal_default(tmp_path):
    out = tmp_path / "eq.json"
    subprocess.run([sys.executable, WORKER, "equivalence", str(out)], check=True, timeout=240)
    res = json.loads(out.read_text())
    assert res["num_replicas"] == 2
    base = res["default"]
    for name in ("mirrored", "accum", "mirrored_accum"):
        np.testing.assert_allclose(res[name]["losses"], base["losses"], rtol=2e-5, err_msg=name)
        for a, b in zip(res[name]["weights"], base["weights"]):
            np.testing.assert_allclose(a, b, atol=2e-5, err_msg=name)
    # predict() under MirroredStrategy: same outputs, same order, incl. a 1-example last batch.
    np.testing.assert_allclose(res["mirrored"]["predict"], base["predict"], atol=1e-5)
    assert len(base["predict"]) == 49


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_mirrored_two_local_workers(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen(
            [sys.executable, WORKER, "mwms", str(tmp_path / f"w{index}.npz"),
             str(tmp_path / "model")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        ))
    outputs = []
    for proc in procs:
        try:
            outputs.append(proc.communicate(timeout=180)[0].decode(errors="replace"))
        finally:
            if proc.poll() is None:
                proc.kill()
    for proc, text in zip(procs, outputs):
        assert proc.returncode == 0, text[-3000:]
    w0, w1 = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert int(w0["replicas"]) == 2 and bool(w0["chief"]) and not bool(w1["chief"])
    keys = [k for k in w0.files if k not in ("replicas", "chief")]
    assert keys
    for key in keys:
        np.testing.assert_array_equal(w0[key], w1[key])
    # Only the chief wrote the model dir; the worker's temporary copy is gone.
    assert tf.train.latest_checkpoint(str(tmp_path / "model")).endswith("ckpt-4")
    assert not any(p.name.startswith(".worker") for p in (tmp_path / "model").iterdir())
    assert [r["step"] for r in read_train_log(tmp_path / "model")] == [1, 2, 3, 4]


def test_dataset_that_yields_nothing_is_a_clear_error(tmp_path):
    def empty_fn(ctx):  # fewer examples than one batch: repeat() of an empty dataset ends
        ds = tf.data.Dataset.from_tensor_slices(toy_arrays(8))
        return ds.batch(32, drop_remainder=True).repeat()

    trainer = Trainer(ToyTask(), distribute.get_strategy("default"), str(tmp_path), _opt(5),
                      empty_fn, 5, show_progress=False)
    with pytest.raises(ValueError, match="the training dataset yielded no batch .* fewer "
                                         "examples than one batch"):
        trainer.train()
