"""Silencing TensorFlow's start-up lines, for the programs and their worker processes.

TensorFlow writes some lines (oneDNN, cudart, "All log messages before
absl::InitializeLog()") from C++ while it is imported, before its logging honours
TF_CPP_MIN_LOG_LEVEL. `stderr_silenced` points file descriptor 2 at /dev/null for
the import. The programs' front end (`spanbert_tf.cli`) sets TF_CPP_MIN_LOG_LEVEL=3
unless `--verbosity` asks for the logs; worker processes inherit it, and
`quiet_requested()` tells them to import quietly too.

Example:
```python
with stderr_silenced(quiet_requested()):
    import tensorflow
```
"""

import contextlib
import importlib.util
import os
import sys


def quiet_requested():
    """Whether this process was asked for silence (TF_CPP_MIN_LOG_LEVEL=3, set by cli)."""
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "3"


@contextlib.contextmanager
def stderr_silenced(enabled=True):
    """Points file descriptor 2 at /dev/null inside the block (C++ writes included)."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _QuietTensorFlowImport:
    """A meta-path finder: the first `import tensorflow` runs with stderr silenced."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            with stderr_silenced():
                execute(module)

        spec.loader.exec_module = exec_module
        return spec


def silence_tensorflow_import():
    """Makes the process's first `import tensorflow` (wherever it happens) quiet."""
    if "tensorflow" not in sys.modules and not any(
            isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())
