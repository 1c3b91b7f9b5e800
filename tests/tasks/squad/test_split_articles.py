"""split_articles: train and evaluation data apart, by article."""

import json
import subprocess
import sys

import pytest

from spanbert_tf.errors import InputError
from spanbert_tf.tasks.squad import metrics
from spanbert_tf.tasks.squad.split_articles import (answerable_only, hold_out_paragraphs,
                                                    split_by_article)

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


def test_hold_out_paragraphs_keeps_tuning_data_apart(shared_data, tmp_path):
    data = json.loads((shared_data / V2_FILE).read_text(encoding="utf-8"))
    train, held_out = split_by_article(data, {"Normans"})
    kept, tune = hold_out_paragraphs(train, every=5)
    contexts = lambda d: [p["context"] for a in d["data"] for p in a["paragraphs"]]  # noqa: E731
    # The 5th, 10th, ... of the article's 48 paragraphs: 9 held out, 39 kept, none shared.
    assert contexts(tune) == contexts(train)[4::5] and len(contexts(kept)) == 39
    assert not set(contexts(kept)) & set(contexts(tune))
    assert _ids(kept) | _ids(tune) == _ids(train) and not _ids(kept) & _ids(tune)
    assert (len(_ids(kept)), len(_ids(tune))) == (346, 72)
    assert not (_ids(kept) | _ids(tune)) & _ids(held_out)
    with pytest.raises(InputError, match="--tune_every=1: expected 2 or more"):
        hold_out_paragraphs(train, every=1)
    with pytest.raises(InputError, match="--tune_every=60: no article has 60 paragraphs"):
        hold_out_paragraphs(train, every=60)
    proc = subprocess.run(
        [sys.executable, "-m", "spanbert_tf.tasks.squad.split_articles",
         f"--input={shared_data / V2_FILE}", "--eval_articles=Normans",
         f"--train_out={tmp_path / 't.json'}", f"--eval_out={tmp_path / 'e.json'}",
         "--tune_every=5", f"--tune_out={tmp_path / 'tune.json'}", "--train_answerable_only"],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "163 training questions (answerable only)" in proc.stdout
    assert "72 tuning questions" in proc.stdout
    assert json.loads((tmp_path / "tune.json").read_text()) == tune
    assert json.loads((tmp_path / "t.json").read_text()) == answerable_only(kept)


def test_answerable_only_drops_exactly_the_unanswerable_questions(shared_data):
    data = json.loads((shared_data / V2_FILE).read_text(encoding="utf-8"))
    qas = {qa["id"]: qa for a in data["data"] for p in a["paragraphs"] for qa in p["qas"]}
    kept = answerable_only(data)
    assert _ids(kept) == {qid for qid, qa in qas.items() if qa["answers"]}
    assert len(_ids(kept)) == 293  # the subset's answerable questions (333 of 626 are not)
    assert all(p["qas"] for a in kept["data"] for p in a["paragraphs"])
    only_unanswerable = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [
        {"context": "c", "qas": [{"id": "q", "question": "?", "answers": [],
                                 "is_impossible": True}]}]}]}
    with pytest.raises(InputError, match="no answerable question is left"):
        answerable_only(only_unanswerable)
