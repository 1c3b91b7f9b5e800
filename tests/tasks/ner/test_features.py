"""Windows over sentences: packing, long sentences cut with a stride, max-context decoding."""

import numpy as np
import pytest

from spanbert_tf.tasks.ner import features
from spanbert_tf.tasks.ner.formats import NerDocument
from spanbert_tf.tokenization import BertWordpieceTokenizer


@pytest.fixture(scope="module")
def tokenizer(cased_vocab):
    return BertWordpieceTokenizer(cased_vocab)


def _doc():
    long = [f"w{i}" for i in range(30)]          # 'w', '##0' ...: two pieces a word
    return NerDocument("d", [["Emma", "Woodhouse", "smiled", "."], long, ["Mr.", "Knightley"]],
                       [[(0, 2, "PER"), (1, 2, "PER")], [(10, 12, "LOC")], [(0, 2, "PER")]])


def test_windows_pack_sentences_and_cut_long_ones_with_a_stride(tokenizer):
    windows = features.document_windows([_doc()], tokenizer, ["LOC", "PER"], 24, 8, 4)
    assert all(len(w.input_ids) <= 24 for w in windows)
    assert windows[0].input_ids[0] == tokenizer.cls_id
    assert windows[0].input_ids[-1] == tokenizer.sep_id
    # The short first sentence alone, the long one in overlapping chunks, then the last.
    seen = [(int(s), int(w)) for win in windows for s, w in zip(win.sentence, win.word)]
    assert set(seen) == {(s, w) for s, n in ((0, 4), (1, 30), (2, 2)) for w in range(n)}
    assert len(seen) > len(set(seen))              # the chunks overlap
    chunk_starts = [int(win.word[0]) for win in windows if win.sentence[0] == 1]
    assert chunk_starts[:3] == [0, 4, 8]           # 8 wordpieces = 4 two-piece words apart
    # Gold span labels: 1 + the type's index; nested (1, 2) inside (0, 2) both labelled.
    first = windows[0]
    labels = {tuple(int(x) for x in first.spans[k]): int(first.labels[k])
              for k in range(len(first.spans)) if first.labels[k]}
    assert labels == {(0, 1): 2, (1, 1): 2}
    arrays = features.window_arrays(windows, "span", 24)
    assert arrays["span_mask"].sum() == sum(len(w.spans) for w in windows)


def test_span_entities_take_each_span_from_its_most_context_window(tokenizer):
    doc = _doc()
    types = ["LOC", "PER"]
    windows = features.document_windows([doc], tokenizer, types, 24, 8, 4)
    # Logits that predict exactly the gold labels: the decoded entities are the gold.
    logits = [np.where(np.arange(3)[None, :] == w.labels[:, None], 5.0, -5.0)
              for w in windows]
    found = features.span_entities([doc], windows, logits, types)
    assert [[e[:3] for e in s] for s in found[0]] == [sorted(s) for s in doc.entities]
    # A wrong label in a window where the span has less context is outvoted.
    k = next(i for i, w in enumerate(windows)
             if w.sentence[0] == 1 and 10 in w.word and 11 in w.word and w.word[0] == 8)
    w = windows[k]
    a = int(np.flatnonzero(w.word == 10)[0])
    row = next(r for r, (s, e) in enumerate(w.spans) if s == a and e == a + 1)
    assert min(int(w.left[a]), int(w.right[a + 1])) < max(
            min(int(v.left[np.flatnonzero(v.word == 10)[0]]),
                int(v.right[np.flatnonzero(v.word == 11)[0]]))
            for v in windows if v.sentence[0] == 1 and 10 in v.word and 11 in v.word)
    logits[k][row] = [5.0, -5.0, -5.0]
    again = features.span_entities([doc], windows, logits, types)
    assert [e[:3] for e in again[0][1]] == [(10, 12, "LOC")]
