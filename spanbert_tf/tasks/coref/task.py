"""Coreference training for the project's `Trainer`: `CorefTask` and the document window.

`truncate_document` crops a long training document to a random window of
`max_training_segments` segments (official `truncate_example`); `CorefTask`
builds the model and the two-group optimizer and computes the loss of one
document per step.

Example:
```python
task = CorefTask(load_coref_config("coref_tiny"))
model = task.build_model()
doc = truncate_document(features, 3, np.random.default_rng(0))
task.loss_terms(model, doc, training=True)["coref_loss"]
```
"""

import numpy as np
import tensorflow as tf

from spanbert_tf.tasks.coref.model import GOLD_NAMES, MODEL_INPUT_NAMES, build_coref_model


def input_signature(with_gold=False):
    """`tf.TensorSpec`s of one document's features (for `tf.function` and export)."""
    specs = {"input_ids": tf.TensorSpec([None, None], tf.int32, "input_ids"),
             "input_mask": tf.TensorSpec([None, None], tf.int32, "input_mask"),
             "speaker_ids": tf.TensorSpec([None, None], tf.int32, "speaker_ids"),
             "sentence_map": tf.TensorSpec([None], tf.int32, "sentence_map"),
             "genre": tf.TensorSpec([], tf.int32, "genre")}
    if with_gold:
        specs.update({name: tf.TensorSpec([None], tf.int32, name) for name in GOLD_NAMES})
    return specs


def truncate_document(features, max_training_segments, rng):
    """A random window of `max_training_segments` consecutive segments (official truncate_example).

    Token-level arrays are cut to the window's real subtokens and gold mentions
    are shifted; mentions not wholly inside the window are dropped (the official
    code keeps partly-inside ones, which can never match a candidate, so the
    loss is the same). Documents with no more segments are returned as is.
    """
    num_segments = features["input_ids"].shape[0]
    if num_segments <= max_training_segments:
        return features
    first = int(rng.integers(0, num_segments - max_training_segments + 1))
    window = slice(first, first + max_training_segments)
    lengths = np.asarray(features["input_mask"]).sum(axis=1)
    offset, count = int(lengths[:first].sum()), int(lengths[window].sum())
    inside = np.logical_and(features["gold_starts"] >= offset,
                            features["gold_ends"] < offset + count)
    out = dict(features)
    for name in ("input_ids", "input_mask", "speaker_ids"):
        out[name] = features[name][window]
    for name in ("sentence_map", "subtoken_map"):
        if name in features:
            out[name] = features[name][offset:offset + count]
    out["gold_starts"] = features["gold_starts"][inside] - offset
    out["gold_ends"] = features["gold_ends"][inside] - offset
    out["cluster_ids"] = features["cluster_ids"][inside]
    return out


class CorefTask:
    """The `Trainer` task: one document per step, loss = the document's summed antecedent loss.

    Training batches are one document with a leading axis of 1 (`[1, S, L]`
    segments, `[1, T]` maps, `[1]` genre), so the Trainer counts one example per
    step; `loss_terms` also takes an unbatched document. The optimizer is the
    two-group recipe (`param_groups.backbone_and_head_optimizer`) from the
    config's `optimizer` section.
    """

    loss_weights = {"coref_loss": 1.0}

    def __init__(self, coref_config, backbone_fn=None):
        self.coref_config = coref_config
        self.backbone_fn = backbone_fn

    def build_model(self):
        backbone = self.backbone_fn() if self.backbone_fn is not None else None
        return build_coref_model(self.coref_config, backbone)

    def build_optimizer(self, model, num_train_steps):
        from spanbert_tf.training.param_groups import backbone_and_head_optimizer

        opt = self.coref_config.optimizer
        return backbone_and_head_optimizer(
            model, num_train_steps, backbone_learning_rate=opt.bert_learning_rate,
            head_learning_rate=opt.task_learning_rate, warmup_ratio=opt.warmup_ratio,
            weight_decay=opt.weight_decay, backbone_epsilon=opt.adam_epsilon,
            clip_norm=opt.clip_norm)

    @staticmethod
    def _unbatch(batch):
        if len(batch["input_ids"].shape) == 3:   # [1, S, L]: one document per step
            return {k: v[0] for k, v in batch.items()}
        return batch

    def loss_terms(self, model, batch, training):
        batch = self._unbatch(batch)
        outputs = model({k: batch[k] for k in MODEL_INPUT_NAMES + GOLD_NAMES}, training=training)
        return {"coref_loss": (outputs["loss"], tf.constant(1.0)),
                "num_top_spans": (tf.cast(tf.shape(outputs["top_span_starts"])[0], tf.float32),
                                  tf.constant(1.0))}

    def loss_denominators(self, batch):
        return {"coref_loss": tf.constant(1.0)}

    def dummy_batch(self, element_spec):
        """A 4-subtoken document with one gold mention (all-zeros inputs have no subtoken),
        with a leading axis of 1 when `element_spec["input_ids"]` has rank 3."""
        doc = {"input_ids": [[101, 1000, 1001, 102]], "input_mask": [[1, 1, 1, 1]],
               "speaker_ids": [[1, 2, 2, 1]], "sentence_map": [0, 0, 0, 0], "genre": 0,
               "subtoken_map": [0, 0, 1, 1], "gold_starts": [1], "gold_ends": [2],
               "cluster_ids": [1]}
        batched = len(element_spec["input_ids"].shape) == 3
        out = {}
        for name, spec in element_spec.items():
            value = tf.constant(doc[name], spec.dtype)
            out[name] = value[None] if batched else value
        return out
