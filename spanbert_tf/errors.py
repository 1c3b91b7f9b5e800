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


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGTERM/SIGINT after saving a checkpoint at a step boundary.

    A `KeyboardInterrupt` (so a Ctrl-C handler catches it too) that says which signal
    stopped training, at which step, and where the checkpoint is; `exit_code` is the
    shell's convention for death by that signal, 128 + signal number (130 for SIGINT,
    143 for SIGTERM), which `spanbert_tf.cli` exits with after one line
    `<program>: interrupted (<this message>)`. A rerun with the same flags resumes there.
    """

    def __init__(self, signal_name, signal_number, step, checkpoint):
        self.signal_name = signal_name
        self.signal_number = int(signal_number)
        self.step = int(step)
        self.checkpoint = checkpoint
        self.exit_code = 128 + self.signal_number
        super().__init__(f"{signal_name} at step {self.step}: checkpoint {checkpoint} saved; "
                         "rerun the same command to resume from it")
