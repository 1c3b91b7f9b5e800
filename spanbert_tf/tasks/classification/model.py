"""Sequence classification on the SpanBERT encoder: GLUE and TACRED.

`SpanBertClassifier` is the fine-tuning model of SpanBERT's `run_glue.py` /
`run_tacred.py` (`BertForSequenceClassification`): the backbone's pooled
`[CLS]` output, dropout, one dense layer (N(0, initializer_range) weights).
STS-B is a regression (one output, mean squared error).

`encode_pairs` packs texts as BERT does: `[CLS] a [SEP]` or
`[CLS] a [SEP] b [SEP]` with segment ids 0/1, pairs cut longest-first. The Trainer task
is `task.ClassificationTask`.

Example:
```python
model = SpanBertClassifier(build_backbone(load_config("tiny").model), num_classes=2)
features = encode_pairs(tokenizer, ["A man sleeps."], ["Nobody sleeps."], 128)
outputs = model({k: features[k] for k in MODEL_INPUTS})   # {"logits": [1, 2]}
```
"""

import spanbert_tf  # noqa: F401  (sets KERAS_BACKEND before keras is imported)

import keras
import numpy as np
import tensorflow as tf

from spanbert_tf.errors import InputError
from spanbert_tf.modeling.backbone import normal_initializer
from spanbert_tf.tokenization import truncated_pair_lengths

MODEL_INPUTS = ("token_ids", "segment_ids", "padding_mask")
LABEL_KEY = "label"
WEIGHT_KEY = "example_weight"


@keras.saving.register_keras_serializable(package="spanbert_tf")
class SpanBertClassifier(keras.Model):
    """Backbone + dropout + dense layer on the pooled `[CLS]` output.

    Args:
        backbone: a `SpanBertBackbone` (attribute `.backbone`, so that
            `restore_backbone` moves encoders between tasks).
        num_classes: number of labels (1 = regression).
        dropout: dropout rate before the output layer.
        initializer_range: stddev of the output layer's N(0, σ) weights.

    Example:
    ```python
    model = SpanBertClassifier(build_backbone(load_config("tiny").model), num_classes=3)
    model({"token_ids": ids, "segment_ids": seg, "padding_mask": mask})["logits"]
    ```
    """

    def __init__(self, backbone, num_classes, dropout=0.1, initializer_range=0.02, **kwargs):
        inputs = {name: backbone.input[name] for name in MODEL_INPUTS}
        pooled = backbone(inputs)["pooled_output"]
        x = keras.layers.Dropout(dropout, dtype=backbone.dtype_policy,
                                 name="classifier_dropout")(pooled)
        output_dense = keras.layers.Dense(
            num_classes, kernel_initializer=normal_initializer(initializer_range),
            dtype=backbone.dtype_policy, name="logits")
        logits = output_dense(x)
        # Losses and probabilities in float32 whatever the compute dtype.
        logits = keras.layers.Activation("linear", dtype="float32", name="logits_f32")(logits)
        super().__init__(inputs=inputs, outputs={"logits": logits}, **kwargs)
        self.backbone = backbone
        self.output_dense = output_dense
        self.num_classes = num_classes
        self.dropout = dropout
        self.initializer_range = initializer_range

    def get_config(self):
        # keras-hub's Task pattern (as SpanBertPretrainer): constructor arguments only.
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.layers.serialize(self.backbone),
            "num_classes": self.num_classes,
            "dropout": self.dropout,
            "initializer_range": self.initializer_range,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)


def encode_pairs(tokenizer, texts_a, texts_b, max_seq_length):
    """Packs `[CLS] a [SEP] (b [SEP])`, padded to `max_seq_length`.

    Args:
        tokenizer: a `BertWordpieceTokenizer`.
        texts_a: list of strings.
        texts_b: list of strings (same length) or None for single sentences.
        max_seq_length: total length including the special tokens.

    Returns:
        dict of int32 arrays [N, max_seq_length] (token_ids, segment_ids,
        padding_mask) and "num_truncated" (int).
    """
    specials = 2 if texts_b is None else 3
    if max_seq_length < specials + 1:
        raise InputError(f"max_seq_length={max_seq_length} leaves no room for text")
    n = len(texts_a)
    flat_a, splits_a = tokenizer.tokenize_to_ids_flat(list(texts_a))
    if texts_b is not None:
        if len(texts_b) != n:
            raise InputError("texts_a and texts_b differ in length")
        flat_b, splits_b = tokenizer.tokenize_to_ids_flat(list(texts_b))
    token_ids = np.full((n, max_seq_length), tokenizer.pad_id, np.int32)
    segment_ids = np.zeros((n, max_seq_length), np.int32)
    padding_mask = np.zeros((n, max_seq_length), np.int32)
    budget = max_seq_length - specials
    if texts_b is not None:
        keep_a, keep_b = truncated_pair_lengths(np.diff(splits_a), np.diff(splits_b), budget)
    num_truncated = 0
    for i in range(n):
        a = flat_a[splits_a[i]:splits_a[i + 1]]
        if texts_b is None:
            if len(a) > budget:
                num_truncated += 1
                a = a[:budget]
            ids = np.concatenate([[tokenizer.cls_id], a, [tokenizer.sep_id]])
            first = len(ids)
        else:
            b = flat_b[splits_b[i]:splits_b[i + 1]]
            la, lb = int(keep_a[i]), int(keep_b[i])
            num_truncated += int((la, lb) != (len(a), len(b)))
            ids = np.concatenate([[tokenizer.cls_id], a[:la], [tokenizer.sep_id],
                                  b[:lb], [tokenizer.sep_id]])
            first = la + 2
        token_ids[i, :len(ids)] = ids
        segment_ids[i, first:len(ids)] = 1
        padding_mask[i, :len(ids)] = 1
    return {"token_ids": token_ids, "segment_ids": segment_ids,
            "padding_mask": padding_mask, "num_truncated": num_truncated}


def make_train_dataset_fn(features, labels, per_replica_batch_size, seed,
                          is_regression=False):
    """A `train_dataset_fn(input_context)` for the Trainer: shuffled, repeated.

    Each input pipeline reads its shard of the examples; every epoch is a new
    seeded shuffle; batches are per replica and full (`drop_remainder`).
    """
    arrays = {k: np.asarray(features[k]) for k in MODEL_INPUTS}
    arrays[LABEL_KEY] = np.asarray(labels, np.float32 if is_regression else np.int32)
    num_examples = len(arrays[LABEL_KEY])

    def dataset_fn(input_context=None):
        ds = tf.data.Dataset.from_tensor_slices(arrays)
        if input_context is not None and input_context.num_input_pipelines > 1:
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        ds = ds.shuffle(num_examples, seed=seed, reshuffle_each_iteration=True).repeat()
        return ds.batch(per_replica_batch_size, drop_remainder=True).prefetch(
            tf.data.AUTOTUNE)

    return dataset_fn


def make_eval_dataset(features, labels, batch_size, is_regression=False):
    """`(inputs, {"label": ...})` in file order, batched (the last batch may be short)."""
    arrays = {k: np.asarray(features[k]) for k in MODEL_INPUTS}
    targets = {LABEL_KEY: np.asarray(labels, np.float32 if is_regression else np.int32)}
    return tf.data.Dataset.from_tensor_slices((arrays, targets)).batch(batch_size)


def softmax(logits):
    """Row-wise softmax in float64 (numpy)."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)
