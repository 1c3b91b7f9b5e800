"""The QA SavedModel: raw `question` / `context` strings in, answer span out.

Everything the Python prediction path does happens inside the graph, so TF
Serving needs nothing else:

1. the context is split on the fine-tuning code's whitespace (space, tab, CR,
   LF, U+202F), each word WordPiece-tokenized with its byte offsets
   (tensorflow-text, the same tokenizer as training);
2. the question is cut to `max_query_length` pieces; the context pieces are cut
   into `doc_stride` windows `[CLS] q [SEP] ctx [SEP]` of `max_seq_length`, with
   the same "max context" rule;
3. the model scores every window; per window the `n_best_size` best starts and
   ends are paired (context pieces only, start in its max-context window,
   end ≥ start, at most `max_answer_length` pieces) and the best pair over all
   windows wins (float64 scores, earlier window / position first on ties);
4. (v2.0) null score = min over windows of start[0] + end[0]; the answer is
   empty when null − best exceeds `null_score_diff_threshold`;
5. the answer is the context substring between the start piece's first byte
   and the end piece's last byte, whitespace runs inside it collapsed to one
   space as the official text recovery does; the character offsets delimit the
   substring in the original context.

Shared with the Python path: the tokenizer, the window layout (`features.window_layout`) and
the max-context score (`features.max_context_score`). Kept twice on purpose, vectorised over
all windows here and per window in `features.py` / `predict.py`: the first-best-window choice,
the n-best pairing and the text recovery (byte offsets here, BERT's `get_final_text` there);
tests/tasks/squad/test_export.py requires identical answers, offsets and null-odds from both on
every question of the real SQuAD 2.0 dev subset.

Signature `serving_default(question: string[B], context: string[B])` →
`answer` (string[B]), `start_char`, `end_char` (int64[B], [start, end) in
Unicode characters, -1 for no answer), `score` (float32[B], start + end logit
of the best span), `null_score_diff` (float32[B], 0 for SQuAD 1.1 models).
Signature `serve_with_threshold` adds a scalar float input
`null_score_diff_threshold` (for v2.0 models, e.g. the dev `best_f1_thresh`).

Example:
```python
export_qa_saved_model(model, tokenizer, "runs/squad/saved_model")
qa = tf.saved_model.load("runs/squad/saved_model").signatures["serving_default"]
qa(question=tf.constant(["Who?"]), context=tf.constant(["Rollo did."]))["answer"]
```
"""

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

import tensorflow as tf
import tensorflow_text as tf_text

from spanbert_tf.serving.ops import publish_saved_model
from spanbert_tf.tasks.squad.features import max_context_score, window_layout

WHITESPACE_PATTERN = r"[ \t\r\n\x{202F}]+"


def _gather_rows(matrix, rows, cols):
    """matrix[rows[w], cols[w, l]] for a dense [B, N] matrix, cols clipped into range."""
    width = tf.maximum(tf.shape(matrix, out_type=tf.int64)[1], 1)
    matrix = tf.pad(matrix, [[0, 0], [0, 1]])
    cols = tf.clip_by_value(cols, 0, width - 1)
    cols = tf.broadcast_to(cols, tf.stack([tf.size(rows, out_type=tf.int64),
                                           tf.shape(cols, out_type=tf.int64)[1]]))
    return tf.gather(tf.gather(matrix, rows), cols, batch_dims=1)


class SquadQAModule(tf.Module):
    """tf.Module holding the QA model, the tokenizer and the decoding settings."""

    def __init__(self, model, tokenizer, max_seq_length=384, doc_stride=128,
                 max_query_length=64, n_best_size=20, max_answer_length=30,
                 version_2_with_negative=False, null_score_diff_threshold=0.0):
        super().__init__(name="squad_qa")
        self.model = model
        self.tokenizer = tokenizer.tf_tokenizer()
        self.cls_id, self.sep_id = int(tokenizer.cls_id), int(tokenizer.sep_id)
        self.max_seq_length = int(max_seq_length)
        self.doc_stride = int(doc_stride)
        self.max_query_length = int(max_query_length)
        self.n_best_size = min(int(n_best_size), self.max_seq_length)
        self.max_answer_length = int(max_answer_length)
        self.version_2_with_negative = bool(version_2_with_negative)
        self.null_score_diff_threshold = float(null_score_diff_threshold)

    def _tokenize_context(self, context):
        words, word_begin, _ = tf_text.regex_split_with_offsets(context, WHITESPACE_PATTERN)
        pieces, p_begin, p_end = self.tokenizer.tokenize_with_offsets(words.flat_values)
        pieces, p_begin, p_end = (t.merge_dims(1, 2) for t in (pieces, p_begin, p_end))
        per_word = pieces.row_lengths()
        word_start = tf.repeat(word_begin.flat_values, per_word)
        doc_lengths = tf.math.unsorted_segment_sum(per_word, words.value_rowids(),
                                                   tf.shape(context, out_type=tf.int64)[0])
        doc = tf.RaggedTensor.from_row_lengths(pieces.flat_values, doc_lengths)
        begin_byte = word_start + p_begin.flat_values
        end_byte = word_start + p_end.flat_values
        return doc, begin_byte, end_byte

    def _windows(self, n, q_len):
        length = tf.constant(self.max_seq_length, tf.int64)
        room = length - q_len - 3
        count, step = window_layout(n, room, tf.constant(self.doc_stride, tf.int64), ops=tf)
        win_ex = tf.repeat(tf.range(tf.size(n, out_type=tf.int64)), count)
        win_k = tf.ragged.range(count).flat_values
        win_start = win_k * tf.gather(step, win_ex)
        win_len = tf.maximum(tf.minimum(tf.gather(room, win_ex),
                                        tf.gather(n, win_ex) - win_start), 0)
        return win_ex, win_k, win_start, win_len, count

    def _max_context(self, win_ex, win_k, win_start, win_len, count, piece):
        starts = tf.RaggedTensor.from_row_lengths(win_start, count).to_tensor(-1)
        lens = tf.RaggedTensor.from_row_lengths(win_len, count).to_tensor(0)
        s = tf.gather(starts, win_ex)[:, None, :]
        ln = tf.gather(lens, win_ex)[:, None, :]
        i = piece[:, :, None]
        end = s + ln - 1
        inside = (s >= 0) & (i >= s) & (i <= end)
        score = max_context_score(tf.cast(i - s, tf.float64), tf.cast(end - i, tf.float64),
                                  tf.cast(ln, tf.float64), ops=tf)
        score = tf.where(inside, score, -1.0)
        best = tf.reduce_max(score, axis=-1, keepdims=True)
        k = tf.range(tf.shape(s, out_type=tf.int64)[-1])[None, None, :]
        first = tf.reduce_min(tf.where(inside & (score == best), k, 1 << 30), axis=-1)
        return first == win_k[:, None]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="question"),
                                  tf.TensorSpec([None], tf.string, name="context")])
    def serve(self, question, context):
        """The default signature (the export-time null-score threshold)."""
        return self._answer(question, context,
                            tf.constant(self.null_score_diff_threshold, tf.float64))

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name="question"),
        tf.TensorSpec([None], tf.string, name="context"),
        tf.TensorSpec([], tf.float32, name="null_score_diff_threshold")])
    def serve_with_threshold(self, question, context, null_score_diff_threshold):
        """Like `serve`, with the v2.0 threshold as an input (e.g. dev best_f1_thresh)."""
        return self._answer(question, context, tf.cast(null_score_diff_threshold, tf.float64))

    def _answer(self, question, context, threshold):
        batch = tf.shape(context, out_type=tf.int64)[0]
        length = self.max_seq_length
        doc, begin_byte, end_byte = self._tokenize_context(context)
        query = self.tokenizer.tokenize(question).merge_dims(1, 2)[:, :self.max_query_length]
        q_len, n = query.row_lengths(), doc.row_lengths()
        win_ex, win_k, win_start, win_len, count = self._windows(n, q_len)

        pos = tf.range(length, dtype=tf.int64)[None, :]
        qw = tf.gather(q_len, win_ex)[:, None]
        st, ln = win_start[:, None], win_len[:, None]
        is_q = (pos >= 1) & (pos <= qw)
        is_doc = (pos >= qw + 2) & (pos < qw + 2 + ln)
        piece = st + pos - (qw + 2)
        q_tok = _gather_rows(query.to_tensor(), win_ex, pos - 1)
        d_tok = _gather_rows(doc.to_tensor(), win_ex, piece)
        ids = tf.where(pos == 0, tf.cast(self.cls_id, tf.int64), tf.zeros_like(piece))
        ids = tf.where(is_q, q_tok, ids)
        ids = tf.where((pos == qw + 1) | (pos == qw + 2 + ln), tf.cast(self.sep_id, tf.int64), ids)
        ids = tf.where(is_doc, d_tok, ids)
        segment = (pos >= qw + 2) & (pos <= qw + 2 + ln)
        mask = pos <= qw + 2 + ln
        outputs = self.model({"token_ids": tf.cast(ids, tf.int32),
                              "segment_ids": tf.cast(segment, tf.int32),
                              "padding_mask": tf.cast(mask, tf.int32)}, training=False)
        start = tf.cast(outputs["start_logits"], tf.float64)
        end = tf.cast(outputs["end_logits"], tf.float64)

        is_max = self._max_context(win_ex, win_k, win_start, win_len, count, piece)
        top_s = tf.math.top_k(start, self.n_best_size).indices
        top_e = tf.math.top_k(end, self.n_best_size).indices
        in_top_s = tf.reduce_any(tf.one_hot(top_s, length, dtype=tf.bool, on_value=True,
                                            off_value=False), axis=1)
        in_top_e = tf.reduce_any(tf.one_hot(top_e, length, dtype=tf.bool, on_value=True,
                                            off_value=False), axis=1)
        ok_s = is_doc & is_max & in_top_s
        ok_e = is_doc & in_top_e
        # Candidate ends j = i + k, k < max_answer_length: [W, L, A] instead of [W, L, L].
        width = self.max_answer_length
        ends = pos[0][:, None] + tf.range(width, dtype=tf.int64)[None, :]      # [L, A]
        inside = ends < length
        ends = tf.minimum(ends, length - 1)
        valid = (ok_s[:, :, None] & tf.gather(ok_e, ends, axis=1)) & inside[None]
        scores = start[:, :, None] + tf.gather(end, ends, axis=1)
        scores = tf.reshape(tf.where(valid, scores, -float("inf")), [-1, length * width])
        flat_best = tf.argmax(scores, axis=-1)
        win_best = tf.reduce_max(scores, axis=-1)
        ex_best = tf.math.unsorted_segment_max(win_best, win_ex, batch)
        num_windows = tf.size(win_ex, out_type=tf.int64)
        w_index = tf.range(num_windows)
        chosen = tf.math.unsorted_segment_min(
            tf.where(win_best == tf.gather(ex_best, win_ex), w_index, num_windows + 1),
            win_ex, batch)
        chosen = tf.minimum(chosen, num_windows - 1)
        best_i = tf.gather(flat_best // width, chosen)
        best_j = best_i + tf.gather(flat_best % width, chosen)
        # (an example without any valid span keeps segment_max's float64 lowest)
        has_span = tf.math.unsorted_segment_max(
            tf.cast(tf.reduce_any(valid, axis=[1, 2]), tf.int32), win_ex, batch) > 0

        offset = tf.gather(q_len, tf.range(batch)) + 2
        doc_base = doc.row_starts()
        first_piece = doc_base + tf.gather(win_start, chosen) + best_i - offset
        last_piece = doc_base + tf.gather(win_start, chosen) + best_j - offset
        n_pieces = tf.maximum(tf.size(begin_byte, out_type=tf.int64), 1)
        b_byte = tf.gather(tf.pad(begin_byte, [[0, 1]]), tf.clip_by_value(first_piece, 0,
                                                                           n_pieces - 1))
        e_byte = tf.gather(tf.pad(end_byte, [[0, 1]]), tf.clip_by_value(last_piece, 0,
                                                                         n_pieces - 1))
        null = tf.math.unsorted_segment_min(start[:, 0] + end[:, 0], win_ex, batch)
        if self.version_2_with_negative:
            diff = null - tf.where(has_span, ex_best, 0.0)
            answered = has_span & (diff <= threshold)
        else:
            diff = tf.zeros_like(null)
            answered = has_span
        b_byte = tf.where(answered, b_byte, 0)
        e_byte = tf.where(answered, e_byte, 0)
        span = tf.strings.substr(context, b_byte, e_byte - b_byte)
        # The official text joins the words with single spaces.
        answer = tf.strings.regex_replace(span, WHITESPACE_PATTERN, " ")
        prefix = tf.strings.substr(context, tf.zeros_like(b_byte), b_byte)
        start_char = tf.strings.length(prefix, unit="UTF8_CHAR")
        end_char = start_char + tf.strings.length(span, unit="UTF8_CHAR")
        minus_one = tf.constant(-1, tf.int64)
        return {"answer": answer,
                "start_char": tf.where(answered, tf.cast(start_char, tf.int64), minus_one),
                "end_char": tf.where(answered, tf.cast(end_char, tf.int64), minus_one),
                "score": tf.cast(tf.where(has_span, ex_best, 0.0), tf.float32),
                "null_score_diff": tf.cast(diff, tf.float32)}


def export_qa_saved_model(model, tokenizer, export_dir, max_seq_length=384, doc_stride=128,
                          max_query_length=64, n_best_size=20, max_answer_length=30,
                          version_2_with_negative=False, null_score_diff_threshold=0.0):
    """Writes the QA SavedModel to `export_dir` (atomically: temp dir + rename).

    Raises `serving_ops.UnservableOpsError` (and writes nothing) when the graph uses ops
    that TF Serving's model server lacks.
    """
    module = SquadQAModule(model, tokenizer, max_seq_length, doc_stride, max_query_length,
                           n_best_size, max_answer_length, version_2_with_negative,
                           null_score_diff_threshold)
    return publish_saved_model(module, export_dir, signatures={
        "serving_default": module.serve,
        "serve_with_threshold": module.serve_with_threshold})
