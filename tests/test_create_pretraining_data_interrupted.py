"""Ctrl-C of create_pretraining_data.py: one line, exit 130, no temp file, no process left.

A real program on a corpus large enough to be mid-run (the WikiText test set repeated)
gets a real SIGINT once its temporary shards exist: sent to the program alone, or to its
whole process group as a terminal's Ctrl-C does (the workers and the forkserver get it
too). Its group must end by itself: the pool's workers and forkserver stopped, no
temporary file left, one line on stderr.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from test_create_pretraining_data_killed import REPO, TEMP_NAME, _kill_group, _live_members


@pytest.fixture(scope="module")
def large_corpus(tmp_path_factory, wikitext_corpus):
    path = tmp_path_factory.mktemp("large") / "wikitext-x12.txt"
    text = open(wikitext_corpus, encoding="utf-8").read()
    path.write_text(text * 12, encoding="utf-8")
    return path


def _wait_for_group_to_end(proc, timeout=60):
    """Waits for the program and every process of its group to end by themselves."""
    proc.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while _live_members(proc.pid):
        if time.monotonic() > deadline:
            left = _live_members(proc.pid)
            _kill_group(proc)
            pytest.fail(f"processes of the interrupted program's group still run: {left}")
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["program", "group"])
def test_sigint_while_writing_is_one_line_and_leaves_nothing(tmp_path, large_corpus, target):
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "create_pretraining_data.py", f"--input_file={large_corpus}",
         f"--output_dir={out}", "--max_seq_length=64", "--max_predictions_per_seq=10",
         "--dupe_factor=2", "--num_shards=4", "--num_workers=2", "--noprogress"],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO), start_new_session=True,
        # As from a terminal: a test runner started in the background ignores SIGINT, and
        # its children would inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any(TEMP_NAME.fullmatch(n) for n in os.listdir(out))):
        if proc.poll() is not None or time.monotonic() > deadline:
            _kill_group(proc)
            pytest.fail(f"the program did not start writing (exit {proc.returncode}): "
                        f"{proc.stderr.read()[-2000:]}")
        time.sleep(0.02)
    time.sleep(0.5)  # well into the writing: workers busy, shard bytes appended
    if target == "group":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGINT)
    _wait_for_group_to_end(proc)
    stderr = proc.stderr.read()
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines() == [
        f"create_pretraining_data.py: interrupted (no new shards written to {out}, "
        "temporary files removed)"], stderr
    # No temporary (nor any other) file: the dir this run created is removed again.
    assert not out.exists(), os.listdir(out)
