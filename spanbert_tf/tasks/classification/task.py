"""The `Trainer` task for classification / regression fine-tuning (GLUE, TACRED).

Example:
```python
task = ClassificationTask(load_config("tiny").model, num_classes=2)
trainer = Trainer(task, strategy, "runs/mrpc/train", optimizer_config, train_fn, num_steps)
```
"""

import spanbert_tf  # noqa: F401  (sets KERAS_BACKEND before keras is imported)

import tensorflow as tf

from spanbert_tf.errors import InputError
from spanbert_tf.modeling.backbone import build_backbone
from spanbert_tf.tasks.classification.model import (LABEL_KEY, MODEL_INPUTS, WEIGHT_KEY,
                                                    SpanBertClassifier)


class ClassificationTask:
    """The trainer's Task protocol for classification / regression fine-tuning.

    Batches are dicts with the `MODEL_INPUTS`, `label` (int32 class ids, or
    float32 scores for a regression) and optionally `example_weight`
    (float32; 0 for padding examples), or `(inputs, targets)` tuples of two
    such dicts (the evaluation datasets, whose first item feeds the model).

    Args:
        model_config: `ModelConfig` of the backbone.
        num_classes: number of labels; 1 with `is_regression`.
        is_regression: mean squared error on one output instead of softmax CE.
        dtype: backbone dtype policy (None = the global Keras policy).
    """

    def __init__(self, model_config, num_classes, is_regression=False, dtype=None):
        if is_regression and num_classes != 1:
            raise InputError("a regression task has num_classes=1")
        if not is_regression and num_classes < 2:
            raise InputError(f"a classification task needs >= 2 classes, got {num_classes}")
        self.model_config = model_config
        self.num_classes = num_classes
        self.is_regression = is_regression
        self.dtype = dtype
        self.loss_weights = {"loss": 1.0}

    def build_model(self):
        backbone = build_backbone(self.model_config, dtype=self.dtype)
        return SpanBertClassifier(
            backbone, self.num_classes, dropout=self.model_config.dropout,
            initializer_range=self.model_config.initializer_range)

    @staticmethod
    def _example_weights(batch):
        """(batch as one dict, float32 example weights: `example_weight` or ones)."""
        if isinstance(batch, (tuple, list)):
            batch = {**batch[0], **batch[1]}
        weights = batch.get(WEIGHT_KEY)
        if weights is None:
            weights = tf.ones(tf.shape(batch[LABEL_KEY])[:1], tf.float32)
        return batch, tf.cast(weights, tf.float32)

    def loss_denominators(self, batch):
        """The loss is a mean over the example weights of the batch."""
        return {"loss": tf.reduce_sum(self._example_weights(batch)[1])}

    def loss_terms(self, model, batch, training):
        """Local sums: loss (CE or squared error) and, for classification, accuracy."""
        batch, weights = self._example_weights(batch)
        logits = model({k: batch[k] for k in MODEL_INPUTS}, training=training)["logits"]
        logits = tf.cast(logits, tf.float32)
        labels = batch[LABEL_KEY]
        total = tf.reduce_sum(weights)
        if self.is_regression:
            error = tf.square(logits[:, 0] - tf.cast(labels, tf.float32))
            return {"loss": (tf.reduce_sum(error * weights), total)}
        labels = tf.cast(labels, tf.int32)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels),
                          tf.float32)
        return {"loss": (tf.reduce_sum(ce * weights), total),
                "accuracy": (tf.reduce_sum(correct * weights), total)}
