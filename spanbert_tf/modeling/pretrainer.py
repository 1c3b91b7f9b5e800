"""`SpanBertPretrainer`: backbone + MLM head + SBO head, and its loss terms (§3.2).

Loss = mean MLM cross-entropy over `masked_lm_weights`
     + sbo_loss_weight × mean SBO cross-entropy over `sbo_weights`.

`loss_terms` returns LOCAL SUMS `(numerator, denominator)` in float32 so the
trainer can all-reduce the denominators and divide once: the loss is then the
exact global-batch mean whatever the number of replicas. `compute_loss` is the
same loss for Keras `fit` / `train_on_batch`. Everything here is `keras.ops`:
the model and its loss run on the TensorFlow, JAX and PyTorch backends.

Example:
```python
model = build_pretrainer(load_config("tiny"))
outputs = model(batch, training=True)       # {"mlm_logits", "sbo_logits"}: [B, P, V] float32
terms = model.loss_terms(batch, outputs)    # {"mlm_loss": (num, den), ...}
loss = sum(w * terms[k][0] / terms[k][1] for k, w in model.loss_weights.items())
```
"""

import spanbert_tf  # noqa: F401  (sets KERAS_BACKEND before keras is imported)

import keras
from keras import ops

from spanbert_tf.modeling.backbone import build_backbone
from spanbert_tf.modeling.heads import SpanBertMaskedLMHead, SpanBoundaryHead

MLM_LOGITS = "mlm_logits"
SBO_LOGITS = "sbo_logits"


def backbone_inputs(features):
    """Maps feature-spec names (input_ids, input_mask, segment_ids) to backbone inputs."""
    return {
        "token_ids": ops.cast(features["input_ids"], "int32"),
        "segment_ids": ops.cast(features["segment_ids"], "int32"),
        "padding_mask": ops.cast(features["input_mask"], "int32"),
    }


def weighted_cross_entropy_terms(labels, logits, weights):
    """Local sums for a weighted sparse cross-entropy and accuracy.

    Args:
        labels: int [B, P]; logits: [B, P, V]; weights: [B, P].

    Returns:
        ((Σ CE·w, Σ w), (Σ correct·w, Σ w)) as float32 scalars. Slots with
        weight 0 contribute nothing (their labels and logits are ignored).
    """
    labels = ops.cast(labels, "int32")
    weights = ops.cast(weights, "float32")
    logits = ops.cast(logits, "float32")
    # Weight-0 slots get label 0 so an out-of-range padding id can never fault.
    labels = ops.where(weights > 0, labels, ops.zeros_like(labels))
    cross_entropy = ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    cross_entropy = ops.where(weights > 0, cross_entropy, ops.zeros_like(cross_entropy))
    correct = ops.cast(ops.equal(ops.cast(ops.argmax(logits, axis=-1), "int32"), labels), "float32")
    denominator = ops.sum(weights)
    return (
        (ops.sum(cross_entropy * weights), denominator),
        (ops.sum(correct * weights), denominator),
    )


@keras.saving.register_keras_serializable(package="spanbert_tf")
class SpanBertPretrainer(keras.Model):
    """SpanBERT for pretraining: an encoder with the MLM and SBO heads.

    Both heads decode only the P masked slots with the backbone's token
    embedding matrix (tied). All variables are created in the constructor, so
    the model can be checkpointed or restored before its first call.

    Args:
        backbone: a `SpanBertBackbone` (or keras-hub `BertBackbone`).
        max_pair_targets: rows of the SBO relative-position embedding (15).
        sbo_position_embedding_size: width of that embedding (200).
        sbo_loss_weight: weight of the SBO loss in the total loss (1.0).

    Call args:
        features: dict with the `spanbert_tf.data.features` names
            (input_ids, input_mask, segment_ids, masked_lm_positions,
            span_left_positions, span_right_positions, span_relative_positions;
            other keys are ignored).
        training: bool, enables dropout.

    Returns {"mlm_logits": [B, P, V], "sbo_logits": [B, P, V]}, float32.

    Example:
    ```python
    model = SpanBertPretrainer(build_backbone(load_config("tiny").model))
    terms = model.loss_terms(batch, model(batch, training=True))
    ```
    """

    def __init__(
        self,
        backbone,
        max_pair_targets=15,
        sbo_position_embedding_size=200,
        sbo_loss_weight=1.0,
        **kwargs,
    ):
        kwargs.setdefault("dtype", backbone.dtype_policy)
        super().__init__(**kwargs)
        self.backbone = backbone
        head_kwargs = dict(
            activation=getattr(backbone, "hidden_act", "gelu_approximate"),
            layer_norm_epsilon=getattr(backbone, "layer_norm_epsilon", 1e-12),
            initializer_range=getattr(backbone, "initializer_range", 0.02),
            dtype=backbone.dtype_policy,
        )
        self.mlm_head = SpanBertMaskedLMHead(
            token_embedding=backbone.token_embedding, name="mlm_head", **head_kwargs
        )
        self.sbo_head = SpanBoundaryHead(
            token_embedding=backbone.token_embedding,
            max_pair_targets=max_pair_targets,
            position_embedding_size=sbo_position_embedding_size,
            name="sbo_head",
            **head_kwargs,
        )
        hidden = backbone.token_embedding.output_dim
        self.mlm_head.build((None, None, hidden), (None, None))
        self.sbo_head.build((None, None, hidden), (None, None), (None, None), (None, None))
        self.built = True
        self.max_pair_targets = max_pair_targets
        self.sbo_position_embedding_size = sbo_position_embedding_size
        self.sbo_loss_weight = float(sbo_loss_weight)

    @property
    def loss_weights(self):
        """Which loss terms form the loss, with their weights."""
        return {"mlm_loss": 1.0, "sbo_loss": self.sbo_loss_weight}

    def call(self, features, training=False):
        sequence_output = self.backbone(backbone_inputs(features), training=training)[
            "sequence_output"
        ]
        return {
            MLM_LOGITS: self.mlm_head(sequence_output, features["masked_lm_positions"]),
            SBO_LOGITS: self.sbo_head(
                sequence_output,
                features["span_left_positions"],
                features["span_right_positions"],
                features["span_relative_positions"],
            ),
        }

    def loss_denominators(self, features):
        """{mlm_loss: Σ masked_lm_weights, sbo_loss: Σ sbo_weights}: the loss terms'
        denominators from the batch alone (the trainer sums them over micro-batches
        before the backward passes); `loss_terms` divides by the same sums."""
        return {
            "mlm_loss": ops.sum(ops.cast(features["masked_lm_weights"], "float32")),
            "sbo_loss": ops.sum(ops.cast(features["sbo_weights"], "float32")),
        }

    def loss_terms(self, features, outputs):
        """Local sums {name: (numerator, denominator)}, float32 scalars.

        mlm_loss = (Σ CE·masked_lm_weights, Σ masked_lm_weights);
        sbo_loss = (Σ CE·sbo_weights, Σ sbo_weights); the accuracies likewise.
        Both heads predict `masked_lm_ids`.
        """
        labels = features["masked_lm_ids"]
        mlm_loss, mlm_accuracy = weighted_cross_entropy_terms(
            labels, outputs[MLM_LOGITS], features["masked_lm_weights"]
        )
        sbo_loss, sbo_accuracy = weighted_cross_entropy_terms(
            labels, outputs[SBO_LOGITS], features["sbo_weights"]
        )
        return {
            "mlm_loss": mlm_loss,
            "sbo_loss": sbo_loss,
            "mlm_accuracy": mlm_accuracy,
            "sbo_accuracy": sbo_accuracy,
        }

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The loss for Keras `fit` / `train_on_batch` on any backend: Σ weight × mean term.

        `x` is the features dict (labels and weights are features, so `y` is
        unused). Each term is its batch numerator over its batch denominator;
        a term whose denominator is 0 (no SBO target in the batch) counts 0.
        """
        del y, sample_weight, training
        terms = self.loss_terms(x, y_pred)
        return sum(
            weight * ops.divide_no_nan(terms[name][0], terms[name][1])
            for name, weight in self.loss_weights.items()
        )

    def get_config(self):
        # keras-hub's Task pattern: a model lists its constructor arguments
        # (no super(): a Model's own config is not constructor arguments).
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.layers.serialize(self.backbone),
            "max_pair_targets": self.max_pair_targets,
            "sbo_position_embedding_size": self.sbo_position_embedding_size,
            "sbo_loss_weight": self.sbo_loss_weight,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)


def build_pretrainer(config, sbo_loss_weight=1.0, dtype=None):
    """Builds a `SpanBertPretrainer` from a `SpanBertConfig`.

    Args:
        config: `SpanBertConfig` (its `model` section is used).
        sbo_loss_weight: weight of the SBO loss (`--sbo_loss_weight`).
        dtype: None (global policy), "float32", "mixed_bfloat16", "mixed_float16".

    Example:
    ```python
    with strategy.scope():
        model = build_pretrainer(load_config("base"), dtype="mixed_bfloat16")
    ```
    """
    backbone = build_backbone(config.model, dtype=dtype)
    return SpanBertPretrainer(
        backbone,
        max_pair_targets=config.model.max_pair_targets,
        sbo_position_embedding_size=config.model.sbo_position_embedding_size,
        sbo_loss_weight=sbo_loss_weight,
    )
