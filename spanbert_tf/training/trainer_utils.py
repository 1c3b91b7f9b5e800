"""Small helpers of `trainer.py`: dummy batches, policies, optimizer plumbing.

Example:
```python
with mixed_precision_policy("mixed_bfloat16"):
    model = build_model()          # layers compute in bfloat16, variables stay float32
batch = dummy_batch(dataset.element_spec)   # zeros, batch size 1, to create variables
```
"""

import contextlib

import keras
import tensorflow as tf

MIXED_PRECISION = ("float32", "mixed_float16", "mixed_bfloat16")
# Batch keys counted as "tokens" for tokens/s (1 = real token).
TOKEN_MASK_KEYS = ("input_mask", "padding_mask")


@contextlib.contextmanager
def mixed_precision_policy(name):
    """Sets the global Keras dtype policy to `name` inside the block, then restores it."""
    if name not in MIXED_PRECISION:
        raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}, got {name!r}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def dummy_batch(element_spec):
    """All-zeros batch matching `element_spec` with every unknown/batch dim set to 1."""

    def zeros(spec):
        shape = [1] + [1 if d is None else d for d in spec.shape.as_list()[1:]]
        if spec.dtype == tf.string:
            return tf.fill(shape, "")
        return tf.zeros(shape, spec.dtype)

    return tf.nest.map_structure(zeros, element_spec)


def count_tokens(batch):
    """Number of real tokens in a batch (sum of its input/padding mask), else 0."""
    if isinstance(batch, (tuple, list)) and batch:
        batch = batch[0]
    if isinstance(batch, dict):
        for key in TOKEN_MASK_KEYS:
            if key in batch:
                return tf.reduce_sum(tf.cast(batch[key], tf.float32))
    return tf.constant(0.0)


def local_value(strategy, value):
    """The first replica's copy of a (replica-identical) value."""
    return strategy.experimental_local_results(value)[0]


def model_inputs(batch):
    """The model input of a dataset element: the element, or its first item."""
    if isinstance(batch, (tuple, list)):
        return batch[0]
    return batch


def outputs_to_dict(outputs):
    if isinstance(outputs, dict):
        return outputs
    if isinstance(outputs, (tuple, list)):
        return {f"output_{i}": o for i, o in enumerate(outputs)}
    return {"output": outputs}


def disable_optimizer_gradient_aggregation(optimizer):
    """Makes Keras apply gradients as given (the Trainer already all-reduced them).

    Keras' TF optimizer sums gradients over replicas inside `apply()`, after
    clipping them per replica. The Trainer instead all-reduces first, so that
    clipping sees the global-batch gradient (identical on every replica), and
    turns Keras' second all-reduce off here.
    """
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    if not hasattr(inner, "_all_reduce_sum_gradients"):
        raise RuntimeError(
            f"{type(inner).__name__} has no _all_reduce_sum_gradients: this Keras version "
            "aggregates gradients differently; the Trainer would sum them twice"
        )
    inner._all_reduce_sum_gradients = lambda grads_and_vars: list(grads_and_vars)


def restore_backbone(model, checkpoint):
    """Restores `model.backbone` from a checkpoint prefix or model dir."""
    from spanbert_tf.modeling import model_dir as model_dir_lib

    backbone = getattr(model, "backbone", None)
    if backbone is None:
        raise ValueError(
            f"init_checkpoint={checkpoint} given but {type(model).__name__} has no .backbone"
        )
    path = str(checkpoint)
    from spanbert_tf.modeling import preset_dir

    if preset_dir.is_preset_dir(path):  # a keras-hub preset dir
        path = preset_dir.read_preset_dir(path).checkpoint_path
    elif tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(f"init_checkpoint: no checkpoint found in directory {path}")
        path = latest
    model_dir_lib.restore_backbone(backbone, path)
