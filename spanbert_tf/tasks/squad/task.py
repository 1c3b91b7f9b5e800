"""The `Trainer` task for SQuAD fine-tuning: loss = (start CE + end CE) / 2, and its input.

Example:
```python
task = SquadTask(load_config("tiny").model)
trainer = Trainer(task, strategy, "runs/squad/train", optimizer_config,
                  train_dataset_fn(features, global_batch_size=32, seed=0), num_steps)
```
"""

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

import tensorflow as tf

from spanbert_tf.modeling.backbone import build_backbone
from spanbert_tf.tasks.squad.model import INPUT_NAMES, SpanBertQuestionAnswering


def span_loss_terms(start_logits, end_logits, start_positions, end_positions):
    """LOCAL sums {name: (numerator, denominator)} of the span loss and accuracies."""
    start_logits = tf.cast(start_logits, tf.float32)
    end_logits = tf.cast(end_logits, tf.float32)
    start_positions = tf.cast(start_positions, tf.int32)
    end_positions = tf.cast(end_positions, tf.int32)
    count = tf.cast(tf.shape(start_positions)[0], tf.float32)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits
    start_ce = ce(labels=start_positions, logits=start_logits)
    end_ce = ce(labels=end_positions, logits=end_logits)

    def correct(logits, labels):
        return tf.reduce_sum(tf.cast(
            tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels), tf.float32))

    return {"start_loss": (tf.reduce_sum(start_ce), count),
            "end_loss": (tf.reduce_sum(end_ce), count),
            "start_accuracy": (correct(start_logits, start_positions), count),
            "end_accuracy": (correct(end_logits, end_positions), count)}


class SquadTask:
    """The `Trainer` task for SQuAD fine-tuning: loss = (start CE + end CE) / 2.

    Batches are dicts with the model inputs plus `start_positions`/`end_positions`.
    """

    loss_weights = {"start_loss": 0.5, "end_loss": 0.5}

    def __init__(self, model_config):
        self.model_config = model_config

    def build_model(self):
        backbone = build_backbone(self.model_config)
        return SpanBertQuestionAnswering(
            backbone, initializer_range=self.model_config.initializer_range)

    def loss_denominators(self, batch):
        """Both span losses are means over the windows of the batch."""
        count = tf.cast(tf.shape(batch["start_positions"])[0], tf.float32)
        return {"start_loss": count, "end_loss": count}

    def loss_terms(self, model, batch, training):
        outputs = model({k: batch[k] for k in INPUT_NAMES}, training=training)
        return span_loss_terms(outputs["start_logits"], outputs["end_logits"],
                               batch["start_positions"], batch["end_positions"])


def train_dataset_fn(features, global_batch_size, seed):
    """`fn(input_context)` of shuffled, repeated per-replica training batches.

    Every input pipeline reads its own shard of the windows (`input_pipeline_id`).
    """
    arrays = features.training_inputs()

    def dataset_fn(input_context):
        per_replica = input_context.get_per_replica_batch_size(global_batch_size)
        ds = tf.data.Dataset.from_tensor_slices(arrays)
        if input_context.num_input_pipelines > 1:
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        ds = ds.shuffle(len(features), seed=seed, reshuffle_each_iteration=True).repeat()
        return ds.batch(per_replica, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    return dataset_fn
