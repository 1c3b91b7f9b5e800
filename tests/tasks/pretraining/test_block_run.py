"""block_run.py: run_pretraining on .npy blocks in a venv without TensorFlow (JAX): trains,
checkpoints, resumes at the exact batch."""

import json
import os
import subprocess

import pytest

from tests.notf_venv import notf_env

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))
# Trains 3 steps, then resumes the same model dir to 5; prints both summaries.
SCRIPT = """
import json, sys
from spanbert_tf.tasks.pretraining.run import PretrainingSettings, run_pretraining
from spanbert_tf.data.blocks import block_loader
made = []
original = block_loader.BlockBatches.__init__
def recording(self, *a, **k):
    original(self, *a, **k)
    made.append(self)
block_loader.BlockBatches.__init__ = recording
def settings(steps):
    return PretrainingSettings(backend="jax", config=sys.argv[1], input_files=sys.argv[2],
                               model_dir=sys.argv[3], dynamic_masking=True,
                               num_train_steps=steps, log_every=1, steps_per_loop=1,
                               max_predictions_per_seq=10, show_progress=False,
                               input_workers=0)
first = run_pretraining(settings(3))
second = run_pretraining(settings(5))
print("RESULT " + json.dumps({"first": first, "second": second, "start": made[1].start_step,
                              "tf": [m for m in sys.modules if m.split(".")[0] == "tensorflow"]},
                             default=str))
"""


def test_requirements_name_no_tensorflow():
    with open(os.path.join(REPO, "requirements-notf.txt"), encoding="utf-8") as f:
        lines = [line.split("#")[0].strip().lower() for line in f]
    assert not [line for line in lines if line.startswith(("tensorflow", "tf-", "tf_"))]


QUICK = """
import sys
from spanbert_tf.data.blocks.block_files import find_block_files
from spanbert_tf.data.blocks.block_loader import BlockBatches
from spanbert_tf.data.masking.masking_types import MaskingConfig
from spanbert_tf.data.masking.numpy_dynamic import NumpyDynamicMasker, reference_masker_for_records
import spanbert_tf.tasks.pretraining.block_run  # keras on JAX, the fit loop, the run
files, meta = find_block_files(sys.argv[1])
masker = NumpyDynamicMasker(reference_masker_for_records(meta, MaskingConfig(
    max_predictions_per_seq=10), meta["vocab"]["path"]), 64)
batch = next(BlockBatches(files, meta, masker, 8, seed=1).iterate())
assert batch["masked_lm_weights"].sum() > 0
print("TF", [m for m in sys.modules if m.split(".")[0] == "tensorflow"])
"""


def test_the_run_imports_without_tensorflow(notf_python, unmasked_pair):
    env = dict(notf_env(REPO), KERAS_BACKEND="jax")  # (run_pretraining selects it itself)
    proc = subprocess.run([notf_python, "-c", QUICK, str(unmasked_pair[1])], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "TF []" in proc.stdout


@pytest.mark.benchmark  # a fresh JAX process that compiles the step twice: 40-100 s
def test_trains_and_resumes_without_tensorflow(notf_python, unmasked_pair, micro_config,
                                               tmp_path):
    model_dir = tmp_path / "run"
    proc = subprocess.run([notf_python, "-c", SCRIPT, micro_config, str(unmasked_pair[1]),
                           str(model_dir)], env=notf_env(REPO), capture_output=True, text=True,
                          timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    result = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    assert result["tf"] == []
    first, second = result["first"], result["second"]
    assert (first["step"], second["step"], second["resumed_from_step"]) == (3, 5, 3)
    assert result["start"] == 3          # the resumed input starts at batch 3 of the stream
    assert first["dynamic_masking"] and first["strategy"] == "jax DataParallel"
    assert second["checkpoint"].endswith("ckpt-5") and (model_dir / "ckpt-5.weights.h5").exists()
    assert "preset not written: spanbert_tf.presets imports TensorFlow" in out
    log = [json.loads(line) for line in (model_dir / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5]
    assert all(18.0 < r["loss"] < 22.0 for r in log)   # ~2 ln(28996) at the start
