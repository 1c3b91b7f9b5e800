"""Masking fed by pre-drawn random integers: what dynamic (in-graph) masking draws.

The offline masker (`masking.Masker.mask_many`) reads its randomness from a
`np.random.Generator` as the algorithm needs it. Dynamic masking
(`dynamic_masking.py`) must draw a fixed number of random numbers per example
first (stateless TF ops) and apply them after. This module defines those draws
and masks with them in numpy through the SAME `Masker` code, so a test can feed
identical draws to both and require identical outputs.

Every draw `r` is an integer in `[0, 2**32)` and stands for the uniform
`u = r / 2**32`; each choice is the offline formula applied to that `u`, in
exact integer arithmetic:

| field          | shape | use (n = block length without [CLS]/[SEP])               |
|----------------|-------|----------------------------------------------------------|
| `span_anchor`  | [K]   | i-th span anchor `1 + floor(r * n / 2**32)`              |
| `span_length`  | [K]   | i-th span length - 1 = #{k : cdf_k <= u} (truncated geom)|
| `order`        | [W]   | whole_word: word order = stable argsort of the first     |
|                |       | (#words) keys; token: positions of the `budget` smallest |
| `kind`         | [P]   | replacement of the i-th unit (merged span or wordpiece): |
|                |       | [MASK] if u < mask_prob, random if u < mask+random       |
| `token`        | [P]   | random token of the i-th masked slot: uniform            |
|                |       | `floor(r * C / 2**32)` or the unigram cdf                |

K = 2 P + 32 span draws suffice unless a block is nearly all masked; past
them, anchor i is `1 + (i - K) mod n` (a sweep that always ends) with the
length of draw `i mod K`. Thresholds `ceil(cdf * 2**32)` make `r >= t` exactly
`u >= cdf`.

Example:
```python
layout = DrawLayout.for_config(masker.config, max_seq_length=512)
draws = [layout.random(np.random.default_rng(i)) for i in range(len(blocks))]
batch = mask_with_draws(masker, blocks, draws)  # a masking.MaskedBatch
```
"""

import dataclasses

import numpy as np

from spanbert_tf.errors import InputError

DRAW_BITS = 32
DRAW_RANGE = 1 << DRAW_BITS
DRAW_FIELDS = ("span_anchor", "span_length", "order", "kind", "token")


@dataclasses.dataclass(frozen=True)
class DrawLayout:
    """How many draws of each field one example needs (see the module table)."""

    span_draws: int
    order_draws: int
    predictions: int

    @classmethod
    def for_config(cls, config, max_seq_length):
        p = config.max_predictions_per_seq
        return cls(
            span_draws=2 * p + 32 if config.scheme == "span" else 0,
            order_draws=max_seq_length - 2 if config.scheme != "span" else 0,
            predictions=p,
        )

    def sizes(self):
        """{field: length}, in `DRAW_FIELDS` order."""
        k, w, p = self.span_draws, self.order_draws, self.predictions
        return dict(zip(DRAW_FIELDS, (k, k, w, p, p)))

    def random(self, rng):
        """Draws of one example from a `np.random.Generator` (tests, tools)."""
        return {name: rng.integers(0, DRAW_RANGE, size, dtype=np.int64)
                for name, size in self.sizes().items()}


def thresholds(masker):
    """Integer thresholds of a `Masker`'s distributions: {length, kind, token (or None)}."""
    def scaled(cdf):
        return np.ceil(np.asarray(cdf, np.float64) * DRAW_RANGE).astype(np.int64)

    token = None if masker._random_cdf is None else scaled(masker._random_cdf)
    return {"length": scaled(masker._len_cdf[:-1]), "kind": scaled(masker._kind_edges),
            "token": token}


class PreDrawn:
    """The random choices of one block, read from its draws (a `masking` source)."""

    def __init__(self, draws, limits):
        self.draws = draws
        self.limits = limits
        self.next_span = 0

    def span_chunk(self, n, chunk):
        anchor_r, length_r = self.draws["span_anchor"], self.draws["span_length"]
        k = anchor_r.size
        idx = np.arange(self.next_span, self.next_span + chunk)
        self.next_span += chunk
        inside = idx < k
        drawn = 1 + ((anchor_r[np.minimum(idx, k - 1)] * n) >> DRAW_BITS)
        anchors = np.where(inside, drawn, 1 + (idx - k) % n).astype(np.intp)
        lengths = length_r[idx % k]
        extra = (lengths[:, None] >= self.limits["length"][None, :]).sum(axis=1)
        return anchors, extra

    def word_order(self, num_words):
        return np.argsort(self.draws["order"][:num_words], kind="stable")

    def token_positions(self, n, budget):
        pos = np.sort(np.argsort(self.draws["order"][:n], kind="stable")[:budget])
        return pos + 1


def mask_with_draws(masker, blocks, draws):
    """Masks `[CLS] block [SEP]` arrays with one draws dict each (`DrawLayout` sizes).

    Returns the `masking.MaskedBatch` the offline masker's code makes from
    these choices: the reference the TF masker must reproduce.
    """
    if len(blocks) != len(draws):
        raise InputError(f"{len(blocks)} blocks but {len(draws)} draws")
    limits = thresholds(masker)
    blocks = [masker._checked_ids(b) for b in blocks]
    ids, ws, sizes, starts = masker._concatenated(blocks)
    positions, drawn, unmerged = [], [], []
    for block_draws, start, size in zip(draws, starts.tolist(), sizes.tolist()):
        drawn.append([])
        unmerged.append([])
        positions.append(masker._positions(ws[start:start + size], size,
                                           PreDrawn(block_draws, limits),
                                           drawn[-1], unmerged[-1]))
    kind_r = np.stack([d["kind"] for d in draws]) if draws else np.zeros((0, 0), np.int64)
    token_r = np.stack([d["token"] for d in draws]) if draws else np.zeros((0, 0), np.int64)

    def kinds(unit_inst, unit_index):
        r = kind_r[unit_inst, unit_index]
        return (r[:, None] >= limits["kind"][None, :]).sum(axis=1)

    def picks(slot_inst, slot_index):
        r = token_r[slot_inst, slot_index]
        if limits["token"] is None:
            return ((r * masker.random_token_ids.size) >> DRAW_BITS).astype(np.intp)
        return limits["token"].searchsorted(r, "right")

    return masker._finish(ids, ws, sizes, starts, positions, kinds, picks, drawn, unmerged)
