"""Mixed precision: the Keras dtype policy the Trainer builds the model under.

Example:
```python
with mixed_precision_policy("mixed_bfloat16"):
    model = build_model()          # layers compute in bfloat16, variables stay float32
```
"""

import contextlib

import keras

from spanbert_tf.errors import InputError

MIXED_PRECISION = ("float32", "mixed_float16", "mixed_bfloat16")


@contextlib.contextmanager
def mixed_precision_policy(name):
    """Sets the global Keras dtype policy to `name` inside the block, then restores it."""
    if name not in MIXED_PRECISION:
        raise InputError(f"mixed_precision must be one of {MIXED_PRECISION}, got {name!r}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
