"""run_pretraining.py --backend=jax against --backend=tensorflow on the same data and weights.

TensorFlow and JAX on span-masked records and on unmasked records (dynamic masking; JAX over 2
CPU devices, i.e. keras.distribution.DataParallel): the JAX runs in subprocesses (a process has
one Keras backend) while the TensorFlow runs train here; 50 steps of a 1-layer config without
dropout, all from one initial weights file. Then the JAX dynamic run is resumed from its step-25 checkpoint, and its
model dir is read the way the fine-tuning programs read theirs.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from spanbert_tf.data.writing import pipeline
from spanbert_tf.modeling.config import load_config
from spanbert_tf.tasks.pretraining.run import PretrainingSettings, run_pretraining
from spanbert_tf.training.train_log import read_train_log

REPO = pathlib.Path(__file__).resolve().parents[3]
STEPS = 50
# Two JAX processes (each imports TensorFlow, JAX and keras-hub) beside two TensorFlow runs,
# then one more JAX process: about 2.5 CPU-minutes for the tests marked slow.


def _env():
    env = dict(os.environ, PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
    env.pop("KERAS_BACKEND", None)  # --backend decides
    return env


def _command(backend, records, model_dir, config, init_weights, *extra):
    return [sys.executable, str(REPO / "run_pretraining.py"), f"--backend={backend}",
            f"--config={config}", f"--input_files={records}", f"--model_dir={model_dir}",
            f"--num_train_steps={STEPS}", "--log_every=10", "--save_checkpoints_steps=25",
            "--max_predictions_per_seq=10", f"--init_weights={init_weights}", *extra]


def _finish(process, what):
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0, f"{what} failed:\n{out[-4000:]}"
    return out, json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_data, write_micro_config):
    import keras

    from spanbert_tf.modeling.pretrainer import build_pretrainer

    work = tmp_path_factory.mktemp("jax_vs_tf")
    for masking in ("span", "none"):
        pipeline.create_pretraining_data(pipeline.PretrainingDataConfig(
            input_file=str(shared_data / "corpus" / "bert_sample_text.txt"),
            output_dir=str(work / masking), masking=masking, max_seq_length=64,
            max_predictions_per_seq=10, dupe_factor=2, num_shards=2, num_workers=1,
            progress=False))
    config = write_micro_config(work / "micro.json", num_warmup_steps=5, learning_rate=2e-3)
    keras.utils.set_random_seed(7)
    init = str(work / "init.weights.h5")
    build_pretrainer(load_config(config)).save_weights(init)

    processes = {}  # JAX in subprocesses; meanwhile TensorFlow here (already imported)
    for masking in ("span", "none"):
        extra = ["--cpu_devices=2"] if masking == "none" else []
        command = _command("jax", work / masking, work / f"jax_{masking}", config, init, *extra)
        processes[masking] = (command, subprocess.Popen(
            command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    results = {}
    try:
        for masking in ("span", "none"):
            results["tensorflow", masking] = (None, "", run_pretraining(PretrainingSettings(
                config=str(config), input_files=str(work / masking),
                model_dir=str(work / f"tensorflow_{masking}"), num_train_steps=STEPS,
                log_every=10, save_checkpoints_steps=25, max_predictions_per_seq=10,
                init_weights=init, show_progress=False)))
        for masking, (command, process) in processes.items():
            results["jax", masking] = (command,) + _finish(process, f"jax {masking}")
    finally:
        for _, process in processes.values():
            if process.poll() is None:
                process.kill()
                process.communicate()
    return work, results


@pytest.mark.slow
@pytest.mark.parametrize("masking", ["span", "none"])
def test_jax_losses_follow_tensorflow(runs, masking, check_png, check_plot_written):
    work, results = runs
    tf_log = read_train_log(work / f"tensorflow_{masking}")
    jax_log = read_train_log(work / f"jax_{masking}")
    assert [r["step"] for r in jax_log] == [r["step"] for r in tf_log] == [10, 20, 30, 40, 50]
    assert set(jax_log[0]) == set(tf_log[0])  # the same train_log.jsonl record
    assert jax_log[0]["loss"] - jax_log[-1]["loss"] > 0.3  # it learns
    for tf_record, jax_record in zip(tf_log, jax_log):
        for key in ("loss", "mlm_loss", "sbo_loss", "learning_rate"):
            assert abs(jax_record[key] - tf_record[key]) <= 1e-3, (masking, jax_record["step"], key)
    summary = results["jax", masking][2]
    assert summary["step"] == STEPS and summary["dynamic_masking"] is (masking == "none")
    assert summary["num_replicas"] == (2 if masking == "none" else 1)  # DataParallel
    assert abs(summary["loss"] - results["tensorflow", masking][2]["loss"]) <= 1e-3
    # The same model dir: config.json, vocab.txt, TensorBoard; Keras checkpoints.
    for name in ("config.json", "vocab.txt"):
        assert ((work / f"jax_{masking}" / name).read_bytes()
                == (work / f"tensorflow_{masking}" / name).read_bytes())
    jax_dir = work / f"jax_{masking}"
    assert any((jax_dir / "train").iterdir())
    # train_log.png on both backends: losses, learning rate, accuracies (3 panels).
    if check_plot_written(jax_dir / "train_log.png", results["jax", masking][1], (1200, 960)):
        assert summary["train_log_png"] == str(jax_dir / "train_log.png")
        tf_png = results["tensorflow", masking][2]["train_log_png"]
        assert tf_png == str(work / f"tensorflow_{masking}" / "train_log.png")
        check_png(tf_png, (1200, 960))
    assert sorted(p.name for p in jax_dir.glob("ckpt-*")) == ["ckpt-25.weights.h5",
                                                              "ckpt-50.weights.h5"]


@pytest.mark.slow
def test_resumed_jax_run_continues_step_and_data(runs):
    """ckpt-50 lost (a run killed after ckpt-25): the rerun redoes steps 26-50 exactly, which
    it can only do when the optimizer state, the step and the data stream all continue."""
    work, results = runs
    command, _, first = results["jax", "none"]
    model_dir = work / "jax_none"
    before = read_train_log(model_dir)
    os.unlink(model_dir / "ckpt-50.weights.h5")
    out, summary = _finish(subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True), "resume")
    assert f"resuming {model_dir} from step 25" in out
    assert summary["resumed_from_step"] == 25 and summary["step"] == STEPS
    after = read_train_log(model_dir)
    assert [r["step"] for r in after] == [10, 20, 30, 40, 50]  # no step twice
    for old, new in zip(before, after):
        for key in ("loss", "mlm_loss", "sbo_loss", "mlm_accuracy", "learning_rate"):
            assert abs(new[key] - old[key]) <= 1e-5, (new["step"], key)
    assert abs(summary["loss"] - first["loss"]) <= 1e-5


@pytest.mark.slow
def test_jax_model_dir_loads_downstream(runs):
    """What run_squad / run_classifier do with --init_checkpoint=MODEL_DIR/preset, on
    TensorFlow: the JAX-trained encoder arrives; the whole pretrainer loads from ckpt-N too."""
    from spanbert_tf.modeling.backbone import build_backbone
    from spanbert_tf.modeling.model_dir import read_model_dir, restore_backbone
    from spanbert_tf.modeling.pretrainer import build_pretrainer

    work, _ = runs
    model_dir = work / "jax_span"
    info = read_model_dir(str(model_dir / "preset"))
    assert info.config.model.hidden_size == 32 and info.do_lower_case is False
    # The model dir itself reads through its preset/ (no TF checkpoint there).
    assert read_model_dir(str(model_dir)) == info
    backbone = build_backbone(info.config.model)
    restore_backbone(backbone, info.checkpoint_path)
    config = read_model_dir(str(model_dir), require_checkpoint=False).config
    trained = build_pretrainer(config)
    trained.load_weights(str(model_dir / "ckpt-50.weights.h5"))
    initial = build_pretrainer(config)
    initial.load_weights(str(work / "init.weights.h5"))
    for got, want, init in zip(backbone.weights, trained.backbone.weights,
                               initial.backbone.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=got.path)
    moved = [w.path for w, i in zip(trained.weights, initial.weights)
             if not np.array_equal(w.numpy(), i.numpy())]
    # All trained but the pooler, which the loss does not reach (left alone, as on TensorFlow).
    assert moved == [w.path for w in trained.weights if "pooled_dense" not in w.path]


@pytest.mark.slow
def test_model_dir_resumes_only_on_its_backend(runs):
    from spanbert_tf.errors import InputError
    from spanbert_tf.training.backends import check_checkpoint_backend

    work, _ = runs
    with pytest.raises(InputError, match="--backend=tensorflow"):
        check_checkpoint_backend(str(work / "tensorflow_span"), "jax")
    with pytest.raises(InputError, match="--backend=jax"):
        check_checkpoint_backend(str(work / "jax_span"), "tensorflow")
    check_checkpoint_backend(str(work / "jax_span"), "jax")


def test_tensorflow_only_flags_are_refused_on_jax_in_one_line():
    proc = subprocess.run([sys.executable, str(REPO / "run_pretraining.py"), "--backend=jax",
                           "--grad_accum_steps=2", "--strategy=mirrored"], env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "run_pretraining: error: --strategy, --grad_accum_steps: TensorFlow-only; on "
        "--backend=jax training runs one jitted step over all local devices "
        "(keras.distribution.DataParallel; --num_gpus limits them, --cpu_devices splits the CPU)"]
