"""Documents -> model windows, and window outputs -> entities.

Windows (as SQuAD's, over sentences): each document's words are split into WordPieces
(a word with none becomes `[UNK]`); sentences are packed whole, in order, into windows
of at most `max_seq_length` wordpieces with `[CLS]`/`[SEP]`; a sentence longer than a
window is cut at word boundaries into chunks that start `doc_stride` wordpieces apart
(each as long as fits), so its words appear in several windows. A word's (or span's)
prediction is taken from the window where it has the most context: the most words
between it and a chunk edge inside its sentence (a sentence's own start and end are no
edge), the first such window on ties.

Span model inputs: every span of <= `max_span_width` words inside one sentence chunk,
`span_starts` / `span_ends` the wordpiece positions of its first word's first piece and
its last word's last piece, `span_widths` words - 1, `span_labels` 0 = no entity, else
1 + the index of its type in `types`. Token model inputs: `token_labels` at each word's
first wordpiece (the BIO tag id of the outermost entities; -1 elsewhere).

Decoding spans (`decode_spans`): a candidate is an entity when its best class is not
"none", scored by that class's probability; candidates are visited by decreasing score
and kept unless they cross a kept one (s < s' <= e < e'): nesting is kept, partial
overlaps never (the rule of `modeling.span_layers.select_non_crossing_spans`, which the
SavedModel runs in its graph).

Example:
```python
windows = document_windows(docs, tokenizer, types, max_seq_length=256, doc_stride=128,
                           max_span_width=8)
arrays = window_arrays(windows, "span", max_spans=254 * 8)
entities = span_entities(docs, windows, logits, types)     # [doc][sentence] entities
```
"""

import dataclasses
from typing import List

import numpy as np

from spanbert_tf.errors import InputError
from spanbert_tf.tasks.ner.schemes import entities_to_tags, outermost, tags_to_entities

NO_EDGE = 1 << 20          # the context of a word at a sentence's own start or end


@dataclasses.dataclass
class Window:
    """One model input: wordpiece ids and, per word in it, where it is and its context."""

    doc: int
    input_ids: np.ndarray          # [n_pieces] with [CLS]/[SEP]
    sentence: np.ndarray           # [n_words] sentence index in the document
    word: np.ndarray               # [n_words] word index in the sentence
    first_piece: np.ndarray        # [n_words] window position of the word's first piece
    last_piece: np.ndarray         # [n_words]
    left: np.ndarray               # [n_words] words to the chunk's start (NO_EDGE: none)
    right: np.ndarray              # [n_words] words to the chunk's end
    spans: np.ndarray = None       # [n_spans, 2] window word indices (first, last)
    labels: np.ndarray = None      # [n_spans] span labels or [n_pieces] token labels


def tag_names(types):
    """The token model's BIO tags: O, B-T, I-T for each type."""
    return ["O"] + [f"{p}-{t}" for t in types for p in "BI"]


def _word_pieces(doc, tokenizer):
    words = [w for s in doc.sentences for w in s]
    pieces = tokenizer.tokenize_to_ids(words) if words else []
    return [p if len(p) else np.asarray([tokenizer.unk_id], np.int32) for p in pieces]


def _sentence_units(lengths, budget, stride):
    """[(first word, end word, left edge?, right edge?)] chunks of one sentence."""
    total = int(sum(lengths))
    if total <= budget:
        return [(0, len(lengths), False, False)]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    units, first = [], 0
    while True:
        end = first
        while end < len(lengths) and offsets[end + 1] - offsets[first] <= budget:
            end += 1
        end = max(end, first + 1)                  # a word longer than a window: alone
        units.append((first, end, first > 0, end < len(lengths)))
        if end >= len(lengths):
            return units
        target = offsets[first] + stride
        nxt = int(np.searchsorted(offsets, target, side="left"))
        first = min(max(nxt, first + 1), end)


def document_windows(docs, tokenizer, types, max_seq_length, doc_stride, max_span_width,
                     model_type="span", pack_sentences=True):
    """The `Window`s of `docs` (see the module docstring), with their gold labels;
    `pack_sentences=False`: one sentence (chunk) per window, as the SavedModel."""
    if doc_stride < 1:
        raise InputError(f"--doc_stride must be >= 1, got {doc_stride}")
    type_ids = {t: i + 1 for i, t in enumerate(types)}
    tag_ids = {t: i for i, t in enumerate(tag_names(types))}
    budget = max_seq_length - 2
    windows = []
    for d, doc in enumerate(docs):
        pieces = _word_pieces(doc, tokenizer)
        units, start = [], 0
        for s, words in enumerate(doc.sentences):
            lengths = [len(p) for p in pieces[start:start + len(words)]]
            for first, end, left_edge, right_edge in _sentence_units(lengths, budget,
                                                                      doc_stride):
                units.append((s, first, end, left_edge, right_edge, start))
            start += len(words)
        packed, size = [], 0
        for unit in units:
            n = sum(len(pieces[unit[5] + w]) for w in range(unit[1], unit[2]))
            if packed and (size + n > budget or not pack_sentences):
                windows.append(_window(d, doc, packed, pieces, tokenizer, type_ids, tag_ids,
                                       max_span_width, model_type))
                packed, size = [], 0
            packed.append(unit)
            size += n
        if packed:
            windows.append(_window(d, doc, packed, pieces, tokenizer, type_ids, tag_ids,
                                   max_span_width, model_type))
    return windows


def _window(d, doc, units, pieces, tokenizer, type_ids, tag_ids, max_span_width, model_type):
    ids, cols = [tokenizer.cls_id], {k: [] for k in ("sentence", "word", "first", "last",
                                                     "left", "right")}
    spans, span_labels, token_labels = [], [], [-1]
    for s, first, end, left_edge, right_edge, offset in units:
        gold = {(a, b - 1): type_ids.get(t, 0) for a, b, t in reversed(doc.entities[s])}
        flat_tags = entities_to_tags(outermost(doc.entities[s])[0], len(doc.sentences[s]))
        base = len(cols["word"])
        for w in range(first, end):
            cols["sentence"].append(s)
            cols["word"].append(w)
            cols["first"].append(len(ids))
            ids.extend(int(x) for x in pieces[offset + w][:max(1, len(pieces[offset + w]))])
            cols["last"].append(len(ids) - 1)
            cols["left"].append(w - first if left_edge else NO_EDGE)
            cols["right"].append(end - 1 - w if right_edge else NO_EDGE)
            token_labels += [tag_ids.get(flat_tags[w], 0)] + [-1] * (
                cols["last"][-1] - cols["first"][-1])
        for i in range(first, end):
            for j in range(i, min(end, i + max_span_width)):
                spans.append((base + i - first, base + j - first))
                span_labels.append(gold.get((i, j), 0))
    ids.append(tokenizer.sep_id)
    token_labels.append(-1)
    arrays = {k: np.asarray(v, np.int32) for k, v in cols.items()}
    window = Window(d, np.asarray(ids, np.int32), arrays["sentence"], arrays["word"],
                    arrays["first"], arrays["last"], arrays["left"], arrays["right"],
                    np.asarray(spans, np.int32).reshape(-1, 2))
    window.labels = np.asarray(span_labels if model_type == "span" else token_labels, np.int32)
    return window


def window_arrays(windows, model_type, max_seq_length, max_spans=None):
    """The model's input (and label) arrays of `windows`, padded: {name: [N, ...]}."""
    n = len(windows)
    out = {"input_ids": np.zeros((n, max_seq_length), np.int32),
           "input_mask": np.zeros((n, max_seq_length), np.int32)}
    if model_type == "token":
        out["token_labels"] = np.full((n, max_seq_length), -1, np.int32)
    else:
        max_spans = max_spans or max(1, max((len(w.spans) for w in windows), default=1))
        for name in ("span_starts", "span_ends", "span_widths", "span_mask", "span_labels"):
            out[name] = np.zeros((n, max_spans), np.int32)
    for k, w in enumerate(windows):
        length = len(w.input_ids)
        out["input_ids"][k, :length] = w.input_ids
        out["input_mask"][k, :length] = 1
        if model_type == "token":
            out["token_labels"][k, :length] = w.labels
            continue
        m = len(w.spans)
        if m > max_spans:
            raise InputError(f"a window has {m} candidate spans, more than {max_spans}")
        out["span_starts"][k, :m] = w.first_piece[w.spans[:, 0]]
        out["span_ends"][k, :m] = w.last_piece[w.spans[:, 1]]
        out["span_widths"][k, :m] = w.spans[:, 1] - w.spans[:, 0]
        out["span_mask"][k, :m] = 1
        out["span_labels"][k, :m] = w.labels
    return out


def max_spans_of(max_seq_length, max_span_width):
    """The most candidate spans a window can hold (every word a one-piece word)."""
    return (max_seq_length - 2) * max_span_width


def decode_spans(starts, ends, scores):
    """Indices of the kept spans: by decreasing score (ties: lower index first), a span is
    kept unless it crosses a kept one (nesting allowed). Inclusive ends."""
    kept = []
    for index in np.argsort(-np.asarray(scores, np.float64), kind="stable"):
        s, e = starts[index], ends[index]
        if all(not (s < ks <= e < ke or ks < s <= ke < e) for ks, ke in
               ((starts[k], ends[k]) for k in kept)):
            kept.append(int(index))
    return sorted(kept)


def _empty(docs) -> List[List[list]]:
    return [[[] for _ in doc.sentences] for doc in docs]


def span_entities(docs, windows, logits, types):
    """[doc][sentence] entities (with scores: (start, end, type, score)) from the span
    model's logits ([window][n_spans, 1 + types], in window order)."""
    best = {}   # (doc, sentence, i, j) -> (context, -window, label, score)
    for k, (w, window_logits) in enumerate(zip(windows, logits)):
        window_logits = np.asarray(window_logits, np.float64)[:len(w.spans)]
        probs = np.exp(window_logits - window_logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        labels = probs.argmax(-1)
        for (a, b), label, p in zip(w.spans, labels, probs):
            key = (w.doc, int(w.sentence[a]), int(w.word[a]), int(w.word[b]))
            context = (min(int(w.left[a]), int(w.right[b])), -k)
            if key not in best or context > best[key][0]:
                best[key] = (context, int(label), float(p[label]))
    out = _empty(docs)
    by_sentence = {}
    for (d, s, i, j), (_, label, score) in best.items():
        if label:
            by_sentence.setdefault((d, s), []).append((i, j, types[label - 1], score))
    for (d, s), found in by_sentence.items():
        found.sort()
        kept = decode_spans([f[0] for f in found], [f[1] for f in found], [f[3] for f in found])
        out[d][s] = [(found[k][0], found[k][1] + 1, found[k][2], found[k][3]) for k in kept]
    return out


def token_entities(docs, windows, logits, types, scheme="bio"):
    """[doc][sentence] entities (score: the mean probability of their tags) from the token
    model's logits ([window][n_pieces, tags]); tags decoded leniently (an I-X not
    continuing X starts an entity, as conlleval)."""
    names = tag_names(types)
    best = {}
    for k, (w, window_logits) in enumerate(zip(windows, logits)):
        window_logits = np.asarray(window_logits, np.float64)
        for a in range(len(w.word)):
            row = window_logits[w.first_piece[a]]
            probs = np.exp(row - row.max())
            probs /= probs.sum()
            key = (w.doc, int(w.sentence[a]), int(w.word[a]))
            context = (min(int(w.left[a]), int(w.right[a])), -k)
            if key not in best or context > best[key][0]:
                best[key] = (context, int(probs.argmax()), float(probs.max()))
    out = _empty(docs)
    for d, doc in enumerate(docs):
        for s, words in enumerate(doc.sentences):
            tags = [names[best[(d, s, i)][1]] if (d, s, i) in best else "O"
                    for i in range(len(words))]
            probs = [best[(d, s, i)][2] if (d, s, i) in best else 1.0
                     for i in range(len(words))]
            found = tags_to_entities(tags, "iob1")
            out[d][s] = [(a, b, t, float(np.mean(probs[a:b]))) for a, b, t in found]
    return out
