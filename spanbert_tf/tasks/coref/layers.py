"""Building blocks of the coreference model: scorers, span heads, pruning.

* `FeedForwardScorer`: the c2f-coref FFNN (`depth` × [Dense(size) → ReLU →
  Dropout] → Dense(output)), all weights N(0, 0.02) truncated, as the
  official `util.ffnn`.
* `window_head_embeddings`: the head-attention ("soft head word") embedding of
  spans, computed over each span's own ≤ `max_span_width`-token window, so no
  `[num_candidates, num_tokens]` attention matrix is ever built (the official
  code's out-of-memory on long documents).
* `bucket_distance`: the 10 semi-log buckets [0, 1, 2, 3, 4, 5–7, 8–15,
  16–31, 32–63, 64+].
* `select_non_crossing_spans`: greedy top-k span pruning by score that never
  keeps two crossing spans (nesting allowed), the official `extract_spans`
  custom op rewritten as a plain `ops.while_loop`, so that it exports in a
  SavedModel.
* `map_in_chunks`: `fn` over `[0, n)` in chunks (an `ops.scan`), bounding the
  memory of prediction on long documents.
* `antecedent_loss`: the marginal log-likelihood of the gold antecedents.

Backend: `keras.ops` only, so the same code runs on TensorFlow (in graphs with
dynamic shapes too: training and the SavedModel export), and eagerly on JAX
and PyTorch (data-dependent sizes such as the number of kept spans are
concrete there: not under `jax.jit`). `concrete_int` turns such sizes into
Python ints where they are known.

Example:
```python
scorer = FeedForwardScorer(hidden_size=3000, depth=1, dropout=0.3)
scores = scorer(span_embeddings)                     # [n, 1]
kept = select_non_crossing_spans(scores[:, 0], starts, ends, k=40, max_span_width=30)
```
"""

import math

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

import keras
from keras import ops

NUM_DISTANCE_BUCKETS = 10
NEG_INF = -1e9  # additive mask value (finite: no inf * 0 = nan in gradients)


def coref_initializer():
    """N(0, 0.02) truncated, the official c2f-coref initializer of every head weight."""
    return keras.initializers.TruncatedNormal(stddev=0.02)


@keras.saving.register_keras_serializable(package="spanbert_tf")
class FeedForwardScorer(keras.layers.Layer):
    """`depth` hidden ReLU layers with dropout, then a linear output layer.

    Args:
        hidden_size: width of each hidden layer (3000 in SpanBERT coref).
        depth: number of hidden layers (1; 0 = a linear projection).
        output_size: width of the output (1 for a score).
        dropout: dropout rate after each hidden layer.

    Example:
    ```python
    scorer = FeedForwardScorer(3000, 1, output_size=1, dropout=0.3)
    scorer(x)          # x [..., d] -> [..., 1]
    ```
    """

    def __init__(self, hidden_size, depth, output_size=1, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.depth = depth
        self.output_size = output_size
        self.dropout_rate = dropout
        # One attribute per hidden layer (not a list): tf.train.Checkpoint tracks
        # Keras 3 layers held in attributes, not in Python lists.
        for i in range(depth):
            setattr(self, f"hidden_{i}", keras.layers.Dense(
                hidden_size, kernel_initializer=coref_initializer(),
                dtype=self.dtype_policy, name=f"hidden_{i}"))
        self.dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)
        self.output_layer = keras.layers.Dense(
            output_size, kernel_initializer=coref_initializer(),
            dtype=self.dtype_policy, name="output")

    @property
    def hidden_layers(self):
        return [getattr(self, f"hidden_{i}") for i in range(self.depth)]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.hidden_layers:
            layer.build(shape)
            shape = shape[:-1] + (self.hidden_size,)
        self.output_layer.build(shape)

    def call(self, inputs, training=False):
        return self.call_after_first_layer(self.first_layer(inputs), training=training)

    @property
    def first_layer(self):
        """The Dense layer applied to the inputs (its kernel may be applied in blocks)."""
        return self.hidden_layers[0] if self.hidden_layers else self.output_layer

    def call_after_first_layer(self, first_outputs, training=False):
        """The rest of the network given `first_layer(inputs)` (before its ReLU).

        `first_layer(concat([a, b]))` = `a @ K_a + b @ K_b + bias`, so a caller
        may compute the first layer block by block (each block once per
        token instead of once per span) and finish here.
        """
        if not self.hidden_layers:
            return first_outputs
        x = self.dropout(ops.relu(first_outputs), training=training)
        for layer in self.hidden_layers[1:]:
            x = self.dropout(ops.relu(layer(x)), training=training)
        return self.output_layer(x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.output_size,)

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_size": self.hidden_size, "depth": self.depth,
                       "output_size": self.output_size, "dropout": self.dropout_rate})
        return config


def bucket_distance(distances):
    """Semi-log buckets of non-negative int distances: 0..4 as is, then 5-7, 8-15, ... 64+ → 9."""
    distances = ops.cast(distances, "int32")
    safe = ops.cast(ops.maximum(distances, 1), "float32")
    log_bucket = ops.cast(ops.floor(ops.log(safe) / math.log(2)), "int32") + 3
    bucket = ops.where(distances <= 4, distances, log_bucket)
    return ops.clip(bucket, 0, NUM_DISTANCE_BUCKETS - 1)


def concrete_int(value):
    """`value` as a Python int where it is known (eager JAX/PyTorch/TensorFlow), else as is.

    Sizes computed from the data (numbers of tokens, spans, antecedents) are
    scalar tensors inside a TensorFlow graph (training and export trace with
    dynamic shapes) and must stay so there; JAX and PyTorch take shapes and
    `top_k`'s k as Python ints.
    """
    try:
        return int(value)
    except TypeError:          # a symbolic TensorFlow tensor (or a JAX tracer)
        return value


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


def select_non_crossing_spans(scores, starts, ends, k, max_span_width):
    """Greedy top-k spans by score, never two crossing spans (nesting allowed).

    Spans are visited by decreasing score (ties: lower index first); a span
    is kept unless it crosses a kept one, i.e. some kept (s', e') has
    s < s' <= e < e' or s' < s <= e' < e; the loop stops after `k` kept
    spans or when all are visited. A plain `ops.while_loop` (a `tf.while_loop`
    in TensorFlow graphs, so it exports; `jax.lax.while_loop`; a Python loop
    on PyTorch and in eager TensorFlow): for each visited span only its
    ≤ `max_span_width`-token window of two [T] tables is read (the largest
    end of a kept span starting at each token, the smallest start of a kept
    span ending at each token).

    Args:
        scores: [n] float scores.
        starts, ends: [n] int32 inclusive token spans, ends - starts < max_span_width.
        k: int scalar, the most spans to keep.
        max_span_width: int, the window length.

    Returns:
        [k'] int32 indices into the n spans (k' <= k), in increasing index
        order (so sorted by (start, end) when the spans are).
    """
    scores = ops.cast(scores, "float32")
    starts, ends = ops.cast(starts, "int32"), ops.cast(ends, "int32")
    num_spans = concrete_int(ops.shape(scores)[0])
    if isinstance(num_spans, int) and num_spans == 0:
        return ops.zeros((0,), "int32")
    num_tokens = concrete_int(ops.max(ops.concatenate([ends, ops.full((1,), -1, "int32")])) + 1)
    k = ops.cast(k, "int32")
    # Decreasing score, ties in index order (a stable sort of the negated scores).
    order = ops.cast(ops.argsort(-scores), "int32")
    offsets = ops.arange(max_span_width, dtype="int32")

    def keep_going(i, count, *_):
        return ops.logical_and(i < num_spans, count < k)

    def visit(i, count, kept, max_end_by_start, min_start_by_end):
        index = ops.take(order, i)
        start, end = ops.take(starts, index), ops.take(ends, index)
        window = start + offsets
        in_span = window <= end
        safe_window = ops.minimum(window, num_tokens - 1)
        # A kept span starting strictly inside (start, end] and ending after `end`.
        starts_inside = ops.logical_and(in_span, window > start)
        crosses_right = ops.any(ops.logical_and(
            starts_inside, ops.take(max_end_by_start, safe_window) > end))
        # A kept span ending inside [start, end) and starting before `start`.
        ends_inside = ops.logical_and(in_span, window < end)
        crosses_left = ops.any(ops.logical_and(
            ends_inside, ops.take(min_start_by_end, safe_window) < start))
        accept = ops.logical_not(ops.logical_or(crosses_right, crosses_left))
        kept = ops.scatter_update(kept, ops.reshape(index, (1, 1)), ops.reshape(accept, (1,)))
        new_end = ops.maximum(ops.take(max_end_by_start, start), ops.where(accept, end, -1))
        max_end_by_start = ops.scatter_update(max_end_by_start, ops.reshape(start, (1, 1)),
                                              ops.reshape(new_end, (1,)))
        new_start = ops.minimum(ops.take(min_start_by_end, end),
                                ops.where(accept, start, num_tokens))
        min_start_by_end = ops.scatter_update(min_start_by_end, ops.reshape(end, (1, 1)),
                                              ops.reshape(new_start, (1,)))
        return (i + 1, count + ops.cast(accept, "int32"), kept,
                max_end_by_start, min_start_by_end)

    initial = (ops.convert_to_tensor(0, "int32"), ops.convert_to_tensor(0, "int32"),
               ops.zeros((num_spans,), "bool"), ops.full((num_tokens,), -1, "int32"),
               ops.full((num_tokens,), num_tokens, "int32"))
    _, _, kept, _, _ = ops.while_loop(keep_going, visit, initial)
    return ops.cast(ops.nonzero(kept)[0], "int32")


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
