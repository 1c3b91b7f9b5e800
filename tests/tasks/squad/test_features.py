"""Examples → windows as SpanBERT's run_squad.py, and the gold-answer round trip."""

import collections

import numpy as np
import pytest

from spanbert_tf.tasks.squad import reader as squad
from spanbert_tf.tasks.squad import features as squad_features
from spanbert_tf.tasks.squad import predict as squad_predict
from spanbert_tf.tokenization import BertWordpieceTokenizer

V2_FILE = "squad/squad-v2.0-dev-subset_haystack-small.json"


@pytest.fixture(scope="module")
def cased(cased_vocab):
    return BertWordpieceTokenizer(cased_vocab)


@pytest.fixture(scope="module")
def dev_examples(shared_data):
    return squad.read_squad_json(str(shared_data / V2_FILE), False, True)[0]


def _per_answer_training_examples(examples):
    """One training example per gold answer (881 answers for the 293 answerable)."""
    out, stats = [], squad.ReadStats()
    for ex in examples:
        for answer in ex.answers:
            t = squad.make_example(ex.qas_id, ex.question_text, ex.context_text, [answer],
                                   False, True, stats, "dev",
                                   (ex.doc_tokens, ex.char_to_word_offset))
            out.append(t)
    return out, stats


def roundtrip_failures(examples, tokenizer, max_seq_length, doc_stride):
    """Gold answer → training labels (wordpieces) → prediction-path text; the misses."""
    feats = squad_features.convert_examples_to_features(
        examples, tokenizer, max_seq_length, doc_stride, 64, is_training=True)
    recovered = {}
    for n in range(len(feats)):
        s, e = int(feats.start_positions[n]), int(feats.end_positions[n])
        i = int(feats.example_index[n])
        if s == 0 or i in recovered or not feats.token_is_max_context[n][s]:
            continue
        tokens = tokenizer.convert_ids_to_tokens(feats.input_ids[n][:feats.num_tokens[n]])
        recovered[i] = squad_predict.span_text(examples[i], tokens, feats.token_to_orig[n], s,
                                               e, tokenizer.do_lower_case)
    failures = []
    for i, ex in enumerate(examples):
        gold = ex.answers[0]
        want = (gold["text"], gold["answer_start"], gold["answer_start"] + len(gold["text"]))
        if i not in recovered:
            failures.append((ex.qas_id, "no window holds it at max context"))
        elif recovered[i][0] != want[0]:
            failures.append((ex.qas_id, f"text {recovered[i][0]!r} != {want[0]!r}"))
        elif recovered[i] != want:
            failures.append((ex.qas_id, f"offsets {recovered[i][1:]} != {want[1:]}"))
    return failures


def test_every_gold_answer_round_trips(dev_examples, cased, shared_data):
    train_examples, stats = _per_answer_training_examples(dev_examples)
    assert len(train_examples) == 881 and stats.skipped_answer_not_found == 0
    # 426 of the 881 answers do not start/end on a whitespace-token boundary
    # ("France" in "France."), so they rely on the improved answer span.
    unaligned = sum(
        1 for ex in train_examples for a in ex.answers[:1]
        if not (a["answer_start"] == 0 or squad.is_whitespace(
            ex.context_text[a["answer_start"] - 1])) or not (
            a["answer_start"] + len(a["text"]) == len(ex.context_text) or squad.is_whitespace(
                ex.context_text[a["answer_start"] + len(a["text"])])))
    assert unaligned == 426
    # Observed: 0 failures, text and character offsets, with one window (384) and with
    # many short windows (128/32: answers cut by a window edge come back from another).
    assert roundtrip_failures(train_examples, cased, 384, 128) == []
    assert roundtrip_failures(train_examples, cased, 128, 32) == []
    uncased = BertWordpieceTokenizer(shared_data / "vocab/bert-base-uncased-vocab.txt", True)
    assert roundtrip_failures(train_examples, uncased, 384, 128) == []


def test_round_trip_needs_the_improved_answer_span(dev_examples, cased, monkeypatch):
    """Without the span improvement the labels cover whole words: the check sees it."""
    train_examples, _ = _per_answer_training_examples(dev_examples)
    monkeypatch.setattr(squad_features, "improve_answer_span", lambda ids, s, e, a: (s, e))
    failures = roundtrip_failures(train_examples, cased, 384, 128)
    reasons = collections.Counter(r.split(" ")[0] for _, r in failures)
    assert len(failures) == 426 and reasons == {"text": 426}


def test_window_layout_and_labels(cased):
    context = "The Normans (Norman: Nourmands) gave their name to Normandy in 911."
    ex = squad.make_example("q", "Who gave their name to Normandy?", context,
                            [{"text": "Norman", "answer_start": 13}], False, True,
                            squad.ReadStats(), "t")
    f = squad_features.convert_examples_to_features([ex], cased, 24, 5, 16, is_training=True)
    query = cased.tokenize("Who gave their name to Normandy?")
    doc = [p for w in ex.doc_tokens for p in cased.tokenize(w)]
    room = 24 - len(query) - 3
    starts = list(range(0, len(doc) - room + 5, 5))
    assert len(f) == len(starts) and list(f.doc_span_index) == list(range(len(f)))
    row = f.input_ids[0]
    off = len(query) + 2
    assert row[0] == cased.cls_id and row[off - 1] == cased.sep_id
    assert cased.convert_ids_to_tokens(row[1:off - 1]) == query
    assert cased.convert_ids_to_tokens(row[off:off + room]) == doc[:room]
    assert f.segment_ids[0][off - 1] == 0 and f.segment_ids[0][off] == 1
    assert f.input_mask[0].sum() == f.num_tokens[0] == 24
    # "Norman" inside "(Norman:" → the single piece "Norman" (improved span).
    (answer_row,) = [n for n in range(len(f)) if f.start_positions[n] > 0][:1]
    s = f.start_positions[answer_row]
    assert f.end_positions[answer_row] == s
    assert cased.convert_ids_to_tokens([f.input_ids[answer_row][s]]) == ["Norman"]
    # Windows that do not hold the whole answer point at [CLS].
    assert all(f.start_positions[n] == 0 for n in range(len(f)) if n != answer_row
               and not (f.start_positions[n] > 0))
    # Max context: every context piece has exactly one max-context window.
    counts = collections.Counter()
    for n in range(len(f)):
        for i in np.nonzero(f.token_is_max_context[n])[0]:
            counts[starts[n] + i - off] += 1
    assert sorted(counts) == list(range(len(doc))) and set(counts.values()) == {1}


def test_max_context_rule_matches_hand_example():
    # Windows [0,5) [3,8) [6,11); score = min(left, right) + 0.01 * 5. In the middle
    # window, piece 3 scores 0.05 (1.05 in window 0), 4-6 score 1.05/2.05/1.05 (best),
    # piece 7 scores 0.05 (1.05 in window 2).
    spans = [(0, 5), (3, 5), (6, 5)]
    assert list(squad_features.max_context_mask(spans, 1)) == [False, True, True, True, False]
    assert squad_features.doc_windows(12, 5, 3) == [(0, 5), (3, 5), (6, 5), (9, 3)]


def test_improve_answer_span_hand_example(cased):
    # "(1895-1943)." with answer "1895": the word's pieces shrink to the year.
    doc = cased.tokenize_to_ids(["(1895-1943)."])[0]
    ans = cased.tokenize_to_ids(["1895"])[0]
    s, e = squad_features.improve_answer_span(doc, 0, len(doc) - 1, ans)
    assert cased.convert_ids_to_tokens(doc[s:e + 1]) == ["1895"]
