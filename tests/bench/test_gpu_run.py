"""bench/gpu_run.py --dry_run in a venv without TensorFlow: every part runs at tiny sizes on the
CPU and lands in one JSON."""

import json
import os
import subprocess

import pytest

from tests.notf_venv import notf_env

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.benchmark  # two model sizes x 2 steps, then 25 s of training: ~3 minutes
def test_dry_run_without_tensorflow(notf_python, tmp_path, wikitext_corpus):
    from spanbert_tf.data.writing import pipeline

    blocks = tmp_path / "blocks"
    pipeline.create_pretraining_data(pipeline.PretrainingDataConfig(
        input_file=wikitext_corpus, output_dir=str(blocks), masking="none", output_format="npy",
        max_seq_length=128, max_predictions_per_seq=20, num_shards=2, num_workers=1,
        progress=False))
    output = tmp_path / "gpu_run.json"
    proc = subprocess.run([notf_python, os.path.join(REPO, "bench", "gpu_run.py"), "--dry_run",
                           f"--blocks={blocks}", f"--output={output}"], env=notf_env(REPO),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    result = json.loads(output.read_text())
    assert result["device"]["platform"] == "cpu" and result["dry_run"]
    assert [(s["config"], s["seq_length"]) for s in result["synthetic"]] == [("tiny", 32),
                                                                            ("tiny", 64)]
    for entry in result["synthetic"]:
        assert entry["spanbert"]["step_seconds"] > 0 and entry["mlm_only"]["step_seconds"] > 0
        assert entry["sbo_over_mlm_step"] == pytest.approx(
            entry["spanbert"]["step_seconds"] / entry["mlm_only"]["step_seconds"])
    training = result["training"]
    assert training["steps"] >= 2 and training["seq_per_second"] > 0
