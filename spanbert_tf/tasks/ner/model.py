"""The named-entity models: one backbone, two heads.

* `SpanNerModel` (default; nested entities): the candidate spans of each window
  (`features.py`: <= `max_span_width` words inside a sentence) are represented as
  [h_start; h_end; width embedding] (`modeling.span_layers.endpoint_span_embeddings`,
  the coreference model's span representation without its head attention; start =
  the first wordpiece of the first word, end = the last wordpiece of the last word)
  and classified by a `FeedForwardScorer` over "none" + the entity types.
* `TokenNerModel` (flat BIO): a linear layer over each wordpiece's output; a word's tag is
  its first wordpiece's.

Call: `model(inputs, training=False)` with `input_ids`, `input_mask` [B, L] (+ for the
span model `span_starts`, `span_ends`, `span_widths` [B, C]) -> `{"span_logits":
[B, C, 1 + types]}` or `{"token_logits": [B, L, tags]}`. Head layers compute in float32.

Example:
```python
model = build_ner_model(load_ner_config("ner_tiny"), num_types=6)
model(window_arrays(windows, "span", 64))["span_logits"].shape    # [N, C, 7]
```
"""

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

import keras
from keras import ops

from spanbert_tf.modeling.backbone import build_backbone
from spanbert_tf.modeling.config import load_config
from spanbert_tf.modeling.span_layers import (
    FeedForwardScorer, endpoint_span_embeddings, head_initializer)

SPAN_INPUTS = ("input_ids", "input_mask", "span_starts", "span_ends", "span_widths")
TOKEN_INPUTS = ("input_ids", "input_mask")


def encode(backbone, inputs, training=False):
    input_ids = ops.cast(inputs["input_ids"], "int32")
    sequence = backbone({"token_ids": input_ids, "segment_ids": ops.zeros_like(input_ids),
                         "padding_mask": ops.cast(inputs["input_mask"], "int32")},
                        training=training)["sequence_output"]
    return ops.cast(sequence, "float32")


@keras.saving.register_keras_serializable(package="spanbert_tf")
class SpanNerModel(keras.Model):
    """Span classification over a backbone (see the module docstring)."""

    def __init__(self, backbone, num_types, max_span_width=8, feature_size=20, ffnn_size=150,
                 ffnn_depth=1, dropout_rate=0.2, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.num_types = num_types
        self.max_span_width = max_span_width
        self.feature_size = feature_size
        self.ffnn_size = ffnn_size
        self.ffnn_depth = ffnn_depth
        self.dropout_rate = dropout_rate
        self.dropout = keras.layers.Dropout(dropout_rate, dtype="float32", name="dropout")
        self.span_width_embedding = keras.layers.Embedding(
            max_span_width, feature_size, dtype="float32", name="span_width_embedding",
            embeddings_initializer=head_initializer())
        self.span_width_embedding.build()
        self.span_classifier = FeedForwardScorer(ffnn_size, ffnn_depth, 1 + num_types,
                                                 dropout_rate, dtype="float32",
                                                 name="span_classifier")
        self.span_classifier.build((None, 2 * backbone.hidden_dim + feature_size))
        self.built = True

    def call(self, inputs, training=False):
        tokens = self.dropout(encode(self.backbone, inputs, training), training=training)
        return {"span_logits": self.classify_spans(tokens, inputs["span_starts"],
                                                   inputs["span_ends"], inputs["span_widths"],
                                                   training)}

    def classify_spans(self, tokens, starts, ends, widths, training=False):
        """[..., 1 + types] logits of spans over encoded `tokens` ([B, L, H] with [B, C]
        indices, or [T, H] with [C]; the SavedModel scores a text's spans flat)."""
        widths = ops.clip(ops.cast(widths, "int32"), 0, self.max_span_width - 1)
        width_emb = self.dropout(self.span_width_embedding(widths), training=training)
        spans = endpoint_span_embeddings(tokens, starts, ends, width_emb)
        return self.span_classifier(spans, training=training)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "backbone": keras.layers.serialize(self.backbone), "num_types": self.num_types,
                "max_span_width": self.max_span_width, "feature_size": self.feature_size,
                "ffnn_size": self.ffnn_size, "ffnn_depth": self.ffnn_depth,
                "dropout_rate": self.dropout_rate}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="spanbert_tf")
class TokenNerModel(keras.Model):
    """Token classification (BIO tags of the first wordpieces) over a backbone."""

    def __init__(self, backbone, num_tags, dropout_rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.num_tags = num_tags
        self.dropout_rate = dropout_rate
        self.dropout = keras.layers.Dropout(dropout_rate, dtype="float32", name="dropout")
        self.token_classifier = keras.layers.Dense(
            num_tags, dtype="float32", name="token_classifier",
            kernel_initializer=head_initializer())
        self.token_classifier.build((None, backbone.hidden_dim))
        self.built = True

    def call(self, inputs, training=False):
        tokens = self.dropout(encode(self.backbone, inputs, training), training=training)
        return {"token_logits": self.token_classifier(tokens)}

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "backbone": keras.layers.serialize(self.backbone), "num_tags": self.num_tags,
                "dropout_rate": self.dropout_rate}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)


def build_ner_model(config, num_types, backbone=None):
    """The model of a `NerConfig` ("span" or "token") for `num_types` entity types."""
    if backbone is None:
        backbone = build_backbone(load_config(config.backbone).model)
    head = config.ner
    if head.model_type == "token":
        return TokenNerModel(backbone, 1 + 2 * num_types, dropout_rate=head.dropout_rate)
    return SpanNerModel(backbone, num_types, max_span_width=head.max_span_width,
                        feature_size=head.feature_size, ffnn_size=head.ffnn_size,
                        ffnn_depth=head.ffnn_depth, dropout_rate=head.dropout_rate)
