"""stats.png of a real create_pretraining_data.py run (a slice of WikiText-2)."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from spanbert_tf.data.masking.masking_types import MaskingConfig
from spanbert_tf.errors import InputError
from spanbert_tf.plotting import data_stats_plot

REPO = pathlib.Path(__file__).resolve().parents[2]
# Not the defaults, so that the target is seen to come from the run's own settings.
MASKING = dict(geometric_p=0.3, max_span_length=6, mask_prob=0.7, random_prob=0.2)


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
        TF_CPP_MIN_LOG_LEVEL="2")


@pytest.fixture(scope="module")
def data_run(tmp_path_factory, shared_data):
    folder = tmp_path_factory.mktemp("data")
    corpus = folder / "corpus.txt"
    with open(shared_data / "corpus" / "wikitext-2-raw-test.txt", encoding="utf-8") as f:
        corpus.write_text("".join(f.readlines()[:600]), encoding="utf-8")
    out = folder / "records"
    proc = subprocess.run(
        [sys.executable, str(REPO / "create_pretraining_data.py"), f"--input_file={corpus}",
         f"--output_dir={out}", "--max_seq_length=64", "--max_predictions_per_seq=10",
         "--dupe_factor=2", "--num_workers=1", "--noprogress",
         *[f"--{k}={v}" for k, v in MASKING.items()]],
        capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_stats_record_the_drawn_lengths_and_the_target(data_run):
    out, _ = data_run
    stats = json.loads((out / "stats.json").read_text())
    target = stats["masking_target"]
    expected = MaskingConfig(**MASKING).span_length_distribution()
    assert [target["span_length_words"][str(n)] for n in range(1, 7)] == pytest.approx(expected)
    assert target["replacement"] == pytest.approx({"mask": 0.7, "random": 0.2,
                                                   "unchanged": 0.1})
    drawn = stats["drawn_span_length_words_histogram"]
    assert set(drawn) <= {str(n) for n in range(1, 7)}
    total = sum(drawn.values())
    assert total >= 1000
    # Merging adjacent spans makes fewer, longer spans than were drawn.
    assert stats["spans"] <= total
    shares = np.array([drawn.get(str(n), 0) / total for n in range(1, 7)])
    # The masker draws from the target (budget-clipped draws shift it only a little).
    assert np.abs(shares - expected).max() < 0.06, (shares, expected)


def test_program_writes_stats_png(data_run, check_plot_written):
    out, proc = data_run
    if check_plot_written(out / "stats.png", proc.stderr, (1200, 400)):
        assert f"  plot       {out / 'stats.png'}" in proc.stdout


def test_plot_draws_both_panels(data_run, check_png, tmp_path):
    pytest.importorskip("matplotlib")
    out, _ = data_run
    result = data_stats_plot.plot_data_stats(out, tmp_path / "again.png")
    assert check_png(result.path, (1200, 400)) == (1200, 400)
    spans, replacement = result.series["span length"], result.series["replacement"]
    assert len(spans) == 3 and spans[0].startswith("drawn spans (")
    assert spans[1].startswith("merged spans (")
    assert spans[2] == "target: geometric p=0.3, 1..6"
    assert len(replacement) == 2 and replacement[1] == "target"


def test_unmasked_or_missing_stats_are_one_line(tmp_path):
    with pytest.raises(InputError, match="no stats.json"):
        data_stats_plot.plot_data_stats(tmp_path)
    (tmp_path / "stats.json").write_text(json.dumps({"records": "unmasked"}))
    with pytest.raises(InputError, match="unmasked"):
        data_stats_plot.plot_data_stats(tmp_path)
    (tmp_path / "stats.json").write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        data_stats_plot.plot_data_stats(tmp_path)
