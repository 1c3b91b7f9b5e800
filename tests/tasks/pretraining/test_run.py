"""End-to-end tests of run_pretraining.py / spanbert_tf.tasks.pretraining.run on real text.

The TFRecords come from the real create_pretraining_data.py on the shared
WikiText-2 test split (seq 128, 20 predictions), made once per module.
"""

import json
import os
import re
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from spanbert_tf.data.input.input_pipeline import InputError
from spanbert_tf.data.writing import pipeline
from spanbert_tf.modeling.config import load_config
from spanbert_tf.tasks.pretraining.run import PretrainingSettings, run_pretraining
from spanbert_tf.tasks.pretraining.task import PretrainingTask
from spanbert_tf.training.train_log import read_train_log

REPO = pathlib.Path(__file__).resolve().parents[3]
LOG_KEYS = {"step", "loss", "mlm_loss", "sbo_loss", "mlm_accuracy", "sbo_accuracy",
            "learning_rate", "examples_per_sec"}


def _env():
    return dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")


def _write_records(input_file, output_dir, **settings):
    """What `create_pretraining_data.py --input_file=... --output_dir=... --max_seq_length=128
    --max_predictions_per_seq=20 --dupe_factor=1 --num_workers=1` writes (here, in this
    process: the program itself is tested in tests/test_create_pretraining_data.py)."""
    pipeline.create_pretraining_data(pipeline.PretrainingDataConfig(
        input_file=str(input_file), output_dir=str(output_dir), max_seq_length=128,
        max_predictions_per_seq=20, dupe_factor=1, num_workers=1, progress=False, **settings))
    return output_dir


@pytest.fixture(scope="module")
def wikitext_records(tmp_path_factory, shared_data):
    return _write_records(shared_data / "corpus" / "wikitext-2-raw-test.txt",
                          tmp_path_factory.mktemp("wikitext") / "tfrecords")


def _params(records, model_dir, config, **kw):
    kw.setdefault("log_every", 1)
    return PretrainingSettings(config=config, input_files=str(records), model_dir=str(model_dir),
                             show_progress=False, **kw)


def _run_without_args(records, cwd, *extra):
    """`python run_pretraining.py` in a directory holding ./tfrecords (the defaults)."""
    os.symlink(records, cwd / "tfrecords")
    return subprocess.run([sys.executable, str(REPO / "run_pretraining.py"), "--log_every=1",
                           *extra], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=900)


@pytest.mark.slow
def test_no_args_reads_tfrecords_and_writes_runs_pretrain(wikitext_records, tmp_path,
                                                          check_plot_written):
    """The defaults (tiny config, ./tfrecords → runs/pretrain) for 10 steps; the whole 300-step
    demo run and its learning check are `test_no_args_learns_on_wikitext` (benchmark marker:
    `make demo` runs the same job)."""
    proc = _run_without_args(wikitext_records, tmp_path, "--num_train_steps=10")
    assert proc.returncode == 0, proc.stderr[-3000:]
    model_dir = tmp_path / "runs" / "pretrain"
    assert f"checkpoint  {model_dir / 'ckpt-10'}" in proc.stdout
    assert json.loads(proc.stdout.splitlines()[-1])["step"] == 10
    log = read_train_log(model_dir)
    assert [r["step"] for r in log] == list(range(1, 11)) and LOG_KEYS <= set(log[0])
    config = json.loads((model_dir / "config.json").read_text())
    assert config["name"] == "tiny" and config["do_lower_case"] is False
    assert config["optimizer"]["train_batch_size"] == load_config("tiny").optimizer.train_batch_size
    assert (model_dir / "vocab.txt").stat().st_size > 100_000
    # losses (loss, mlm_loss, sbo_loss), learning rate, accuracies: 3 panels of 320 pixels.
    if check_plot_written(model_dir / "train_log.png", proc.stderr, (1200, 960)):
        assert f"plot        {model_dir / 'train_log.png'}" in proc.stdout


@pytest.mark.benchmark  # ~2 min on 2 cores: the `make demo` job
def test_no_args_learns_on_wikitext(wikitext_records, tmp_path):
    """Tiny config, 300 steps: MLM and SBO losses each fall by >= 2 nats."""
    proc = _run_without_args(wikitext_records, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    model_dir = tmp_path / "runs" / "pretrain"
    assert f"checkpoint  {model_dir / 'ckpt-300'}" in proc.stdout
    assert json.loads(proc.stdout.splitlines()[-1])["step"] == 300
    log = read_train_log(model_dir)
    assert [r["step"] for r in log] == list(range(1, 301))
    assert LOG_KEYS <= set(log[0])
    for key in ("mlm_loss", "sbo_loss"):
        first, last = log[0][key], np.mean([r[key] for r in log[-20:]])
        assert first - last >= 2.0, (key, first, last)
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-300")
    config = json.loads((model_dir / "config.json").read_text())
    assert config["name"] == "tiny" and config["do_lower_case"] is False
    assert (model_dir / "vocab.txt").stat().st_size > 100_000
    assert any((model_dir / "train").iterdir())


@pytest.mark.slow
def test_resume_continues_log_and_step(wikitext_records, micro_config, tmp_path):
    run_pretraining(_params(wikitext_records, tmp_path, micro_config, num_train_steps=40,
                            save_checkpoints_steps=20))
    assert [r["step"] for r in read_train_log(tmp_path)] == list(range(1, 41))
    summary = run_pretraining(_params(wikitext_records, tmp_path, micro_config,
                                      num_train_steps=60, save_checkpoints_steps=20))
    steps = [r["step"] for r in read_train_log(tmp_path)]
    assert steps == list(range(1, 61))  # continues at 41
    assert summary["checkpoint"].endswith("ckpt-60")
    reader = tf.train.load_checkpoint(str(tmp_path))
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 60
    assert json.loads((tmp_path / "config.json").read_text())["optimizer"]["num_train_steps"] == 60

    # --init_checkpoint restores the encoder only, into a new model dir.
    from spanbert_tf.training import distribute
    from spanbert_tf.training.trainer import Trainer
    config = load_config(micro_config)

    def trainer(model_dir, **kw):
        return Trainer(PretrainingTask(config), distribute.get_strategy(), str(model_dir),
                       config.optimizer,
                       lambda ctx: tf.data.Dataset.from_tensors(_zeros_batch()).repeat(), 5,
                       show_progress=False, seed=99, **kw)

    source = trainer(tmp_path)  # resumes the full checkpoint at step 60
    assert int(source.global_step.numpy()) == 60
    fresh = trainer(tmp_path / "new", init_checkpoint=str(tmp_path))
    assert int(fresh.global_step.numpy()) == 0
    for a, b in zip(source.model.backbone.weights, fresh.model.backbone.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(source.model.mlm_head.weights[0].numpy(),
                              fresh.model.mlm_head.weights[0].numpy())


def _zeros_batch(batch=2, L=128, P=20):
    from spanbert_tf.data import features

    out = {}
    for name, (dtype, length) in features.feature_shapes(L, P).items():
        out[name] = tf.zeros([batch, length], tf.float32 if dtype == "float32" else tf.int32)
    return out


@pytest.mark.slow
def test_mirrored_two_cpus_equals_default(wikitext_records, micro_config, tmp_path):
    common = ["--num_train_steps=6", "--log_every=1", "--train_batch_size=8", "--seed=7"]
    run_pretraining(_params(wikitext_records, tmp_path / "default", micro_config,
                            num_train_steps=6, train_batch_size=8, seed=7))
    proc = subprocess.run(
        [sys.executable, str(REPO / "run_pretraining.py"), f"--config={micro_config}",
         f"--input_files={wikitext_records}", f"--model_dir={tmp_path / 'mirrored'}",
         "--strategy=mirrored", "--cpu_devices=2", *common],
        env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mirrored, 2 replica(s)" in proc.stdout
    a, b = read_train_log(tmp_path / "default"), read_train_log(tmp_path / "mirrored")
    for key in ("loss", "mlm_loss", "sbo_loss", "mlm_accuracy"):
        np.testing.assert_allclose([r[key] for r in b], [r[key] for r in a], rtol=1e-4,
                                   err_msg=key)
    ra = tf.train.load_checkpoint(str(tmp_path / "default"))
    rb = tf.train.load_checkpoint(str(tmp_path / "mirrored"))
    for name, _ in tf.train.list_variables(str(tmp_path / "default")):
        if name.startswith("model/") and "OPTIMIZER_SLOT" not in name:
            np.testing.assert_allclose(rb.get_tensor(name), ra.get_tensor(name), atol=1e-5,
                                       err_msg=name)


@pytest.mark.slow
def test_mixed_precision_accumulation_smoke(wikitext_records, micro_config, tmp_path):
    summary = run_pretraining(_params(
        wikitext_records, tmp_path, micro_config, num_train_steps=4, mixed_precision="mixed_bfloat16",
        grad_accum_steps=2, steps_per_loop=2, log_every=2))
    assert summary["step"] == 4 and np.isfinite(summary["loss"])
    assert summary["mlm_loss"] > 5  # a real loss over ~29k classes


def test_data_that_does_not_fit_the_config(wikitext_records, micro_config, tmp_path):
    data = json.loads(pathlib.Path(micro_config).read_text())
    data["model"]["vocab_size"] = 30522
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    # The model's vocab_size follows the records' vocabulary, whatever the config says.
    from spanbert_tf.tasks.pretraining.run_checks import vocab_size_from_data

    metadata = json.loads((pathlib.Path(wikitext_records) / "metadata.json").read_text())
    followed = vocab_size_from_data(load_config(str(bad)), metadata, verbose=False)
    assert followed.model.vocab_size == 28996 and followed.model.hidden_size == 32
    data["model"].update(vocab_size=28996, max_position_embeddings=64)
    bad.write_text(json.dumps(data))
    with pytest.raises(InputError, match="max_seq_length 128 exceeds"):
        run_pretraining(_params(wikitext_records, tmp_path / "m", str(bad)))
    with pytest.raises(ValueError, match="not divisible by replicas"):
        run_pretraining(_params(wikitext_records, tmp_path / "m", micro_config,
                                train_batch_size=9, grad_accum_steps=2))


def test_cli_errors_are_one_line(tmp_path):
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(REPO / "run_pretraining.py"), "--strategy=tpu", "--tpu=my-tpu",
         f"--input_files={tmp_path}/missing"],
        env=_env(), capture_output=True, text=True, timeout=120,
    )
    assert time.monotonic() - start < 60
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith("run_pretraining")]
    assert lines == ["run_pretraining: error: cannot resolve TPU 'my-tpu': not on Google Cloud "
                     "(metadata server unreachable); pass --tpu=grpc://host:port or run on a TPU "
                     "VM with --tpu=local"]
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_sigkill_loses_only_steps_since_last_checkpoint(wikitext_records, micro_config, tmp_path):
    import signal

    model_dir = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "run_pretraining.py"), f"--config={micro_config}",
         f"--input_files={wikitext_records}", f"--model_dir={model_dir}",
         "--num_train_steps=100000", "--save_checkpoints_steps=5", "--log_every=1",
         "--steps_per_loop=1"],
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            log = read_train_log(model_dir) if model_dir.exists() else []
            if log and log[-1]["step"] >= 13:
                break
            assert proc.poll() is None, "run_pretraining exited early"
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    saved = int(tf.train.latest_checkpoint(str(model_dir)).rsplit("-", 1)[1])
    assert saved >= 10 and saved % 5 == 0
    run_pretraining(_params(wikitext_records, model_dir, micro_config,
                            num_train_steps=saved + 3, save_checkpoints_steps=5))
    steps = [r["step"] for r in read_train_log(model_dir)]
    assert steps == list(range(1, saved + 4))  # records past the checkpoint were redone once


def _damaged_copy(records, target, shard_index=3, how="truncate"):
    """A copy of the TFRecord dir with one shard truncated by 100 bytes or flipped in place."""
    import shutil

    shutil.copytree(records, target)
    shard = sorted(target.glob("pretrain-*.tfrecord"))[shard_index]
    data = bytearray(shard.read_bytes())
    if how == "truncate":
        shard.write_bytes(bytes(data[:-100]))
    else:  # same size, bytes flipped in the middle of a record
        for i in range(len(data) // 2, len(data) // 2 + 64):
            data[i] ^= 0xFF
        shard.write_bytes(bytes(data))
    return shard


def test_metadata_records_shard_sizes_and_checksums(wikitext_records):
    from spanbert_tf.io_utils import sha256_file

    meta = json.loads((wikitext_records / "metadata.json").read_text())
    entries = meta["shard_files"]
    assert [e["name"] for e in entries] == meta["shards"]
    assert sum(e["records"] for e in entries) == meta["counts"]["instances"]
    first = wikitext_records / entries[0]["name"]
    assert entries[0]["bytes"] == first.stat().st_size
    assert entries[0]["sha256"] == sha256_file(first)


def test_truncated_shard_stops_with_one_line_and_keeps_the_checkpoint(
        wikitext_records, micro_config, tmp_path):
    model_dir = tmp_path / "model"
    run_pretraining(_params(wikitext_records, model_dir, micro_config, num_train_steps=2,
                            save_checkpoints_steps=2))
    shard = _damaged_copy(wikitext_records, tmp_path / "records")
    proc = subprocess.run(
        [sys.executable, str(REPO / "run_pretraining.py"), f"--config={micro_config}",
         f"--input_files={tmp_path / 'records'}", f"--model_dir={model_dir}",
         "--num_train_steps=4"],
        env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith(f"run_pretraining: error: {shard}: corrupt or truncated")
    assert "--skip_corrupt_records" in errors[0]
    assert re.search(r"[\d,]+ bytes on disk, metadata\.json records [\d,]+ bytes", errors[0])
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-2")

    # Opting in: the shard's readable records are used, the lost ones counted.
    summary = run_pretraining(_params(tmp_path / "records", model_dir, micro_config,
                                      num_train_steps=4, skip_corrupt_records=True))
    assert summary["step"] == 4 and summary["corrupt_shards"] == [str(shard)]
    assert summary["dropped_records"] >= 1


def test_shard_corrupted_in_place_is_named_while_training(wikitext_records, micro_config,
                                                          tmp_path):
    shard = _damaged_copy(wikitext_records, tmp_path / "records", how="flip")
    with pytest.raises(InputError, match=f"{shard}: corrupt or truncated TFRecord shard") as info:
        run_pretraining(_params(tmp_path / "records", tmp_path / "m", micro_config,
                                num_train_steps=3))
    # The shard and the byte offset, not TensorFlow's op internals.
    assert re.search(r"\(corrupt record at byte offset \d+\)", str(info.value)), info.value
    assert "{{" not in str(info.value) and "Op:" not in str(info.value)
    assert not tf.train.latest_checkpoint(str(tmp_path / "m"))


def test_step_too_big_for_the_machine_stops_at_start_up(wikitext_records, tmp_path):
    model_dir = tmp_path / "large"
    proc = subprocess.run(
        [sys.executable, str(REPO / "run_pretraining.py"), "--config=large",
         f"--input_files={wikitext_records}", f"--model_dir={model_dir}",
         "--train_batch_size=65536"],
        env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "global batch 65536 (65536 per replica x 1 accumulation step(s) x 1 replica(s)), " \
           "seq 128, 3" in proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("run_pretraining: error: a training step needs about ")
    assert "--train_batch_size (now 65536) or raise --grad_accum_steps" in errors[0]
    assert "--force" in errors[0]
    assert not model_dir.exists()  # nothing left to block the next run


def test_model_dir_without_checkpoint_does_not_block_another_config(
        wikitext_records, micro_config, tmp_path, capsys):
    from spanbert_tf.modeling.model_dir import write_model_dir_metadata

    # What a run killed before its first checkpoint leaves: config.json (another config).
    write_model_dir_metadata(str(tmp_path), load_config("base"),
                             str(REPO / "spanbert_tf/resources/bert-base-cased-vocab.txt"), False)
    summary = run_pretraining(_params(wikitext_records, tmp_path, micro_config,
                                      num_train_steps=2, save_checkpoints_steps=2))
    assert summary["step"] == 2 and summary["resumed_from_step"] == 0
    summary = run_pretraining(_params(wikitext_records, tmp_path, micro_config,
                                      num_train_steps=3))
    assert summary["resumed_from_step"] == 2
    out = capsys.readouterr().out
    assert f"run_pretraining: resuming {tmp_path} from step 2" in out
    assert "M parameters, step memory ~" in out


@pytest.mark.slow
def test_sigterm_checkpoints_exits_143_and_resume_equals_uninterrupted(
        wikitext_records, micro_config, tmp_path):
    import signal

    model_dir, steps = tmp_path / "preempted", 60
    flags = [f"--config={micro_config}", f"--input_files={wikitext_records}",
             "--num_train_steps=60", "--log_every=1", "--steps_per_loop=1",
             "--save_checkpoints_steps=1000"]
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "run_pretraining.py"), f"--model_dir={model_dir}", *flags],
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not (model_dir / "train_log.jsonl").exists() or not read_train_log(model_dir):
            assert proc.poll() is None and time.monotonic() < deadline, "no training progress"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, stderr[-2000:]
    stopped = int(tf.train.latest_checkpoint(str(model_dir)).rsplit("-", 1)[1])
    assert 1 <= stopped < steps
    last = stderr.strip().splitlines()[-1]
    assert last == (f"run_pretraining: interrupted (SIGTERM at step {stopped}: checkpoint "
                    f"{model_dir}/ckpt-{stopped} saved; rerun the same command to resume "
                    "from it)")
    assert "Traceback" not in stderr

    # The same flags again: resumes at that step and ends where an uninterrupted run ends.
    resumed = run_pretraining(_params(wikitext_records, model_dir, micro_config,
                                      num_train_steps=steps, steps_per_loop=1,
                                      save_checkpoints_steps=1000))
    assert resumed["resumed_from_step"] == stopped and resumed["step"] == steps
    reference = run_pretraining(_params(wikitext_records, tmp_path / "reference", micro_config,
                                        num_train_steps=steps, save_checkpoints_steps=1000))
    got, want = read_train_log(model_dir), read_train_log(tmp_path / "reference")
    assert [r["step"] for r in got] == [r["step"] for r in want] == list(range(1, steps + 1))
    for key in ("loss", "mlm_loss", "sbo_loss"):  # the same batches after the resume point
        np.testing.assert_allclose([r[key] for r in got], [r[key] for r in want], rtol=1e-4)
    a = tf.train.load_checkpoint(str(model_dir))
    b = tf.train.load_checkpoint(str(tmp_path / "reference"))
    for name in a.get_variable_to_shape_map():
        if name.startswith("model/"):
            np.testing.assert_allclose(a.get_tensor(name), b.get_tensor(name), rtol=1e-4,
                                       atol=1e-6, err_msg=name)


@pytest.fixture(scope="module")
def empty_records(tmp_path_factory):
    """{masking: TFRecord dir} holding 0 records (masked offline, and unmasked), as earlier
    versions of create_pretraining_data.py wrote for an empty corpus (today it refuses to):
    a real run's output whose shards are emptied and whose metadata.json records 0."""
    from spanbert_tf.io_utils import sha256_file

    root = tmp_path_factory.mktemp("empty")
    dirs = {}
    for masking in ("span", "none"):
        dirs[masking] = _write_records(REPO / "tests/data_files/corpus/bert_sample_text.txt",
                                       root / masking, masking=masking)
        meta_file = dirs[masking] / "metadata.json"
        meta = json.loads(meta_file.read_text())
        for entry in meta["shard_files"]:
            shard = dirs[masking] / entry["name"]
            shard.write_bytes(b"")
            entry.update(records=0, bytes=0, sha256=sha256_file(shard))
        meta["counts"].update(instances=0, instances_per_shard=[0] * len(meta["shards"]))
        meta_file.write_text(json.dumps(meta))
    return dirs


@pytest.mark.slow
@pytest.mark.parametrize("masking,backend", [("span", "tensorflow"), ("none", "tensorflow"),
                                             ("span", "jax")])
def test_zero_records_are_refused_in_one_line(empty_records, micro_config, tmp_path, masking,
                                              backend):
    proc = subprocess.run(
        [sys.executable, str(REPO / "run_pretraining.py"), f"--config={micro_config}",
         f"--input_files={empty_records[masking]}", f"--model_dir={tmp_path}",
         f"--backend={backend}", "--num_train_steps=5"],
        env=_env(), capture_output=True, text=True, timeout=180)  # it used to hang forever
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        f"run_pretraining: error: {empty_records[masking]}: the 10 shard(s) hold 0 records "
        "(metadata.json counts): nothing to train on; was the corpus empty or its documents "
        "too short? See stats.json there and recreate the data with create_pretraining_data.py"]
    assert not list(tmp_path.glob("ckpt-*"))


def test_input_pipeline_refuses_zero_records(empty_records):
    from spanbert_tf.data.input import input_pipeline

    files, metadata = input_pipeline.find_pretraining_files(str(empty_records["span"]))
    dataset_fn = input_pipeline.make_pretraining_dataset_fn(files, metadata, 8, seed=1)
    with pytest.raises(InputError, match="hold 0 records"):
        dataset_fn(tf.distribute.InputContext())


@pytest.mark.slow
def test_tiny_data_is_noted_once_before_training(micro_config, tmp_path, shared_data, capsys):
    text = (shared_data / "corpus" / "wikitext-2-raw-test.txt").read_text().splitlines()
    (tmp_path / "small.txt").write_text("\n".join(text[:6]) + "\n")
    _write_records(tmp_path / "small.txt", tmp_path / "records")
    instances = json.loads((tmp_path / "records" / "metadata.json").read_text())[
        "counts"]["instances"]
    assert 0 < instances < 20
    run_pretraining(_params(tmp_path / "records", tmp_path / "run", micro_config,
                            num_train_steps=30))
    notes = [line for line in capsys.readouterr().out.splitlines() if ": note: " in line]
    assert notes == [f"run_pretraining: note: the data holds {instances} instances; 30 steps x "
                     f"batch 8 read them ~{30 * 8 / instances:.0f} times (more than 10 passes: "
                     "the model may memorise them rather than learn; more data or fewer "
                     "--num_train_steps)"]
