"""MRQA files: written from the committed SQuAD subset and read back, the official MRQA
evaluation on hand-checked cases and on real data, `evaluate_squad.py --format=mrqa`."""

import gzip
import io
import json
import random
import subprocess
import sys

import pytest

from spanbert_tf.tasks.squad import metrics as squad_metrics
from spanbert_tf.tasks.squad import mrqa
from spanbert_tf.tasks.squad import reader as squad

V2_FILE = "squad/squad-v2.0-dev-subset_haystack-small.json"
V1_FILE = "squad/DERIVED_squad-v1.1-format_from_haystack-small_answerable.json"


def _load(shared_data, name):
    with open(shared_data / name, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def mrqa_file(shared_data, tmp_path_factory):
    """The 293 answerable questions of the SQuAD 2.0 dev subset as an MRQA .jsonl.gz file."""
    lines, skipped = mrqa.squad_to_mrqa(_load(shared_data, V2_FILE), "SQuAD-subset", "dev")
    assert skipped == 333                       # the unanswerable questions are left out
    path = tmp_path_factory.mktemp("mrqa") / "SQuAD-subset.jsonl.gz"
    mrqa.write_mrqa(path, lines)
    return path, lines


def test_written_file_has_the_mrqa_layout(mrqa_file):
    path, lines = mrqa_file
    with gzip.open(path, "rt", encoding="utf-8") as f:
        raw = [json.loads(line) for line in f]
    assert raw == lines and raw[0] == {"header": {"dataset": "SQuAD-subset", "split": "dev"}}
    assert sum(len(r["qas"]) for r in raw[1:]) == 293
    # Hand-checked: the first question of the first paragraph, its four gold answers
    # ("France" four times, all at 159) as one detected answer with one span.
    first = raw[1]["qas"][0]
    assert first["qid"] == "56ddde6b9a695914005b9628"
    assert first["answers"] == ["France"] * 4
    assert first["detected_answers"] == [{"text": "France", "char_spans": [[159, 164]],
                                          "token_spans": [[34, 34]]}]
    assert raw[1]["context_tokens"][34] == ["France", 159]
    # Every detected span holds its text, and its token span covers exactly those characters.
    for record in raw[1:]:
        context, tokens = record["context"], record["context_tokens"]
        for qa in record["qas"]:
            for detected in qa["detected_answers"]:
                for (s, e), (t0, t1) in zip(detected["char_spans"], detected["token_spans"]):
                    assert context[s:e + 1] == detected["text"]
                    assert tokens[t0][1] <= s and e < tokens[t1][1] + len(tokens[t1][0])
                    assert t0 == 0 or tokens[t0 - 1][1] + len(tokens[t0 - 1][0]) <= s


def test_reader_round_trip_equals_the_squad_reader(shared_data, mrqa_file, tmp_path):
    path, lines = mrqa_file
    ours, stats = mrqa.read_mrqa_examples(str(path), is_training=False)
    theirs, _ = squad.read_squad_json(str(shared_data / V1_FILE), False, False)
    assert stats.num_questions == len(ours) == len(theirs) == 293 and stats.num_impossible == 0
    for a, b in zip(ours, theirs):
        assert (a.qas_id, a.question_text, a.context_text) == (b.qas_id, b.question_text,
                                                               b.context_text)
        assert (a.doc_tokens, a.char_to_word_offset) == (b.doc_tokens, b.char_to_word_offset)
        unique = {(x["text"], x["answer_start"]) for x in b.answers}
        assert [(x["text"], x["answer_start"]) for x in a.answers] == sorted(
            unique, key=lambda t: (t[1], t[1] + len(t[0])))
    # Training: the first span in character order (SpanBERT's run_mrqa.py), on whitespace
    # tokens; a plain .jsonl reads the same as the .jsonl.gz.
    mrqa.write_mrqa(tmp_path / "plain.jsonl", lines)
    train, stats = mrqa.read_mrqa_examples(str(tmp_path / "plain.jsonl"), is_training=True)
    assert len(train) == 293 and stats.skipped_answer_not_found == 0
    moved = 0
    for ex, b in zip(train, theirs):
        start = min(x["answer_start"] for x in b.answers)
        assert ex.orig_answer_text == ex.answers[0]["text"]
        assert ex.start_position == ex.char_to_word_offset[start]
        assert ex.end_position == ex.char_to_word_offset[start + len(ex.orig_answer_text) - 1]
        moved += ex.orig_answer_text != b.answers[0]["text"]
    assert moved > 0       # some questions' first-listed answer is not the earliest span


TOY_CONTEXT = "Rollo was a Viking. He founded Normandy."


def _toy_lines():
    return [{"header": {"dataset": "toy", "split": "dev"}},
            {"context": TOY_CONTEXT, "qas": [
                {"qid": "m1", "question": "Who founded Normandy?", "answers": ["Rollo", "Hrolf"],
                 "detected_answers": [{"text": "Rollo", "char_spans": [[0, 4]]}]},
                {"qid": "m2", "question": "What?", "answers": ["Normandy", "Viking"],
                 "detected_answers": [{"text": "Normandy", "char_spans": [[31, 38]]},
                                      {"text": "Viking", "char_spans": [[12, 17]]}]}]},
            {"context": "Paris is in France.", "qas": [
                {"qid": "m3", "question": "Where?", "answers": ["France"],
                 "detected_answers": [{"text": "france", "char_spans": [[12, 17]]}]}]}]


def _write_lines(path, lines):
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return str(path)


def test_reader_on_a_hand_made_file(tmp_path):
    examples, stats = mrqa.read_mrqa_examples(_write_lines(tmp_path / "toy.jsonl",
                                                           _toy_lines()), is_training=True)
    assert [e.qas_id for e in examples] == ["m1", "m2", "m3"] and stats.num_questions == 3
    assert examples[1].orig_answer_text == "Viking" and examples[1].start_position == 3
    assert examples[1].answers == [{"text": "Viking", "answer_start": 12},
                                   {"text": "Normandy", "answer_start": 31}]
    # The span's text comes from the context (the detected "text" may be normalised).
    assert examples[2].orig_answer_text == "France" and examples[2].end_position == 3
    answers, header = mrqa.read_gold_answers(str(tmp_path / "toy.jsonl"))
    assert header == {"dataset": "toy", "split": "dev"}
    assert answers == {"m1": ["Rollo", "Hrolf"], "m2": ["Normandy", "Viking"], "m3": ["France"]}
    # Scored against `answers`, which may hold answers no span was detected for.
    assert examples[0].answers == [{"text": "Rollo", "answer_start": 0}]
    assert mrqa.evaluate(answers, {"m1": "Hrolf", "m2": "Viking", "m3": "in France"}) == {
        "exact_match": 200 / 3, "f1": 100 * (2 + 2 / 3) / 3}


def test_training_answers_are_kept_as_run_mrqa_keeps_them(tmp_path):
    # "10\u00a0km" is one whitespace token of the fine-tuning code, but "10 km" after
    # str.split(): the SQuAD reader skips such an answer, run_mrqa.py (and we) train on it.
    lines = _toy_lines()[:2]
    lines[1] = {"context": "It is 10\u00a0km away.", "qas": [
        {"qid": "k1", "question": "How far?", "answers": ["10 km"],
         "detected_answers": [{"text": "10 km", "char_spans": [[6, 10]]}]}]}
    (ex,), stats = mrqa.read_mrqa_examples(_write_lines(tmp_path / "nbsp.jsonl", lines), True)
    assert (ex.start_position, ex.end_position, ex.orig_answer_text) == (2, 2, "10\u00a0km")
    assert stats.skipped_answer_not_found == 0
    qa = {"id": "k1", "question": "How far?",
          "answers": [{"text": "10\u00a0km", "answer_start": 6}]}
    paragraph = {"context": lines[1]["context"], "qas": [qa]}
    squad_json = {"version": "1.1", "data": [{"paragraphs": [paragraph]}]}
    examples, stats = squad.examples_from_squad_json(squad_json, True, False)
    assert examples == [] and stats.skipped_answer_not_found == 1


def _set(path, value):
    def change(lines):
        target = lines
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return change


@pytest.mark.parametrize("change, message", [
    (lambda lines: lines.pop(0), r"toy.jsonl:1: expected the MRQA header line"),
    (lambda lines: lines.append(lines[0]), r"toy.jsonl:4: a second header line"),
    (_set([2, "qas", 0, "qid"], "m1"), r"toy.jsonl: line 3: question id 'm1' already used "
                                       r"on line 2"),
    (_set([1, "qas", 1, "detected_answers", 0, "char_spans"], [[31, 40]]),
     r"toy.jsonl: line 2 question m2: character span \[31, 40\] is not an inclusive "
     r"\[start, end\] inside the context \(40 characters\)"),
    (_set([1, "qas", 0, "detected_answers", 0, "char_spans"], [[4, 0]]), r"span \[4, 0\]"),
    (_set([1, "qas", 0, "is_impossible"], True), r"line 2 question m1: is_impossible is set, "
                                                  r"but MRQA has no unanswerable questions"),
    (_set([2, "qas", 0, "answers"], KeyError), r"line 3 question m3: missing field 'answers'"),
    (_set([2, "qas", 0, "answers"], [1]), r"line 3 question m3: field 'answers' must be a list "
                                          r"of strings"),
    (_set([1, "qas", 0, "qid"], 7), r"toy.jsonl: line 2 qas\[0\]: field 'qid' has type int"),
    (_set([2, "context"], KeyError), r"toy.jsonl: line 3: missing field 'context'"),
    (_set([2, "qas", 0, "detected_answers"], []),
     r"line 3 question m3: a training question needs a detected answer"),
])
def test_bad_mrqa_files_name_file_and_line(tmp_path, change, message):
    lines = _toy_lines()
    change(lines)
    path = _write_lines(tmp_path / "toy.jsonl", lines)
    with pytest.raises(mrqa.MrqaFormatError if "field" not in message
                       else squad.SquadFormatError, match=message):
        mrqa.read_mrqa_examples(path, is_training=True)


def test_unreadable_mrqa_files(tmp_path):
    good = "".join(json.dumps(x) + "\n" for x in _toy_lines())
    cases = {"json.jsonl": (good + "{not json\n", r"json.jsonl:4: not valid JSON"),
             "list.jsonl": (good + "[1]\n", r"list.jsonl:4: expected a JSON object, found list"),
             "empty.jsonl": ("\n\n", r"empty.jsonl: empty file \(expected the MRQA header"),
             "latin1.jsonl": (None, r"latin1.jsonl: not a UTF-8 \(or gzip-compressed UTF-8\)")}
    for name, (text, message) in cases.items():
        path = tmp_path / name
        if text is None:
            path.write_bytes(good.replace("Paris", "Par\u00eds").encode("latin-1"))
        else:
            path.write_text(text, encoding="utf-8")
        with pytest.raises(mrqa.MrqaFormatError, match=message):
            mrqa.read_mrqa_examples(str(path), is_training=False)
    # Blank lines are ignored; gzip is recognised by content, whatever the name.
    (tmp_path / "blank.jsonl").write_bytes(gzip.compress(good.replace("\n", "\n\n").encode()))
    examples, _ = mrqa.read_mrqa_examples(str(tmp_path / "blank.jsonl"), is_training=False)
    assert len(examples) == 3
    with pytest.raises(FileNotFoundError, match=r"MRQA file not found: .*nope.jsonl"):
        mrqa.read_gold_answers(str(tmp_path / "nope.jsonl"))


# Gold answers and predictions whose official MRQA scores are worked out by hand.
TOY_ANSWERS = {"q1": ["the Norman conquest", "Norman conquest of England"],
               "q2": ["Rollo"],
               "q3": ["10th century", "the 10th century"],
               "q4": ["The"],
               "q5": ["Paris", "Paris, France"],
               "q6": ["Hrolf", "Rollo"]}
TOY_PREDS = {"q1": "Norman Conquest!", "q2": "Rollo the Viking", "q3": "in the 9th century",
             "q4": "", "q5": "France", "other": "ignored"}
# Per question (exact, f1): q1 (1, 1): "norman conquest" both; q2 (0, 2/3): P=1/2 R=1;
# q3 (0, 0.4): common {century}, P=1/3 R=1/2; q4 (1, 0): both normalise to nothing, and F1
# of no overlap is 0 (unlike SQuAD 2.0); q5 (0, 2/3) against "paris france": P=1 R=1/2;
# q6: no prediction, 0 (or left out with skip_no_answer).
TOY_EXACT, TOY_F1 = 2, 1 + 2 / 3 + 0.4 + 0 + 2 / 3


def test_official_metric_hand_checked():
    log = io.StringIO()
    r = mrqa.evaluate(TOY_ANSWERS, TOY_PREDS, log=log)
    assert list(r) == ["exact_match", "f1"]
    assert r["exact_match"] == pytest.approx(100 * TOY_EXACT / 6, abs=1e-12)
    assert r["f1"] == pytest.approx(100 * TOY_F1 / 6, abs=1e-12)
    assert log.getvalue().strip() == (
        "note: 1 of 6 questions have no prediction and score 0 (official MRQA) (e.g. q6)")
    r = mrqa.evaluate(TOY_ANSWERS, TOY_PREDS, skip_no_answer=True, log=log)
    assert r["exact_match"] == pytest.approx(100 * TOY_EXACT / 5, abs=1e-12)
    assert r["f1"] == pytest.approx(100 * TOY_F1 / 5, abs=1e-12)
    # The maximum over the gold answers: "Hrolf" matches the first of q6's answers.
    assert mrqa.evaluate({"q6": TOY_ANSWERS["q6"]}, {"q6": "hrolf."}) == {
        "exact_match": 100.0, "f1": 100.0}
    assert mrqa.no_answer_baseline(TOY_ANSWERS) == {"exact_match": 100 / 6, "f1": 0.0}
    with pytest.raises(squad_metrics.SquadEvalError, match=r"question q2 has no gold answers"):
        mrqa.evaluate({"q2": []}, TOY_PREDS)
    with pytest.raises(squad_metrics.SquadEvalError, match=r"no prediction matches a question"):
        mrqa.evaluate(TOY_ANSWERS, {"x": "Rollo"}, skip_no_answer=True)


def _perturbed(qas, seed=0):
    """Predictions for the SQuAD questions: gold texts, partial and wrong answers, a few
    left out; deterministic."""
    rng = random.Random(seed)
    preds = {}
    for qa in qas:
        gold = qa["answers"][rng.randrange(len(qa["answers"]))]["text"]
        words = gold.split()
        kind = rng.randrange(6)
        if kind == 5:
            continue
        preds[qa["id"]] = [gold, f"The {gold.upper()}!", " ".join(words[:-1]),
                           f"{words[0]} and more words", ""][kind]
    return preds


def test_official_metric_on_real_data_equals_squad_v1(shared_data, mrqa_file):
    """MRQA's definitions are SQuAD 1.1's, on the `answers` strings: the scores of the MRQA
    file equal the v1.1 scores of the same questions (a missing prediction scores 0 in both)."""
    path, _ = mrqa_file
    v1 = _load(shared_data, V1_FILE)
    qas = [qa for a in v1["data"] for p in a["paragraphs"] for qa in p["qas"]]
    preds = _perturbed(qas)
    gold, _ = mrqa.read_gold_answers(str(path))
    ours = mrqa.evaluate(gold, preds)
    assert dict(ours) == squad_metrics.evaluate(v1, preds)
    assert 20 < ours["exact_match"] < ours["f1"] < 90


def test_evaluate_squad_program_mrqa(mrqa_file, tmp_path, shared_data):
    path, _ = mrqa_file
    v1 = _load(shared_data, V1_FILE)
    qas = [qa for a in v1["data"] for p in a["paragraphs"] for qa in p["qas"]]
    preds = _perturbed(qas, seed=1)
    (tmp_path / "p.json").write_text(json.dumps(preds))
    missing = 293 - len(preds)
    gold, _ = mrqa.read_gold_answers(str(path))
    cmd = [sys.executable, "evaluate_squad.py", f"--data_file={path}",
           f"--pred_file={tmp_path / 'p.json'}"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    want = mrqa.evaluate(gold, preds)
    assert result == dict(want)
    lines = out.stdout.splitlines()
    assert "  data      MRQA SQuAD-subset dev: 293 questions" in lines
    assert (f"  scores    exact {want['exact_match']:.2f}, f1 {want['f1']:.2f} (293 questions; "
            f"{missing} without a prediction scored 0)") in lines
    assert "  baseline  answering nothing: exact 0.00, f1 0.00" in lines
    assert f"note: {missing} of 293 questions have no prediction and score 0" in out.stderr
    # --skip_no_answer, and --format=mrqa for a file named otherwise.
    (tmp_path / "dev.mrqa").write_bytes(path.read_bytes())
    out = subprocess.run(cmd[:2] + [f"--data_file={tmp_path / 'dev.mrqa'}", cmd[3],
                                    "--format=mrqa", "--skip_no_answer",
                                    f"--out_file={tmp_path / 'r.json'}"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    skipped = mrqa.evaluate(gold, preds, skip_no_answer=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == dict(skipped)
    assert json.loads((tmp_path / "r.json").read_text()) == dict(skipped)
    assert f"({293 - missing} questions; {missing} without a prediction left out)" in out.stdout
    # SQuAD-only flags, and a bad line: one line on stderr, exit 1.
    bad = subprocess.run(cmd + ["--na_prob_file=x.json"], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines() == [
        "evaluate_squad.py: error: --na_prob_file: SQuAD only (the MRQA evaluation has no "
        "no-answer scores)"]
    (tmp_path / "bad.jsonl").write_text('{"header": {}}\n{"context": "c", "qas": [{}]}\n')
    bad = subprocess.run(cmd[:2] + [f"--data_file={tmp_path / 'bad.jsonl'}", cmd[3]],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        f"evaluate_squad.py: error: {tmp_path / 'bad.jsonl'}: line 2 qas[0]: missing field "
        "'qid'"]
