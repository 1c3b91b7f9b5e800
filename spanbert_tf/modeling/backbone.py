"""The SpanBERT encoder: keras-hub's BERT backbone with the exact (erf) GeLU.

keras-hub's `BertBackbone` hard-codes the tanh approximation of GeLU, while
BERT, SpanBERT and the released SpanBERT checkpoints use the exact erf form
(the approximation drifts by ~1e-3 on a real checkpoint). `SpanBertBackbone`
is a `BertBackbone` subclass that assembles the same functional graph from the
same keras-hub layers, with the same layer names, inputs (`token_ids`,
`segment_ids`, `padding_mask`), outputs (`sequence_output`, `pooled_output`)
and weights, but lets the feed-forward activation, the initializer range and the
LayerNorm epsilon be chosen. Everything that works on a `BertBackbone`
(keras-hub tasks, `get_config`/`from_config`, presets) works on it.

Example:
```python
from spanbert_tf.modeling.config import load_config
backbone = build_backbone(load_config("tiny").model)
outputs = backbone({
    "token_ids": np.array([[101, 7592, 102, 0]], dtype="int32"),
    "segment_ids": np.zeros((1, 4), dtype="int32"),
    "padding_mask": np.array([[1, 1, 1, 0]], dtype="int32"),
})
outputs["sequence_output"].shape   # (1, 4, 128)
```
"""

import spanbert_tf  # noqa: F401  (sets KERAS_BACKEND before keras is imported)

import keras
import keras_hub
from keras_hub.layers import PositionEmbedding, TransformerEncoder

from spanbert_tf.errors import InputError


@keras.saving.register_keras_serializable(package="spanbert_tf")
def gelu_approximate(x):
    """The tanh approximation of GeLU (keras-hub's `BertBackbone` activation)."""
    return keras.activations.gelu(x, approximate=True)


HIDDEN_ACTIVATIONS = {
    # Exact GeLU: 0.5 * x * (1 + erf(x / sqrt(2))), as in BERT and SpanBERT.
    "gelu": "gelu",
    # keras-hub's BertBackbone: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))).
    "gelu_approximate": gelu_approximate,
}


def get_activation(hidden_act):
    """Maps a config's `hidden_act` ("gelu" | "gelu_approximate") to a Keras activation."""
    if hidden_act not in HIDDEN_ACTIVATIONS:
        raise InputError(
            f"hidden_act must be one of {sorted(HIDDEN_ACTIVATIONS)}, got {hidden_act!r}"
        )
    return keras.activations.get(HIDDEN_ACTIVATIONS[hidden_act])


def normal_initializer(stddev):
    """N(0, stddev) weights, as SpanBERT's `init_bert_weights` (not truncated)."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=stddev)


@keras.saving.register_keras_serializable(package="spanbert_tf")
class SpanBertBackbone(keras_hub.models.BertBackbone):
    """A BERT encoder (post-LayerNorm Transformer) with a selectable GeLU.

    Args:
        vocabulary_size: int. Size of the token vocabulary.
        num_layers: int. Number of Transformer layers.
        num_heads: int. Attention heads per layer (divides `hidden_dim`).
        hidden_dim: int. Width of the encoder and the pooler.
        intermediate_dim: int. Width of each feed-forward block.
        dropout: float. Dropout on embeddings, attention and feed-forward.
        max_sequence_length: int. Number of position embeddings.
        num_segments: int. Number of segment (token type) embeddings.
        hidden_act: "gelu" (exact erf, default) or "gelu_approximate" (tanh,
            what keras-hub's `BertBackbone` uses).
        initializer_range: float. Stddev of the N(0, σ) weight initializer.
        layer_norm_epsilon: float. Epsilon of every LayerNorm.
        dtype: string or `keras.DTypePolicy`, e.g. "mixed_bfloat16".

    Example:
    ```python
    backbone = SpanBertBackbone(
        vocabulary_size=28996, num_layers=2, num_heads=2, hidden_dim=128,
        intermediate_dim=512,
    )
    clone = SpanBertBackbone.from_config(backbone.get_config())
    ```
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        dropout=0.1,
        max_sequence_length=512,
        num_segments=2,
        hidden_act="gelu",
        initializer_range=0.02,
        layer_norm_epsilon=1e-12,
        dtype=None,
        **kwargs,
    ):
        activation = get_activation(hidden_act)
        # === Layers (same names and order as keras_hub.models.BertBackbone) ===
        self.token_embedding = keras.layers.ReversibleEmbedding(
            input_dim=vocabulary_size,
            output_dim=hidden_dim,
            embeddings_initializer=normal_initializer(initializer_range),
            dtype=dtype,
            name="token_embedding",
        )
        self.position_embedding = PositionEmbedding(
            initializer=normal_initializer(initializer_range),
            sequence_length=max_sequence_length,
            dtype=dtype,
            name="position_embedding",
        )
        self.segment_embedding = keras.layers.Embedding(
            input_dim=num_segments,
            output_dim=hidden_dim,
            embeddings_initializer=normal_initializer(initializer_range),
            dtype=dtype,
            name="segment_embedding",
        )
        self.embeddings_add = keras.layers.Add(dtype=dtype, name="embeddings_add")
        self.embeddings_layer_norm = keras.layers.LayerNormalization(
            axis=-1,
            epsilon=layer_norm_epsilon,
            dtype=dtype,
            name="embeddings_layer_norm",
        )
        self.embeddings_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="embeddings_dropout"
        )
        self.transformer_layers = []
        for i in range(num_layers):
            self.transformer_layers.append(
                TransformerEncoder(
                    num_heads=num_heads,
                    intermediate_dim=intermediate_dim,
                    activation=activation,
                    dropout=dropout,
                    layer_norm_epsilon=layer_norm_epsilon,
                    kernel_initializer=normal_initializer(initializer_range),
                    dtype=dtype,
                    name=f"transformer_layer_{i}",
                )
            )
        self.pooled_dense = keras.layers.Dense(
            hidden_dim,
            kernel_initializer=normal_initializer(initializer_range),
            activation="tanh",
            dtype=dtype,
            name="pooled_dense",
        )

        # === Functional model ===
        token_id_input = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        segment_id_input = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
        padding_mask_input = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        tokens = self.token_embedding(token_id_input)
        positions = self.position_embedding(tokens)
        segments = self.segment_embedding(segment_id_input)
        x = self.embeddings_add((tokens, positions, segments))
        x = self.embeddings_layer_norm(x)
        x = self.embeddings_dropout(x)
        for transformer_layer in self.transformer_layers:
            x = transformer_layer(x, padding_mask=padding_mask_input)
        cls_token_index = 0
        pooled_output = self.pooled_dense(x[:, cls_token_index, :])
        # Skip BertBackbone.__init__ (it would build a second graph with the
        # tanh GeLU); initialise the keras-hub Backbone base directly.
        keras_hub.models.Backbone.__init__(
            self,
            inputs={
                "token_ids": token_id_input,
                "segment_ids": segment_id_input,
                "padding_mask": padding_mask_input,
            },
            outputs={"sequence_output": x, "pooled_output": pooled_output},
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.cls_token_index = cls_token_index
        self.hidden_act = hidden_act
        self.initializer_range = initializer_range
        self.layer_norm_epsilon = layer_norm_epsilon

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_act": self.hidden_act,
                "initializer_range": self.initializer_range,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config


def build_backbone(model_config, dtype=None):
    """Builds a `SpanBertBackbone` from a `ModelConfig`.

    Args:
        model_config: `spanbert_tf.modeling.config.ModelConfig`.
        dtype: None (the global Keras policy), "float32", "mixed_bfloat16", ...

    Example:
    ```python
    backbone = build_backbone(load_config("base").model, dtype="mixed_bfloat16")
    ```
    """
    return SpanBertBackbone(
        vocabulary_size=model_config.vocab_size,
        num_layers=model_config.num_layers,
        num_heads=model_config.num_heads,
        hidden_dim=model_config.hidden_size,
        intermediate_dim=model_config.intermediate_size,
        dropout=model_config.dropout,
        max_sequence_length=model_config.max_position_embeddings,
        num_segments=model_config.type_vocab_size,
        hidden_act=model_config.hidden_act,
        initializer_range=model_config.initializer_range,
        layer_norm_epsilon=model_config.layer_norm_epsilon,
        dtype=dtype,
    )


def model_config_from_backbone(backbone):
    """The `ModelConfig` fields a backbone determines (inverse of `build_backbone`).

    Returns a dict of `ModelConfig` field values; SBO head sizes are not part
    of the backbone and are left out.
    """
    return {
        "vocab_size": backbone.vocabulary_size,
        "hidden_size": backbone.hidden_dim,
        "num_layers": backbone.num_layers,
        "num_heads": backbone.num_heads,
        "intermediate_size": backbone.intermediate_dim,
        "max_position_embeddings": backbone.max_sequence_length,
        "type_vocab_size": backbone.num_segments,
        "dropout": backbone.dropout,
        "hidden_act": getattr(backbone, "hidden_act", "gelu_approximate"),
        "initializer_range": getattr(backbone, "initializer_range", 0.02),
        "layer_norm_epsilon": getattr(backbone, "layer_norm_epsilon", 1e-12),
    }
