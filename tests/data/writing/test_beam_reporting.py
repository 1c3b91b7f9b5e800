"""Beam mode's counters equal stats.json; its progress bars and worker lines."""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("apache_beam")  # the [beam] extra (part of the [test] extra)

from spanbert_tf.data.writing import beam_pipeline, beam_reporting, pipeline  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class _RecordingBar(beam_reporting.tqdm):
    """The real tqdm bar, remembered so the test can read where it ended."""
    made = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _RecordingBar.made.append(self)


def test_counters_equal_stats_and_in_process_bars_reach_the_input_size(
        tmp_path, multi_file_input, monkeypatch, small_data_config):
    monkeypatch.setattr(beam_reporting, "tqdm", _RecordingBar)
    _RecordingBar.made = []
    out = tmp_path / "out"
    stats, result = beam_pipeline.run_pipeline(small_data_config(
        input_file=multi_file_input, output_dir=str(out), random_token_source="unigram",
        progress=True))
    meta = json.load(open(out / "metadata.json"))

    counters = beam_reporting.counter_values(result)
    assert counters == {
        "files_read": stats["input_files"], "bytes_read": stats["input_bytes"],
        "documents": stats["documents"], "lines": stats["lines"],
        "skipped_binary_file": 1, "skipped_empty_file": 1,
        "instances": stats["instances"], "blocks": stats["blocks"],
        "tokens": stats["tokens"], "masked_tokens": stats["masked_tokens"],
        "long_lines_split": stats["long_lines_split"],
        "records_written": sum(stats["instances_per_shard"]), "shards_written": 3,
        "bytes_written": sum(e["bytes"] for e in meta["shard_files"])}
    assert stats["skipped"] == {"binary_file": 1, "empty_file": 1}
    assert stats["instances"] > 1000 and stats["timing"]["runner"] == "FnApiRunner"

    bars = {bar.desc: bar for bar in _RecordingBar.made}
    assert sorted(bars) == sorted([beam_reporting.COUNTING, beam_reporting.MASKING,
                                   beam_reporting.WRITING])
    # A .gz input: the total is unknown beforehand; every byte read is counted.
    for stage in (beam_reporting.COUNTING, beam_reporting.MASKING):
        assert bars[stage].total is None and bars[stage].n == stats["input_bytes"]
    assert bars[beam_reporting.MASKING].postfix == f"instances={stats['instances']}"
    assert (bars[beam_reporting.WRITING].total, bars[beam_reporting.WRITING].n) == (3, 3)
    assert beam_reporting._bars == {}  # closed


def test_without_a_bar_here_a_worker_prints_its_share_periodically(capsys, monkeypatch):
    monkeypatch.setattr(beam_reporting, "LOG_EVERY_SECONDS", 0.0)
    progress = beam_reporting.StageProgress(beam_reporting.MASKING)
    progress.update(1_500_000, 40)  # the first update starts the clock
    progress.update(1_000_000, 2)
    line = f"(Beam worker, pid {os.getpid()}): creating pretraining data: 2.5 MB of input, "
    assert capsys.readouterr().err == f"create_pretraining_data {line}42 instances\n"
    quiet = beam_reporting.StageProgress(beam_reporting.WRITING, enabled=False)
    quiet.update(1)
    quiet.update(1)
    assert capsys.readouterr().err == "" and quiet.units == 0


def test_the_program_on_two_threads_shows_progress_and_ends_with_the_summary(
        tmp_path, multi_file_input, small_data_config):
    # Two worker threads in a fresh process: they share `instances`' tokenizer and masker
    # and take turns (unguarded, tensorflow_text's first import raced and the run failed).
    beam_dir, local_dir = tmp_path / "beam", tmp_path / "local"
    proc = subprocess.run(
        [sys.executable, "create_pretraining_data.py", "--runner=beam",
         f"--input_file={multi_file_input}", f"--output_dir={beam_dir}",
         "--max_seq_length=32", "--max_predictions_per_seq=5", "--dupe_factor=1",
         "--num_shards=2", "--beam_pipeline_options=--direct_num_workers=2,"
         "--direct_running_mode=multi_threading"], cwd=REPO, capture_output=True, text=True,
        timeout=300, env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.load(open(beam_dir / "stats.json"))
    local = pipeline.create_pretraining_data(small_data_config(
        input_file=multi_file_input, output_dir=str(local_dir), dupe_factor=1, num_shards=2))
    assert {**stats, "timing": None} == {**local, "timing": None}
    shard_files = [json.load(open(d / "metadata.json"))["shard_files"]
                   for d in (beam_dir, local_dir)]
    assert shard_files[0] == shard_files[1]  # the same bytes (sha256) in the same shards

    assert beam_reporting.MASKING in proc.stderr and beam_reporting.WRITING in proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "create_pretraining_data: done"
    assert (f"  output     {stats['instances']:,} instances in 2 shard(s) under {beam_dir}"
            in lines)
    assert "  skipped    binary_file: 1, empty_file: 1" in lines
    assert [line for line in lines if line.startswith("  time ")] == [
        f"  time       {stats['timing']['wall_seconds']:.1f} s with 2 worker(s) on Beam's "
        f"FnApiRunner, {stats['timing']['input_tokens_per_second']:,.0f} input wordpieces "
        "x dupe_factor / s"]
