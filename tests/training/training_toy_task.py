"""A small Task (see spanbert_tf.training.trainer) for the trainer tests.

A 2-layer MLP classifier with a `.backbone`, on synthetic data where the label
is a fixed function of the input; per-example weights make the loss
denominators differ between batches, as the masked-LM weights do.
"""

import numpy as np
import tensorflow as tf

import spanbert_tf  # noqa: F401  (sets KERAS_BACKEND)
import keras

NUM_FEATURES = 8
NUM_CLASSES = 4


class ToyModel(keras.Model):
    def __init__(self, hidden=16, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.backbone = keras.Sequential(
            [keras.layers.Dense(hidden, activation="gelu", name="dense_in"),
             keras.layers.LayerNormalization(name="layer_norm")],
            name="backbone",
        )
        self.dropout = keras.layers.Dropout(dropout)
        self.head = keras.layers.Dense(NUM_CLASSES, name="head")
        # Not reached by the loss (like BERT's pooler in pretraining): must stay as is.
        self.unused_kernel = self.add_weight(shape=(3,), initializer="ones", name="unused_kernel")

    def call(self, features, training=False):
        h = self.backbone(features["x"], training=training)
        return {"logits": self.head(self.dropout(h, training=training))}


class ToyTask:
    """Weighted softmax classification; logs accuracy too."""

    def __init__(self, hidden=16, dropout=0.0, second_term_weight=None):
        self.hidden, self.dropout = hidden, dropout
        self.loss_weights = {"ce": 1.0}
        if second_term_weight is not None:
            self.loss_weights["ce_first_half"] = second_term_weight

    def build_model(self):
        return ToyModel(self.hidden, self.dropout)

    @staticmethod
    def _half(w):
        return tf.cast(tf.range(tf.shape(w)[0]) % 2 == 0, tf.float32) * w

    def loss_denominators(self, batch):
        w = batch["w"]
        return {"ce": tf.reduce_sum(w), "ce_first_half": tf.reduce_sum(self._half(w))}

    def loss_terms(self, model, batch, training):
        logits = tf.cast(model(batch, training=training)["logits"], tf.float32)
        ce = tf.keras.losses.sparse_categorical_crossentropy(batch["y"], logits, from_logits=True)
        w = batch["w"]
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), batch["y"]), tf.float32)
        half = self._half(w)
        return {
            "ce": (tf.reduce_sum(ce * w), tf.reduce_sum(w)),
            "ce_first_half": (tf.reduce_sum(ce * half), tf.reduce_sum(half)),
            "accuracy": (tf.reduce_sum(correct * w), tf.reduce_sum(w)),
        }


def toy_arrays(n=512, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, NUM_FEATURES)).astype(np.float32)
    proj = np.random.default_rng(123).normal(size=(NUM_FEATURES, NUM_CLASSES))
    y = np.argmax(x @ proj, axis=-1).astype(np.int32)
    w = rng.integers(0, 3, size=n).astype(np.float32)
    return {"x": x, "y": y, "w": w}


def toy_dataset_fn(global_batch_size, n=512, seed=0):
    """`fn(input_context)` giving per-replica batches; same global batches for any layout."""
    arrays = toy_arrays(n, seed)

    def dataset_fn(input_context):
        per_replica = input_context.get_per_replica_batch_size(global_batch_size)
        ds = tf.data.Dataset.from_tensor_slices(arrays)
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        return ds.repeat().batch(per_replica, drop_remainder=True)

    return dataset_fn
