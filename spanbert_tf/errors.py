"""The one error type for bad user input, shared by every program.

Library code raises `InputError` (a `ValueError`) with a message that names the
file, field or flag and says what was expected; the programs' common front end
(`spanbert_tf.cli`) prints it as one line and exits 1. Subclasses say which
kind of input was wrong where a caller wants to tell them apart.

Example:
```python
raise InputError("--masked_lm_prob must be in (0, 1), got 1.5")
```
"""


class InputError(ValueError):
    """Input that cannot be used: missing or malformed files, inconsistent settings."""
