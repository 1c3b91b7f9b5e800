"""split_articles: train and evaluation data apart, by article."""

import json
import subprocess
import sys

import pytest

from spanbert_tf.errors import InputError
from spanbert_tf.tasks.squad import metrics
from spanbert_tf.tasks.squad.split_articles import split_by_article

V2_FILE = "squad/squad-v2.0-dev-subset_haystack-small.json"


def _ids(dataset):
    return {qa["id"] for a in dataset["data"] for p in a["paragraphs"] for qa in p["qas"]}


def test_split_keeps_every_question_once_and_articles_apart(shared_data, tmp_path):
    data = json.loads((shared_data / V2_FILE).read_text(encoding="utf-8"))
    train, held_out = split_by_article(data, {"Normans"})
    assert [a["title"] for a in held_out["data"]] == ["Normans"]
    assert "Normans" not in [a["title"] for a in train["data"]]
    assert _ids(train) | _ids(held_out) == _ids(data) and not _ids(train) & _ids(held_out)
    assert (len(_ids(train)), len(_ids(held_out))) == (418, 208)
    # Answering nothing on the held-out article: its share of unanswerable questions.
    baseline = metrics.no_answer_baseline(held_out)
    unanswerable = sum(not qa["answers"] for a in held_out["data"] for p in a["paragraphs"]
                       for qa in p["qas"])
    assert baseline["exact"] == pytest.approx(100 * unanswerable / 208)
    with pytest.raises(InputError, match="--eval_articles: no article titled 'Paris'"):
        split_by_article(data, {"Paris"})
    proc = subprocess.run(
        [sys.executable, "-m", "spanbert_tf.tasks.squad.split_articles",
         f"--input={shared_data / V2_FILE}", "--eval_articles=Normans",
         f"--train_out={tmp_path / 't.json'}", f"--eval_out={tmp_path / 'e.json'}"],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "e.json").read_text()) == held_out
