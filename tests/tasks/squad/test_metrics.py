"""Official SQuAD v1.1 / v2.0 metrics: gold answers score 100, hand-checked perturbations."""

import copy
import json
import math
import pathlib
import subprocess
import sys

import pytest

from spanbert_tf.tasks.squad import metrics as m

V2_FILE = "squad/squad-v2.0-dev-subset_haystack-small.json"
V1_FILE = "squad/DERIVED_squad-v1.1-format_from_haystack-small_answerable.json"
REPO = pathlib.Path(__file__).resolve().parents[3]


def _qas(dataset_json):
    return [qa for art in dataset_json["data"] for p in art["paragraphs"] for qa in p["qas"]]


def _load(shared_data, name):
    with open(shared_data / name, encoding="utf-8") as f:
        return json.load(f)


# A small data set whose scores are worked out by hand below.
TOY = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": "c", "qas": [
    {"id": "q1", "question": "?", "answers": [{"text": "the Norman conquest", "answer_start": 0},
                                              {"text": "Norman conquest of England",
                                               "answer_start": 0}]},
    {"id": "q2", "question": "?", "answers": [{"text": "Rollo", "answer_start": 0}]},
    {"id": "q3", "question": "?", "answers": [{"text": "10th century", "answer_start": 0},
                                              {"text": "the 10th century", "answer_start": 0}]},
    {"id": "q4", "question": "?", "answers": []},
    {"id": "q5", "question": "?", "answers": []},
]}]}]}
TOY_PREDS = {"q1": "Norman Conquest!", "q2": "Rollo the Viking", "q3": "in the 9th century",
             "q4": "", "q5": "France"}
# Per question (exact, f1): q1 (1, 1); q2 (0, 2/3): P=1/2 R=1; q3 (0, 0.4): common
# {century}, P=1/3 R=1/2; q4 (1, 1) empty = empty; q5 (0, 0).
TOY_NA = {"q1": 0.1, "q2": 0.5, "q3": 0.7, "q4": 0.9, "q5": 0.3}


def test_normalize_and_scores():
    assert m.normalize_answer("  The  Norman-Conquest, an Era! ") == "normanconquest era"
    assert m.f1_score_v1("the", "a") == 0      # v1.1: no overlap → 0 even if both empty
    assert m.f1_score_v2("the", "a") == 1      # v2.0: both empty → 1
    assert m.f1_score_v2("Rollo", "Rollo the Viking") == pytest.approx(2 / 3)


def test_toy_v2_hand_checked():
    r = m.evaluate(TOY, TOY_PREDS)
    assert list(r) == ["exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total",
                       "NoAns_exact", "NoAns_f1", "NoAns_total"]
    assert r["total"] == 5 and r["HasAns_total"] == 3 and r["NoAns_total"] == 2
    assert r["exact"] == pytest.approx(40.0, abs=1e-9)
    assert r["f1"] == pytest.approx(100 * (1 + 2 / 3 + 0.4 + 1) / 5, abs=1e-9)
    assert r["HasAns_exact"] == pytest.approx(100 / 3, abs=1e-9)
    assert r["HasAns_f1"] == pytest.approx(100 * (1 + 2 / 3 + 0.4) / 3, abs=1e-9)
    assert r["NoAns_exact"] == r["NoAns_f1"] == 50.0


def test_toy_v2_thresholds_hand_checked():
    r = m.evaluate(TOY, TOY_PREDS, na_probs=TOY_NA)
    # F1 walk in na-prob order q1 q5 q2 q3 q4 from 2 (no-answer count):
    # 3 (best, 0.1), 2, 2.667, 3.0667 (best, 0.7), 3.0667.
    assert r["best_f1"] == pytest.approx(100 * (3 + 2 / 3 + 0.4 - 1) / 5, abs=1e-9)
    assert r["best_f1_thresh"] == 0.7
    # Exact walk: 3 (best, 0.1), 2, 2, 2, 2.
    assert r["best_exact"] == pytest.approx(60.0, abs=1e-9) and r["best_exact_thresh"] == 0.1
    # Threshold 0.4: q2, q3, q4 become "no answer" → q1 1, q2 0, q3 0, q4 1, q5 0.
    r = m.evaluate(TOY, TOY_PREDS, na_probs=TOY_NA, na_prob_thresh=0.4)
    assert r["exact"] == pytest.approx(40.0) and r["f1"] == pytest.approx(40.0)


def test_made_to_answer_scores_hand_checked(tmp_path):
    # Every question answered (q4 too): the answerable ones score as in evaluate.
    forced = dict(TOY_PREDS, q4="Rollo")
    r = m.made_to_answer_scores(TOY, forced)
    assert list(r) == ["HasAns_exact", "HasAns_f1", "HasAns_total"]
    assert r["HasAns_exact"] == pytest.approx(100 / 3, abs=1e-9) and r["HasAns_total"] == 3
    assert r["HasAns_f1"] == pytest.approx(100 * (1 + 2 / 3 + 0.4) / 3, abs=1e-9)
    # F1 walk q1 q5 q2 q3 q4 from 2: 3, 2, 2.667, 3.0667 (best, 0.7), 2.0667 (q4 answered).
    r = m.made_to_answer_scores(TOY, forced, TOY_NA)
    assert r["best_f1"] == pytest.approx(100 * (3 + 2 / 3 + 0.4 - 1) / 5, abs=1e-9)
    assert r["best_f1_thresh"] == 0.7 and r["best_exact_thresh"] == 0.1
    assert r["no_answer_threshold"] == 0.7
    # Spans that are all wrong: no threshold beats answering nothing (the official scan
    # says 0.0, which would answer q1 and q5): None, predict with -inf.
    wrong = {qid: "Paris" for qid in forced}
    r = m.made_to_answer_scores(TOY, wrong, TOY_NA)
    assert r["best_f1"] == 40.0 and r["best_f1_thresh"] == 0.0
    assert r["no_answer_threshold"] is None
    # Answering nothing: 0 on the answerable questions, the unanswerable share overall.
    assert m.no_answer_baseline(TOY) == {"exact": 40.0, "f1": 40.0, "HasAns_f1": 0.0}
    path = tmp_path / "nbest.json"
    path.write_text(json.dumps({"q1": [{"text": "", "probability": 0.6}, {"text": "Rollo"}]}))
    assert m.load_nbest_file(str(path))["q1"][1]["text"] == "Rollo"
    path.write_text(json.dumps({"q1": "Rollo"}))
    with pytest.raises(m.SquadEvalError, match="nbest.json: question q1: expected a list"):
        m.load_nbest_file(str(path))


def test_toy_v1_hand_checked():
    data = copy.deepcopy(TOY)
    data["version"] = "1.1"
    data["data"][0]["paragraphs"][0]["qas"] = _qas(TOY)[:3] + [
        {"id": "q6", "question": "?", "answers": [{"text": "x", "answer_start": 0}]}]
    r = m.evaluate(data, TOY_PREDS)  # q6 unanswered: counts 0 in a total of 4
    assert list(r) == ["exact_match", "f1"]
    assert r["exact_match"] == pytest.approx(25.0, abs=1e-9)
    assert r["f1"] == pytest.approx(100 * (1 + 2 / 3 + 0.4) / 4, abs=1e-9)
    with pytest.raises(m.SquadEvalError, match="q4 has no gold answers"):
        m.evaluate(TOY, TOY_PREDS, version="1.1")


def test_gold_answers_score_100(shared_data):
    v2 = _load(shared_data, V2_FILE)
    gold = {qa["id"]: (qa["answers"][-1]["text"] if qa["answers"] else "") for qa in _qas(v2)}
    r = m.evaluate(v2, gold, na_probs={k: 0.0 for k in gold})
    assert r["total"] == 626 and r["HasAns_total"] == 293 and r["NoAns_total"] == 333
    for key in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1",
                "best_exact", "best_f1"):
        assert r[key] == 100.0, key
    v1 = _load(shared_data, V1_FILE)
    r = m.evaluate(v1, {qa["id"]: qa["answers"][0]["text"] for qa in _qas(v1)})
    assert r == {"exact_match": 100.0, "f1": 100.0}


def test_perturbed_real_predictions(shared_data):
    v2 = _load(shared_data, V2_FILE)
    # Always "no answer": right exactly on the 333 unanswerable questions.
    r = m.evaluate(v2, {qa["id"]: "" for qa in _qas(v2)})
    assert r["exact"] == pytest.approx(100 * 333 / 626, abs=1e-9)
    assert r["f1"] == pytest.approx(100 * 333 / 626, abs=1e-9)
    assert (r["HasAns_exact"], r["NoAns_exact"]) == (0.0, 100.0)
    v1 = _load(shared_data, V1_FILE)
    qas = _qas(v1)
    preds = {qa["id"]: qa["answers"][0]["text"] for qa in qas}
    # The first question's golds are all "France": "France." still matches, "in France"
    # gets F1 2/3 (P=1/2, R=1); the second's golds are "10th and 11th centuries" /
    # "in the 10th and 11th centuries": "11th centuries" has F1 2/3 against the first
    # (P=2/2, R=2/4); one question is left unanswered.
    assert qas[0]["id"] == "56ddde6b9a695914005b9628"
    assert {a["text"] for a in qas[1]["answers"]} == {
        "10th and 11th centuries", "in the 10th and 11th centuries"}
    preds[qas[0]["id"]] = "in France"
    preds[qas[1]["id"]] = "11th centuries"
    del preds[qas[2]["id"]]
    r = m.evaluate(v1, preds, log=sys.stderr)
    assert r["exact_match"] == pytest.approx(100 * 290 / 293, abs=1e-9)
    assert r["f1"] == pytest.approx(100 * (290 + 2 / 3 + 2 / 3) / 293, abs=1e-9)


def test_evaluate_squad_program(shared_data, tmp_path):
    v2 = _load(shared_data, V2_FILE)
    preds = {qa["id"]: "" for qa in _qas(v2)}
    (tmp_path / "p.json").write_text(json.dumps(preds))
    (tmp_path / "na.json").write_text(json.dumps({k: 1.0 for k in preds}))
    cmd = [sys.executable, "evaluate_squad.py", f"--data_file={shared_data / V2_FILE}",
           f"--pred_file={tmp_path / 'p.json'}", f"--na_prob_file={tmp_path / 'na.json'}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert math.isclose(result["exact"], 100 * 333 / 626, abs_tol=1e-9)
    assert result["best_f1"] == pytest.approx(100 * 333 / 626) and "NoAns_total" in result
    assert "scores    exact 53.19, f1 53.19 (626 questions; no-answer threshold 1)" in out.stdout
    assert "answerable exact 0.00, f1 0.00 (293 questions)" in out.stdout
    assert "baseline  answering nothing: exact 53.19, f1 53.19; answerable f1 0.00" in out.stdout
    # The model made to answer: its n-best holds the gold answer after the empty one.
    nbest = {qa["id"]: [{"text": ""}, {"text": (qa["answers"] or [{"text": "x"}])[0]["text"]}]
             for qa in _qas(v2)}
    (tmp_path / "nbest.json").write_text(json.dumps(nbest))
    # No-answer scores that rank every answerable question first: best_f1 100 at 0.0.
    (tmp_path / "na2.json").write_text(json.dumps({qa["id"]: float(not qa["answers"])
                                                   for qa in _qas(v2)}))
    out = subprocess.run(cmd[:4] + [f"--na_prob_file={tmp_path / 'na2.json'}",
                                    f"--nbest_file={tmp_path / 'nbest.json'}"],
                         capture_output=True, text=True, check=True)
    forced = json.loads(out.stdout.strip().splitlines()[-1])["made_to_answer"]
    assert forced["HasAns_f1"] == 100.0 and forced["HasAns_total"] == 293
    assert forced["best_f1"] == 100.0 and forced["best_f1_thresh"] == 0.0
    assert forced["no_answer_threshold"] == 0.0
    assert "spans     made to answer (best non-empty span): answerable exact 100.00" in out.stdout
    # Bad input: one line on stderr, no traceback, non-zero exit.
    (tmp_path / "bad.json").write_text("{not json")
    bad = subprocess.run(cmd[:2] + [f"--data_file={tmp_path / 'bad.json'}", cmd[3]],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "bad.json" in bad.stderr and "not valid JSON" in bad.stderr


def test_evaluate_squad_with_mismatched_ids_says_so_in_one_line(shared_data, tmp_path):
    v2 = _load(shared_data, V2_FILE)
    ids = [qa["id"] for qa in _qas(v2)]
    data = str(shared_data / V2_FILE)
    # Predictions for another file: every id differs.
    (tmp_path / "other.json").write_text(json.dumps({f"x{i}": "" for i in range(626)}))
    proc = subprocess.run([sys.executable, "evaluate_squad.py", f"--data_file={data}",
                           f"--pred_file={tmp_path / 'other.json'}"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("evaluate_squad.py: error: no prediction matches a question")
    assert f"all 626 question ids are missing (e.g. {ids[0]}, {ids[1]}, {ids[2]}, ...)" in lines[0]
    # Some missing: one note with the count, then the scores.
    (tmp_path / "part.json").write_text(json.dumps({qid: "" for qid in ids[10:]}))
    proc = subprocess.run([sys.executable, "evaluate_squad.py", f"--data_file={data}",
                           f"--pred_file={tmp_path / 'part.json'}"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [
        f"note: 10 of 626 questions have no prediction and are left out of the scores "
        f"(official v2.0) (e.g. {ids[0]}, {ids[1]}, {ids[2]}, ...)"]
    assert json.loads(proc.stdout.splitlines()[-1])["total"] == 616
