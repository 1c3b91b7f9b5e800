"""A kill -9 of create_pretraining_data.py leaves nothing a reader takes for a shard.

The program runs in its own session (process group) with one extra hook: when it
reaches the phase under test (shard bytes being written, or the first shard
renamed to its final name, over the output of an earlier run with another
max_seq_length) it creates a marker file and waits. The test sees the marker,
kills the whole process group with SIGKILL (workers, forkserver, Beam's worker
threads) and checks what the output dir holds: no metadata.json (not even the
earlier run's, which would describe the new shards wrongly), and the readers of `run_pretraining.py` (`input_pipeline.find_pretraining_files`,
given the dir or a glob of shards) refuse it with their one-line error. The hook
only pauses the real program: no sleep decides the outcome.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from spanbert_tf.data.input import input_pipeline
from spanbert_tf.data.writing import pipeline
from spanbert_tf.errors import InputError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What a reader takes for a shard: the program's final names, not hidden.
SHARD_NAME = re.compile(r"pretrain-\d{5}-of-\d{5}\.tfrecord(\.gz)?")
TEMP_NAME = re.compile(r"\.pretrain-\d{5}-of-\d{5}\.tfrecord(\.gz)?\.tmp-.+")

_PAUSE = """
import os, sys, time
MARKER = sys.argv.pop(1)
def pause():
    open(MARKER, "w").close()            # the marker: the phase is reached
    time.sleep(600)                      # the test kills us long before
"""
# Per (runner, phase): code wrapping one function of the program to pause in that phase.
_HOOKS = {
    ("local", "writing"): """
from spanbert_tf.data.writing import writer
write = writer.ShardWriter.write
def paused_write(self, shard, framed, num_records=0):
    write(self, shard, framed, num_records)
    self._files[shard].flush()           # partial shard bytes on disk
    pause()
writer.ShardWriter.write = paused_write
""",
    ("local", "renaming"): """
replace = os.replace
def paused_replace(src, dst):
    replace(src, dst)
    if os.path.basename(dst).startswith("pretrain-"):
        pause()                          # one shard has its final name, the rest do not
os.replace = paused_replace
""",
    ("beam", "writing"): """
from spanbert_tf.data.writing import beam_output
write_shard = beam_output.WriteShard.__call__
def paused_write_shard(self, element):
    entry = write_shard(self, element)   # one shard complete under its temporary name
    pause()
beam_output.WriteShard.__call__ = paused_write_shard
""",
    ("beam", "renaming"): """
import tensorflow as tf
rename = tf.io.gfile.rename
def paused_rename(src, dst, overwrite=False):
    rename(src, dst, overwrite=overwrite)
    if os.path.basename(dst).startswith("pretrain-"):
        pause()
tf.io.gfile.rename = paused_rename
""",
}
_RUNNER_FLAGS = {"local": ["--runner=local", "--num_workers=2"],
                 "beam": ["--runner=beam"]}  # FnApiRunner, in this process: the hook applies


@pytest.fixture(scope="module")
def earlier_output(tmp_path_factory, wikitext_corpus):
    """A complete output dir of another run (L 64) with the killed runs' shard names."""
    out = tmp_path_factory.mktemp("earlier") / "out"
    pipeline.create_pretraining_data(pipeline.PretrainingDataConfig(
        input_file=wikitext_corpus, output_dir=str(out), max_seq_length=64, dupe_factor=1,
        num_shards=4, num_workers=1, progress=False))
    return out


def _run_until_paused(runner, phase, corpus, out, marker, timeout=90):
    """Starts the program in a new session; returns the Popen once it is paused."""
    code = _PAUSE + _HOOKS[runner, phase] + textwrap.dedent("""
        sys.argv[0] = "create_pretraining_data.py"
        import create_pretraining_data
        create_pretraining_data.run()
    """)
    args = [f"--input_file={corpus}", f"--output_dir={out}", "--max_seq_length=32",
            "--max_predictions_per_seq=5", "--dupe_factor=1", "--num_shards=4",
            "--noprogress", *_RUNNER_FLAGS[runner]]
    proc = subprocess.Popen([sys.executable, "-c", code, str(marker), *args], cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=REPO), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            _kill_group(proc)
            pytest.fail(f"the program did not reach the {phase} phase "
                        f"(exit {proc.returncode}):\n{proc.stdout.read().decode()[-3000:]}")
        time.sleep(0.05)
    return proc


def _kill_group(proc):
    """SIGKILL to the program's whole process group; waits until every member is gone."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _live_members(proc.pid):  # workers, forkserver: still dying
        if time.monotonic() > deadline:
            pytest.fail(f"processes of the killed program's group still run: "
                        f"{_live_members(proc.pid)}")
        time.sleep(0.05)


def _live_members(pgid):
    """Pids of the group's processes still running (a zombie waiting for its reaper is not)."""
    live = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()  # state, ppid, pgrp, ...
        except (OSError, IndexError):
            continue  # not a process, or gone meanwhile
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            live.append(int(entry))
    return live


@pytest.mark.parametrize("runner,phase", sorted(_HOOKS))
def test_kill_9_leaves_no_file_a_reader_takes_for_a_shard(tmp_path, wikitext_corpus, runner,
                                                          phase, earlier_output):
    if runner == "beam":
        pytest.importorskip("apache_beam")
    out, marker = tmp_path / "out", tmp_path / "paused"
    if phase == "renaming":
        shutil.copytree(earlier_output, out)
        earlier = {n: (out / n).read_bytes() for n in os.listdir(out) if n.startswith("pre")}
    proc = _run_until_paused(runner, phase, wikitext_corpus, out, marker)
    _kill_group(proc)
    assert proc.returncode == -signal.SIGKILL

    names = sorted(os.listdir(out))
    assert "metadata.json" not in names and "stats.json" not in names
    temps = [n for n in names if TEMP_NAME.fullmatch(n)]
    finals = [n for n in names if SHARD_NAME.fullmatch(n)]
    assert temps, names  # killed with shards still in progress
    assert sorted(temps + finals) == names  # nothing else was left
    if phase == "writing":
        assert not finals
        assert any(os.path.getsize(out / n) for n in temps)  # partial data, hidden
    else:  # shard 0 is the new run's, 1-3 the earlier run's: no metadata.json fits both
        assert finals == sorted(earlier) and len(temps) == 3
        assert [(out / n).read_bytes() == earlier[n] for n in finals] == [False, True, True, True]

    # run_pretraining.py's reader refuses the directory and a glob of its shards.
    with pytest.raises(InputError, match=f"^{re.escape(str(out))} has no metadata.json: "):
        input_pipeline.find_pretraining_files(str(out))
    glob_error = ("metadata.json not found: every shard directory needs" if finals
                  else "no input files match")
    with pytest.raises(InputError, match=glob_error):
        input_pipeline.find_pretraining_files(f"{out}/pretrain-*")
    with pytest.raises(InputError, match=glob_error):
        input_pipeline.find_pretraining_files(f"{out}/*")
