"""bench/pretraining_step.py: flags, the synthetic batches, FLOPs/peaks, and a JAX run without TensorFlow."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench")
sys.path.insert(0, BENCH)

import model_flops  # noqa: E402
import pretraining_step  # noqa: E402
import synthetic_step  # noqa: E402

# Runs the bench on JAX in a fresh process in which `import tensorflow` fails.
NO_TENSORFLOW_RUN = """
import runpy, sys
class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError("tensorflow is blocked in this test")
sys.meta_path.insert(0, NoTensorFlow())
sys.argv = ["pretraining_step.py"] + sys.argv[1:]
runpy.run_path({bench!r}, run_name="__main__")
assert not [m for m in sys.modules if m.split(".")[0] == "tensorflow"], "tensorflow was imported"
print("NO TENSORFLOW IMPORTED")
"""


def test_flags_need_synthetic_outside_the_tensorflow_comparison():
    for argv in (["--backend=jax"], ["--config=base"], ["--mixed_precision=mixed_bfloat16"]):
        with pytest.raises(SystemExit):
            pretraining_step.parse_args(argv)
    args = pretraining_step.parse_args(["--synthetic", "--backend=torch", "--config=large",
                                        "--seq_length=512"])
    assert (args.backend, args.config, args.seq_length) == ("torch", "large", 512)


def test_peaks_and_flops():
    assert model_flops.peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert model_flops.peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert model_flops.peak_tflops("NVIDIA H200") == 989.0
    assert model_flops.peak_tflops("TPU v5 lite") == 197.0
    assert model_flops.peak_tflops("cpu") is None
    base = synthetic_step.load_bench_config("base").model
    bert, sbo = model_flops.analytic_macs(base, 512, 80)
    # BERT-base encoder: 12 layers x 512 tokens x (4·768² + 2·768·3072 + 2·512·768) MACs.
    assert bert - 80 * (768 * 768 + 768 * 28996) == 12 * 512 * (
        4 * 768**2 + 2 * 768 * 3072 + 2 * 512 * 768)
    assert model_flops.training_flops_per_example(base, 512, 80) == 6 * (bert + sbo)
    assert 1.03 < (bert + sbo) / bert < 1.05   # the SBO head's share quoted in README


def test_synthetic_batches_are_span_masked_with_real_shapes():
    config = synthetic_step.load_bench_config("bench").model
    assert (config.num_layers, config.hidden_size) == (4, 256)
    (batch,) = synthetic_step.synthetic_batches(config, 4, 128, 20, num_batches=1, seed=3)
    assert batch["input_ids"].shape == (4, 128) and batch["masked_lm_positions"].shape == (4, 20)
    weights, sbo = batch["masked_lm_weights"], batch["sbo_weights"]
    assert np.all(weights.sum(1) == 19)                  # ceil(0.15 · 126) per full row
    assert 0.6 < sbo.sum() / weights.sum() <= 1.0        # most masked tokens have an SBO target
    rows, slots = np.nonzero(sbo)
    pos = batch["masked_lm_positions"][rows, slots]
    rel = batch["span_relative_positions"][rows, slots]
    assert np.all(batch["span_left_positions"][rows, slots] == pos - rel - 1)
    assert np.all(batch["span_right_positions"][rows, slots] > pos)
    # Spans: runs of consecutive positions, some longer than one wordpiece.
    assert rel.max() >= 1
    ids_at = np.take_along_axis(batch["input_ids"], batch["masked_lm_positions"], 1)
    assert np.mean(ids_at[weights > 0] == 103) > 0.6     # ~80 % become [MASK]


@pytest.mark.slow  # a fresh JAX process that compiles the step: ~20 s
def test_synthetic_jax_run_without_tensorflow():
    script = NO_TENSORFLOW_RUN.format(bench=os.path.join(BENCH, "pretraining_step.py"))
    env = dict(os.environ, JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="")
    env.pop("KERAS_BACKEND", None)
    proc = subprocess.run(
        [sys.executable, "-c", script, "--synthetic", "--backend=jax", "--config=tiny",
         "--seq_length=64", "--batch_size=2", "--steps=2", "--warmup_steps=1",
         "--peak_tflops=0.5"],
        env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "NO TENSORFLOW IMPORTED" in out and "backend jax" in out
    step = re.search(r"median step\s+([\d.]+) ms\s+([\d.]+) examples/s\s+(\d+) tokens/s\s+"
                     r"loss ([\d.]+)", out)
    assert step, out[-2000:]
    ms, eps, tps, loss = map(float, step.groups())
    # The printed figures are rounded (a slow step prints few digits of examples/s).
    assert ms > 0 and eps == pytest.approx(2000 / ms, rel=0.05) and tps == pytest.approx(64 * eps, rel=0.05)
    assert 5.0 < loss < 30.0                              # ~2 · ln(28996) at init
    mfu = re.search(r"achieved ([\d.]+) TFLOP/s\s+MFU ([\d.]+) % of 0.5", out)
    # Both figures are printed rounded: TFLOP/s to 3 decimals (±0.0005 → ±0.1 % of 0.5), MFU to 1.
    assert mfu and float(mfu.group(2)) == pytest.approx(200 * float(mfu.group(1)), abs=0.16)
