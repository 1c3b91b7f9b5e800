"""Building blocks of the coreference model: span heads, distances, chunking, the loss.

The layers it shares with the entity model (`FeedForwardScorer`, the candidate grid,
the [start; end; width] span embedding, `select_non_crossing_spans`) are in
`spanbert_tf/modeling/span_layers.py`.

* `window_head_embeddings`: the head-attention ("soft head word") embedding of
  spans, computed over each span's own <= `max_span_width`-token window, so no
  `[num_candidates, num_tokens]` attention matrix is ever built (the official
  code's out-of-memory on long documents).
* `bucket_distance`: the 10 semi-log buckets [0, 1, 2, 3, 4, 5-7, 8-15,
  16-31, 32-63, 64+].
* `map_in_chunks`: `fn` over `[0, n)` in chunks (an `ops.scan`), bounding the
  memory of prediction on long documents.
* `antecedent_loss`: the marginal log-likelihood of the gold antecedents.

Backend: `keras.ops` only, so the same code runs on TensorFlow (in graphs with
dynamic shapes too: training and the SavedModel export), and eagerly on JAX
and PyTorch (data-dependent sizes such as the number of kept spans are
concrete there: not under `jax.jit`).

Example:
```python
heads = window_head_embeddings(tokens, logits, starts, widths, max_span_width=30)
buckets = bucket_distance(offsets)
```
"""

import math

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

from keras import ops

from spanbert_tf.modeling.span_layers import NEG_INF, concrete_int

NUM_DISTANCE_BUCKETS = 10


def bucket_distance(distances):
    """Semi-log buckets of non-negative int distances: 0..4 as is, then 5-7, 8-15, ... 64+ → 9."""
    distances = ops.cast(distances, "int32")
    safe = ops.cast(ops.maximum(distances, 1), "float32")
    log_bucket = ops.cast(ops.floor(ops.log(safe) / math.log(2)), "int32") + 3
    bucket = ops.where(distances <= 4, distances, log_bucket)
    return ops.clip(bucket, 0, NUM_DISTANCE_BUCKETS - 1)


def window_head_embeddings(tokens, token_logits, starts, widths, max_span_width):
    """Head-attention embeddings of spans, each over its own token window.

    The span (s, s + w) gets `sum_j softmax_j(a[s + j]) · h[s + j]` over
    j = 0..w, where `a = token_logits`. Each start's window of
    `max_span_width` tokens is gathered once ([n, W, hidden]) and shared by the
    `m` widths asked for that start, so the full candidate grid of a chunk of
    starts costs `[n, W, W]` weights, never `[spans, num_tokens]`.

    Args:
        tokens: [T, H] float token embeddings of the document.
        token_logits: [T] float attention logits.
        starts: [n] int32 start token of each window.
        widths: [n, m] int32 span widths minus one (0 = a one-token span).
        max_span_width: W, the window length.

    Returns:
        [n, m, H] head embeddings (spans running past the document end only
        attend to the tokens inside it).
    """
    num_tokens = ops.shape(tokens)[0]
    offsets = ops.arange(max_span_width, dtype="int32")
    positions = ops.cast(starts, "int32")[:, None] + offsets[None, :]   # [n, W]
    in_doc = positions < num_tokens
    positions = ops.minimum(positions, num_tokens - 1)
    window = ops.take(tokens, positions, axis=0)                       # [n, W, H]
    logits = ops.take(token_logits, positions, axis=0)                 # [n, W]
    inside = ops.logical_and(offsets[None, None, :] <= widths[:, :, None],
                             in_doc[:, None, :])                       # [n, m, W]
    logits = ops.where(inside, logits[:, None, :], NEG_INF)
    weights = ops.softmax(logits, axis=-1)                             # [n, m, W]
    return ops.einsum("nmw,nwh->nmh", weights, window)


def map_in_chunks(fn, n, chunk_size, chunked):
    """`fn(indices)` over indices [0, n), in chunks of `chunk_size` when `chunked`.

    `fn` maps an int32 index vector [m] to a float32 tensor [m, ...] whose
    other dims do not depend on m's value. Unchunked: `fn(range(n))`. Chunked
    (prediction): a sequential `ops.scan` over chunks (the last chunk padded
    with the index n - 1, its rows then dropped), so peak memory scales with
    `chunk_size`, not n (TensorFlow: one iteration at a time; JAX: `lax.scan`,
    so `fn` is traced). `fn` first runs on one index to learn the row shape.
    Chunking is for inference only (`fn` must not create variables or draw
    dropout masks).
    """
    indices = ops.arange(n, dtype="int32")
    if not chunked:
        return fn(indices)
    n = ops.convert_to_tensor(n, "int32")
    chunk = ops.maximum(ops.minimum(ops.convert_to_tensor(chunk_size, "int32"), n), 1)
    num_chunks = ops.maximum((n + chunk - 1) // chunk, 1)     # one chunk even if n == 0
    chunk, num_chunks = concrete_int(chunk), concrete_int(num_chunks)
    padded = ops.minimum(ops.arange(num_chunks * chunk, dtype="int32"), ops.maximum(n - 1, 0))
    chunks = ops.reshape(padded, (num_chunks, chunk))
    row_shape = ops.shape(fn(chunks[0, :1]))[1:]
    _, out = ops.scan(lambda carry, rows: (fn(rows),) * 2,
                      ops.zeros((chunk, *row_shape), "float32"), chunks)
    return ops.reshape(out, (num_chunks * chunk, *row_shape))[:concrete_int(n)]


def antecedent_loss(scores, antecedents, antecedent_mask, top_starts, top_ends,
                    gold_starts, gold_ends, cluster_ids):
    """Σ over top spans of −log Σ_{gold antecedents (or the dummy)} softmax(scores).

    A top span's gold antecedents are its kept antecedents in the same gold
    cluster; a span with none (or in no cluster) has the dummy (column 0) as gold.
    """
    top_starts, top_ends = ops.cast(top_starts, "int32"), ops.cast(top_ends, "int32")
    gold_starts = ops.cast(gold_starts, "int32")
    gold_ends = ops.cast(gold_ends, "int32")
    cluster_ids = ops.cast(cluster_ids, "int32")
    same_span = ops.logical_and(ops.equal(gold_starts[:, None], top_starts[None, :]),
                                ops.equal(gold_ends[:, None], top_ends[None, :]))  # [M, k]
    top_clusters = ops.max(ops.concatenate([
        ops.zeros_like(top_starts)[None, :],
        ops.where(same_span, cluster_ids[:, None], 0)], 0), axis=0)              # [k]
    antecedent_clusters = ops.take(top_clusters, antecedents, axis=0)
    pairwise = ops.logical_and(
        ops.logical_and(ops.equal(antecedent_clusters, top_clusters[:, None]), antecedent_mask),
        top_clusters[:, None] > 0)
    dummy = ops.logical_not(ops.any(pairwise, axis=1, keepdims=True))
    labels = ops.concatenate([dummy, pairwise], axis=1)
    gold_scores = ops.where(labels, scores, NEG_INF)
    return ops.sum(ops.logsumexp(scores, axis=1) - ops.logsumexp(gold_scores, axis=1))
