"""Extractive QA inputs: SQuAD JSON (v1.1 / v2.0) and TFDS `squad` (MRQA files: `mrqa.py`).

Every source becomes a list of `SquadExample`: the question, the context split on
whitespace as the SpanBERT / BERT fine-tuning code does (`doc_tokens`, with
`char_to_word_offset` mapping each context character to its whitespace token),
the training answer as whitespace-token positions, and all gold answers (for
evaluation and for the answer round-trip checks).

Bad input raises `SquadFormatError` naming the file and the question (missing
fields, answers whose character offsets fall outside the context). As in the
official code, a training answer whose text cannot be found in the whitespace
tokens it covers is skipped (and counted in `ReadStats.skipped_answer_not_found`).

Example:
```python
examples, stats = read_squad_json("dev-v2.0.json", is_training=False,
                                  version_2_with_negative=True)
ex = examples[0]
print(ex.qas_id, ex.question_text, ex.doc_tokens[:5], ex.answers)
```
"""

import dataclasses
import json
import os

from spanbert_tf.errors import InputError


class SquadFormatError(InputError):
    """Malformed QA input; the message names the file and the question."""


@dataclasses.dataclass
class SquadExample:
    """One question on one context.

    `start_position` / `end_position` are whitespace-token indices of the training
    answer (-1 for "no answer", None when not training); `answers` holds every gold
    answer as {"text", "answer_start"} (empty for unanswerable questions).
    """

    qas_id: str
    question_text: str
    context_text: str
    doc_tokens: list
    char_to_word_offset: list
    orig_answer_text: str = None
    start_position: int = None
    end_position: int = None
    is_impossible: bool = False
    answers: list = dataclasses.field(default_factory=list)
    title: str = ""


@dataclasses.dataclass
class ReadStats:
    """What a reader did: question counts and skips (printed by run_squad.py)."""

    num_questions: int = 0
    num_impossible: int = 0
    skipped_answer_not_found: int = 0
    skipped_ids: list = dataclasses.field(default_factory=list)


def is_whitespace(c):
    """The fine-tuning code's whitespace: space, tab, CR, LF and U+202F."""
    return c in (" ", "\t", "\r", "\n") or ord(c) == 0x202F


def split_on_whitespace(text):
    """(doc_tokens, char_to_word_offset) exactly as the SpanBERT reader builds them."""
    doc_tokens, char_to_word_offset = [], []
    prev_is_whitespace = True
    for c in text:
        if is_whitespace(c):
            prev_is_whitespace = True
        else:
            if prev_is_whitespace:
                doc_tokens.append(c)
            else:
                doc_tokens[-1] += c
            prev_is_whitespace = False
        char_to_word_offset.append(len(doc_tokens) - 1)
    return doc_tokens, char_to_word_offset


def require_field(obj, name, types, source, where):
    """`obj[name]`, checked to be of `types`; else `SquadFormatError` naming source and where."""
    if not isinstance(obj, dict) or name not in obj:
        raise SquadFormatError(f"{source}: {where}: missing field {name!r}")
    value = obj[name]
    if not isinstance(value, types) or (types is not bool and isinstance(value, bool)):
        raise SquadFormatError(f"{source}: {where}: field {name!r} has type "
                               f"{type(value).__name__}")
    return value


def _check_answer(answer, context, source, where):
    text = require_field(answer, "text", str, source, where)
    start = require_field(answer, "answer_start", int, source, where)
    if start < 0 or start + len(text) > len(context) or (text and start >= len(context)):
        raise SquadFormatError(
            f"{source}: {where}: answer {text!r} at character offset {start} (length "
            f"{len(text)}) lies outside the context ({len(context)} characters)")
    return {"text": text, "answer_start": start}


def make_example(qas_id, question, context, answers, is_impossible, is_training,
                 stats, source, doc=None, title="", check_answer_text=True):
    """Builds one `SquadExample`; returns None for a skipped training answer.

    `doc` may pass a precomputed `split_on_whitespace(context)` shared by the
    questions of a paragraph. `check_answer_text=False` keeps a training answer whose
    text is not found in the whitespace tokens it covers (SpanBERT's run_mrqa.py).
    """
    doc_tokens, char_to_word_offset = doc if doc is not None else split_on_whitespace(context)
    stats.num_questions += 1
    stats.num_impossible += int(is_impossible)
    example = SquadExample(qas_id=qas_id, question_text=question, context_text=context,
                           doc_tokens=doc_tokens, char_to_word_offset=char_to_word_offset,
                           is_impossible=is_impossible, answers=answers, title=title)
    if not is_training:
        return example
    if is_impossible:
        example.start_position = example.end_position = -1
        example.orig_answer_text = ""
        return example
    if not answers:
        raise SquadFormatError(f"{source}: question {qas_id}: an answerable training question "
                               "needs an answer")
    answer = answers[0]
    text, offset = answer["text"], answer["answer_start"]
    if not text.strip():
        raise SquadFormatError(f"{source}: question {qas_id}: empty answer text")
    example.orig_answer_text = text
    example.start_position = char_to_word_offset[offset]
    example.end_position = char_to_word_offset[offset + len(text) - 1]
    actual = " ".join(doc_tokens[example.start_position:example.end_position + 1])
    if check_answer_text and actual.find(" ".join(text.split())) == -1:
        stats.skipped_answer_not_found += 1
        stats.skipped_ids.append(qas_id)
        return None
    return example


def examples_from_squad_json(data, is_training, version_2_with_negative, source="data",
                             first_answer_only=False):
    """Examples from a parsed SQuAD JSON object ({"version", "data": [...]}).

    Training questions need exactly one answer (as in the official code) unless
    `first_answer_only`, which trains on the first of several (dev-style files).
    """
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise SquadFormatError(f"{source}: not a SQuAD file (no top-level 'data' list)")
    examples, stats = [], ReadStats()
    for a, article in enumerate(data["data"]):
        title = article.get("title", "") if isinstance(article, dict) else ""
        paragraphs = require_field(article, "paragraphs", list, source, f"data[{a}]")
        for p, paragraph in enumerate(paragraphs):
            where = f"data[{a}].paragraphs[{p}]"
            context = require_field(paragraph, "context", str, source, where)
            qas = require_field(paragraph, "qas", list, source, where)
            doc = split_on_whitespace(context)
            for q, qa in enumerate(qas):
                qid = require_field(qa, "id", str, source, f"{where}.qas[{q}]")
                where_q = f"question {qid}"
                question = require_field(qa, "question", str, source, where_q)
                raw_answers = require_field(qa, "answers", list, source, where_q)
                answers = [_check_answer(ans, context, source, f"{where_q} answers[{i}]")
                           for i, ans in enumerate(raw_answers)]
                if version_2_with_negative:
                    if "is_impossible" in qa:
                        is_impossible = require_field(qa, "is_impossible", bool, source, where_q)
                    else:
                        is_impossible = not answers
                    if is_impossible and answers:
                        raise SquadFormatError(f"{source}: {where_q}: is_impossible but has "
                                               "answers")
                else:
                    is_impossible = False
                    if is_training and not answers:
                        raise SquadFormatError(
                            f"{source}: {where_q}: no answers (unanswerable questions need "
                            "--version_2_with_negative)")
                if is_training and first_answer_only and len(answers) > 1:
                    answers = answers[:1]
                if is_training and not is_impossible and len(answers) != 1:
                    raise SquadFormatError(f"{source}: {where_q}: a training question needs "
                                           f"exactly 1 answer, found {len(answers)}")
                example = make_example(qid, question, context, answers, is_impossible,
                                       is_training, stats, source, doc, title)
                if example is not None:
                    examples.append(example)
    return examples, stats


def read_squad_json(path, is_training, version_2_with_negative, first_answer_only=False):
    """Reads a SQuAD-layout JSON file into (examples, ReadStats)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise SquadFormatError(f"SQuAD file not found: {path}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SquadFormatError(f"{path}: not valid JSON ({e})") from None
    return examples_from_squad_json(data, is_training, version_2_with_negative, source=path,
                                    first_answer_only=first_answer_only)


def read_tfds(name, data_dir, split, is_training, version_2_with_negative):
    """Reads TFDS `squad/v1.1` or `squad/v2.0` (already prepared in `data_dir`)."""
    import tensorflow_datasets as tfds

    try:
        ds = tfds.load(name, split=split, data_dir=data_dir, download=False)
    except Exception as e:  # tfds raises several types for "not prepared"
        raise SquadFormatError(f"TFDS {name} (split {split}) not available in {data_dir}: "
                               f"{e}") from None
    return examples_from_tfds(tfds.as_numpy(ds), is_training, version_2_with_negative,
                              source=f"tfds:{name}/{split}")


def examples_from_tfds(records, is_training, version_2_with_negative, source="tfds"):
    """Examples from TFDS squad records (dicts of numpy values / bytes)."""

    def text(x):
        return x.decode("utf-8") if isinstance(x, bytes) else str(x)

    examples, stats = [], ReadStats()
    for record in records:
        qid = text(record["id"])
        context = text(record["context"])
        answer_texts = [text(t) for t in record["answers"]["text"]]
        answer_starts = [int(s) for s in record["answers"]["answer_start"]]
        answers = [_check_answer({"text": t, "answer_start": s}, context, source,
                                 f"question {qid}")
                   for t, s in zip(answer_texts, answer_starts)]
        if version_2_with_negative:
            is_impossible = bool(record["is_impossible"]) if "is_impossible" in record else (
                not answers)
        else:
            is_impossible = False
            if is_training and not answers:
                raise SquadFormatError(f"{source}: question {qid}: no answers")
        if is_training and not is_impossible:
            answers = answers[:1]
        example = make_example(qid, text(record["question"]), context, answers, is_impossible,
                               is_training, stats, source, title=text(record.get("title", "")))
        if example is not None:
            examples.append(example)
    return examples, stats


def read_examples(path=None, is_training=False, version_2_with_negative=False,
                  tfds_name=None, tfds_data_dir=None, tfds_split=None, first_answer_only=False):
    """Reads QA examples from a SQuAD JSON file or from TFDS; returns (examples, stats).

    MRQA files are read by `spanbert_tf.tasks.squad.mrqa` (which builds on this module)."""
    if tfds_name:
        split = tfds_split or ("train" if is_training else "validation")
        return read_tfds(tfds_name, tfds_data_dir, split, is_training, version_2_with_negative)
    if path is None:
        raise SquadFormatError("no input: give a file or a TFDS name")
    if path.endswith((".jsonl", ".jsonl.gz")):
        raise SquadFormatError(f"{path}: an MRQA file: read it with "
                               "spanbert_tf.tasks.squad.mrqa.read_mrqa_examples")
    if not os.path.exists(path):
        raise SquadFormatError(f"SQuAD file not found: {path}")
    return read_squad_json(path, is_training, version_2_with_negative, first_answer_only)


def gold_dataset_json(examples, version="2.0"):
    """A SQuAD-layout dict with the gold answers of `examples` (for scoring TFDS data)."""
    paragraphs = [{"context": ex.context_text,
                   "qas": [{"id": ex.qas_id, "question": ex.question_text,
                            "answers": ex.answers, "is_impossible": ex.is_impossible}]}
                  for ex in examples]
    return {"version": version, "data": [{"title": "", "paragraphs": paragraphs}]}
