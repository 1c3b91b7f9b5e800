"""MRQA 2019 shared-task files: read into SQuAD examples, written from SQuAD, scored officially.

The format (the shared task's README): JSON lines, plain or gzip-compressed (`.jsonl`,
`.jsonl.gz`; read by content, not by name). The first line is a header
`{"header": {"dataset": ..., "split": ...}}`; every later line is one context:

    {"context": str, "context_tokens": [[token, char offset], ...],
     "qas": [{"qid": str, "question": str, "question_tokens": [...],
              "answers": [str, ...],                        # every accepted answer
              "detected_answers": [{"text": str,
                                    "char_spans": [[start, end], ...],   # inclusive
                                    "token_spans": [[start, end], ...]}, ...]}, ...]}

Reading (`read_mrqa_examples`): one `SquadExample` per question, on the whitespace tokens of
the context as for SQuAD. The training answer is the first of all detected character spans
in (start, end) order, as SpanBERT's `run_mrqa.py` takes it (and kept, as there, even where
its text is not found in the whitespace tokens it covers); the gold answers of an example
are its detected spans (unique, in that order). MRQA has no unanswerable questions: a
question marked `is_impossible` is an error, and so is a training question without a
detected span. Bad input (not JSON, a missing header, missing fields, spans outside the
context, a question id seen twice) raises `MrqaFormatError` naming the file and the line.

Evaluation (`evaluate`, what `mrqa_official_eval.py` computes): the gold answers of a
question are its `answers` strings (not the detected spans); each prediction scores the
maximum exact match and token F1 over them after SQuAD's answer normalisation (lower-case,
no punctuation, no articles a/an/the, whitespace collapsed; F1 0 when nothing overlaps,
even when both sides normalise to nothing). A question without a prediction scores 0 and
stays in the total, or with `skip_no_answer` leaves the total (the official
`--skip-no-answer`). Keys `exact_match`, `f1`, in percent.

Writing (`squad_to_mrqa`, `write_mrqa`): the answerable questions of a SQuAD-layout dict as
MRQA lines (the tests build MRQA files from the committed SQuAD subset this way).

Example:
```python
examples, stats = read_mrqa_examples("dev/SQuAD.jsonl.gz", is_training=False)
gold = read_gold_answers("dev/SQuAD.jsonl.gz")
print(evaluate(gold, {"qid-1": "Rollo"}))     # {"exact_match": ..., "f1": ...}
```
"""

import collections
import gzip
import json
import re
import sys

from spanbert_tf.errors import MissingFileError
from spanbert_tf.io_utils import atomic_path
from spanbert_tf.tasks.squad import metrics as squad_metrics
from spanbert_tf.tasks.squad import reader as squad

MRQA_SUFFIXES = (".jsonl", ".jsonl.gz")
_GZIP_MAGIC = b"\x1f\x8b"
_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class MrqaFormatError(squad.SquadFormatError):
    """Malformed MRQA input; the message names the file and the line."""


def is_mrqa_path(path):
    """Whether `path` names an MRQA JSON-lines file (`.jsonl` or `.jsonl.gz`)."""
    return str(path or "").endswith(MRQA_SUFFIXES)


def _read_lines(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise MissingFileError(f"MRQA file not found: {path}") from None
    except OSError as e:
        raise MrqaFormatError(f"{path}: unreadable ({e})") from None
    try:
        if raw.startswith(_GZIP_MAGIC):
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise MrqaFormatError(f"{path}: not a UTF-8 (or gzip-compressed UTF-8) file "
                              f"({e})") from None
    # "\n" only: JSON strings may hold U+2028 and other characters str.splitlines() splits on.
    return [line.rstrip("\r") for line in text.split("\n")]


def load_mrqa(path):
    """(header dict, [(line number, context record), ...]) of an MRQA file, checked.

    The first line must be the header; empty lines are ignored. Every record has a string
    `context` and a list `qas` whose questions have a unique string `qid`, a string
    `question`, a list of strings `answers` and, if given, `detected_answers` whose
    `char_spans` are inclusive [start, end] pairs inside the context.
    """
    lines = _read_lines(path)
    numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    if not numbered:
        raise MrqaFormatError(f"{path}: empty file (expected the MRQA header line "
                              '{"header": {"dataset": ..., "split": ...}} first)')
    records, header, seen = [], None, {}
    for n, line in numbered:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise MrqaFormatError(f"{path}:{n}: not valid JSON ({e})") from None
        if not isinstance(record, dict):
            raise MrqaFormatError(f"{path}:{n}: expected a JSON object, found "
                                  f"{type(record).__name__}")
        if header is None:
            if not isinstance(record.get("header"), dict):
                raise MrqaFormatError(
                    f"{path}:{n}: expected the MRQA header line "
                    '{"header": {"dataset": ..., "split": ...}}, found keys '
                    f"{sorted(record)}")
            header = record["header"]
            continue
        if "header" in record:
            raise MrqaFormatError(f"{path}:{n}: a second header line (the header is the "
                                  "first line only)")
        _check_record(record, path, n, seen)
        records.append((n, record))
    return header, records


def _check_record(record, path, n, seen):
    where = f"line {n}"
    context = squad.require_field(record, "context", str, path, where)
    for q, qa in enumerate(squad.require_field(record, "qas", list, path, where)):
        qid = squad.require_field(qa, "qid", str, path, f"{where} qas[{q}]")
        if qid in seen:
            raise MrqaFormatError(f"{path}: line {n}: question id {qid!r} already used on "
                                  f"line {seen[qid]}")
        seen[qid] = n
        where_q = f"line {n} question {qid}"
        squad.require_field(qa, "question", str, path, where_q)
        answers = squad.require_field(qa, "answers", list, path, where_q)
        if not all(isinstance(a, str) for a in answers):
            raise MrqaFormatError(f"{path}: {where_q}: field 'answers' must be a list of "
                                  "strings")
        if qa.get("is_impossible"):
            raise MrqaFormatError(f"{path}: {where_q}: is_impossible is set, but MRQA has no "
                                  "unanswerable questions")
        for d, detected in enumerate(qa.get("detected_answers") or []):
            spans = squad.require_field(detected, "char_spans", list, path,
                                   f"{where_q} detected_answers[{d}]")
            for span in spans:
                if not (isinstance(span, list) and len(span) == 2
                        and all(isinstance(i, int) and not isinstance(i, bool) for i in span)
                        and 0 <= span[0] <= span[1] < len(context)):
                    raise MrqaFormatError(
                        f"{path}: {where_q}: character span {span} is not an inclusive "
                        f"[start, end] inside the context ({len(context)} characters)")


def read_mrqa_examples(path, is_training):
    """Reads an MRQA file into (list of `SquadExample`, `ReadStats`)."""
    _, records = load_mrqa(path)
    examples, stats = [], squad.ReadStats()
    for n, record in records:
        context = record["context"]
        doc = squad.split_on_whitespace(context)
        for qa in record["qas"]:
            spans = sorted({tuple(span) for detected in qa.get("detected_answers") or []
                            for span in detected["char_spans"]})
            answers = [{"text": context[start:end + 1], "answer_start": start}
                       for start, end in spans]
            if is_training and not answers:
                raise MrqaFormatError(f"{path}: line {n} question {qa['qid']}: a training "
                                      "question needs a detected answer (detected_answers "
                                      "with char_spans)")
            example = squad.make_example(qa["qid"], qa["question"], context, answers, False,
                                         is_training, stats, f"{path}: line {n}", doc,
                                         check_answer_text=False)
            if example is not None:
                examples.append(example)
    return examples, stats


def read_gold_answers(path):
    """({qid: its `answers` strings}, header) in file order: what the official script scores."""
    header, records = load_mrqa(path)
    answers = collections.OrderedDict()
    for _, record in records:
        for qa in record["qas"]:
            answers[qa["qid"]] = list(qa["answers"])
    return answers, header


def evaluate(answers, predictions, skip_no_answer=False, source="data", log=sys.stderr):
    """The official MRQA scores of `predictions` ({qid: text}): {"exact_match", "f1"} in %.

    `answers`: {qid: gold answer strings} (`read_gold_answers`). Questions without a
    prediction score 0 (one note on `log` counts them), or leave the total with
    `skip_no_answer`; predictions for other ids are ignored, as in the official script.
    """
    exact = f1 = total = 0
    missing = []
    for qid, golds in answers.items():
        if qid not in predictions:
            missing.append(qid)
            total += not skip_no_answer
            continue
        if not golds:
            raise squad_metrics.SquadEvalError(
                f"{source}: question {qid} has no gold answers (its 'answers' list is empty)")
        total += 1
        prediction = predictions[qid]
        exact += max(squad_metrics.exact_score(g, prediction) for g in golds)
        f1 += max(squad_metrics.f1_score_v1(g, prediction) for g in golds)
    if not answers:
        raise squad_metrics.SquadEvalError(f"{source}: no questions to evaluate")
    squad_metrics.report_missing(
        missing, len(answers), predictions, source, log,
        consequence=("are left out of the scores (--skip_no_answer)" if skip_no_answer
                     else "score 0 (official MRQA)"))
    return collections.OrderedDict(
        [("exact_match", 100.0 * exact / total), ("f1", 100.0 * f1 / total)])


def no_answer_baseline(answers):
    """The scores of answering "" everywhere (0 unless a gold answer normalises to nothing)."""
    return evaluate(answers, {qid: "" for qid in answers})


def tokens_with_offsets(text):
    """[[token, character offset], ...]: words and single punctuation marks (MRQA's files use
    spaCy tokens; these are only a stand-in with the same layout)."""
    return [[m.group(), m.start()] for m in _TOKEN.finditer(text)]


def _token_span(tokens, start, end):
    """Inclusive [first, last] index of the tokens overlapping characters [start, end]."""
    inside = [i for i, (tok, offset) in enumerate(tokens)
              if offset <= end and offset + len(tok) - 1 >= start]
    return [inside[0], inside[-1]] if inside else None


def squad_to_mrqa(dataset_json, dataset_name, split):
    """(MRQA lines: header first, then one per paragraph, number of unanswerable questions
    left out) from a SQuAD-layout dict. `answers` keeps every gold text (repeats too);
    `detected_answers` groups the gold offsets by text."""
    lines = [{"header": {"dataset": dataset_name, "split": split}}]
    skipped = 0
    for article in dataset_json["data"]:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            tokens = tokens_with_offsets(context)
            qas = []
            for qa in paragraph["qas"]:
                if qa.get("is_impossible") or not qa["answers"]:
                    skipped += 1
                    continue
                spans = collections.OrderedDict()
                for answer in qa["answers"]:
                    start, text = answer["answer_start"], answer["text"]
                    span = [start, start + len(text) - 1]
                    if span not in spans.setdefault(text, []):
                        spans[text].append(span)
                detected = [{"text": text, "char_spans": sorted(char_spans),
                             "token_spans": [_token_span(tokens, s, e)
                                             for s, e in sorted(char_spans)]}
                            for text, char_spans in spans.items()]
                qas.append({"qid": qa["id"], "question": qa["question"],
                            "question_tokens": tokens_with_offsets(qa["question"]),
                            "answers": [a["text"] for a in qa["answers"]],
                            "detected_answers": detected})
            if qas:
                lines.append({"context": context, "context_tokens": tokens, "qas": qas})
    return lines, skipped


def write_mrqa(path, lines):
    """Writes MRQA lines (header first) atomically; gzip-compressed when `path` ends in .gz."""
    data = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    data = data.encode("utf-8")
    if str(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return str(path)
