"""The error types for bad user input, shared by every program.

Library code raises `InputError` (a `ValueError`) with a message that names the
file, field or flag and says what was expected; the programs' common front end
(`spanbert_tf.cli`) prints it as one line and exits 1. Any other exception is a
bug in this package: the front end keeps its traceback and says so. Subclasses say
which kind of input was wrong where a caller wants to tell them apart; the two
below are also the built-in errors callers already catch.

Example:
```python
raise InputError("--masked_lm_prob must be in (0, 1), got 1.5")
raise MissingFileError(f"vocab file not found: {path}")   # also a FileNotFoundError
```
"""


class InputError(ValueError):
    """Input that cannot be used: missing or malformed files, inconsistent settings."""


class MissingFileError(InputError, FileNotFoundError):
    """A file or folder named by the user (a flag, a config, a model dir) does not exist."""


class OutputExistsError(InputError, FileExistsError):
    """An output the program would write exists already (and --overwrite was not given)."""
