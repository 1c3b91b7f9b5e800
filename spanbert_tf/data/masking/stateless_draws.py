"""The draws of `DynamicMasker.draw` in numpy: TensorFlow's stateless Philox, bit for bit.

Dynamic masking keys the random integers of an example by (seed, epoch, example_id)
(`dynamic_masking.DynamicMasker.draw`: `stateless_fold_in` twice, then
`stateless_uniform(dtype=uint32)`). TensorFlow's stateless ops run Philox-4x32-10
(auto_select on CPU and GPU); this module computes the same numbers without TensorFlow,
vectorised over a batch of examples, so the TF-free input (`spanbert_tf.data.blocks`) masks
every example exactly as the tf.data pipeline does for the same seed and epoch.

How TensorFlow derives them (tensorflow/core/kernels/stateless_random_ops*.cc): a seed pair
(s0, s1) becomes the Philox counter (s0 lo, s0 hi, s1 lo, s1 hi) under the fixed key
(0x3ec8f720, 0x02461e29); one Philox block of it gives the key (words 0, 1) and the counter
(0, 0, word 2, word 3). Output block g is Philox(counter + g): 4 uint32 each. `fold_in(seed,
x)` is the seed pair (first int64 of the seed's stream, x); an int64 is word 0 | word 1 << 32.

Example:
```python
draws = masking_draws_for(masker.layout, seed=12345, epoch=0, example_ids=np.arange(8))
draws["span_anchor"].shape        # (8, layout.span_draws), int64 in [0, 2**32)
```
"""

import numpy as np

# dynamic_masking._STREAM: keeps the masking stream apart from other uses of the seed.
MASKING_STREAM = 0x5BE27
_W32 = np.uint64(0xFFFFFFFF)
_SEED_KEY = (0x3EC8F720, 0x02461E29)
_MUL = (np.uint64(0xD2511F53), np.uint64(0xCD9E8D57))
_RAISE = (np.uint64(0x9E3779B9), np.uint64(0xBB67AE85))


def philox4x32(counter, key):
    """Philox-4x32-10 of `counter` [..., 4] under `key` [..., 2] (uint32 values held in
    uint64 arrays); returns [..., 4]."""
    c0, c1, c2, c3 = (counter[..., i].astype(np.uint64) for i in range(4))
    k0, k1 = key[..., 0].astype(np.uint64), key[..., 1].astype(np.uint64)
    shift = np.uint64(32)
    for _ in range(10):
        p0, p1 = _MUL[0] * c0, _MUL[1] * c2
        c0, c1, c2, c3 = (p1 >> shift) ^ c1 ^ k0, p1 & _W32, (p0 >> shift) ^ c3 ^ k1, p0 & _W32
        k0, k1 = (k0 + _RAISE[0]) & _W32, (k1 + _RAISE[1]) & _W32
    return np.stack([c0, c1, c2, c3], axis=-1)


def _split(values):
    """int64 values → (low, high) uint32 words as uint64 arrays."""
    u = np.asarray(values, np.int64).astype(np.uint64)
    return u & _W32, u >> np.uint64(32)


def key_and_counter(seed0, seed1):
    """(key [..., 2], counter [..., 4]) of the seed pairs (seed0, seed1) (int64 arrays)."""
    s0, s1 = np.broadcast_arrays(np.asarray(seed0, np.int64), np.asarray(seed1, np.int64))
    counter = np.stack(_split(s0) + _split(s1), axis=-1)
    key = np.broadcast_to(np.array(_SEED_KEY, np.uint64), counter.shape[:-1] + (2,))
    mix = philox4x32(counter, key)
    zero = np.zeros_like(mix[..., 0])
    return mix[..., :2], np.stack([zero, zero, mix[..., 2], mix[..., 3]], axis=-1)


def uniform_uint32(seed0, seed1, count):
    """`tf.random.stateless_uniform([count], [seed0, seed1], dtype=uint32)` per seed pair:
    [..., count] uint32 values (as int64)."""
    key, counter = key_and_counter(seed0, seed1)
    blocks = -(-int(count) // 4)
    g = np.arange(blocks, dtype=np.uint64)
    counters = np.repeat(counter[..., None, :], blocks, axis=-2).copy()
    counters[..., 0] = g  # the counter's word 0 starts at 0: no carry below 2**32 blocks
    out = philox4x32(counters, np.repeat(key[..., None, :], blocks, axis=-2))
    flat = out.reshape(out.shape[:-2] + (blocks * 4,))[..., :int(count)]
    return flat.astype(np.int64)


def fold_in(seed0, seed1, data):
    """`tf.random.experimental.stateless_fold_in([seed0, seed1], data)` (int64 data): the new
    seed pair (int64 arrays)."""
    words = uniform_uint32(seed0, seed1, 2).astype(np.uint64)
    first = (words[..., 0] | (words[..., 1] << np.uint64(32))).astype(np.int64)
    data = np.asarray(data, np.int64)
    first, data = np.broadcast_arrays(first, data)
    return first, data


def masking_draws_for(layout, seed, epoch, example_ids):
    """{field: int64 [B, size]} of `DynamicMasker.draw(seed, epoch, id)` for each of
    `example_ids` (a `masking_draws.DrawLayout`'s fields and sizes)."""
    ids = np.asarray(example_ids, np.int64)
    s0, s1 = fold_in(np.int64(seed), np.int64(MASKING_STREAM), np.int64(epoch))
    s0, s1 = fold_in(np.broadcast_to(s0, ids.shape), np.broadcast_to(s1, ids.shape), ids)
    sizes = layout.sizes()
    flat = uniform_uint32(s0, s1, sum(sizes.values()))
    out, start = {}, 0
    for name, size in sizes.items():
        out[name] = flat[..., start:start + size]
        start += size
    return out
