"""bench/pretraining_throughput.py at a small size on CPU: bf16 + XLA, dynamic masking, MFU."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_small_run_prints_examples_per_second_and_mfu():
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "pretraining_throughput.py"), "--config=tiny",
         "--seq_length=64", "--predictions=10", "--batch_size=4", "--steps=2", "--warmup=1",
         "--steps_per_loop=1", "--mixed_precision=mixed_bfloat16", "--jit_compile",
         "--peak_tflops=1"],
        env=dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3"),
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "dynamic masking" in proc.stdout and "MFU " in proc.stdout
    result = json.loads((REPO / "bench" / "results" / "pretraining_throughput_tiny.json")
                        .read_text())
    assert result["examples_per_sec"] > 0 and 0 < result["mfu"] < 1
    assert result["mixed_precision"] == "mixed_bfloat16" and result["jit_compile"] is True
