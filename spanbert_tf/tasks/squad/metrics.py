"""SQuAD evaluation with the official definitions (evaluate-v1.1.py / evaluate-v2.0.py).

Both official scripts score a prediction against the gold answers of a question
after the same answer normalisation (lower-case, drop ASCII punctuation, drop
the articles a/an/the, collapse whitespace), taking the maximum over the gold
answers. They differ in details this module reproduces exactly:

* **v1.1** (`evaluate_v1`): every question of the data file counts in the total;
  a question without a prediction scores 0 (a note goes to stderr). F1 of two
  token lists with no overlap is 0, even when both are empty. Keys:
  `exact_match`, `f1`.
* **v2.0** (`evaluate_v2`): gold answers that normalise to nothing are dropped and
  a question without gold answers has the single gold answer `""`; F1 is 1 when
  both sides are empty. A no-answer probability (`na_probs`, e.g. our
  `null_odds.json`) above `na_prob_thresh` turns a prediction into "no answer".
  Keys: `exact`, `f1`, `total`, `HasAns_*`, `NoAns_*` and, with `na_probs`
  given, `best_exact`, `best_exact_thresh`, `best_f1`, `best_f1_thresh` (the
  threshold on `na_probs` that maximises each score).

The arithmetic (summation order included) follows the official scripts, so the
values agree with them to floating-point round-off.

Example:
```python
dataset = load_squad_dataset("dev-v2.0.json")
preds = load_json_file("predictions.json", "predictions")
result = evaluate(dataset, preds, na_probs=load_json_file("null_odds.json", "na_probs"))
print(result["f1"], result["best_f1"], result["best_f1_thresh"])
```
"""

import collections
import io
import json
import re
import string
import sys

from spanbert_tf.errors import InputError

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


class SquadEvalError(InputError):
    """Bad evaluation input; the message names the file and the question."""


def normalize_answer(text):
    """Lower-cases, removes punctuation, articles and extra whitespace (official)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text):
    """The normalised tokens of an answer (empty for the empty answer)."""
    if not text:
        return []
    return normalize_answer(text).split()


def exact_score(gold, pred):
    """1 if the normalised answers are equal, else 0."""
    return int(normalize_answer(gold) == normalize_answer(pred))


def _f1_from_tokens(gold_tokens, pred_tokens):
    common = collections.Counter(gold_tokens) & collections.Counter(pred_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_tokens)
    recall = 1.0 * num_same / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


def f1_score_v1(gold, pred):
    """Token F1 as in evaluate-v1.1.py (0 when nothing overlaps)."""
    return _f1_from_tokens(normalize_answer(gold).split(), normalize_answer(pred).split())


def f1_score_v2(gold, pred):
    """Token F1 as in evaluate-v2.0.py (1 if both answers are empty)."""
    gold_tokens, pred_tokens = answer_tokens(gold), answer_tokens(pred)
    if not gold_tokens or not pred_tokens:
        return int(gold_tokens == pred_tokens)
    return _f1_from_tokens(gold_tokens, pred_tokens)


def _iter_qas(dataset, source="data"):
    """Yields (qid, gold answer texts) for every question, validating the layout."""
    for a, article in enumerate(dataset):
        paragraphs = _field(article, "paragraphs", source, f"data[{a}]")
        for p, paragraph in enumerate(paragraphs):
            for qa in _field(paragraph, "qas", source, f"data[{a}].paragraphs[{p}]"):
                qid = _field(qa, "id", source, f"data[{a}].paragraphs[{p}].qas")
                answers = _field(qa, "answers", source, f"question {qid}")
                texts = [_field(ans, "text", source, f"question {qid} answer") for ans in answers]
                yield qid, texts


def _field(obj, name, source, where):
    if not isinstance(obj, dict) or name not in obj:
        raise SquadEvalError(f"{source}: {where} has no field {name!r}")
    return obj[name]


def evaluate_v1(dataset, predictions, source="data", log=sys.stderr):
    """Official SQuAD 1.1 scores: {"exact_match": ..., "f1": ...} in percent."""
    f1 = exact_match = total = 0
    missing = []
    for qid, golds in _iter_qas(dataset, source):
        total += 1
        if qid not in predictions:
            missing.append(qid)
            continue
        if not golds:
            raise SquadEvalError(
                f"{source}: question {qid} has no gold answers; SQuAD 1.1 evaluation needs "
                "at least one (evaluate it as version 2.0)")
        pred = predictions[qid]
        exact_match += max(exact_score(g, pred) for g in golds)
        f1 += max(f1_score_v1(g, pred) for g in golds)
    if total == 0:
        raise SquadEvalError(f"{source}: no questions to evaluate")
    report_missing(missing, total, predictions, source, log)
    return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}


def raw_scores_v2(dataset, predictions, source="data", log=sys.stderr):
    """Per-question exact/F1 (official v2.0), plus {qid: has_answer}."""
    exact, f1, has_ans = {}, {}, {}
    missing = []
    for qid, golds in _iter_qas(dataset, source):
        has_ans[qid] = bool(golds)
        golds = [g for g in golds if normalize_answer(g)] or [""]
        if qid not in predictions:
            missing.append(qid)
            continue
        pred = predictions[qid]
        exact[qid] = max(exact_score(g, pred) for g in golds)
        f1[qid] = max(f1_score_v2(g, pred) for g in golds)
    report_missing(missing, len(has_ans), predictions, source, log,
                   consequence="are left out of the scores (official v2.0)")
    return exact, f1, has_ans


def report_missing(missing, total, predictions, source="data", log=sys.stderr, shown=3,
                   consequence="score 0"):
    """One line for the questions without a prediction (the official scripts print one line
    per question); an error when no prediction matches any question (another data file?)."""
    if not missing:
        return
    examples = ", ".join(missing[:shown]) + (", ..." if len(missing) > shown else "")
    if len(missing) == total and total:
        others = ", ".join(list(predictions)[:shown]) or "none"
        raise SquadEvalError(
            f"no prediction matches a question of {source}: all {total} question ids are "
            f"missing (e.g. {examples}); the predictions hold other ids (e.g. {others}): "
            "were they made for another data file?")
    print(f"note: {len(missing)} of {total} questions have no prediction and {consequence} "
          f"(e.g. {examples})", file=log)


def apply_no_answer_threshold(scores, na_probs, has_ans, threshold):
    """Scores where a no-answer probability above `threshold` means "no answer"."""
    out = {}
    for qid, score in scores.items():
        out[qid] = float(not has_ans[qid]) if na_probs[qid] > threshold else score
    return out


def _summary(exact, f1, qids=None):
    if qids is None:
        total = len(exact)
        e, f = sum(exact.values()), sum(f1.values())
    else:
        total = len(qids)
        e, f = sum(exact[k] for k in qids), sum(f1[k] for k in qids)
    return collections.OrderedDict(
        [("exact", 100.0 * e / total), ("f1", 100.0 * f / total), ("total", total)])


def find_best_threshold(predictions, scores, na_probs, has_ans):
    """(best score in percent, threshold) over thresholds on `na_probs` (official)."""
    current = sum(1 for k in has_ans if not has_ans[k])
    best, best_thresh = current, 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores:
            continue
        if has_ans[qid]:
            diff = scores[qid]
        else:
            diff = -1 if predictions[qid] else 0
        current += diff
        if current > best:
            best, best_thresh = current, na_probs[qid]
    return 100.0 * best / len(scores), best_thresh


def evaluate_v2(dataset, predictions, na_probs=None, na_prob_thresh=1.0, source="data",
                log=sys.stderr):
    """Official SQuAD 2.0 scores (an OrderedDict with the official keys and order).

    Questions without a prediction are left out of every total (the official script
    leaves them out of `total`; it crashes on the HasAns/NoAns breakdown instead).
    """
    have_na_probs = na_probs is not None
    if not have_na_probs:
        na_probs = {k: 0.0 for k in predictions}
    exact_raw, f1_raw, has_ans = raw_scores_v2(dataset, predictions, source, log)
    if not exact_raw:
        raise SquadEvalError(f"{source}: none of the questions has a prediction")
    missing = [qid for qid in exact_raw if qid not in na_probs]
    if missing:
        raise SquadEvalError(
            f"no-answer probabilities: no value for {len(missing)} predicted question(s), "
            f"e.g. {missing[0]}")
    exact_t = apply_no_answer_threshold(exact_raw, na_probs, has_ans, na_prob_thresh)
    f1_t = apply_no_answer_threshold(f1_raw, na_probs, has_ans, na_prob_thresh)
    result = _summary(exact_t, f1_t)
    has_qids = [k for k, v in has_ans.items() if v and k in exact_t]
    no_qids = [k for k, v in has_ans.items() if not v and k in exact_t]
    for prefix, qids in (("HasAns", has_qids), ("NoAns", no_qids)):
        if qids:
            for key, value in _summary(exact_t, f1_t, qids).items():
                result[f"{prefix}_{key}"] = value
    if have_na_probs:
        result["best_exact"], result["best_exact_thresh"] = find_best_threshold(
            predictions, exact_raw, na_probs, has_ans)
        result["best_f1"], result["best_f1_thresh"] = find_best_threshold(
            predictions, f1_raw, na_probs, has_ans)
    return result


def dataset_version(dataset_json, override=None):
    """"1.1" or "2.0": `override` if given, else the file's `version` field."""
    version = override if override else dataset_json.get("version")
    if version is None:
        raise SquadEvalError("the data file has no 'version' field; give the version explicitly")
    version = str(version).strip().lstrip("vV")
    if version.startswith("1"):
        return "1.1"
    if version.startswith("2"):
        return "2.0"
    raise SquadEvalError(f"unknown SQuAD version {version!r} (expected 1.1 or 2.0)")


def evaluate(dataset_json, predictions, na_probs=None, version=None, na_prob_thresh=1.0,
             source="data", log=sys.stderr):
    """Scores `predictions` ({qid: text}) with the official script of the data's version."""
    if not isinstance(dataset_json, dict) or not isinstance(dataset_json.get("data"), list):
        raise SquadEvalError(f"{source}: not a SQuAD file (no top-level 'data' list)")
    version = dataset_version(dataset_json, version)
    if version == "1.1":
        if na_probs is not None:
            print("note: no-answer probabilities are ignored by SQuAD 1.1 evaluation", file=log)
        return evaluate_v1(dataset_json["data"], predictions, source, log)
    return evaluate_v2(dataset_json["data"], predictions, na_probs, na_prob_thresh, source, log)


def no_answer_baseline(dataset_json, version=None):
    """Scores of answering nothing ("" everywhere): the no-answer baseline of SQuAD 2.0
    (the share of unanswerable questions); 0 on SQuAD 1.1."""
    predictions = {qid: "" for qid, _ in _iter_qas(dataset_json.get("data") or [])}
    result = evaluate(dataset_json, predictions, version=version, log=io.StringIO())
    keys = ("exact", "f1", "HasAns_f1") if "exact" in result else ("exact_match", "f1")
    return {k: result[k] for k in keys if k in result}


def made_to_answer_scores(dataset_json, answers, na_probs=None, log=sys.stderr):
    """v2.0 scores of a model made to answer every question (`answers`: {qid: its best
    non-empty span}, e.g. `predict.best_non_null_predictions`).

    `HasAns_exact`/`HasAns_f1` over the answerable questions say whether the model learned
    to find spans, whatever its no-answer threshold (answering nothing scores 0 there).
    With `na_probs`, also `best_exact`/`best_f1` and their thresholds: the best score over
    every no-answer threshold, picked on this data (optimistic on evaluation data; on
    held-out tuning data, `no_answer_threshold` is the one to predict with).
    """
    result = evaluate_v2(dataset_json.get("data") or [], answers, na_probs, log=log)
    keys = ["HasAns_exact", "HasAns_f1", "HasAns_total", "best_exact", "best_exact_thresh",
            "best_f1", "best_f1_thresh"]
    out = collections.OrderedDict((k, result[k]) for k in keys if k in result)
    if na_probs is not None:
        out["no_answer_threshold"] = no_answer_threshold(out, no_answer_baseline(dataset_json))
    return out


def no_answer_threshold(result, baseline):
    """The `null_score_diff_threshold` that `result`'s best F1 was reached at, or None (answer
    nothing: `--null_score_diff_threshold=-inf`) when no threshold beats answering nothing.

    The official scan reports threshold 0.0 in that case, which would answer every question
    whose no-answer score is below 0: not what was measured.
    """
    if result["best_f1"] <= baseline["f1"] + 1e-9:
        return None
    return result["best_f1_thresh"]


def load_json_file(path, what):
    """Loads a JSON file, raising `SquadEvalError` naming the file when it is unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise SquadEvalError(f"{what} file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SquadEvalError(f"{what} file {path}: not valid JSON ({e})") from None


def load_predictions(path, what="predictions"):
    """Loads {qid: answer text} (or {qid: float} for na_probs), checking the types."""
    preds = load_json_file(path, what)
    if not isinstance(preds, dict):
        raise SquadEvalError(f"{what} file {path}: expected a JSON object {{question id: value}}")
    want = str if what == "predictions" else (int, float)
    for qid, value in preds.items():
        if not isinstance(value, want) or isinstance(value, bool):
            raise SquadEvalError(f"{what} file {path}: question {qid} has a {type(value).__name__} "
                                 f"value, expected {'a string' if want is str else 'a number'}")
    return preds


def load_nbest_file(path):
    """Loads nbest_predictions.json ({qid: [{"text": ..., ...}, ...]}), checking its layout."""
    nbest = load_json_file(path, "nbest")
    if not isinstance(nbest, dict):
        raise SquadEvalError(f"nbest file {path}: expected a JSON object {{question id: list}}")
    for qid, entries in nbest.items():
        if not isinstance(entries, list) or not all(
                isinstance(e, dict) and isinstance(e.get("text"), str) for e in entries):
            raise SquadEvalError(f"nbest file {path}: question {qid}: expected a list of "
                                 "objects with a string 'text' (run_squad.py's "
                                 "nbest_predictions.json)")
    return nbest


def evaluate_files(data_file, pred_file, na_prob_file=None, version=None, na_prob_thresh=1.0,
                   log=sys.stderr):
    """`evaluate` on files (what `evaluate_squad.py` runs)."""
    dataset_json = load_json_file(data_file, "data")
    predictions = load_predictions(pred_file, "predictions")
    na_probs = load_predictions(na_prob_file, "na_probs") if na_prob_file else None
    return evaluate(dataset_json, predictions, na_probs, version, na_prob_thresh,
                    source=data_file, log=log)
