"""The extractive-QA model (backbone + start/end logits) and its Trainer task.

`SpanBertQuestionAnswering` is a functional `keras.Model` over keras-hub's
inputs (`token_ids`, `segment_ids`, `padding_mask`): a Dense layer with 2 units
on the backbone's `sequence_output` gives start and end logits per position
(float32 even under mixed precision), as `BertForQuestionAnswering` does. The
loss is the mean of the start and end cross-entropies over the windows of the
batch (label 0 = [CLS] for "no answer in this window").

Example:
```python
backbone = build_backbone(load_config("tiny").model)
model = SpanBertQuestionAnswering(backbone)
out = model({"token_ids": ids, "segment_ids": seg, "padding_mask": mask})
out["start_logits"].shape    # (batch, seq_len)
task = SquadTask(load_config("tiny").model)   # for training.trainer.Trainer
```
"""

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

import keras
import numpy as np
import tensorflow as tf

from spanbert_tf.modeling.backbone import build_backbone

INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")


@keras.saving.register_keras_serializable(package="spanbert_tf")
class SpanBertQuestionAnswering(keras.Model):
    """A backbone with a start/end span-logits head.

    Args:
        backbone: a keras-hub BERT backbone (e.g. `SpanBertBackbone`).
        initializer_range: std of the N(0, σ) head initialisation.
    """

    def __init__(self, backbone, initializer_range=0.02, **kwargs):
        inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name)
                  for name in INPUT_NAMES}
        sequence = backbone(inputs)["sequence_output"]
        head = keras.layers.Dense(
            2, kernel_initializer=keras.initializers.RandomNormal(stddev=initializer_range),
            name="qa_outputs")
        logits = keras.layers.Activation("linear", dtype="float32", name="qa_logits_float32")(
            head(sequence))
        start, end = logits[..., 0], logits[..., 1]
        super().__init__(inputs=inputs, outputs={"start_logits": start, "end_logits": end},
                         **kwargs)
        self.backbone = backbone
        self.qa_outputs = head
        self.initializer_range = initializer_range

    def get_config(self):
        # keras-hub's Task pattern (as SpanBertPretrainer): constructor arguments only.
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.layers.serialize(self.backbone),
            "initializer_range": self.initializer_range,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)


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


def predict_dataset(features, batch_size):
    """Model inputs in window order, batched (the last batch may be smaller)."""
    return tf.data.Dataset.from_tensor_slices(features.model_inputs()).batch(batch_size)


def predict_logits(model, features, batch_size=32):
    """(start_logits, end_logits) float32 arrays [num_windows, L] without a Trainer."""
    starts, ends = [], []
    for batch in predict_dataset(features, batch_size):
        out = model(batch, training=False)
        starts.append(np.asarray(out["start_logits"], np.float32))
        ends.append(np.asarray(out["end_logits"], np.float32))
    return np.concatenate(starts), np.concatenate(ends)
