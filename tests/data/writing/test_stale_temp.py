"""Stale temporary files of killed runs: reported at the next run into the dir (count, size),
and with --remove_stale_temp deleted when their process is gone, never a live one's."""

import json
import os
import pathlib
import subprocess
import sys

from spanbert_tf.data.writing import stale_temp

REPO = pathlib.Path(__file__).resolve().parents[3]


def _dead_pid():
    """The PID of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _leave_temp_files(out):
    out.mkdir(parents=True, exist_ok=True)
    dead, live = _dead_pid(), os.getpid()
    files = {
        "dead_shard": out / f".pretrain-00000-of-00002.tfrecord.tmp-{dead}",
        "dead_meta": out / f".metadata.json.tmp-{dead}",
        "live_shard": out / f".pretrain-00001-of-00002.tfrecord.tmp-{live}",
        "old_beam": out / ".stats.json.tmp-beam-0123abcd",
    }
    for i, path in enumerate(files.values()):
        path.write_bytes(b"x" * (1000 * (i + 1)))
    (out / "notes.txt").write_text("not ours")
    return files


def _run(out, *extra):
    cmd = [sys.executable, str(REPO / "create_pretraining_data.py"),
           f"--input_file={REPO / 'tests/data_files/corpus/bert_sample_text.txt'}",
           f"--output_dir={out}", "--max_seq_length=64", "--max_predictions_per_seq=10",
           "--dupe_factor=1", "--num_shards=1", "--num_workers=1", "--noprogress", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)


def test_the_next_run_reports_them_in_one_line_and_keeps_them(tmp_path):
    out = tmp_path / "records"
    files = _leave_temp_files(out)
    proc = _run(out)
    assert proc.returncode == 0, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if "stale temporary" in l]
    assert lines == [f"create_pretraining_data: 4 stale temporary file(s) of interrupted runs in "
                     f"{out}, 0.0 MB (e.g. {files['dead_meta'].name}); --remove_stale_temp "
                     "deletes those whose process is gone"], proc.stderr
    assert all(path.exists() for path in files.values())
    stats = json.loads((out / "stats.json").read_text())
    assert stats["stale_temp_files"] == {"found": 4, "bytes": 10000, "removed": 0}


def test_remove_stale_temp_deletes_only_those_whose_process_is_gone(tmp_path):
    out = tmp_path / "records"
    files = _leave_temp_files(out)
    proc = _run(out, "--remove_stale_temp")
    assert proc.returncode == 0, proc.stderr
    line = [l for l in proc.stderr.splitlines() if "stale temporary" in l]
    assert len(line) == 1 and line[0].startswith(
        f"create_pretraining_data: removed 2 stale temporary file(s) of ended runs from {out}")
    assert f"kept 2" in line[0] and str(os.getpid()) in line[0]
    assert not files["dead_shard"].exists() and not files["dead_meta"].exists()
    assert files["live_shard"].exists() and files["old_beam"].exists()
    assert (out / "notes.txt").exists()
    assert json.loads((out / "stats.json").read_text())["stale_temp_files"]["removed"] == 2


def test_names_and_pids():
    assert stale_temp.pid_of(".pretrain-00003-of-00010.tfrecord.gz.tmp-4242") == 4242
    assert stale_temp.pid_of(".metadata.json.tmp-beam-77-00ff") == 77
    assert stale_temp.pid_of(".stats.json.tmp-beam-00ff") is None
    assert stale_temp.TEMP_NAME.fullmatch("pretrain-00000-of-00001.tfrecord") is None
    assert not stale_temp.pid_alive(_dead_pid()) and stale_temp.pid_alive(os.getpid())
