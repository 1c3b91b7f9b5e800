"""The two pretraining heads of SpanBERT (§3.2), decoded with the tied word embeddings.

Both heads work on the P masked slots only (memory O(B·P·V), never O(B·L·V)):

- `SpanBertMaskedLMHead` (BERT's MLM head): gather h[masked position] → Dense(H) →
  GeLU → LayerNorm → h·Eᵀ + b.
- `SpanBoundaryHead` (the official `BertPairTargetPredictionHead`): for the
  i-th token of a masked span x_s..x_e, concat(h[s-1], h[e+1], p[i]) where p is
  a learned (max_pair_targets × 200) relative-position embedding → Dense(H) →
  GeLU → LayerNorm → Dense(H) → GeLU → LayerNorm → h·Eᵀ + b.

E is the backbone's token embedding matrix (the same variable object, so both
heads and the input embedding share its gradient); each head has its own output
bias. Initialisation follows the official code: kernels and embeddings
N(0, initializer_range), biases 0, LayerNorm γ=1 β=0, LayerNorm epsilon 1e-12.

The heads use Keras layers and `keras.ops` only, so they run on the TensorFlow,
JAX and PyTorch backends alike. Logits are float32 even under a mixed policy:
the h·Eᵀ matmul runs in the compute dtype (bf16/fp16), its result is cast to
float32 before the float32 bias is added, so cross-entropy and argmax see float32.

Example:
```python
emb = backbone.token_embedding
mlm = SpanBertMaskedLMHead(token_embedding=emb)
sbo = SpanBoundaryHead(token_embedding=emb, max_pair_targets=15)
mlm_logits = mlm(sequence_output, masked_lm_positions)              # [B, P, V]
sbo_logits = sbo(sequence_output, left, right, relative)            # [B, P, V]
```
"""

import spanbert_tf  # noqa: F401  (sets KERAS_BACKEND before keras is imported)

import keras
from keras import ops

from spanbert_tf.errors import InputError
from spanbert_tf.modeling.backbone import get_activation, normal_initializer


def gather_positions(sequence_output, positions):
    """[B, L, H] × int [B, P] → [B, P, H] (per-example gather, any Keras backend).

    Row b's positions index row b of `sequence_output`: the [B, L, H] tensor is
    viewed as [B·L, H] and gathered at b·L + position.
    """
    shape = ops.shape(sequence_output)
    batch, length, hidden = shape[0], shape[1], shape[2]
    positions = ops.cast(positions, "int32")
    offsets = ops.expand_dims(ops.arange(batch, dtype="int32") * length, axis=-1)
    flat = ops.reshape(sequence_output, (-1, hidden))
    gathered = ops.take(flat, ops.reshape(positions + offsets, (-1,)), axis=0)
    return ops.reshape(gathered, (batch, ops.shape(positions)[1], hidden))


class _TiedDecoderHead(keras.layers.Layer):
    """Shared plumbing: the tied embedding, the output bias and the decoder."""

    def __init__(
        self,
        token_embedding,
        activation="gelu",
        layer_norm_epsilon=1e-12,
        initializer_range=0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if token_embedding is None or not hasattr(token_embedding, "input_dim"):
            raise InputError(
                f"{type(self).__name__} needs the backbone's token embedding layer "
                f"(e.g. backbone.token_embedding), got {token_embedding!r}"
            )
        self.token_embedding = token_embedding
        self.vocabulary_size = token_embedding.input_dim
        self.hidden_dim = token_embedding.output_dim
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        self._activation_fn = get_activation(activation)

    def _dense(self, name):
        return keras.layers.Dense(
            self.hidden_dim,
            activation=self._activation_fn,
            kernel_initializer=normal_initializer(self.initializer_range),
            bias_initializer="zeros",
            dtype=self.dtype_policy,
            name=name,
        )

    def _layer_norm(self, name):
        return keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )

    def _build_output_bias(self):
        # float32 and never autocast: added to the float32 logits.
        self.output_bias = self.add_weight(
            name="output_bias",
            shape=(self.vocabulary_size,),
            initializer="zeros",
            dtype="float32",
            autocast=False,
        )

    def decode(self, x):
        """[B, P, H] → float32 logits [B, P, V] with the tied embedding matrix."""
        embeddings = ops.cast(self.token_embedding.embeddings, self.compute_dtype)
        x = ops.cast(x, self.compute_dtype)
        shape = ops.shape(x)
        flat = ops.reshape(x, (-1, self.hidden_dim))
        logits = ops.matmul(flat, ops.transpose(embeddings))
        logits = ops.reshape(logits, (shape[0], shape[1], self.vocabulary_size))
        return ops.cast(logits, "float32") + self.output_bias

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "token_embedding": keras.layers.serialize(self.token_embedding),
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "initializer_range": self.initializer_range,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["token_embedding"] = keras.layers.deserialize(config["token_embedding"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="spanbert_tf")
class SpanBertMaskedLMHead(_TiedDecoderHead):
    """BERT's masked-LM head on the masked positions, tied to the input embeddings.

    Args:
        token_embedding: the backbone's `ReversibleEmbedding`; its matrix
            (vocab × hidden) is the decoder.
        activation: "gelu" (exact) or "gelu_approximate".
        layer_norm_epsilon: float, 1e-12 as in BERT.
        initializer_range: float, stddev of the N(0, σ) kernel initializer.

    Call args:
        sequence_output: [B, L, H] encoder output.
        masked_positions: int [B, P] positions to predict.

    Returns float32 logits [B, P, vocab].

    Example:
    ```python
    head = SpanBertMaskedLMHead(token_embedding=backbone.token_embedding)
    logits = head(outputs["sequence_output"], features["masked_lm_positions"])
    ```
    """

    def build(self, sequence_output_shape, masked_positions_shape=None):
        self.transform_dense = self._dense("transform_dense")
        self.transform_dense.build((None, None, sequence_output_shape[-1]))
        self.transform_layer_norm = self._layer_norm("transform_layer_norm")
        self.transform_layer_norm.build((None, None, self.hidden_dim))
        self._build_output_bias()
        self.built = True

    def call(self, sequence_output, masked_positions):
        x = gather_positions(sequence_output, masked_positions)
        x = self.transform_layer_norm(self.transform_dense(x))
        return self.decode(x)

    def compute_output_shape(self, sequence_output_shape, masked_positions_shape=None):
        slots = (None, None) if masked_positions_shape is None else tuple(masked_positions_shape)
        return slots + (self.vocabulary_size,)


@keras.saving.register_keras_serializable(package="spanbert_tf")
class SpanBoundaryHead(_TiedDecoderHead):
    """The Span Boundary Objective head (official `BertPairTargetPredictionHead`).

    Each masked token is predicted from the encodings of the two tokens just
    outside its span and the embedding of its offset inside the span:
    concat(h[left], h[right], pos[relative]) → 2 × (Dense(H) → GeLU →
    LayerNorm) → tied decoder + own bias.

    Args:
        token_embedding: the backbone's `ReversibleEmbedding` (tied decoder).
        max_pair_targets: int, rows of the relative-position embedding (15 in
            the released models); offsets beyond it are clipped (the masker
            gives such slots SBO weight 0).
        position_embedding_size: int, width of that embedding (200).
        activation, layer_norm_epsilon, initializer_range: as `SpanBertMaskedLMHead`.

    Call args:
        sequence_output: [B, L, H].
        left_positions, right_positions: int [B, P] boundary positions
            (s-1 and e+1 of the span each slot belongs to).
        relative_positions: int [B, P] 0-based offset inside the span.

    Returns float32 logits [B, P, vocab].

    Example:
    ```python
    head = SpanBoundaryHead(token_embedding=backbone.token_embedding)
    logits = head(seq, f["span_left_positions"], f["span_right_positions"],
                  f["span_relative_positions"])
    ```
    """

    def __init__(self, token_embedding, max_pair_targets=15, position_embedding_size=200, **kwargs):
        super().__init__(token_embedding, **kwargs)
        self.max_pair_targets = max_pair_targets
        self.position_embedding_size = position_embedding_size

    def build(
        self,
        sequence_output_shape,
        left_positions_shape=None,
        right_positions_shape=None,
        relative_positions_shape=None,
    ):
        hidden = sequence_output_shape[-1]
        self.position_embedding = keras.layers.Embedding(
            self.max_pair_targets,
            self.position_embedding_size,
            embeddings_initializer=normal_initializer(self.initializer_range),
            dtype=self.dtype_policy,
            name="position_embedding",
        )
        self.position_embedding.build((None, None))
        self.dense_1 = self._dense("dense_1")
        self.dense_1.build((None, None, 2 * hidden + self.position_embedding_size))
        self.layer_norm_1 = self._layer_norm("layer_norm_1")
        self.layer_norm_1.build((None, None, self.hidden_dim))
        self.dense_2 = self._dense("dense_2")
        self.dense_2.build((None, None, self.hidden_dim))
        self.layer_norm_2 = self._layer_norm("layer_norm_2")
        self.layer_norm_2.build((None, None, self.hidden_dim))
        self._build_output_bias()
        self.built = True

    def call(self, sequence_output, left_positions, right_positions, relative_positions):
        left = gather_positions(sequence_output, left_positions)
        right = gather_positions(sequence_output, right_positions)
        relative = ops.clip(ops.cast(relative_positions, "int32"), 0, self.max_pair_targets - 1)
        position = self.position_embedding(relative)
        x = ops.concatenate(
            [ops.cast(left, self.compute_dtype), ops.cast(right, self.compute_dtype),
             ops.cast(position, self.compute_dtype)],
            axis=-1,
        )
        x = self.layer_norm_1(self.dense_1(x))
        x = self.layer_norm_2(self.dense_2(x))
        return self.decode(x)

    def compute_output_shape(
        self,
        sequence_output_shape,
        left_positions_shape=None,
        right_positions_shape=None,
        relative_positions_shape=None,
    ):
        slots = (None, None) if left_positions_shape is None else tuple(left_positions_shape)
        return slots + (self.vocabulary_size,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "max_pair_targets": self.max_pair_targets,
                "position_embedding_size": self.position_embedding_size,
            }
        )
        return config
