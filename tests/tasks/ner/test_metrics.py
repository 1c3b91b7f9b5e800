"""Exact-match entity scores: nested-aware; on flat BIO equal to seqeval's strict IOB2 mode."""

import numpy as np
import pytest

from spanbert_tf.errors import InputError
from spanbert_tf.tasks.ner import formats, metrics
from spanbert_tf.tasks.ner.schemes import entities_to_tags, outermost


def test_nested_entities_count_one_each():
    gold = {"d": [[(0, 1, "PER"), (0, 3, "PER"), (5, 6, "GPE")], []]}
    pred = {"d": [[(0, 3, "PER"), (0, 1, "LOC"), (5, 6, "GPE")], [(0, 1, "PER")]]}
    scores = metrics.evaluate(gold, pred)
    assert (scores["correct"], scores["predicted"], scores["gold"]) == (2, 4, 3)
    assert scores["precision"] == 50.0 and scores["recall"] == pytest.approx(66.6667)
    assert scores["per_type"]["GPE"]["f1"] == 100.0 and scores["per_type"]["LOC"]["f1"] == 0.0
    assert metrics.micro(scores) == {"precision": 50.0, "recall": 66.6667, "f1": 57.1429}
    assert metrics.format_table(scores).splitlines()[-1].split()[0] == "micro"
    with pytest.raises(InputError, match="predicted document 'x' is not in the gold"):
        metrics.evaluate(gold, {"x": []})


def test_flat_bio_equals_seqeval_strict(shared_data):
    seqeval_metrics = pytest.importorskip("seqeval.metrics")
    from seqeval.scheme import IOB2

    docs = formats.read_ner_files(str(shared_data / "ner" / "litbank" / "tsv"),
                                  str(shared_data / "ner" / "litbank" / "splits" / "dev.txt"))
    rng = np.random.default_rng(0)
    types = ["PER", "FAC", "GPE", "LOC", "VEH", "ORG"]
    gold, pred, gold_tags, pred_tags = {}, {}, [], []
    for doc in docs:
        gold[doc.doc_id], pred[doc.doc_id] = [], []
        for words, found in zip(doc.sentences, doc.entities):
            flat = outermost(found)[0]
            # Predictions: gold entities with some dropped, retyped, shifted, and extra ones.
            guess = []
            for s, e, t in flat:
                r = rng.random()
                if r < 0.15:
                    continue
                guess.append((s, e, types[rng.integers(6)] if r < 0.3 else t) if r >= 0.4
                             else (s, max(s + 1, e - 1), t))
            if rng.random() < 0.3 and len(words) > 2:
                s = int(rng.integers(len(words) - 1))
                guess.append((s, s + 1, "PER"))
            guess = outermost(guess)[0]
            gold[doc.doc_id].append(flat)
            pred[doc.doc_id].append(guess)
            gold_tags.append(entities_to_tags(flat, len(words)))
            pred_tags.append(entities_to_tags(guess, len(words)))
    ours = metrics.evaluate(gold, pred)
    assert 20 < ours["f1"] < 95          # a real mix of hits and misses
    kwargs = dict(mode="strict", scheme=IOB2)
    assert ours["precision"] == pytest.approx(
        100 * seqeval_metrics.precision_score(gold_tags, pred_tags, **kwargs), abs=1e-3)
    assert ours["recall"] == pytest.approx(
        100 * seqeval_metrics.recall_score(gold_tags, pred_tags, **kwargs), abs=1e-3)
    assert ours["f1"] == pytest.approx(
        100 * seqeval_metrics.f1_score(gold_tags, pred_tags, **kwargs), abs=1e-3)
    report = seqeval_metrics.classification_report(gold_tags, pred_tags, output_dict=True,
                                                   **kwargs)
    for kind, row in ours["per_type"].items():
        assert row["f1"] == pytest.approx(100 * report[kind]["f1-score"], abs=1e-3), kind
