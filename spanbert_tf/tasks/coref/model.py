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

Example:
```python
config = load_coref_config("coref_tiny")
model = build_coref_model(config)
out = model(features)                 # features: dict of arrays of one document
out["top_antecedent_scores"].shape    # [k, c + 1]
clusters = predicted_clusters(out)    # [((start, end), (start, end)), ...]
```
"""

import dataclasses

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from spanbert_tf.modeling.backbone import build_backbone
from spanbert_tf.modeling.config import (
    _section_from_dict, config_path, load_config, read_json_file)
from spanbert_tf.tasks.coref.layers import (
    NEG_INF, NUM_DISTANCE_BUCKETS, FeedForwardScorer, bucket_distance, coref_initializer,
    map_in_chunks, select_non_crossing_spans, window_head_embeddings)

MODEL_INPUT_NAMES = ("input_ids", "input_mask", "speaker_ids", "sentence_map", "genre")
GOLD_NAMES = ("gold_starts", "gold_ends", "cluster_ids")
OUTPUT_NAMES = ("candidate_starts", "candidate_ends", "candidate_mention_scores",
                "top_span_starts", "top_span_ends", "top_span_mention_scores",
                "top_antecedents", "top_antecedent_scores")


@dataclasses.dataclass
class CorefHeadConfig:
    """Hyperparameters of the coreference head and of the document windows."""

    max_segment_len: int = 384
    max_training_segments: int = 3
    max_span_width: int = 30
    feature_size: int = 20
    ffnn_size: int = 3000
    ffnn_depth: int = 1
    max_top_spans: int = 3900
    top_span_ratio: float = 0.4
    max_top_antecedents: int = 50
    coref_depth: int = 2
    num_genres: int = 7
    dropout_rate: float = 0.3
    candidate_chunk_size: int = 256
    antecedent_chunk_size: int = 256

    def validate(self, source="config"):
        for name, field in self.__dataclass_fields__.items():
            if field.type is int and getattr(self, name) < (0 if name == "ffnn_depth" else 1):
                raise ValueError(f"{source}: coref.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.top_span_ratio <= 1.0:
            raise ValueError(f"{source}: coref.top_span_ratio must be in (0, 1], "
                             f"got {self.top_span_ratio}")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"{source}: coref.dropout_rate must be in [0, 1), "
                             f"got {self.dropout_rate}")


@dataclasses.dataclass
class CorefOptimizerConfig:
    """Two parameter groups: the backbone (AdamW, warmup) and the task layers (Adam)."""

    bert_learning_rate: float = 2e-5
    task_learning_rate: float = 1e-4
    num_epochs: int = 20
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    adam_epsilon: float = 1e-6
    clip_norm: float = 1.0

    def validate(self, source="config"):
        for name in ("bert_learning_rate", "task_learning_rate", "num_epochs", "adam_epsilon"):
            if getattr(self, name) <= 0:
                raise ValueError(
                    f"{source}: optimizer.{name} must be > 0, got {getattr(self, name)}")
        for name in ("warmup_ratio", "weight_decay", "clip_norm"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"{source}: optimizer.{name} must be >= 0, got {getattr(self, name)}")


@dataclasses.dataclass
class CorefConfig:
    """One `configs/coref_*.json`: the backbone config name (used when no
    model dir is given), the head and the optimizer settings."""

    name: str
    backbone: str
    coref: CorefHeadConfig
    optimizer: CorefOptimizerConfig

    def to_dict(self):
        return {"name": self.name, "backbone": self.backbone,
                "coref": dataclasses.asdict(self.coref),
                "optimizer": dataclasses.asdict(self.optimizer)}


def load_coref_config(name_or_path):
    """Loads `configs/<name>.json` ("coref_tiny", ...) or a path; unknown or missing keys fail."""
    path = config_path(name_or_path)
    data = read_json_file(path, what="coref config")
    expected = {"name", "backbone", "coref", "optimizer"}
    if set(data) != expected:
        raise ValueError(f"{path}: expected top-level keys {sorted(expected)}, got {sorted(data)}")
    for key in ("name", "backbone"):
        if not isinstance(data[key], str) or not data[key]:
            raise ValueError(f"{path}: '{key}' must be a non-empty string, got {data[key]!r}")
    return CorefConfig(
        name=data["name"], backbone=data["backbone"],
        coref=_section_from_dict(CorefHeadConfig, data["coref"], "coref", str(path)),
        optimizer=_section_from_dict(CorefOptimizerConfig, data["optimizer"], "optimizer",
                                     str(path)))


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
                                           embeddings_initializer=coref_initializer())
            layer.build()
            return layer

        def dense(units, input_dim, name, activation=None):
            layer = keras.layers.Dense(units, activation=activation, dtype="float32", name=name,
                                       kernel_initializer=coref_initializer())
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
        num_tokens = tf.shape(tokens)[0]
        ends = tf.minimum(starts[:, None] + widths, num_tokens - 1)
        end_emb = tf.gather(tokens, ends)                                         # [n, m, H]
        start_emb = tf.broadcast_to(tf.gather(tokens, starts)[:, None, :], tf.shape(end_emb))
        width_emb = self.dropout(self.span_width_embedding(widths), training=training)
        head_emb = window_head_embeddings(tokens, token_logits, starts, widths,
                                          self.max_span_width)
        return ops.concatenate([start_emb, end_emb, width_emb, head_emb], axis=-1)

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
        pre = (tf.gather(token_blocks[0], starts) + tf.gather(token_blocks[1], ends)
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
        num_tokens = tf.shape(tokens)[0]
        width_prior = self._width_prior(training)
        hidden = self.backbone.hidden_dim
        kernel = self.mention_scorer.first_layer.kernel
        token_blocks = (ops.matmul(tokens, kernel[:hidden]),
                        ops.matmul(tokens, kernel[hidden:2 * hidden]))

        def grid_heads(starts):
            widths = tf.broadcast_to(tf.range(self.max_span_width)[None, :],
                                     [tf.shape(starts)[0], self.max_span_width])
            heads = window_head_embeddings(tokens, token_logits, starts, widths,
                                           self.max_span_width)                 # [n, W, H]
            return widths, heads

        if training:
            _, heads = grid_heads(tf.range(num_tokens))
            starts, widths = grid[:, 0], grid[:, 1]
            return self._mention_scores(token_blocks, starts, starts + widths, widths,
                                        tf.gather_nd(heads, grid), width_prior, training)

        def score_grid(starts):
            widths, heads = grid_heads(starts)
            ends = tf.minimum(starts[:, None] + widths, num_tokens - 1)
            return self._mention_scores(token_blocks, starts[:, None] + 0 * widths, ends,
                                        widths, heads, width_prior, training)  # [n, W]

        grid_scores = map_in_chunks(score_grid, num_tokens, self.candidate_chunk_size, True)
        return tf.gather_nd(grid_scores, grid)

    # === Antecedent scores ===

    def _coarse_antecedents(self, top_emb, top_scores, c, training):
        """Top-c antecedents by the coarse score: (indices, mask, scores, offsets) [k, c]."""
        k = tf.shape(top_emb)[0]
        rank = tf.range(k)
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
        top_scores, antecedents = tf.math.top_k(scores, c)                       # TF: top_k
        return (antecedents, tf.gather(mask, antecedents, batch_dims=1), top_scores,
                tf.gather(offsets, antecedents, batch_dims=1))

    def _fine_scores(self, rows, span_emb, span_blocks, antecedents, feature_ids, genre_emb,
                     training):
        """[m, c] fine scores FFNN([g_i; g_j; g_i∘g_j; features]) of the antecedents of `rows`.

        The scorer's first layer is applied block by block: `span_blocks` =
        (g @ K_i, g @ K_j) once per span ([k, ffnn_size] each); only the
        g_i∘g_j and feature blocks cost a per-pair matmul.
        """
        d = self.span_dim
        first = self.antecedent_scorer.first_layer
        ants = tf.gather(antecedents, rows)                                       # [m, c]
        product = tf.gather(span_emb, rows)[:, None, :] * tf.gather(span_emb, ants)  # [m, c, D]
        same_speaker, distance, segment_distance = (tf.gather(f, rows) for f in feature_ids)
        features = ops.concatenate([
            self.same_speaker_embedding(same_speaker),
            tf.broadcast_to(genre_emb, tf.concat([tf.shape(same_speaker), [self.feature_size]], 0)),
            self.antecedent_distance_embedding(distance),
            self.segment_distance_embedding(segment_distance)], axis=-1)
        features = self.dropout(features, training=training)
        pre = (tf.gather(span_blocks[0], rows)[:, None, :] + tf.gather(span_blocks[1], ants)
               + ops.matmul(product, first.kernel[2 * d:3 * d])
               + ops.matmul(features, first.kernel[3 * d:]) + first.bias)
        return self.antecedent_scorer.call_after_first_layer(pre, training=training)[..., 0]

    def _attend(self, span_emb, antecedents, scores):
        """Higher-order update: g ← f·a + (1 − f)·g, a = Σ softmax([0; scores])·[g; g_ants].

        The attended sum is a [k, k] weight matrix times g (a scatter), not a [k, c, D] gather.
        """
        k, c = tf.shape(antecedents)[0], tf.shape(antecedents)[1]
        weights = ops.softmax(ops.concatenate([ops.zeros_like(scores[:, :1]), scores], 1), -1)
        rows = tf.repeat(tf.range(k), c)
        indices = tf.stack([rows, tf.reshape(antecedents, [-1])], 1)
        matrix = tf.scatter_nd(indices, tf.reshape(weights[:, 1:], [-1]), [k, k])
        attended = weights[:, :1] * span_emb + ops.matmul(matrix, span_emb)
        gate = ops.sigmoid(self.gate_projection(ops.concatenate([span_emb, attended], -1)))
        return gate * attended + (1.0 - gate) * span_emb

    # === The document ===

    def call(self, inputs, training=False):
        input_ids = tf.convert_to_tensor(inputs["input_ids"], tf.int32)
        input_mask = tf.convert_to_tensor(inputs["input_mask"], tf.int32)
        sequence = self.backbone({"token_ids": input_ids, "segment_ids": tf.zeros_like(input_ids),
                                  "padding_mask": input_mask}, training=training)["sequence_output"]
        num_segments, segment_len = tf.shape(input_ids)[0], tf.shape(input_ids)[1]
        real = tf.reshape(input_mask, [-1]) > 0
        tokens = tf.cast(tf.boolean_mask(tf.reshape(sequence, [num_segments * segment_len, -1]),
                                         real), tf.float32)                     # [T, H]
        token_segments = tf.boolean_mask(tf.repeat(tf.range(num_segments), segment_len), real)
        speakers = tf.boolean_mask(tf.reshape(tf.cast(inputs["speaker_ids"], tf.int32), [-1]), real)
        sentence_map = tf.cast(inputs["sentence_map"], tf.int32)
        num_tokens = tf.shape(tokens)[0]
        token_logits = self.head_attention(tokens)[:, 0]
        chunked = not training

        # 1. Candidates (start, width) in row-major order = sorted by (start, end).
        ends = tf.range(num_tokens)[:, None] + tf.range(self.max_span_width)[None, :]
        same_sentence = tf.equal(tf.gather(sentence_map, tf.minimum(ends, num_tokens - 1)),
                                 sentence_map[:, None])
        grid = tf.cast(tf.where(tf.logical_and(ends < num_tokens, same_sentence)), tf.int32)
        candidate_starts, candidate_ends = grid[:, 0], grid[:, 0] + grid[:, 1]
        candidate_scores = self._candidate_mention_scores(tokens, token_logits, grid, training)

        # 2. Non-crossing top-k pruning.
        k = tf.minimum(self.max_top_spans, tf.cast(
            tf.floor(tf.cast(num_tokens, tf.float32) * self.top_span_ratio), tf.int32))
        top = select_non_crossing_spans(candidate_scores, candidate_starts, candidate_ends,
                                        tf.maximum(k, 1), self.max_span_width)
        top_starts, top_ends = tf.gather(candidate_starts, top), tf.gather(candidate_ends, top)
        top_scores = tf.gather(candidate_scores, top)
        top_emb = self._span_embeddings(tokens, token_logits, top_starts,
                                        (top_ends - top_starts)[:, None], training)[:, 0]

        # 3. Coarse antecedents.
        c = tf.minimum(self.max_top_antecedents, tf.shape(top)[0])
        antecedents, antecedent_mask, coarse, offsets = self._coarse_antecedents(
            top_emb, top_scores, c, training)

        # 4. Fine scores, higher-order inference.
        top_speakers = tf.gather(speakers, top_starts)
        top_segments = tf.gather(token_segments, top_starts)
        feature_ids = (
            tf.cast(tf.equal(top_speakers[:, None], tf.gather(top_speakers, antecedents)),
                    tf.int32),
            bucket_distance(offsets),
            tf.clip_by_value(top_segments[:, None] - tf.gather(top_segments, antecedents),
                             0, self.max_segment_distance - 1))
        genre_emb = self.genre_embedding(tf.cast(inputs["genre"], tf.int32))
        span_emb = top_emb
        kernel, d = self.antecedent_scorer.first_layer.kernel, self.span_dim
        for depth in range(self.coref_depth):
            blocks = (ops.matmul(span_emb, kernel[:d]), ops.matmul(span_emb, kernel[d:2 * d]))
            fine = map_in_chunks(
                lambda rows, g=span_emb, b=blocks: self._fine_scores(
                    rows, g, b, antecedents, feature_ids, genre_emb, training),
                tf.shape(top)[0], self.antecedent_chunk_size, chunked)
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
        return {"backbone": keras.saving.serialize_keras_object(self.backbone),
                "max_span_width": self.max_span_width, "feature_size": self.feature_size,
                "ffnn_size": self.ffnn_size, "ffnn_depth": self.ffnn_depth,
                "max_top_spans": self.max_top_spans, "top_span_ratio": self.top_span_ratio,
                "max_top_antecedents": self.max_top_antecedents,
                "coref_depth": self.coref_depth, "num_genres": self.num_genres,
                "max_segment_distance": self.max_segment_distance,
                "dropout_rate": self.dropout_rate,
                "candidate_chunk_size": self.candidate_chunk_size,
                "antecedent_chunk_size": self.antecedent_chunk_size, "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)


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


def input_signature(with_gold=False):
    """`tf.TensorSpec`s of one document's features (for `tf.function` and export)."""
    specs = {"input_ids": tf.TensorSpec([None, None], tf.int32, "input_ids"),
             "input_mask": tf.TensorSpec([None, None], tf.int32, "input_mask"),
             "speaker_ids": tf.TensorSpec([None, None], tf.int32, "speaker_ids"),
             "sentence_map": tf.TensorSpec([None], tf.int32, "sentence_map"),
             "genre": tf.TensorSpec([], tf.int32, "genre")}
    if with_gold:
        specs.update({name: tf.TensorSpec([None], tf.int32, name) for name in GOLD_NAMES})
    return specs


def truncate_document(features, max_training_segments, rng):
    """A random window of `max_training_segments` consecutive segments (official truncate_example).

    Token-level arrays are cut to the window's real subtokens and gold mentions
    are shifted; mentions not wholly inside the window are dropped (the official
    code keeps partly-inside ones, which can never match a candidate, so the
    loss is the same). Documents with no more segments are returned as is.
    """
    num_segments = features["input_ids"].shape[0]
    if num_segments <= max_training_segments:
        return features
    first = int(rng.integers(0, num_segments - max_training_segments + 1))
    window = slice(first, first + max_training_segments)
    lengths = np.asarray(features["input_mask"]).sum(axis=1)
    offset, count = int(lengths[:first].sum()), int(lengths[window].sum())
    inside = np.logical_and(features["gold_starts"] >= offset,
                            features["gold_ends"] < offset + count)
    out = dict(features)
    for name in ("input_ids", "input_mask", "speaker_ids"):
        out[name] = features[name][window]
    for name in ("sentence_map", "subtoken_map"):
        if name in features:
            out[name] = features[name][offset:offset + count]
    out["gold_starts"] = features["gold_starts"][inside] - offset
    out["gold_ends"] = features["gold_ends"][inside] - offset
    out["cluster_ids"] = features["cluster_ids"][inside]
    return out


def predicted_antecedents(top_antecedents, top_antecedent_scores):
    """Index (into the top spans) of each top span's best antecedent, −1 for the dummy."""
    best = np.argmax(np.asarray(top_antecedent_scores), axis=1) - 1
    top_antecedents = np.asarray(top_antecedents)
    return [int(top_antecedents[i, j]) if j >= 0 else -1 for i, j in enumerate(best)]


def predicted_clusters(outputs, output_singletons=False):
    """Clusters [((start, end), ...), ...] of subtoken spans from a model's outputs.

    As the official `get_predicted_clusters`: each top span with a (non-dummy)
    best antecedent joins that antecedent's cluster. With `output_singletons`,
    every other kept span with a positive mention score is a cluster of its own.
    """
    starts = np.asarray(outputs["top_span_starts"])
    ends = np.asarray(outputs["top_span_ends"])
    antecedents = predicted_antecedents(outputs["top_antecedents"],
                                        outputs["top_antecedent_scores"])
    clusters, cluster_of = [], {}
    for i, antecedent in enumerate(antecedents):
        if antecedent < 0:
            continue
        if antecedent >= i:
            raise ValueError(f"top span {i} has antecedent {antecedent} that does not precede it")
        antecedent_span = (int(starts[antecedent]), int(ends[antecedent]))
        if antecedent_span not in cluster_of:
            cluster_of[antecedent_span] = len(clusters)
            clusters.append([antecedent_span])
        mention = (int(starts[i]), int(ends[i]))
        clusters[cluster_of[antecedent_span]].append(mention)
        cluster_of[mention] = cluster_of[antecedent_span]
    if output_singletons:
        mention_scores = np.asarray(outputs["top_span_mention_scores"])
        for i in range(len(starts)):
            mention = (int(starts[i]), int(ends[i]))
            if mention not in cluster_of and mention_scores[i] > 0:
                cluster_of[mention] = len(clusters)
                clusters.append([mention])
    return [tuple(cluster) for cluster in clusters]


class CorefTask:
    """The `Trainer` task: one document per step, loss = the document's summed antecedent loss.

    Training batches are one document with a leading axis of 1 (`[1, S, L]`
    segments, `[1, T]` maps, `[1]` genre), so the Trainer counts one example per
    step; `loss_terms` also takes an unbatched document. The optimizer is the
    two-group recipe (`param_groups.backbone_and_head_optimizer`) from the
    config's `optimizer` section.
    """

    loss_weights = {"coref_loss": 1.0}

    def __init__(self, coref_config, backbone_fn=None):
        self.coref_config = coref_config
        self.backbone_fn = backbone_fn

    def build_model(self):
        backbone = self.backbone_fn() if self.backbone_fn is not None else None
        return build_coref_model(self.coref_config, backbone)

    def build_optimizer(self, model, num_train_steps):
        from spanbert_tf.training.param_groups import backbone_and_head_optimizer

        opt = self.coref_config.optimizer
        return backbone_and_head_optimizer(
            model, num_train_steps, backbone_learning_rate=opt.bert_learning_rate,
            head_learning_rate=opt.task_learning_rate, warmup_ratio=opt.warmup_ratio,
            weight_decay=opt.weight_decay, backbone_epsilon=opt.adam_epsilon,
            clip_norm=opt.clip_norm)

    @staticmethod
    def _unbatch(batch):
        if len(batch["input_ids"].shape) == 3:   # [1, S, L]: one document per step
            return {k: v[0] for k, v in batch.items()}
        return batch

    def loss_terms(self, model, batch, training):
        batch = self._unbatch(batch)
        outputs = model({k: batch[k] for k in MODEL_INPUT_NAMES + GOLD_NAMES}, training=training)
        return {"coref_loss": (outputs["loss"], tf.constant(1.0)),
                "num_top_spans": (tf.cast(tf.shape(outputs["top_span_starts"])[0], tf.float32),
                                  tf.constant(1.0))}

    def loss_denominators(self, batch):
        return {"coref_loss": tf.constant(1.0)}

    def dummy_batch(self, element_spec):
        """A 4-subtoken document with one gold mention (all-zeros inputs have no subtoken),
        with a leading axis of 1 when `element_spec["input_ids"]` has rank 3."""
        doc = {"input_ids": [[101, 1000, 1001, 102]], "input_mask": [[1, 1, 1, 1]],
               "speaker_ids": [[1, 2, 2, 1]], "sentence_map": [0, 0, 0, 0], "genre": 0,
               "subtoken_map": [0, 0, 1, 1], "gold_starts": [1], "gold_ends": [2],
               "cluster_ids": [1]}
        batched = len(element_spec["input_ids"].shape) == 3
        out = {}
        for name, spec in element_spec.items():
            value = tf.constant(doc[name], spec.dtype)
            out[name] = value[None] if batched else value
        return out
