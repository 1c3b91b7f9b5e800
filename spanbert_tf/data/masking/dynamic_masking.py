"""Span / whole-word / token masking as TensorFlow graph ops, for `tf.data` (§3.1).

`DynamicMasker` is `masking.Masker` rewritten as pure TF ops (no py_function),
so masking runs inside the input pipeline, on TPU input hosts and in tf.data
service, with a new mask every epoch. It is split in two:

- `draw(seed, epoch, example_id)`: the random integers of ONE example
  (`masking_draws.DrawLayout`), from stateless random ops keyed by
  (seed, epoch, example_id): independent of batching, shuffling, parallelism,
  hosts and resume point;
- `apply(input_ids, input_mask, draws)`: masks a BATCH with those draws
  (vectorised over the batch; the span scheme settles 32 candidate spans at a
  time, word by word, usually in one step; the whole-word scheme is a
  `tf.while_loop` over words in drawn order). With `jit_compile=True` (the
  pipeline's `masker_for_records`) the span scheme runs XLA-compiled on the
  CPU, in blocks of a fixed number of rows: one compilation per process and
  masker settings.

`apply` gives exactly what `masking_draws.mask_with_draws` (the offline
masker's code fed the same draws) gives: same budget (a table of
`Masker.budget`), anchors, merged spans, replacements and SBO targets, as the
features of `features.py` (int32 / float32, like the parsed offline records).

Example:
```python
masker = DynamicMasker(MaskingConfig(), 512, tok.mask_id, tok.word_start_table,
                       random_token_candidates(tok))
ds = ds.map(lambda ex: dict(ex, **masker.draw(seed, epoch, ex["example_id"])))
ds = ds.batch(64).map(lambda b: masker.apply(b["input_ids"], b["input_mask"], b))
```
"""

import hashlib

import numpy as np
import tensorflow as tf

from spanbert_tf.data.masking import masking_draws
from spanbert_tf.data.masking.masker import Masker
from spanbert_tf.data.masking.masking_draws import DRAW_BITS, DRAW_FIELDS, DrawLayout
from spanbert_tf.data.masking.stateless_draws import MASKING_STREAM
from spanbert_tf.data.masking.numpy_dynamic import masking_inputs_for_records
from spanbert_tf.errors import InputError

# Keeps the masking stream apart from any other use of the same seed (numpy twin of
# `draw`: stateless_draws.masking_draws_for).
_STREAM = MASKING_STREAM
# Candidate spans examined together by the span scheme (most blocks need fewer).
_SPAN_CHUNK = 32
# Rows per call of the XLA-compiled masker (`jit_compile`).
_JIT_ROWS = 32
_OUTPUTS = ("input_ids", "input_mask", "masked_lm_positions", "masked_lm_ids",
            "masked_lm_weights", "span_left_positions", "span_right_positions",
            "span_relative_positions", "sbo_weights")
_COMPILED = {}  # masker settings -> the XLA-compiled `_masked` (see `_shared_compiled`)


class DynamicMasker:
    """In-graph masker of `[CLS] block [SEP]` batches; same arguments as `Masker`.

    Args:
        config: a `MaskingConfig`.
        max_seq_length: L, the padded length of `input_ids`.
        mask_id, word_start_table, random_token_ids, random_token_probs: as
            for `masking.Masker` (validated by it).
        jit_compile: True runs `apply` of the span scheme as one XLA-compiled
            function (CPU XLA: the same outputs, ≈ 3x less CPU time than the
            op-by-op graph, one compilation per process and settings; ignored for
            whole_word and token); `masker_for_records`, the pipeline's masker,
            turns it on.
    """

    def __init__(self, config, max_seq_length, mask_id, word_start_table, random_token_ids,
                 random_token_probs=None, jit_compile=False):
        if int(max_seq_length) < 3:
            raise InputError(f"max_seq_length must be >= 3, got {max_seq_length}")
        self.reference = Masker(config, mask_id, word_start_table, random_token_ids,
                                random_token_probs)
        self.config = config
        self.max_seq_length = int(max_seq_length)
        self.layout = DrawLayout.for_config(config, self.max_seq_length)
        limits = masking_draws.thresholds(self.reference)
        self._length_limits = tf.constant(limits["length"], tf.int64)
        self._kind_limits = tf.constant(limits["kind"], tf.int64)
        self._token_limits = (None if limits["token"] is None
                              else tf.constant(limits["token"][None, :], tf.int64))
        self._table = tf.constant(self.reference.word_start_table)
        self._candidates = tf.constant(self.reference.random_token_ids, tf.int32)
        self._budgets = tf.constant(
            [self.reference.budget(n) for n in range(self.max_seq_length - 1)], tf.int32)
        # XLA pays for the span scheme (many small ops); whole_word and token
        # spend their time sorting, which CPU XLA does slower than the graph.
        self.jit_compile = bool(jit_compile) and config.scheme == "span"
        self._compiled = self._shared_compiled() if self.jit_compile else None

    def _shared_compiled(self):
        """The XLA function of `_masked`, shared by maskers of identical settings, so a
        process compiles it once (e.g. one per dataset built by `masker_for_records`)."""
        ref = self.reference
        digest = hashlib.sha256()
        for array in (ref.word_start_table, ref.random_token_ids,
                      np.zeros(0) if ref._random_cdf is None else ref._random_cdf):
            digest.update(np.ascontiguousarray(array).tobytes() + b"|")
        key = (repr(self.config), self.max_seq_length, ref.mask_id, digest.hexdigest())
        if key not in _COMPILED:
            _COMPILED[key] = tf.function(self._masked, jit_compile=True)
        return _COMPILED[key]

    # ---- draw -------------------------------------------------------------------------
    def draw(self, seed, epoch, example_id):
        """The draws of one example: {field: int64 [size]} (`DrawLayout` sizes)."""
        key = tf.constant([int(seed), _STREAM], tf.int64)
        key = tf.random.experimental.stateless_fold_in(key, tf.cast(epoch, tf.int64))
        key = tf.random.experimental.stateless_fold_in(key, tf.cast(example_id, tf.int64))
        sizes = self.layout.sizes()
        flat = tf.random.stateless_uniform([sum(sizes.values())], key, minval=None,
                                           maxval=None, dtype=tf.uint32)
        parts = tf.split(tf.cast(flat, tf.int64), list(sizes.values()))
        return dict(zip(sizes, parts))

    # ---- apply ------------------------------------------------------------------------
    def apply(self, input_ids, input_mask, draws):
        """Masks a batch: `input_ids`, `input_mask` [B, L]; `draws` {field: [B, size]}.

        Returns the `features.py` features (int32 ids/positions, float32 weights)
        except `segment_ids`, which the caller passes through.
        """
        draws = {name: draws[name] for name in DRAW_FIELDS if name in draws}
        if self._compiled is not None:
            return self._in_compiled_blocks(input_ids, input_mask, draws)
        return self._masked(input_ids, input_mask, draws)

    def _in_compiled_blocks(self, input_ids, input_mask, draws):
        """`_masked` by the XLA function, `_JIT_ROWS` rows at a time: one compiled
        shape whatever the batch size (rows are masked independently)."""
        R, L = _JIT_ROWS, self.max_seq_length
        batch = tf.shape(input_ids)[0]
        pad = tf.math.floormod(-batch, R)
        # Padding rows: empty blocks ([CLS] [SEP], nothing to mask).
        empty = tf.broadcast_to(tf.cast(tf.range(L) < 2, tf.int32)[None, :], [pad, L])
        mask = tf.concat([tf.cast(input_mask, tf.int32), empty], axis=0)

        def blocks(x, padded=False):
            x = x if padded else tf.pad(x, [[0, pad], [0, 0]])
            return tf.reshape(x, tf.concat([[-1, R], tf.shape(x)[1:]], axis=0))

        signature = {name: tf.TensorSpec(None, tf.float32 if name.endswith("weights")
                                         else tf.int32) for name in _OUTPUTS}
        out = tf.map_fn(lambda b: self._compiled(*b),
                        (blocks(tf.cast(input_ids, tf.int32)), blocks(mask, padded=True),
                         {name: blocks(value) for name, value in draws.items()}),
                        fn_output_signature=signature)
        result = {}
        for name, value in out.items():
            value = tf.reshape(value, tf.concat([[-1], tf.shape(value)[2:]], axis=0))[:batch]
            value.set_shape(input_ids.shape[:1].concatenate(
                [L if name in ("input_ids", "input_mask") else self.layout.predictions]))
            result[name] = value
        return result

    def _masked(self, input_ids, input_mask, draws):
        L = self.max_seq_length
        ids = tf.cast(input_ids, tf.int32)
        size = tf.reduce_sum(tf.cast(input_mask, tf.int32), axis=1)
        pos = tf.range(L, dtype=tf.int32)[None, :]
        inside = pos < size[:, None]
        n = size - 2
        budget = tf.gather(self._budgets, tf.maximum(n, 0))
        scheme = self.config.scheme
        if scheme == "token":
            return self._finish(ids, input_mask, size, self._token_mask(draws, n, budget),
                                draws)
        ws = tf.gather(self._table, ids)
        ws = (ws | (pos <= 1) | (pos == size[:, None] - 1)) & inside
        word = tf.cumsum(tf.cast(ws, tf.int32), axis=1) - 1      # piece -> word index
        last_word = word[:, -1]                                   # [SEP]'s word
        if scheme == "span":
            mask = self._span_mask(draws, n, budget, inside, word, last_word)
        else:
            bounds = _compact(ws, fill=L)           # word -> its first piece, then L
            mask = self._whole_word_mask(draws, n, budget, word, bounds, last_word)
        return self._finish(ids, input_mask, size, mask, draws)

    def _span_mask(self, draws, n, budget, inside, word, last_word):
        """Span scheme, a chunk of `_SPAN_CHUNK` candidate spans at a time.

        Candidate i (anchor, extra words) is drawn for i < K, else the sweep
        anchor 1 + (i - K) mod n with draw i mod K's length. Spans are whole
        words until the one that spends the budget, so the mask is kept per
        word (`covered`) and that last span's cut piece range apart.
        Within a chunk: a candidate is taken unless its anchor word is covered
        before the chunk or by an earlier taken candidate of the chunk (solved
        by fixed-point iteration: candidate c is settled once those before it
        are); then each taken span's new words, their pieces, and the first
        candidate whose new pieces reach the budget (it stops at the piece
        that does it, like the offline loop).
        """
        L, K, C = self.max_seq_length, self.layout.span_draws, _SPAN_CHUNK
        M = self._length_limits.shape[0] + 1                  # max_span_length
        batch = tf.shape(n)[0]
        n_pos = tf.maximum(n, 1)
        row = tf.range(batch)[:, None]
        word_len = tf.reshape(tf.math.unsorted_segment_sum(
            tf.cast(inside, tf.int32), row * L + word, batch * L), [batch, L])
        word_start = tf.cumsum(word_len, axis=1, exclusive=True)
        anchors = 1 + tf.cast(tf.bitwise.right_shift(
            draws["span_anchor"] * tf.cast(n_pos, tf.int64)[:, None],
            tf.constant(DRAW_BITS, tf.int64)), tf.int32)
        limits = self._length_limits
        if limits.shape[0]:
            extra = tf.cast(tf.searchsorted(
                tf.broadcast_to(limits[None, :], [batch, limits.shape[0]]),
                draws["span_length"], side="right"), tf.int32)
        else:  # max_span_length 1
            extra = tf.zeros_like(anchors)
        chunk = tf.range(C)
        earlier = chunk[None, :] < chunk[:, None]            # [c, d]: d before c
        offsets = tf.range(M)[None, None, :]
        word_pos = tf.range(L)[None, :]

        def body(i0, covered, count, done, cut_start, cut_len):
            idx = i0 + chunk
            sweep = 1 + tf.math.floormod(idx[None, :] - K, n_pos[:, None])
            anchor = tf.where(idx[None, :] < K,
                              tf.gather(anchors, tf.minimum(idx, K - 1), axis=1), sweep)
            aw = tf.gather(word, anchor, batch_dims=1)      # anchor's word [B, C]
            ew = tf.minimum(aw + 1 + tf.gather(extra, tf.math.floormod(idx, K), axis=1),
                            last_word[:, None])
            free = ~tf.gather(covered, aw, batch_dims=1) & ~done[:, None]
            hits = (earlier[None] & (aw[:, None, :] <= aw[:, :, None])
                    & (aw[:, :, None] < ew[:, None, :]))  # [B, c, d]: d's span has c's anchor

            def settle(taken, _):
                again = free & ~tf.reduce_any(hits & taken[:, None, :], axis=2)
                return again, tf.reduce_any(again != taken)

            taken, _ = tf.while_loop(lambda t, changed: changed, settle,
                                     (free, tf.constant(True)))
            # Each taken span's words; a word is new for the first span that takes it.
            words = aw[:, :, None] + offsets                 # [B, C, M]
            in_span = (words < ew[:, :, None]) & taken[:, :, None]
            words = tf.minimum(words, L - 1)
            first = tf.tensor_scatter_nd_min(
                tf.zeros_like(word) + C,
                tf.stack([tf.broadcast_to(row[:, :, None], tf.shape(words)), words], -1),
                tf.where(in_span, tf.broadcast_to(chunk[None, :, None], tf.shape(words)), C))
            new_word = (in_span & (tf.gather(first, words, batch_dims=1) == chunk[None, :, None])
                        & ~tf.gather(covered, words, batch_dims=1))
            pieces = tf.where(new_word, tf.gather(word_len, words, batch_dims=1), 0)
            new = tf.reduce_sum(pieces, axis=2)
            before = count[:, None] + tf.cumsum(new, axis=1, exclusive=True)
            finishing = taken & (before + new >= budget[:, None])
            stops = tf.reduce_any(finishing, axis=1)
            stop = tf.reduce_min(tf.where(finishing, chunk[None, :], C), axis=1)
            # The span that spends the budget: its new words while they fit,
            # then the first pieces of the next new word.
            s = tf.minimum(stop, C - 1)[:, None]
            need = budget - _at(before, s[:, 0])
            stop_pieces = tf.gather(pieces, s, batch_dims=1)[:, 0]          # [B, M]
            stop_words = tf.gather(words, s, batch_dims=1)[:, 0]
            reached = tf.cumsum(stop_pieces, axis=1)
            over = (stop_pieces > 0) & (reached > need[:, None])
            w_cut = tf.where(stops, tf.reduce_min(tf.where(over, stop_words, L), axis=1), 0)
            part = over & (reached - stop_pieces < need[:, None])
            part_len = tf.reduce_sum(tf.where(part, need[:, None] - reached + stop_pieces, 0), 1)
            part_start = tf.gather(word_start, tf.reduce_sum(tf.where(part, stop_words, 0), 1),
                                   batch_dims=1)
            covered |= ((first < stop[:, None])
                        | ((first == stop[:, None]) & (word_pos < w_cut[:, None])))
            count = tf.where(stops, budget, before[:, -1] + new[:, -1])
            return (i0 + C, covered, count, done | stops, tf.where(stops, part_start, cut_start),
                    tf.where(stops, part_len, cut_len))

        zeros = tf.zeros([batch], tf.int32)
        init = (tf.constant(0), tf.zeros([batch, L], tf.bool), zeros, budget <= 0, zeros, zeros)
        _, covered, _, _, cut_start, cut_len = tf.while_loop(
            lambda i0, covered, count, done, *_: tf.reduce_any(~done), body, init)
        pos = tf.range(L)[None, :]
        return (tf.gather(covered, word, batch_dims=1)
                | ((pos >= cut_start[:, None]) & (pos < (cut_start + cut_len)[:, None])))

    def _order(self, draws, count):
        """Per example, indices 0..W-1 sorted by drawn key (ties by index); j >= count last."""
        W = self.layout.order_draws
        j = tf.range(W, dtype=tf.int64)[None, :]
        key = tf.where(j < tf.cast(count, tf.int64)[:, None], draws["order"],
                       tf.constant(1 << DRAW_BITS, tf.int64)) * W + j
        return tf.argsort(key, axis=1)

    def _whole_word_mask(self, draws, n, budget, word, bounds, last_word):
        L, W = self.max_seq_length, self.layout.order_draws
        num_words = last_word - 1                       # block words (no [CLS], [SEP])
        lengths = bounds[:, 2:L] - bounds[:, 1:L - 1]   # word j: pieces bounds[j+1]..
        order = self._order(draws, num_words)
        ordered = tf.gather(lengths, order, batch_dims=1)
        rank = tf.range(W, dtype=tf.int32)
        batch = tf.shape(budget)[0]

        # Words in drawn order; a word that would overflow the budget is skipped.
        def body(t, total, chosen):
            length = ordered[:, t]
            fits = (t < num_words) & (length <= budget - total)
            total += tf.where(fits, length, 0)
            return t + 1, total, chosen | (fits[:, None] & (rank[None, :] == t))

        def cond(t, total, chosen):
            return (t < W) & tf.reduce_any((total < budget) & (t < num_words))

        _, _, chosen = tf.while_loop(cond, body, (tf.constant(0), tf.zeros([batch], tf.int32),
                                                  tf.zeros([batch, W], tf.bool)))
        selected = tf.gather(chosen, tf.argsort(order, axis=1), batch_dims=1)  # by word
        pos = tf.range(L, dtype=tf.int32)[None, :]
        in_block = (pos >= 1) & (pos <= n[:, None])
        return in_block & tf.gather(selected, tf.clip_by_value(word - 1, 0, W - 1),
                                    batch_dims=1)

    def _token_mask(self, draws, n, budget):
        """The `budget` block positions of smallest key (ties by position)."""
        W = self.layout.order_draws
        j = tf.range(W, dtype=tf.int64)[None, :]
        key = tf.where(j < tf.cast(n, tf.int64)[:, None], draws["order"],
                       tf.constant(1 << DRAW_BITS, tf.int64)) * W + j
        k = min(self.layout.predictions, W)
        smallest = -tf.math.top_k(-key, k=k, sorted=True).values          # ascending
        kth = tf.gather(smallest, tf.maximum(budget - 1, 0)[:, None], batch_dims=1)
        chosen = (key <= kth) & (budget[:, None] > 0) & (j < tf.cast(n, tf.int64)[:, None])
        pad = tf.zeros_like(chosen[:, :1])
        return tf.concat([pad, chosen, pad], axis=1)

    def _finish(self, ids, input_mask, size, mask, draws):
        """Masked ids, prediction slots, replacement and SBO targets of a masked batch."""
        c, L, P = self.config, self.max_seq_length, self.layout.predictions
        num_masked = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
        slot_pos = _compact(mask, width=P)            # masked positions ascending, then 0
        slot_valid = tf.range(P)[None, :] < num_masked[:, None]
        # Merged spans: maximal runs of consecutive masked positions, found among
        # the [B, P] slots.
        previous = tf.pad(slot_pos[:, :-1], [[0, 0], [1, 0]], constant_values=-2)
        run_starts = slot_valid & (slot_pos != previous + 1)
        slot_run = tf.maximum(tf.cumsum(tf.cast(run_starts, tf.int32), axis=1) - 1, 0)
        runs = tf.size(slot_pos)
        run = tf.reshape(tf.range(tf.shape(slot_pos)[0])[:, None] * P + slot_run, [-1])

        def per_run(reduce, value, fill):  # the reduction over its run, at each slot
            flat = tf.reshape(tf.where(slot_valid, value, fill), [-1])
            return tf.reshape(tf.gather(reduce(flat, run, runs), run), tf.shape(slot_pos))

        first = per_run(tf.math.unsorted_segment_min, slot_pos, L)
        last = per_run(tf.math.unsorted_segment_max, slot_pos, -1)
        offset = slot_pos - first
        target = (slot_valid & (first != 1) & (last != size[:, None] - 2)
                  & (offset < c.max_pair_targets))
        # Replacement: one draw per merged span (or per wordpiece).
        unit = slot_run if c.replacement == "span" else tf.broadcast_to(
            tf.range(P)[None, :], tf.shape(slot_pos))
        kind_r = tf.gather(draws["kind"], unit, batch_dims=1)
        kind = tf.reduce_sum(tf.cast(kind_r[..., None] >= self._kind_limits, tf.int32), -1)
        token_r = draws["token"]
        num_candidates = self.reference.random_token_ids.size
        if self._token_limits is None:
            pick = tf.bitwise.right_shift(token_r * num_candidates,
                                          tf.constant(DRAW_BITS, tf.int64))
        else:
            flat = tf.reshape(token_r, [1, -1])
            pick = tf.reshape(tf.searchsorted(self._token_limits, flat, side="right",
                                              out_type=tf.int64), tf.shape(token_r))
        pick = tf.minimum(tf.cast(pick, tf.int32), num_candidates - 1)
        original = tf.gather(ids, slot_pos, batch_dims=1)
        value = tf.where(kind == 0, self.reference.mask_id,
                         tf.where(kind == 1, tf.gather(self._candidates, pick), original))
        # Padding slots write position 0's own id back ([CLS] is never masked).
        value = tf.where(slot_valid, value, ids[:, :1])
        rows = tf.broadcast_to(tf.range(tf.shape(ids)[0])[:, None], tf.shape(slot_pos))
        masked_ids = tf.tensor_scatter_nd_update(ids, tf.stack([rows, slot_pos], axis=-1),
                                                 value)
        zero = tf.zeros_like(slot_pos)
        return {
            "input_ids": masked_ids,
            "input_mask": tf.cast(input_mask, tf.int32),
            "masked_lm_positions": slot_pos,
            "masked_lm_ids": tf.where(slot_valid, original, zero),
            "masked_lm_weights": tf.cast(slot_valid, tf.float32),
            "span_left_positions": tf.where(target, first - 1, zero),
            "span_right_positions": tf.where(target, last + 1, zero),
            "span_relative_positions": tf.where(target, offset, zero),
            "sbo_weights": tf.cast(target, tf.float32),
        }


def masker_for_records(metadata, config, vocab_file, do_lower_case=False,
                       random_token_source="uniform", jit_compile=True):
    """The `DynamicMasker` of unmasked records (`--masking=none`) and masking settings.

    Args:
        metadata: the records' metadata.json dict (`input_pipeline.find_pretraining_files`).
        config: a `MaskingConfig`.
        vocab_file: the records' vocabulary (checked by sha256 by the caller).
        random_token_source: "uniform", or "unigram": the corpus counts of the
            metadata (written with `--random_token_source=unigram`).
        jit_compile: `DynamicMasker`'s (on: XLA-compiled masking, the fast path).

    Raises `InputError` naming the metadata file when the records cannot be masked so.
    """
    mask_id, word_start_table, candidates, probs = masking_inputs_for_records(
        metadata, vocab_file, do_lower_case, random_token_source)
    return DynamicMasker(config, metadata["max_seq_length"], mask_id, word_start_table,
                         candidates, probs, jit_compile)

def _compact(flags, fill=0, width=None):
    """[B, W] bool → [B, width] int32: row b's first `width` True positions ascending,
    then `fill` (`width` default W)."""
    W = flags.shape[1]
    width = W if width is None else width
    batch = tf.shape(flags)[0]
    rank = tf.cumsum(tf.cast(flags, tf.int32), axis=1) - 1
    keep = flags & (rank < width)
    slot = tf.where(keep, tf.range(batch)[:, None] * width + rank, batch * width)
    value = tf.where(keep, tf.range(W)[None, :] - fill, 0)
    out = tf.math.unsorted_segment_sum(value, slot, batch * width + 1)[:-1]
    return tf.reshape(out, [batch, width]) + fill


def _at(values, index):
    """values[b, index[b]] for each row b."""
    return tf.gather(values, index[:, None], batch_dims=1)[:, 0]


__all__ = ["DynamicMasker", "DRAW_FIELDS", "masker_for_records"]
