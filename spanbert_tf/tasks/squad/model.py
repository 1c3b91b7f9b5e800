"""The extractive-QA model (backbone + start/end logits); its Trainer task is in `task.py`.

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
```
"""

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

import keras
import numpy as np
import tensorflow as tf


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
