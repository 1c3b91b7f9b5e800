"""TACRED relation extraction input: official JSON, SpanBERT's entity type markers.

As in SpanBERT's `run_tacred.py` (its default "ner" feature mode), the subject
and object mentions are *replaced* by one marker token each that names the
entity type, e.g. `[SUBJ-PER]` and `[OBJ-LOC]`; the sequence is
`[CLS] tokens-with-markers [SEP]`, cut to `max_seq_length` (the cut drops the
final `[SEP]`, as the official code does) and the `[CLS]` representation
classifies. Markers are mapped onto the vocabulary's `[unusedN]` entries in
the official order: `[unused1]`..`[unused4]` are reserved for the start/end
markers of the other feature modes, then every new marker takes the next
entry in order of first appearance (dev file first, then train, subject
before object in each record). `TacredMarkers` holds that mapping; it is
saved with the fine-tuned model so evaluation and export use the same ids.

Records without `subj_type`/`obj_type` (e.g. SemEval-2010 Task 8 in TACRED
layout) get the untyped markers `[SUBJ]` / `[OBJ]`. PTB bracket tokens
(`-LRB-` ...) are turned back into brackets before WordPiece, as officially.

Example:
```python
dev = read_tacred_json("tacred/dev.json")
train = read_tacred_json("tacred/train.json")
labels = tacred_label_list(train)                # "no_relation" first
markers = TacredMarkers.build([dev, train], tokenizer.vocab, vocab_file)
features = encode_tacred(dev, tokenizer, markers, max_seq_length=128)
```
"""

import collections
import dataclasses
import json
from typing import Optional

import numpy as np

from spanbert_tf.errors import InputError, MissingFileError

NEGATIVE_LABEL = "no_relation"
RESERVED_MARKERS = ("[SUBJ-START]", "[SUBJ-END]", "[OBJ-START]", "[OBJ-END]")
# PTB bracket tokens (lower-cased) -> brackets: the one table of the Python features
# and the serving SavedModel (classification/export.py).
PTB_BRACKETS = {"-lrb-": "(", "-rrb-": ")", "-lsb-": "[", "-rsb-": "]",
                "-lcb-": "{", "-rcb-": "}"}
_REQUIRED = ("token", "subj_start", "subj_end", "obj_start", "obj_end", "relation")


@dataclasses.dataclass
class TacredExample:
    """One relation mention: tokens, inclusive subject/object spans, types, label."""

    guid: str
    tokens: list
    subj_start: int
    subj_end: int
    obj_start: int
    obj_end: int
    subj_type: Optional[str]
    obj_type: Optional[str]
    label: Optional[str]
    source: str = ""


def convert_ptb_token(token):
    """`-LRB-` -> `(` etc. (case-insensitive); other tokens unchanged."""
    return PTB_BRACKETS.get(token.lower(), token)


def subject_marker(entity_type):
    return "[SUBJ]" if not entity_type else f"[SUBJ-{entity_type}]"


def object_marker(entity_type):
    return "[OBJ]" if not entity_type else f"[OBJ-{entity_type}]"


def _parse_record(record, path, index):
    where = f"{path}: record {index}"
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object, found {type(record).__name__}")
    if "id" in record:
        where += f" (id {record['id']})"
    missing = [k for k in _REQUIRED if k not in record]
    if missing:
        raise InputError(f"{where}: missing field(s) {missing}")
    tokens = record["token"]
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise InputError(f"{where}: field 'token' must be a list of strings")
    spans = {}
    for k in ("subj_start", "subj_end", "obj_start", "obj_end"):
        v = record[k]
        if isinstance(v, bool) or not isinstance(v, int):
            raise InputError(f"{where}: field {k!r} must be an integer, found {v!r}")
        spans[k] = v
    for side in ("subj", "obj"):
        s, e = spans[f"{side}_start"], spans[f"{side}_end"]
        if not 0 <= s <= e < len(tokens):
            raise InputError(f"{where}: {side} span [{s}, {e}] is not inside the "
                             f"{len(tokens)} tokens")
    types = {}
    for k in ("subj_type", "obj_type"):
        v = record.get(k)
        if v is not None and not isinstance(v, str):
            raise InputError(f"{where}: field {k!r} must be a string, found {v!r}")
        types[k] = v or None
    label = record["relation"]
    if not isinstance(label, str) or not label:
        raise InputError(f"{where}: field 'relation' must be a non-empty string")
    return TacredExample(
        guid=str(record.get("id", index)), tokens=tokens, label=label,
        source=where, **spans, **types)


def read_tacred_json(path):
    """Reads an official TACRED JSON file (a list of records) in file order."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise MissingFileError(f"TACRED file not found: {path}") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON list of records (official TACRED layout)")
    return [_parse_record(r, path, i) for i, r in enumerate(data)]


def tacred_label_list(train_examples, negative_label=NEGATIVE_LABEL):
    """The official label order: the negative label first, then by train frequency."""
    counts = collections.Counter(ex.label for ex in train_examples)
    labels = [negative_label]
    for label, _ in counts.most_common():   # ties keep first-seen order
        if label != negative_label:
            labels.append(label)
    return labels


class TacredMarkers:
    """Entity marker -> vocabulary `[unusedN]` mapping (saved with the model).

    Args:
        mapping: dict marker name (e.g. "[SUBJ-PER]") -> vocabulary token.
    """

    def __init__(self, mapping):
        self.mapping = dict(mapping)

    @classmethod
    def build(cls, example_lists, vocab=None, vocab_file="vocabulary"):
        """Builds the official mapping from examples (dev first, then train)."""
        markers = cls({})
        for marker in RESERVED_MARKERS:
            markers.add(marker, vocab, vocab_file)
        for examples in example_lists:
            markers.add_examples(examples, vocab, vocab_file)
        return markers

    def add(self, marker, vocab=None, vocab_file="vocabulary"):
        """Maps `marker` to the next `[unusedN]` if it has no entry yet."""
        if marker not in self.mapping:
            token = f"[unused{len(self.mapping) + 1}]"
            if vocab is not None and token not in vocab:
                raise InputError(
                    f"{vocab_file}: has no {token} entry for entity marker {marker} "
                    f"({len(self.mapping)} markers already mapped)")
            self.mapping[marker] = token
        return self.mapping[marker]

    def add_examples(self, examples, vocab=None, vocab_file="vocabulary"):
        for ex in examples:
            self.add(subject_marker(ex.subj_type), vocab, vocab_file)
            self.add(object_marker(ex.obj_type), vocab, vocab_file)

    def ids(self, tokenizer):
        """dict marker -> vocabulary id."""
        ids = tokenizer.convert_tokens_to_ids(list(self.mapping.values()))
        return dict(zip(self.mapping, (int(i) for i in ids)))

    def to_json(self):
        return dict(self.mapping)

    @classmethod
    def from_json(cls, data):
        if not isinstance(data, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise InputError("TACRED marker mapping must be a dict of strings")
        return cls(data)

    def __eq__(self, other):
        return isinstance(other, TacredMarkers) and self.mapping == other.mapping

    def __repr__(self):
        return f"TacredMarkers({self.mapping})"


def marker_token_sequences(examples):
    """Per example, the word-level sequence with the mentions replaced by markers.

    Returns a list of lists whose items are either `("marker", name)` or
    `("word", text)`; exposed for tests and for the in-graph export check.
    """
    out = []
    for ex in examples:
        seq = []
        for i, token in enumerate(ex.tokens):
            if i == ex.subj_start:
                seq.append(("marker", subject_marker(ex.subj_type)))
            if i == ex.obj_start:
                seq.append(("marker", object_marker(ex.obj_type)))
            in_subj = ex.subj_start <= i <= ex.subj_end
            in_obj = ex.obj_start <= i <= ex.obj_end
            if not (in_subj or in_obj):
                seq.append(("word", convert_ptb_token(token)))
        out.append(seq)
    return out


def encode_tacred(examples, tokenizer, markers, max_seq_length):
    """Token ids `[CLS] ... [SEP]` with markers, cut and padded to `max_seq_length`.

    A marker the mapping lacks (an entity type never seen in training) becomes
    the untyped `[SUBJ]` / `[OBJ]` marker if mapped, else `[UNK]`, as in the
    exported SavedModel.

    Returns:
        dict of int32 arrays [N, max_seq_length]: token_ids, segment_ids (all 0),
        padding_mask; plus "num_truncated" (int, examples longer than the limit).
    """
    sequences = marker_token_sequences(examples)
    marker_ids = markers.ids(tokenizer)
    words = [text for seq in sequences for kind, text in seq if kind == "word"]
    pieces = iter(tokenizer.tokenize_to_ids(words)) if words else iter(())
    n = len(examples)
    token_ids = np.zeros((n, max_seq_length), np.int32)
    padding_mask = np.zeros((n, max_seq_length), np.int32)
    num_truncated = 0
    for row, seq in enumerate(sequences):
        ids = [tokenizer.cls_id]
        for kind, text in seq:
            if kind == "marker":
                if text not in marker_ids:
                    # A type the mapping lacks (serving): the untyped marker, else [UNK].
                    untyped = "[SUBJ]" if text.startswith("[SUBJ") else "[OBJ]"
                    ids.append(marker_ids.get(untyped, tokenizer.unk_id))
                else:
                    ids.append(marker_ids[text])
            else:
                ids.extend(int(i) for i in next(pieces))
        ids.append(tokenizer.sep_id)
        if len(ids) > max_seq_length:
            num_truncated += 1
            ids = ids[:max_seq_length]
        token_ids[row, :len(ids)] = ids
        padding_mask[row, :len(ids)] = 1
    return {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
            "padding_mask": padding_mask, "num_truncated": num_truncated}
