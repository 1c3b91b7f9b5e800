"""The coreference model: c2f-coref "independent" (Joshi et al. 2019/2020) on our backbone.

One document per call, the dict of `segments.document_to_features` (see
`MODEL_INPUT_NAMES`, `GOLD_NAMES`): its segments are encoded independently by
the backbone ([S, max_segment_len]), the real subtokens flattened (T of them),
then, as the official `independent.py`:

1. candidates: every span inside one sentence of width <= `max_span_width`;
   span embedding g = [h_start; h_end; width embedding; head attention over
   the span's own window]; mention score = FFNN(g) + width prior;
2. pruning: k = min(`max_top_spans`, ⌊`top_span_ratio`·T⌋) spans, greedy by
   score, non-crossing (`layers.select_non_crossing_spans`), sorted by position;
3. coarse scores s_m(i) + s_m(j) + g_i·W·g_j + distance prior over the rank
   distance buckets; the top `max_top_antecedents` antecedents of each span;
4. fine scores FFNN([g_i; g_j; g_i∘g_j; same speaker, genre, distance,
   segment distance]), `coref_depth` rounds of higher-order inference (a gated
   mix of g_i and its attended antecedents); the dummy antecedent scores 0;
5. loss: −log Σ_{gold antecedents} softmax, summed over the top spans.

At prediction (`training=False`) candidate scoring and fine scoring run in
chunks (`candidate_chunk_size` starts, `antecedent_chunk_size` spans) so memory
does not grow with T × hidden size × 30 at once. Head layers compute in float32.

Backend: `keras.ops` only, so the same weights give the same outputs on TensorFlow
(eager, and `tf.function` with dynamic shapes: training, export), JAX and PyTorch
(eager only: T, the candidates and kept spans are data-dependent sizes, no `jax.jit`).

Example:
```python
config = load_coref_config("coref_tiny")
model = build_coref_model(config)
out = model(features)                 # features: dict of arrays of one document
out["top_antecedent_scores"].shape    # [k, c + 1]
clusters = predicted_clusters(out)    # clusters.py: [((start, end), (start, end)), ...]
```
The configs are in `config.py` (their names are importable from here too), the cluster
decoding in `clusters.py`, the `Trainer` task and `input_signature` in `task.py` (which
imports this module, never the other way round).
"""

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

import keras
from keras import ops

from spanbert_tf.modeling.backbone import build_backbone
from spanbert_tf.modeling.config import load_config
from spanbert_tf.modeling.span_layers import (
    NEG_INF, FeedForwardScorer, concrete_int, endpoint_span_embeddings, head_initializer,
    select_non_crossing_spans, sentence_span_grid)
from spanbert_tf.tasks.coref.layers import (
    NUM_DISTANCE_BUCKETS, antecedent_loss, bucket_distance, map_in_chunks,
    window_head_embeddings)

MODEL_INPUT_NAMES = ("input_ids", "input_mask", "speaker_ids", "sentence_map", "genre")
GOLD_NAMES = ("gold_starts", "gold_ends", "cluster_ids")
OUTPUT_NAMES = ("candidate_starts", "candidate_ends", "candidate_mention_scores",
                "top_span_starts", "top_span_ends", "top_span_mention_scores",
                "top_antecedents", "top_antecedent_scores")


@keras.saving.register_keras_serializable(package="spanbert_tf")
class CorefModel(keras.Model):
    """The c2f-coref independent model on a BERT backbone (one document per call).

    Args:
        backbone: a keras-hub BERT backbone (`SpanBertBackbone`), `.hidden_dim` set.
        the rest: as `CorefHeadConfig` (`max_segment_distance` = the number of
            segment-distance embeddings, `max_training_segments` officially).

    Call: `model(features, training=False)` with the arrays of `MODEL_INPUT_NAMES`
    (+ `GOLD_NAMES` to also get `"loss"`) → dict of `OUTPUT_NAMES` (+ "loss").
    """

    def __init__(self, backbone, max_span_width=30, feature_size=20, ffnn_size=3000,
                 ffnn_depth=1, max_top_spans=3900, top_span_ratio=0.4, max_top_antecedents=50,
                 coref_depth=2, num_genres=7, max_segment_distance=3, dropout_rate=0.3,
                 candidate_chunk_size=256, antecedent_chunk_size=256, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.max_span_width = max_span_width
        self.feature_size = feature_size
        self.ffnn_size = ffnn_size
        self.ffnn_depth = ffnn_depth
        self.max_top_spans = max_top_spans
        self.top_span_ratio = top_span_ratio
        self.max_top_antecedents = max_top_antecedents
        self.coref_depth = coref_depth
        self.num_genres = num_genres
        self.max_segment_distance = max_segment_distance
        self.dropout_rate = dropout_rate
        self.candidate_chunk_size = candidate_chunk_size
        self.antecedent_chunk_size = antecedent_chunk_size

        hidden = backbone.hidden_dim
        self.span_dim = 3 * hidden + feature_size
        pair_dim = 3 * self.span_dim + 4 * feature_size

        def embedding(rows, name):
            layer = keras.layers.Embedding(rows, feature_size, dtype="float32", name=name,
                                           embeddings_initializer=head_initializer())
            layer.build()
            return layer

        def dense(units, input_dim, name, activation=None):
            layer = keras.layers.Dense(units, activation=activation, dtype="float32", name=name,
                                       kernel_initializer=head_initializer())
            layer.build((None, input_dim))
            return layer

        def scorer(input_dim, name):
            layer = FeedForwardScorer(ffnn_size, ffnn_depth, 1, dropout_rate,
                                      dtype="float32", name=name)
            layer.build((None, input_dim))
            return layer

        self.dropout = keras.layers.Dropout(dropout_rate, dtype="float32", name="dropout")
        # Mentions.
        self.head_attention = dense(1, hidden, "head_attention")
        self.span_width_embedding = embedding(max_span_width, "span_width_embedding")
        self.mention_scorer = scorer(self.span_dim, "mention_scorer")
        self.width_prior_embedding = embedding(max_span_width, "width_prior_embedding")
        self.width_prior_scorer = scorer(feature_size, "width_prior_scorer")
        # Coarse antecedents.
        self.distance_prior_embedding = embedding(NUM_DISTANCE_BUCKETS, "distance_prior_embedding")
        self.distance_prior_projection = dense(1, feature_size, "distance_prior_projection")
        self.bilinear_projection = dense(self.span_dim, self.span_dim, "bilinear_projection")
        # Fine antecedents and higher-order inference.
        self.same_speaker_embedding = embedding(2, "same_speaker_embedding")
        self.genre_embedding = embedding(num_genres, "genre_embedding")
        self.antecedent_distance_embedding = embedding(NUM_DISTANCE_BUCKETS,
                                                       "antecedent_distance_embedding")
        self.segment_distance_embedding = embedding(max_segment_distance,
                                                    "segment_distance_embedding")
        self.antecedent_scorer = scorer(pair_dim, "antecedent_scorer")
        self.gate_projection = dense(self.span_dim, 2 * self.span_dim, "gate_projection")
        self.built = True

    # === Span embeddings and mention scores ===

    def _span_embeddings(self, tokens, token_logits, starts, widths, training):
        """[n, m, span_dim] embeddings of spans (starts[i], starts[i] + widths[i, j])."""
        num_tokens = ops.shape(tokens)[0]
        ends = ops.minimum(starts[:, None] + widths, num_tokens - 1)
        width_emb = self.dropout(self.span_width_embedding(widths), training=training)
        boundary = endpoint_span_embeddings(tokens, starts[:, None] + 0 * widths, ends,
                                            width_emb)                      # [n, m, 2H + F]
        head_emb = window_head_embeddings(tokens, token_logits, starts, widths,
                                          self.max_span_width)
        return ops.concatenate([boundary, head_emb], axis=-1)

    def _width_prior(self, training):
        """[W] width prior scores: the FFNN over the width table (no dropout on the table)."""
        table = self.width_prior_embedding.embeddings
        return self.width_prior_scorer(table, training=training)[:, 0]

    def _mention_scores(self, token_blocks, starts, ends, widths, head_emb, width_prior,
                        training):
        """Mention scores of spans (any leading shape), = mention_scorer(g) + width prior.

        The scorer's first layer is applied block by block to g = [h_start;
        h_end; width; head]: `token_blocks` holds h @ K_start and h @ K_end
        for every token ([T, ffnn_size] each, computed once), so only the
        head block costs a per-span matmul.
        """
        hidden = self.backbone.hidden_dim
        first = self.mention_scorer.first_layer
        width_kernel = first.kernel[2 * hidden:2 * hidden + self.feature_size]
        head_kernel = first.kernel[2 * hidden + self.feature_size:]
        width_emb = self.dropout(self.span_width_embedding(widths), training=training)
        pre = (ops.take(token_blocks[0], starts, axis=0)
               + ops.take(token_blocks[1], ends, axis=0)
               + ops.matmul(width_emb, width_kernel) + ops.matmul(head_emb, head_kernel)
               + first.bias)
        scores = self.mention_scorer.call_after_first_layer(pre, training=training)[..., 0]
        return scores + ops.take(width_prior, widths)

    def _candidate_mention_scores(self, tokens, token_logits, grid, training):
        """[num_candidates] mention scores of the candidates (start, width) `grid`.

        Training: the head embeddings of the whole [T, W] grid of (start,
        width) are computed at once (each start's window is shared by its W
        widths), then the candidates are gathered. Prediction: the grid is
        scored in chunks of `candidate_chunk_size` starts.
        """
        num_tokens = ops.shape(tokens)[0]
        width_prior = self._width_prior(training)
        hidden = self.backbone.hidden_dim
        kernel = self.mention_scorer.first_layer.kernel
        token_blocks = (ops.matmul(tokens, kernel[:hidden]),
                        ops.matmul(tokens, kernel[hidden:2 * hidden]))

        def grid_heads(starts):
            widths = ops.broadcast_to(ops.arange(self.max_span_width, dtype="int32")[None, :],
                                      (ops.shape(starts)[0], self.max_span_width))
            heads = window_head_embeddings(tokens, token_logits, starts, widths,
                                           self.max_span_width)                 # [n, W, H]
            return widths, heads

        grid_index = grid[:, 0] * self.max_span_width + grid[:, 1]     # into the flat [T * W]
        if training:
            _, heads = grid_heads(ops.arange(num_tokens, dtype="int32"))
            starts, widths = grid[:, 0], grid[:, 1]
            heads = ops.take(ops.reshape(heads, (-1, hidden)), grid_index, axis=0)
            return self._mention_scores(token_blocks, starts, starts + widths, widths,
                                        heads, width_prior, training)

        def score_grid(starts):
            widths, heads = grid_heads(starts)
            ends = ops.minimum(starts[:, None] + widths, num_tokens - 1)
            return self._mention_scores(token_blocks, starts[:, None] + 0 * widths, ends,
                                        widths, heads, width_prior, training)  # [n, W]

        grid_scores = map_in_chunks(score_grid, num_tokens, self.candidate_chunk_size, True)
        return ops.take(ops.reshape(grid_scores, (-1,)), grid_index)

    # === Antecedent scores ===

    def _coarse_antecedents(self, top_emb, top_scores, c, training):
        """Top-c antecedents by the coarse score: (indices, mask, scores, offsets) [k, c]."""
        k = ops.shape(top_emb)[0]
        rank = ops.arange(k, dtype="int32")
        offsets = rank[:, None] - rank[None, :]                                   # [k, k]
        mask = offsets >= 1
        source = self.dropout(self.bilinear_projection(top_emb), training=training)
        target = self.dropout(top_emb, training=training)
        scores = (top_scores[:, None] + top_scores[None, :]
                  + ops.matmul(source, ops.transpose(target)))
        prior_table = self.dropout(self.distance_prior_embedding.embeddings, training=training)
        prior = self.distance_prior_projection(prior_table)[:, 0]                 # [10]
        scores += ops.take(prior, bucket_distance(ops.maximum(offsets, 0)))
        scores = ops.where(mask, scores, NEG_INF)
        top_scores, antecedents = ops.top_k(scores, c)
        # Span i has i antecedents; its columns p >= i hold masked (tied) scores: TensorFlow's
        # top_k gives them the lowest indices (p itself), other backends' may not, so set them.
        column = ops.arange(c, dtype="int32")[None, :]
        antecedents = ops.where(column >= rank[:, None], column, ops.cast(antecedents, "int32"))
        offsets = rank[:, None] - antecedents
        return antecedents, offsets >= 1, top_scores, offsets

    def _fine_scores(self, rows, span_emb, span_blocks, antecedents, feature_ids, genre_emb,
                     training):
        """[m, c] fine scores FFNN([g_i; g_j; g_i∘g_j; features]) of the antecedents of `rows`.

        The scorer's first layer is applied block by block: `span_blocks` =
        (g @ K_i, g @ K_j) once per span ([k, ffnn_size] each); only the
        g_i∘g_j and feature blocks cost a per-pair matmul.
        """
        d = self.span_dim
        first = self.antecedent_scorer.first_layer
        ants = ops.take(antecedents, rows, axis=0)                                # [m, c]
        product = (ops.take(span_emb, rows, axis=0)[:, None, :]
                   * ops.take(span_emb, ants, axis=0))                            # [m, c, D]
        same_speaker, distance, segment_distance = (ops.take(f, rows, axis=0)
                                                    for f in feature_ids)
        features = ops.concatenate([
            self.same_speaker_embedding(same_speaker),
            ops.broadcast_to(genre_emb, (*ops.shape(same_speaker), self.feature_size)),
            self.antecedent_distance_embedding(distance),
            self.segment_distance_embedding(segment_distance)], axis=-1)
        features = self.dropout(features, training=training)
        pre = (ops.take(span_blocks[0], rows, axis=0)[:, None, :]
               + ops.take(span_blocks[1], ants, axis=0)
               + ops.matmul(product, first.kernel[2 * d:3 * d])
               + ops.matmul(features, first.kernel[3 * d:]) + first.bias)
        return self.antecedent_scorer.call_after_first_layer(pre, training=training)[..., 0]

    def _attend(self, span_emb, antecedents, scores):
        """Higher-order update: g ← f·a + (1 − f)·g, a = Σ softmax([0; scores])·[g; g_ants].

        The attended sum is a [k, k] weight matrix times g (a scatter), not a [k, c, D] gather.
        """
        k, c = ops.shape(antecedents)
        weights = ops.softmax(ops.concatenate([ops.zeros_like(scores[:, :1]), scores], 1), -1)
        rows = ops.broadcast_to(ops.arange(k, dtype="int32")[:, None], (k, c))
        indices = ops.stack([ops.reshape(rows, (-1,)), ops.reshape(antecedents, (-1,))], 1)
        # Each row's antecedents are distinct: writing into zeros = tf.scatter_nd's sum.
        matrix = ops.scatter_update(ops.zeros((k, k), weights.dtype), indices,
                                    ops.reshape(weights[:, 1:], (-1,)))
        attended = weights[:, :1] * span_emb + ops.matmul(matrix, span_emb)
        gate = ops.sigmoid(self.gate_projection(ops.concatenate([span_emb, attended], -1)))
        return gate * attended + (1.0 - gate) * span_emb

    # === The document ===

    def call(self, inputs, training=False):
        input_ids = ops.cast(inputs["input_ids"], "int32")
        input_mask = ops.cast(inputs["input_mask"], "int32")
        sequence = self.backbone({"token_ids": input_ids, "segment_ids": ops.zeros_like(input_ids),
                                  "padding_mask": input_mask}, training=training)["sequence_output"]
        segment_len = ops.shape(input_ids)[1]
        # The real subtokens: positions in the flattened [S * segment_len] segments.
        real = ops.cast(ops.nonzero(ops.reshape(input_mask, (-1,)))[0], "int32")      # [T]
        tokens = ops.cast(ops.take(ops.reshape(sequence, (-1, self.backbone.hidden_dim)), real,
                                   axis=0), "float32")                               # [T, H]
        token_segments = real // segment_len
        speakers = ops.take(ops.reshape(ops.cast(inputs["speaker_ids"], "int32"), (-1,)), real)
        sentence_map = ops.cast(inputs["sentence_map"], "int32")
        num_tokens = concrete_int(ops.shape(tokens)[0])
        token_logits = self.head_attention(tokens)[:, 0]
        chunked = not training

        # 1. Candidates (start, width) in row-major order = sorted by (start, end).
        grid = sentence_span_grid(sentence_map, self.max_span_width)
        candidate_starts, candidate_ends = grid[:, 0], grid[:, 0] + grid[:, 1]
        candidate_scores = self._candidate_mention_scores(tokens, token_logits, grid, training)

        # 2. Non-crossing top-k pruning.
        k = ops.minimum(self.max_top_spans, ops.cast(
            ops.floor(ops.cast(num_tokens, "float32") * self.top_span_ratio), "int32"))
        top = select_non_crossing_spans(candidate_scores, candidate_starts, candidate_ends,
                                        ops.maximum(k, 1), self.max_span_width)
        top_starts = ops.take(candidate_starts, top)
        top_ends = ops.take(candidate_ends, top)
        top_scores = ops.take(candidate_scores, top)
        top_emb = self._span_embeddings(tokens, token_logits, top_starts,
                                        (top_ends - top_starts)[:, None], training)[:, 0]
        num_top = concrete_int(ops.shape(top)[0])

        # 3. Coarse antecedents.
        c = concrete_int(ops.minimum(self.max_top_antecedents, num_top))
        antecedents, antecedent_mask, coarse, offsets = self._coarse_antecedents(
            top_emb, top_scores, c, training)

        # 4. Fine scores, higher-order inference.
        top_speakers = ops.take(speakers, top_starts)
        top_segments = ops.take(token_segments, top_starts)
        feature_ids = (
            ops.cast(ops.equal(top_speakers[:, None], ops.take(top_speakers, antecedents)),
                     "int32"),
            bucket_distance(offsets),
            ops.clip(top_segments[:, None] - ops.take(top_segments, antecedents),
                     0, self.max_segment_distance - 1))
        genre_emb = self.genre_embedding(ops.cast(inputs["genre"], "int32"))
        span_emb = top_emb
        kernel, d = self.antecedent_scorer.first_layer.kernel, self.span_dim
        for depth in range(self.coref_depth):
            blocks = (ops.matmul(span_emb, kernel[:d]), ops.matmul(span_emb, kernel[d:2 * d]))
            fine = map_in_chunks(
                lambda rows, g=span_emb, b=blocks: self._fine_scores(
                    rows, g, b, antecedents, feature_ids, genre_emb, training),
                num_top, self.antecedent_chunk_size, chunked)
            scores = coarse + fine
            if depth + 1 < self.coref_depth:
                span_emb = self._attend(span_emb, antecedents, scores)
        scores = ops.concatenate([ops.zeros_like(scores[:, :1]), scores], axis=1)  # [k, c + 1]

        outputs = {"candidate_starts": candidate_starts, "candidate_ends": candidate_ends,
                   "candidate_mention_scores": candidate_scores,
                   "top_span_starts": top_starts, "top_span_ends": top_ends,
                   "top_span_mention_scores": top_scores, "top_antecedents": antecedents,
                   "top_antecedent_scores": scores}
        if all(name in inputs for name in GOLD_NAMES):
            outputs["loss"] = antecedent_loss(scores, antecedents, antecedent_mask, top_starts,
                                              top_ends, *(inputs[name] for name in GOLD_NAMES))
        return outputs

    def get_config(self):
        # keras-hub's Task pattern (as SpanBertPretrainer): constructor arguments only.
        return {"name": self.name, "trainable": self.trainable,
                "backbone": keras.layers.serialize(self.backbone),
                "max_span_width": self.max_span_width, "feature_size": self.feature_size,
                "ffnn_size": self.ffnn_size, "ffnn_depth": self.ffnn_depth,
                "max_top_spans": self.max_top_spans, "top_span_ratio": self.top_span_ratio,
                "max_top_antecedents": self.max_top_antecedents,
                "coref_depth": self.coref_depth, "num_genres": self.num_genres,
                "max_segment_distance": self.max_segment_distance,
                "dropout_rate": self.dropout_rate,
                "candidate_chunk_size": self.candidate_chunk_size,
                "antecedent_chunk_size": self.antecedent_chunk_size}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)


def build_coref_model(config, backbone=None):
    """A `CorefModel` from a `CorefConfig`; a fresh backbone from `config.backbone` unless given."""
    if backbone is None:
        backbone = build_backbone(load_config(config.backbone).model)
    head = config.coref
    return CorefModel(
        backbone, max_span_width=head.max_span_width, feature_size=head.feature_size,
        ffnn_size=head.ffnn_size, ffnn_depth=head.ffnn_depth, max_top_spans=head.max_top_spans,
        top_span_ratio=head.top_span_ratio, max_top_antecedents=head.max_top_antecedents,
        coref_depth=head.coref_depth, num_genres=head.num_genres,
        max_segment_distance=head.max_training_segments, dropout_rate=head.dropout_rate,
        candidate_chunk_size=head.candidate_chunk_size,
        antecedent_chunk_size=head.antecedent_chunk_size)
