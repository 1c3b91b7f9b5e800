"""Span masking (SpanBERT §3.1) and the BERT ablations, in pure numpy.

`Masker.mask` takes one `[CLS] block [SEP]` instance of wordpiece ids and
returns a `MaskedInstance`: the masked ids, the MLM targets, and the span
boundary objective (SBO) targets of §3.2. Three schemes:

- `"span"` (SpanBERT, default): follows `PairWithSpanMaskingScheme` of
  facebookresearch/SpanBERT as run with its README's pretraining flags.
  The budget is `ceil(masked_lm_prob * n)` wordpieces (n = block length
  without `[CLS]`/`[SEP]`), capped by `max_predictions_per_seq`. Until the
  budget is spent: draw a span length in WORDS from the geometric(p)
  distribution truncated to `[1, max_span_length]` and renormalised, draw an
  anchor uniformly over the block (skip it if already masked), move it back
  to the start of its word and mask that many whole words (stopping at the
  block end). Like the official code, masking stops at the very wordpiece that
  spends the budget, so the budget is always met exactly and only the last
  span may end inside a word. Overlapping and adjacent spans are merged.
- `"whole_word"`: whole words in random order, a word that would overflow the
  budget is skipped (google-research/bert whole-word masking).
- `"token"`: `budget` independent wordpieces (BERT).

Replacement (`replacement="span"`: one draw per merged span, as SpanBERT;
`"token"`: one per wordpiece): `mask_prob` `[MASK]`, `random_prob` a random
token from `random_token_ids` (uniform, or `random_token_probs`), the rest
unchanged. SBO: every merged span (maximal run of masked wordpieces) whose
left and right neighbours are both block tokens (not `[CLS]`/`[SEP]`) gives
its first `max_pair_targets` wordpieces the two boundary positions and their
0-based offset in the span; later wordpieces and spans touching `[CLS]` or
`[SEP]` still have MLM targets but no SBO target.

`Masker.mask_many` masks many instances in one call (the pipeline's path):
positions are chosen block by block, then replacement, SBO targets and
statistics are computed for the whole batch at once (`MaskedBatch`).

Example:
```python
masker = Masker(MaskingConfig(), mask_id=tok.mask_id,
                word_start_table=tok.word_start_table,
                random_token_ids=np.arange(999, tok.vocab_size))
inst = masker.mask(ids, np.random.default_rng(0))  # ids = [CLS] block [SEP]
inst.masked_positions, inst.masked_ids, inst.span_left_positions
```
"""

import itertools
import math

import numpy as np

from spanbert_tf.data.masking.masking_types import (REPLACEMENTS, SCHEMES, MaskedBatch,
                                            MaskedInstance, MaskingConfig)
from spanbert_tf.errors import InputError

__all__ = ["MaskedBatch", "MaskedInstance", "Masker", "MaskingConfig", "REPLACEMENTS", "SCHEMES"]


class Masker:
    """Masks `[CLS] block [SEP]` instances according to a `MaskingConfig`.

    Args:
        config: a `MaskingConfig`.
        mask_id: id of `[MASK]`.
        word_start_table: bool array `[vocab_size]`, True where a wordpiece
            starts a word (does not begin with `##`).
        random_token_ids: candidate ids for random replacement (usually the
            non-special vocabulary).
        random_token_probs: None for uniform sampling, else one non-negative
            weight per candidate (e.g. corpus unigram counts); normalised here.

    Example:
    ```python
    masker = Masker(MaskingConfig(scheme="token"), mask_id=103,
                    word_start_table=table, random_token_ids=ids)
    instance = masker.mask(input_ids, np.random.default_rng(seed))
    batch = masker.mask_many([(blocks, np.random.default_rng(seed))])
    ```
    """

    def __init__(self, config, mask_id, word_start_table, random_token_ids, random_token_probs=None):
        if not isinstance(config, MaskingConfig):
            raise InputError(f"config must be a MaskingConfig, got {type(config)}")
        config.validate()
        self.config = config
        table = np.asarray(word_start_table)
        if table.ndim != 1 or table.size == 0 or table.dtype != np.bool_:
            raise InputError(
                "word_start_table must be a non-empty 1-D bool array, got "
                f"dtype {table.dtype} shape {table.shape}"
            )
        self.word_start_table = table
        self.vocab_size = table.size
        if not 0 <= int(mask_id) < self.vocab_size:
            raise InputError(f"mask_id {mask_id} is outside the vocabulary [0, {self.vocab_size})")
        self.mask_id = int(mask_id)
        cands = np.asarray(random_token_ids)
        if cands.ndim != 1 or cands.size == 0 or not np.issubdtype(cands.dtype, np.integer):
            raise InputError("random_token_ids must be a non-empty 1-D integer array")
        if cands.min() < 0 or cands.max() >= self.vocab_size:
            raise InputError(f"random_token_ids must lie in [0, {self.vocab_size})")
        self.random_token_ids = cands.astype(np.int32)
        self._random_cdf = None
        if random_token_probs is not None:
            probs = np.asarray(random_token_probs, dtype=np.float64)
            if probs.shape != cands.shape:
                raise InputError(
                    f"random_token_probs has shape {probs.shape}, expected {cands.shape} "
                    "(one weight per random_token_ids entry)"
                )
            if not np.all(np.isfinite(probs)) or probs.min() < 0 or probs.sum() <= 0:
                raise InputError("random_token_probs must be finite, >= 0, with a positive sum")
            cdf = np.cumsum(probs / probs.sum())
            cdf[-1] = 1.0
            self._random_cdf = cdf
        len_cdf = np.cumsum(config.span_length_distribution())
        len_cdf[-1] = 1.0
        self._len_cdf = len_cdf
        self._ones = b"\x01" * 4096
        self._zero = np.zeros(1, np.intp)
        self._kind_edges = np.array([config.mask_prob, config.mask_prob + config.random_prob])

    def budget(self, num_block_tokens):
        """Wordpieces to mask in a block of `num_block_tokens` (no CLS/SEP)."""
        c = self.config
        return min(math.ceil(num_block_tokens * c.masked_lm_prob), c.max_predictions_per_seq)

    def mask(self, input_ids, rng):
        """Masks one `[CLS] block [SEP]` instance.

        Args:
            input_ids: int array `[N]`; positions 0 and N-1 are never masked.
            rng: a `np.random.Generator`; the result is a function of its state.

        Returns:
            A `MaskedInstance`.
        """
        return self.mask_many([([input_ids], rng)]).instance(0)

    def mask_many(self, groups, check_ids=True):
        """Masks many instances at once; `mask` of each, batched.

        Args:
            groups: list of `(blocks, rng)`: `blocks` a list of `[CLS] block [SEP]`
                int arrays masked with the `np.random.Generator` `rng`: first
                the positions of each block in turn, then the replacements of
                the whole group (one block: exactly `mask`).
            check_ids: False skips the checks of each block's shape and ids
                (for ids that come from a tokenizer of this vocabulary).

        Returns:
            A `MaskedBatch` of all the blocks, in order.
        """
        blocks, rngs, group_sizes = [], [], []
        for group_blocks, rng in groups:
            if not isinstance(rng, np.random.Generator):
                raise InputError(f"rng must be a numpy.random.Generator, got {type(rng)}")
            if check_ids:
                group_blocks = [self._checked_ids(ids) for ids in group_blocks]
            blocks += group_blocks
            rngs.append(rng)
            group_sizes.append(len(group_blocks))
        ids, ws, sizes, starts = self._concatenated(blocks)
        positions, drawn, unmerged = [], [], []
        spans = iter(zip(starts.tolist(), sizes.tolist()))
        for rng, count in zip(rngs, group_sizes):
            source = _RngDraws(rng, self._len_cdf)
            for start, size in itertools.islice(spans, count):
                drawn.append([])
                unmerged.append([])
                positions.append(self._positions(
                    ws[start:start + size], size, source, drawn[-1], unmerged[-1]))
        group_of = np.arange(len(rngs)).repeat(group_sizes)  # instance -> group

        def kinds(unit_inst, unit_slot):
            return self._kind_edges.searchsorted(
                self._draw(rngs, group_of.take(unit_inst)), "right")

        def picks(slot_inst, slot_index):
            v = self._draw(rngs, group_of.take(slot_inst))
            if self._random_cdf is None:
                return (v * self.random_token_ids.size).astype(np.intp)
            return self._random_cdf.searchsorted(v, "right")

        return self._finish(ids, ws, sizes, starts, positions, kinds, picks, drawn, unmerged)

    def _concatenated(self, blocks):
        """(ids, word starts, sizes, starts) of the blocks laid end to end."""
        sizes = np.fromiter(map(len, blocks), np.int64, len(blocks))
        starts = np.cumsum(sizes) - sizes
        ids = (np.concatenate(blocks).astype(np.int32, copy=False) if blocks
               else np.zeros(0, np.int32))
        # Word starts in full coordinates; [CLS], the first block piece and
        # [SEP] count as word starts (the official code never moves an anchor
        # before the block's first piece; [SEP] ends the last word).
        ws = self.word_start_table.take(ids)
        ws[starts] = ws[starts + 1] = ws[starts + sizes - 1] = True
        return ids, ws, sizes, starts

    def _checked_ids(self, input_ids):
        ids = np.asarray(input_ids)
        if ids.ndim != 1 or ids.size < 2 or ids.dtype.kind not in "iu":
            raise InputError(
                "input_ids must be a 1-D integer array [CLS] block [SEP] of length >= 2, "
                f"got dtype {ids.dtype} shape {ids.shape}"
            )
        if ids.astype(np.uint64).max() >= self.vocab_size:  # negatives wrap to huge
            raise InputError(f"input_ids must lie in [0, {self.vocab_size})")
        return ids

    def _positions(self, ws, size, source, drawn, unmerged):
        """Masked positions of one block (ascending, full coordinates).

        `source` gives the block's random choices (`_RngDraws`, or
        `masking_draws.PreDrawn`): span anchors and lengths, a word order, or
        the token positions.
        """
        budget = self.budget(size - 2)
        scheme = self.config.scheme
        if budget == 0:
            return np.zeros(0, np.intp)
        if scheme == "span":
            return self._span_positions(ws, size, budget, source, drawn, unmerged)
        if scheme == "whole_word":
            return self._whole_word_positions(ws, size, budget, source)
        return source.token_positions(size - 2, budget)

    def _span_positions(self, ws, size, budget, source, drawn, unmerged):
        """Positions masked by the span scheme, ascending (full coordinates)."""
        bounds = ws.nonzero()[0]  # word starts: 0 ([CLS]), 1, ..., size-1 ([SEP])
        last_word = bounds.size - 1  # index of [SEP]
        mask = bytearray(size)
        ones = self._ones if size <= len(self._ones) else b"\x01" * size
        count = 0
        chunk = budget // 3 + 8
        n = size - 2
        while count < budget:
            anchors, extra_words = source.span_chunk(n, chunk)  # extra = length - 1
            next_word = bounds.searchsorted(anchors, "right")  # anchor's word + 1
            starts = bounds.take(next_word - 1)
            end_word = next_word + extra_words
            np.minimum(end_word, last_word, out=end_word)
            ends = bounds.take(end_word)
            for a, s, e, k in zip(
                anchors.tolist(), starts.tolist(), ends.tolist(), extra_words.tolist()
            ):
                if mask[a]:
                    continue
                drawn.append(k + 1)
                new = (e - s) - mask.count(1, s, e)
                if count + new < budget:
                    mask[s:e] = ones[: e - s]
                    count += new
                    unmerged.append((s, e - 1))
                    continue
                # This span spends the budget: stop at the piece that does it.
                need = budget - count
                last = s
                for last in range(s, e):
                    if not mask[last]:
                        mask[last] = 1
                        need -= 1
                        if need == 0:
                            break
                unmerged.append((s, last))
                count = budget
                break
        return np.frombuffer(mask, dtype=np.bool_).nonzero()[0]

    def _whole_word_positions(self, ws, size, budget, source):
        """Whole words in random order; a word overflowing the budget is skipped."""
        bounds = ws[: size - 1].nonzero()[0][1:]  # block word starts, then [SEP]
        bounds = np.append(bounds, size - 1)
        lens = bounds[1:] - bounds[:-1]
        order = source.word_order(lens.size)
        lens = lens[order]
        cum = lens.cumsum()
        k = int(cum.searchsorted(budget, "right"))
        chosen = [order[:k]]
        total = int(cum[k - 1]) if k else 0
        i = k
        while total < budget and i < lens.size:
            fits = (lens[i:] <= budget - total).nonzero()[0]
            if fits.size == 0:
                break
            j = i + int(fits[0])
            chosen.append(order[j : j + 1])
            total += int(lens[j])
            i = j + 1
        selected = np.zeros(lens.size, dtype=np.bool_)
        selected[np.concatenate(chosen)] = True
        piece_word = ws[1 : size - 1].cumsum() - 1  # block piece -> word index
        return selected.take(piece_word).nonzero()[0] + 1

    def _finish(self, ids, ws, sizes, starts, positions, kinds, picks, drawn, unmerged):
        """Replacement, SBO targets and statistics of a whole batch at once.

        `kinds(unit_instance, unit_index)` gives the replacement kind of each
        unit (merged span or wordpiece; index within its instance);
        `picks(slot_instance, slot_index)` the index into `random_token_ids`
        of each randomly replaced wordpiece (slot: its rank among the
        instance's masked positions).
        """
        c = self.config
        num_masked = np.fromiter(map(len, positions), np.int64, len(positions))
        local = np.concatenate(positions).astype(np.int32) if positions else ids[:0]
        inst_of = np.arange(sizes.size).repeat(num_masked)
        pos = local + starts.take(inst_of)  # in the concatenated ids
        first_slot = np.cumsum(num_masked) - num_masked
        slot = np.arange(pos.size) - first_slot.take(inst_of)
        masked_ids = ids.take(pos)
        # Merged spans = maximal runs of consecutive masked positions (never
        # across instances: [SEP] and [CLS] lie between them).
        breaks = (pos[1:] - pos[:-1] != 1).nonzero()[0] + 1
        run_first = np.concatenate((self._zero, breaks)) if pos.size else breaks
        run_stop = np.append(breaks, pos.size) if pos.size else breaks
        run_len = run_stop - run_first
        run_of = np.arange(run_first.size).repeat(run_len)
        run_inst = inst_of.take(run_first)
        words = (np.add.reduceat(ws.take(pos), run_first, dtype=np.int64) if pos.size
                 else np.zeros(0, np.int64))
        if c.scheme == "token":  # a run may start inside a word
            words += ~ws.take(pos.take(run_first))
        # Replacement: kind 0 = [MASK], 1 = random token, 2 = unchanged, drawn
        # per merged span or per wordpiece, from each group's generator.
        if c.replacement == "span":
            runs_per_inst = np.bincount(run_inst, minlength=sizes.size)
            first_run = np.cumsum(runs_per_inst) - runs_per_inst
            unit_inst = run_inst
            unit_index = np.arange(run_inst.size) - first_run.take(run_inst)
        else:
            unit_inst, unit_index = inst_of, slot
        kind = kinds(unit_inst, unit_index)
        if c.replacement == "span":
            kind = kind.take(run_of)
        counts = np.bincount(inst_of * 3 + kind, minlength=3 * sizes.size)
        out = ids  # a fresh concatenation: ours to modify
        out[pos[kind == 0]] = self.mask_id
        is_random = kind == 1
        if is_random.any():
            pick = picks(inst_of[is_random], slot[is_random])
            pick[pick >= self.random_token_ids.size] = self.random_token_ids.size - 1
            out[pos[is_random]] = self.random_token_ids.take(pick)
        # SBO targets: the merged span's boundary positions, when both are
        # block tokens, i.e. for every run except one touching [CLS] or [SEP]
        # (a valid left boundary is >= 1, so left == 0 means "no target").
        start = local.take(run_first)
        end = local.take(run_stop - 1)
        valid = (start != 1) & (end != sizes.take(run_inst) - 2)
        left = ((start - 1) * valid).take(run_of)
        right = ((end + 1) * valid).take(run_of)
        offset = local - start.take(run_of)
        if run_len.size and run_len.max() > c.max_pair_targets:
            in_window = offset < c.max_pair_targets
            left *= in_window
            right *= in_window
        target = left != 0
        return MaskedBatch(
            input_ids=out,
            input_lengths=sizes,
            masked_positions=local,
            masked_ids=masked_ids,
            span_left_positions=left,
            span_right_positions=right,
            span_relative_positions=offset * target,
            sbo_weights=target.astype(np.float32),
            num_masked=num_masked,
            span_lengths_words=words,
            span_lengths_pieces=run_len,
            num_spans=np.bincount(run_inst, minlength=sizes.size),
            replacement_counts=counts.reshape(-1, 3),
            drawn_span_words=drawn,
            unmerged_spans=unmerged,
        )

    @staticmethod
    def _draw(rngs, unit_group):
        """Uniform draws for units in group order: each group's from its own rng."""
        per_group = np.bincount(unit_group, minlength=len(rngs)).tolist()
        draws = [rng.random(n) for rng, n in zip(rngs, per_group) if n]
        return np.concatenate(draws) if draws else np.zeros(0)


class _RngDraws:
    """The random choices of blocks from one `np.random.Generator` (the offline path)."""

    def __init__(self, rng, len_cdf):
        self.rng = rng
        self.len_cdf = len_cdf

    def span_chunk(self, n, chunk):
        """`chunk` anchors in [1, n] and span lengths minus one."""
        u = self.rng.random(2 * chunk)
        anchors = (u[:chunk] * n).astype(np.intp) + 1
        return anchors, self.len_cdf.searchsorted(u[chunk:], "right")

    def word_order(self, num_words):
        return self.rng.permutation(num_words)

    def token_positions(self, n, budget):
        pos = self.rng.choice(n, size=budget, replace=False, shuffle=False)
        pos.sort()
        return pos + 1
