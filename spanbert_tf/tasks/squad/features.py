"""SQuAD examples → fixed-length model features, as SpanBERT's fine-tuning code does.

For each example:

1. the question is WordPiece-tokenized and cut to `max_query_length` pieces;
2. every whitespace token of the context is WordPiece-tokenized on its own, giving
   `tok_to_orig_index` (piece → whitespace token) and `orig_to_tok_index`;
3. (training) the answer's whitespace-token span becomes a piece span, then
   shrunk to the tightest piece span whose text equals the tokenized answer
   ("improved answer span": "(1895-1943)." → "1895");
4. the context pieces are cut into windows of at most
   `max_seq_length - len(query) - 3` pieces, each window starting `doc_stride`
   pieces after the previous one; a window is `[CLS] query [SEP] context [SEP]`,
   zero-padded, segment ids 0 for the query part and 1 for the context part;
5. each context piece records the whitespace token it came from and whether this
   window gives it the most context (min(left, right) + 0.01·length, the highest
   score wins, the first window on ties);
6. (training) answer positions inside the window, or 0/0 ([CLS]) when the answer
   is not fully inside it or the question is unanswerable.

Tokenization is batched (one tensorflow-text call for all distinct whitespace
tokens, questions and answers), so a dev set takes seconds.

Example:
```python
tokenizer = BertWordpieceTokenizer(vocab_file)
features = convert_examples_to_features(examples, tokenizer, max_seq_length=384,
                                        doc_stride=128, max_query_length=64,
                                        is_training=False)
features.input_ids.shape    # (num_windows, 384)
```
"""

import dataclasses

import numpy as np
from tqdm import tqdm

from spanbert_tf.errors import InputError

FIRST_UNIQUE_ID = 1000000000


@dataclasses.dataclass
class SquadFeatures:
    """All windows of a list of examples, as numpy arrays (N windows, L positions).

    `token_to_orig[n, i]` is the whitespace-token index of the context piece at
    position i of window n, or -1 where position i is not a context piece;
    `token_is_max_context[n, i]` marks the window that gives that piece the most
    context. `start_positions`/`end_positions` are -1 when not training.
    """

    unique_ids: np.ndarray
    example_index: np.ndarray
    doc_span_index: np.ndarray
    input_ids: np.ndarray
    input_mask: np.ndarray
    segment_ids: np.ndarray
    token_to_orig: np.ndarray
    token_is_max_context: np.ndarray
    start_positions: np.ndarray
    end_positions: np.ndarray
    is_impossible: np.ndarray
    num_tokens: np.ndarray

    def __len__(self):
        return len(self.unique_ids)

    def model_inputs(self):
        """The model's input dict (keras-hub names)."""
        return {"token_ids": self.input_ids, "segment_ids": self.segment_ids,
                "padding_mask": self.input_mask}

    def training_inputs(self):
        """Model inputs plus the start/end labels."""
        inputs = self.model_inputs()
        inputs["start_positions"] = self.start_positions
        inputs["end_positions"] = self.end_positions
        return inputs


@dataclasses.dataclass
class TokenizedDoc:
    """A context in wordpieces: ids, piece → whitespace token, whitespace token → piece."""

    ids: np.ndarray
    tok_to_orig_index: np.ndarray
    orig_to_tok_index: np.ndarray


def tokenize_docs(doc_token_lists, tokenizer):
    """WordPiece-tokenizes each list of whitespace tokens (one batched call)."""
    vocab, index = {}, []
    for tokens in doc_token_lists:
        index.append([vocab.setdefault(t, len(vocab)) for t in tokens])
    uniq = list(vocab)
    flat, splits = tokenizer.tokenize_to_ids_flat(uniq)
    lengths = np.diff(splits)
    docs = []
    for ids in index:
        ids = np.asarray(ids, dtype=np.int64)
        piece_counts = lengths[ids] if len(ids) else np.zeros([0], np.int64)
        if len(ids):
            starts = splits[ids]
            pieces = np.concatenate([flat[s:s + n] for s, n in zip(starts, piece_counts)])
        else:
            pieces = np.zeros([0], np.int32)
        tok_to_orig = np.repeat(np.arange(len(ids), dtype=np.int32), piece_counts)
        orig_to_tok = np.concatenate([[0], np.cumsum(piece_counts)[:-1]]).astype(np.int32) \
            if len(ids) else np.zeros([0], np.int32)
        docs.append(TokenizedDoc(pieces.astype(np.int32), tok_to_orig, orig_to_tok))
    return docs


def improve_answer_span(doc_ids, start, end, answer_ids):
    """The first (start-most, then longest) sub-span of [start, end] equal to the answer."""
    answer = list(answer_ids)
    n = len(answer)
    for new_start in range(start, end + 1):
        for new_end in range(end, new_start - 1, -1):
            if new_end - new_start + 1 == n and list(doc_ids[new_start:new_end + 1]) == answer:
                return new_start, new_end
    return start, end


# One definition of the window rules for the Python features (NumPy, `ops=np`) and the
# in-graph serving preprocessor (`export.py`, `ops=tf`); the max-context choice (first
# best-scoring window) is written once per side, vectorised differently, and
# tests/tasks/squad/test_export.py runs both over the real SQuAD dev subset.
MAX_CONTEXT_LENGTH_WEIGHT = 0.01


def window_layout(num_pieces, max_tokens_for_doc, doc_stride, ops=np):
    """(count, step): window k starts at piece k·step and holds
    min(max_tokens_for_doc, num_pieces − k·step) pieces; the last window reaches the end.

    Works elementwise on NumPy values (`ops=np`) and tensors (`ops=tf`).
    """
    step = ops.minimum(max_tokens_for_doc, doc_stride)
    extra = ops.maximum(num_pieces - max_tokens_for_doc, 0)
    return 1 + (extra + step - 1) // step, step


def max_context_score(left, right, length, ops=np):
    """How much context a window gives a piece: min(pieces left, pieces right) + 0.01·length
    (float64 inputs); the highest score wins, the first window on ties."""
    return ops.minimum(left, right) + MAX_CONTEXT_LENGTH_WEIGHT * length


def doc_windows(num_pieces, max_tokens_for_doc, doc_stride):
    """[(start, length)] sliding windows over `num_pieces` context pieces (none if 0)."""
    if num_pieces <= 0:
        return []
    count, step = window_layout(num_pieces, max_tokens_for_doc, doc_stride)
    return [(int(k * step), int(min(max_tokens_for_doc, num_pieces - k * step)))
            for k in range(int(count))]


def max_context_mask(spans, span_index):
    """For window `span_index`: bool per piece, True where it has the most context."""
    start, length = spans[span_index]
    positions = np.arange(start, start + length, dtype=np.float64)
    best_score = np.full([length], -1.0)
    best_index = np.full([length], -1)
    for i, (s, n) in enumerate(spans):
        end = s + n - 1
        inside = (positions >= s) & (positions <= end)
        score = max_context_score(positions - s, end - positions, float(n))
        better = inside & (score > best_score)
        best_score = np.where(better, score, best_score)
        best_index = np.where(better, i, best_index)
    return best_index == span_index


def convert_examples_to_features(examples, tokenizer, max_seq_length=384, doc_stride=128,
                                 max_query_length=64, is_training=False, progress=False):
    """Windows of every example (see the module docstring) as `SquadFeatures`."""
    context_keys, docs_tokens = {}, []
    example_doc = []
    for ex in examples:
        key = id(ex.doc_tokens)
        if key not in context_keys:
            context_keys[key] = len(docs_tokens)
            docs_tokens.append(ex.doc_tokens)
        example_doc.append(context_keys[key])
    docs = tokenize_docs(docs_tokens, tokenizer)
    questions = tokenizer.tokenize_to_ids([ex.question_text for ex in examples])
    answer_ids = None
    if is_training:
        answer_ids = tokenizer.tokenize_to_ids([ex.orig_answer_text or "" for ex in examples])

    cols = {k: [] for k in ("unique_ids", "example_index", "doc_span_index", "input_ids",
                            "segment_ids", "input_mask", "token_to_orig",
                            "token_is_max_context", "start_positions", "end_positions",
                            "is_impossible", "num_tokens")}
    unique_id = FIRST_UNIQUE_ID
    iterator = enumerate(examples)
    if progress:
        iterator = tqdm(iterator, total=len(examples), desc="features", unit="question")
    for example_index, ex in iterator:
        doc = docs[example_doc[example_index]]
        query = questions[example_index][:max_query_length]
        tok_start = tok_end = None
        if is_training and ex.is_impossible:
            tok_start = tok_end = -1
        elif is_training:
            tok_start = int(doc.orig_to_tok_index[ex.start_position])
            if ex.end_position < len(ex.doc_tokens) - 1:
                tok_end = int(doc.orig_to_tok_index[ex.end_position + 1]) - 1
            else:
                tok_end = len(doc.ids) - 1
            tok_start, tok_end = improve_answer_span(doc.ids, tok_start, tok_end,
                                                     answer_ids[example_index])
        max_tokens_for_doc = max_seq_length - len(query) - 3
        if max_tokens_for_doc < 1:
            raise InputError(f"max_seq_length ({max_seq_length}) leaves no room for the context "
                             f"after the {len(query)}-piece question of {ex.qas_id}")
        spans = doc_windows(len(doc.ids), max_tokens_for_doc, doc_stride)
        doc_offset = len(query) + 2
        for span_index, (start, length) in enumerate(spans):
            n = doc_offset + length + 1
            ids = np.zeros([max_seq_length], np.int32)
            ids[0] = tokenizer.cls_id
            ids[1:doc_offset - 1] = query
            ids[doc_offset - 1] = tokenizer.sep_id
            ids[doc_offset:doc_offset + length] = doc.ids[start:start + length]
            ids[n - 1] = tokenizer.sep_id
            segment = np.zeros([max_seq_length], np.int32)
            segment[doc_offset:n] = 1
            mask = np.zeros([max_seq_length], np.int32)
            mask[:n] = 1
            to_orig = np.full([max_seq_length], -1, np.int32)
            to_orig[doc_offset:doc_offset + length] = doc.tok_to_orig_index[start:start + length]
            is_max = np.zeros([max_seq_length], bool)
            is_max[doc_offset:doc_offset + length] = max_context_mask(spans, span_index)
            start_pos = end_pos = -1
            if is_training:
                start_pos = end_pos = 0
                if (not ex.is_impossible and tok_start >= start and
                        tok_end <= start + length - 1):
                    start_pos = tok_start - start + doc_offset
                    end_pos = tok_end - start + doc_offset
            for key, value in (("unique_ids", unique_id), ("example_index", example_index),
                               ("doc_span_index", span_index), ("input_ids", ids),
                               ("segment_ids", segment), ("input_mask", mask),
                               ("token_to_orig", to_orig), ("token_is_max_context", is_max),
                               ("start_positions", start_pos), ("end_positions", end_pos),
                               ("is_impossible", bool(ex.is_impossible)), ("num_tokens", n)):
                cols[key].append(value)
            unique_id += 1
    dtypes = {"unique_ids": np.int64, "token_is_max_context": bool, "is_impossible": bool}
    arrays = {}
    for key, values in cols.items():
        dtype = dtypes.get(key, np.int32)
        if values:
            arrays[key] = np.asarray(values, dtype=dtype)
        else:
            shape = [0, max_seq_length] if key in ("input_ids", "segment_ids", "input_mask",
                                                   "token_to_orig",
                                                   "token_is_max_context") else [0]
            arrays[key] = np.zeros(shape, dtype)
    return SquadFeatures(**arrays)
