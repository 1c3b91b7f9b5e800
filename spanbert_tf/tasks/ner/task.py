"""Named-entity training for the project's `Trainer`: `NerTask`.

Batches are padded windows (`features.window_arrays`): the span model's loss is the
softmax cross-entropy of every real candidate span (`span_mask`), averaged over the
candidates of the global batch; the token model's, that of every first wordpiece
(`token_labels` >= 0). The optimizer is the two-group recipe of coreference
(`param_groups.backbone_and_head_optimizer`) from the config's `optimizer` section.

Example:
```python
task = NerTask(load_ner_config("ner_tiny"), num_types=6)
model = task.build_model()
task.loss_terms(model, batch, training=True)["ner_loss"]
```
"""

import tensorflow as tf

from spanbert_tf.tasks.ner.model import SPAN_INPUTS, TOKEN_INPUTS, build_ner_model


class NerTask:
    """The `Trainer` task of both heads (`config.ner.model_type`)."""

    loss_weights = {"ner_loss": 1.0}

    def __init__(self, ner_config, num_types, backbone_fn=None):
        self.ner_config = ner_config
        self.num_types = num_types
        self.backbone_fn = backbone_fn
        self.is_span = ner_config.ner.model_type == "span"

    @property
    def input_names(self):
        return SPAN_INPUTS if self.is_span else TOKEN_INPUTS

    def build_model(self):
        backbone = self.backbone_fn() if self.backbone_fn is not None else None
        return build_ner_model(self.ner_config, self.num_types, backbone)

    def build_optimizer(self, model, num_train_steps):
        from spanbert_tf.training.param_groups import backbone_and_head_optimizer

        opt = self.ner_config.optimizer
        return backbone_and_head_optimizer(
            model, num_train_steps, backbone_learning_rate=opt.bert_learning_rate,
            head_learning_rate=opt.task_learning_rate, warmup_ratio=opt.warmup_ratio,
            weight_decay=opt.weight_decay, backbone_epsilon=opt.adam_epsilon,
            clip_norm=opt.clip_norm)

    def _labels_and_weights(self, batch):
        if self.is_span:
            return tf.cast(batch["span_labels"], tf.int32), tf.cast(batch["span_mask"],
                                                                    tf.float32)
        labels = tf.cast(batch["token_labels"], tf.int32)
        return tf.maximum(labels, 0), tf.cast(labels >= 0, tf.float32)

    def loss_denominators(self, batch):
        return {"ner_loss": tf.reduce_sum(self._labels_and_weights(batch)[1])}

    def loss_terms(self, model, batch, training):
        outputs = model({k: batch[k] for k in self.input_names}, training=training)
        logits = outputs["span_logits" if self.is_span else "token_logits"]
        labels, weights = self._labels_and_weights(batch)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        total = tf.reduce_sum(weights)
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels),
                          tf.float32)
        return {"ner_loss": (tf.reduce_sum(ce * weights), total),
                "accuracy": (tf.reduce_sum(correct * weights), total)}
