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
  custom op rewritten as a plain `tf.while_loop`, so that it exports in a
  SavedModel.
* `map_in_chunks`: `fn` over `[0, n)` in chunks (a `tf.map_fn`), bounding the
  memory of prediction on long documents.
* `antecedent_loss`: the marginal log-likelihood of the gold antecedents.

Backend: the Keras layers and the dense math use `keras.ops`; the pruning loop,
the chunked map and the document-level gathers use TensorFlow ops
(`tf.while_loop`, `tf.map_fn`, `tf.gather`, `tf.tensor_scatter_nd_*`).

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
import tensorflow as tf
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
    num_tokens = tf.shape(tokens)[0]
    offsets = tf.range(max_span_width, dtype=tf.int32)
    positions = starts[:, None] + offsets[None, :]                     # [n, W]
    in_doc = positions < num_tokens
    positions = tf.minimum(positions, num_tokens - 1)
    window = tf.gather(tokens, positions)                              # [n, W, H]
    logits = tf.gather(token_logits, positions)                        # [n, W]
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
    spans or when all are visited. A plain `tf.while_loop`: for each visited
    span only its ≤ `max_span_width`-token window of two [T] tables is read
    (the largest end of a kept span starting at each token, the smallest
    start of a kept span ending at each token).

    Args:
        scores: [n] float scores.
        starts, ends: [n] int32 inclusive token spans, ends - starts < max_span_width.
        k: int scalar, the most spans to keep.
        max_span_width: int, the window length.

    Returns:
        [k'] int32 indices into the n spans (k' <= k), in increasing index
        order (so sorted by (start, end) when the spans are).
    """
    return _select_non_crossing_spans(
        tf.cast(scores, tf.float32), tf.cast(starts, tf.int32), tf.cast(ends, tf.int32),
        tf.cast(k, tf.int32), tf.cast(max_span_width, tf.int32))


# A graph even when called eagerly (a fast loop); any length, including none.
@tf.function(input_signature=[tf.TensorSpec([None], tf.float32), tf.TensorSpec([None], tf.int32),
                              tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32),
                              tf.TensorSpec([], tf.int32)])
def _select_non_crossing_spans(scores, starts, ends, k, max_span_width):
    num_spans = tf.shape(scores)[0]
    num_tokens = tf.reduce_max(tf.concat([ends, [-1]], 0)) + 1
    order = tf.argsort(scores, direction="DESCENDING", stable=True)
    offsets = tf.range(max_span_width, dtype=tf.int32)

    def keep_going(i, count, *_):
        return tf.logical_and(i < num_spans, count < k)

    def visit(i, count, kept, max_end_by_start, min_start_by_end):
        index = order[i]
        start, end = starts[index], ends[index]
        window = start + offsets
        in_span = window <= end
        safe_window = tf.minimum(window, num_tokens - 1)
        # A kept span starting strictly inside (start, end] and ending after `end`.
        starts_inside = tf.logical_and(in_span, window > start)
        crosses_right = tf.reduce_any(tf.logical_and(
            starts_inside, tf.gather(max_end_by_start, safe_window) > end))
        # A kept span ending inside [start, end) and starting before `start`.
        ends_inside = tf.logical_and(in_span, window < end)
        crosses_left = tf.reduce_any(tf.logical_and(
            ends_inside, tf.gather(min_start_by_end, safe_window) < start))
        accept = tf.logical_not(tf.logical_or(crosses_right, crosses_left))
        kept = tf.tensor_scatter_nd_update(kept, [[index]], [accept])
        max_end_by_start = tf.tensor_scatter_nd_max(
            max_end_by_start, [[start]], [tf.where(accept, end, -1)])
        min_start_by_end = tf.tensor_scatter_nd_min(
            min_start_by_end, [[end]], [tf.where(accept, start, num_tokens)])
        return (i + 1, count + tf.cast(accept, tf.int32), kept,
                max_end_by_start, min_start_by_end)

    initial = (tf.constant(0), tf.constant(0), tf.zeros([num_spans], tf.bool),
               tf.fill([num_tokens], -1), tf.fill([num_tokens], num_tokens))
    _, _, kept, _, _ = tf.while_loop(keep_going, visit, initial)
    return tf.cast(tf.reshape(tf.where(kept), [-1]), tf.int32)


def map_in_chunks(fn, n, chunk_size, chunked):
    """`fn(indices)` over indices [0, n), in chunks of `chunk_size` when `chunked`.

    `fn` maps an int32 index vector [m] to a float32 tensor [m, ...] whose
    other dims do not depend on m's value. Unchunked: `fn(range(n))`. Chunked
    (prediction): a sequential `tf.map_fn` over chunks (the last chunk padded
    with the index n - 1, its rows then dropped), so peak memory scales with
    `chunk_size`, not n. Chunking is for inference only (`fn` must not create
    variables or draw dropout masks).
    """
    indices = tf.range(n, dtype=tf.int32)
    if not chunked:
        return fn(indices)
    n = tf.convert_to_tensor(n, tf.int32)
    chunk = tf.maximum(tf.minimum(tf.cast(chunk_size, tf.int32), n), 1)
    num_chunks = tf.maximum((n + chunk - 1) // chunk, 1)      # one chunk even if n == 0
    padded = tf.minimum(tf.range(num_chunks * chunk, dtype=tf.int32), tf.maximum(n - 1, 0))
    chunks = tf.reshape(padded, [num_chunks, chunk])
    out = tf.map_fn(fn, chunks, fn_output_signature=tf.float32, parallel_iterations=1)
    out_shape = tf.concat([[num_chunks * chunk], tf.shape(out)[2:]], 0)
    return tf.reshape(out, out_shape)[:n]


def antecedent_loss(scores, antecedents, antecedent_mask, top_starts, top_ends,
                    gold_starts, gold_ends, cluster_ids):
    """Σ over top spans of −log Σ_{gold antecedents (or the dummy)} softmax(scores).

    A top span's gold antecedents are its kept antecedents in the same gold
    cluster; a span with none (or in no cluster) has the dummy (column 0) as gold.
    """
    top_starts, top_ends = tf.cast(top_starts, tf.int32), tf.cast(top_ends, tf.int32)
    gold_starts = tf.cast(gold_starts, tf.int32)
    gold_ends = tf.cast(gold_ends, tf.int32)
    cluster_ids = tf.cast(cluster_ids, tf.int32)
    same_span = tf.logical_and(tf.equal(gold_starts[:, None], top_starts[None, :]),
                               tf.equal(gold_ends[:, None], top_ends[None, :]))   # [M, k]
    top_clusters = tf.reduce_max(tf.concat([
        tf.zeros_like(top_starts)[None, :],
        tf.where(same_span, cluster_ids[:, None], 0)], 0), axis=0)               # [k]
    antecedent_clusters = tf.gather(top_clusters, antecedents)
    pairwise = tf.logical_and(
        tf.logical_and(tf.equal(antecedent_clusters, top_clusters[:, None]), antecedent_mask),
        top_clusters[:, None] > 0)
    dummy = tf.logical_not(tf.reduce_any(pairwise, axis=1, keepdims=True))
    labels = tf.concat([dummy, pairwise], axis=1)
    gold_scores = ops.where(labels, scores, NEG_INF)
    return ops.sum(ops.logsumexp(scores, axis=1) - ops.logsumexp(gold_scores, axis=1))
