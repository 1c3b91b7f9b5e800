"""Span layers shared by the span tasks (coreference, named entities).

* `FeedForwardScorer`: the c2f-coref FFNN (`depth` x [Dense(size) -> ReLU ->
  Dropout] -> Dense(output)), all weights N(0, 0.02) truncated (`head_initializer`),
  as the official `util.ffnn`.
* `sentence_span_grid`: every (start, width) span of <= `max_span_width` tokens inside
  one sentence, in (start, end) order.
* `endpoint_span_embeddings`: the span representation [h_start; h_end; width
  embedding] (coreference adds its head attention to it).
* `select_non_crossing_spans`: greedy top-k spans by score that never keeps two
  crossing spans (nesting allowed), the official c2f-coref `extract_spans` custom op
  rewritten as a plain `ops.while_loop`, so that it exports in a SavedModel
  (coreference pruning, entity decoding).
* `concrete_int`: data-dependent sizes as Python ints where they are known.

Backend: `keras.ops` only (TensorFlow in graphs with dynamic shapes, eager JAX and
PyTorch).

Example:
```python
grid = sentence_span_grid(sentence_map, max_span_width=8)        # [n, 2] (start, width)
emb = endpoint_span_embeddings(tokens, starts, ends, width_layer(widths))
kept = select_non_crossing_spans(scores, starts, ends, k=40, max_span_width=30)
```
"""

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

import keras
from keras import ops

NEG_INF = -1e9  # additive mask value (finite: no inf * 0 = nan in gradients)


def head_initializer():
    """N(0, 0.02) truncated: the official c2f-coref initializer of every head weight."""
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
                hidden_size, kernel_initializer=head_initializer(),
                dtype=self.dtype_policy, name=f"hidden_{i}"))
        self.dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)
        self.output_layer = keras.layers.Dense(
            output_size, kernel_initializer=head_initializer(),
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


def sentence_span_grid(sentence_map, max_span_width):
    """[n, 2] int32 (start, width - 1) of every span of <= `max_span_width` tokens whose
    tokens share one sentence id (`sentence_map` [T]), sorted by (start, end)."""
    sentence_map = ops.cast(sentence_map, "int32")
    num_tokens = concrete_int(ops.shape(sentence_map)[0])
    ends = (ops.arange(num_tokens, dtype="int32")[:, None]
            + ops.arange(max_span_width, dtype="int32")[None, :])
    same_sentence = ops.equal(ops.take(sentence_map, ops.minimum(ends, num_tokens - 1)),
                              sentence_map[:, None])
    grid = ops.stack(ops.nonzero(ops.logical_and(ends < num_tokens, same_sentence)), 1)
    return ops.cast(grid, "int32")


def endpoint_span_embeddings(tokens, starts, ends, width_embeddings):
    """[..., 2H + F] = [h_start; h_end; width embedding] of spans.

    Args:
        tokens: [T, H] token embeddings, or [B, T, H] (then `starts`/`ends` are [B, ...]
            indices into each row's T tokens).
        starts, ends: int32 indices (same shape) of each span's first and last token.
        width_embeddings: [..., F] the spans' width embeddings (the same leading shape).
    """
    starts, ends = ops.cast(starts, "int32"), ops.cast(ends, "int32")
    if len(ops.shape(tokens)) == 3:
        batch, length, hidden = ops.shape(tokens)
        rows = ops.reshape(ops.arange(batch, dtype="int32") * length,
                           (-1,) + (1,) * (len(ops.shape(starts)) - 1))
        tokens = ops.reshape(tokens, (-1, hidden))
        starts, ends = starts + rows, ends + rows
    start_emb = ops.take(tokens, starts, axis=0)
    end_emb = ops.take(tokens, ends, axis=0)
    return ops.concatenate([start_emb, end_emb, ops.cast(width_embeddings, start_emb.dtype)],
                           axis=-1)
