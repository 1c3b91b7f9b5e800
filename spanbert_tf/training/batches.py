"""What the Trainer needs to know about a batch: dummy batches, model inputs, token counts.

A dataset element is a features dict, or an `(inputs, labels...)` tuple whose first
item feeds the model.

Example:
```python
batch = dummy_batch(dataset.element_spec)   # zeros, batch size 1, to create variables
model(model_inputs(batch))
count_tokens(batch)                         # Σ input_mask / padding_mask (tokens/s)
```
"""

import tensorflow as tf

# Batch keys counted as "tokens" for tokens/s (1 = real token).
TOKEN_MASK_KEYS = ("input_mask", "padding_mask")


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


def model_inputs(batch):
    """The model input of a dataset element: the element, or its first item."""
    if isinstance(batch, (tuple, list)):
        return batch[0]
    return batch


def outputs_to_dict(outputs):
    """A model's outputs as a dict: as is, `{"output_i": ...}` or `{"output": ...}`."""
    if isinstance(outputs, dict):
        return outputs
    if isinstance(outputs, (tuple, list)):
        return {f"output_{i}": o for i, o in enumerate(outputs)}
    return {"output": outputs}
