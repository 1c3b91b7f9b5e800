"""bench/input_throughput.py: the bar derived from FLOPs, and a short measurement on real blocks."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))

import input_throughput  # noqa: E402


def test_consumption_is_derived_from_flops():
    eaten, flops = input_throughput.consumption(128, 20, mfu=0.11)
    assert 72e9 < flops < 73e9                        # BERT-base + heads, seq 128, 20 slots
    assert eaten == pytest.approx(989e12 * 0.11 / flops)
    assert 1400 < eaten < 1600                        # the issue's ~1,500 seq/s


def test_measures_the_tf_free_input(unmasked_pair, capsys):
    results = input_throughput.main([f"--input_files={unmasked_pair[1]}", "--batch_size=16",
                                     "--batches=3", "--warmup=1", "--workers=0"])
    (setting,) = results["settings"]
    assert setting["seq_per_s"] > 0 and setting["cpu_s_per_1000_seq"] > 0
    assert results["bar_seq_per_s"] == pytest.approx(10 * results["h100_consumed_seq_per_s"])
    assert "bar 10x" in capsys.readouterr().out
