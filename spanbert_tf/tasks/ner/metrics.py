"""Exact-match entity scores: precision, recall, F1 per type and micro-averaged, in %.

A predicted entity is correct when a gold entity of the same document and sentence has
the same start, end and type. Entities are sets: nested entities count one each, so the
scores are nested-aware; on flat BIO data they equal `seqeval`'s strict IOB2 scores
(tested against the package). Gold and predictions are matched by document id and
sentence position (a file of one document against another of one document: matched
whatever their ids, as a TSV document's id is its file name); a document or sentence missing from the predictions predicts nothing
(its gold entities are missed), one missing from the gold is an error.

Example:
```python
scores = evaluate({"d": [[(0, 2, "PER")]]}, {"d": [[(0, 2, "PER"), (1, 2, "PER")]]})
scores["precision"], scores["recall"], scores["f1"]      # 50.0, 100.0, 66.67
print(format_table(scores))
```
"""

import collections

from spanbert_tf.errors import InputError
from spanbert_tf.tasks.ner import formats


def _prf(correct, predicted, gold):
    precision = 100.0 * correct / predicted if predicted else 0.0
    recall = 100.0 * correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "gold": gold, "predicted": predicted, "correct": correct}


def _entity_set(entities, what):
    out = set()
    for doc_id, sentences in entities.items():
        for s, found in enumerate(sentences):
            out.update((doc_id, s, int(e[0]), int(e[1]), str(e[2])) for e in found)
    return out


def evaluate(gold, predicted):
    """Scores of `predicted` against `gold` ({doc_id: [[(start, end, type, ...)] per
    sentence]}; extra items such as scores are ignored)."""
    for doc_id, sentences in predicted.items():
        if doc_id not in gold:
            raise InputError(f"predicted document {doc_id!r} is not in the gold file")
        if len(sentences) > len(gold[doc_id]):
            raise InputError(f"document {doc_id!r}: {len(sentences)} predicted sentences, "
                             f"the gold has {len(gold[doc_id])}")
    gold_set, pred_set = _entity_set(gold, "gold"), _entity_set(predicted, "predicted")
    counts = collections.defaultdict(lambda: [0, 0, 0])    # type -> correct, predicted, gold
    for entity in pred_set:
        counts[entity[4]][1] += 1
        counts[entity[4]][0] += entity in gold_set
    for entity in gold_set:
        counts[entity[4]][2] += 1
    per_type = {t: _prf(*counts[t]) for t in sorted(counts)}
    micro = _prf(len(gold_set & pred_set), len(pred_set), len(gold_set))
    return {**micro, "per_type": per_type}


def micro(scores):
    """The last line of evaluate_ner.py: {"precision", "recall", "f1"} in %."""
    return {k: scores[k] for k in ("precision", "recall", "f1")}


def format_table(scores):
    """A fixed-width table: one row per type, then the micro average."""
    rows = [f"{'type':<8}{'precision':>10}{'recall':>10}{'f1':>10}{'gold':>8}{'pred':>8}"]
    for name, s in list(scores["per_type"].items()) + [("micro", scores)]:
        rows.append(f"{name:<8}{s['precision']:>10.2f}{s['recall']:>10.2f}{s['f1']:>10.2f}"
                    f"{s['gold']:>8}{s['predicted']:>8}")
    return "\n".join(rows)


def by_doc_id(docs, entities=None):
    """{doc_id: entities per sentence} of `NerDocument`s (their own, or `entities`)."""
    out = {}
    for d, doc in enumerate(docs):
        if doc.doc_id in out:
            raise InputError(f"document id {doc.doc_id!r} appears twice")
        out[doc.doc_id] = doc.entities if entities is None else entities[d]
    return out


def evaluate_files(gold_file, pred_file, split_file=None, scheme="bio"):
    """Scores of the predictions file (or folder) `pred_file` against `gold_file`: any of
    the formats of `formats.py`, not necessarily the same (documents match by id)."""
    gold_docs = formats.read_ner_files(gold_file, split_file, scheme)
    pred_docs = formats.read_ner_files(pred_file, None, scheme)
    if len(gold_docs) == 1 and len(pred_docs) == 1:   # one document each: TSV ids are
        pred_docs[0].doc_id = gold_docs[0].doc_id     # file names, which differ
    return evaluate(by_doc_id(gold_docs), by_doc_id(pred_docs))
