"""Which Keras backend a training program runs on, and which backend wrote a model dir.

`select_backend` must run before keras is imported (Keras reads KERAS_BACKEND once, at import;
`import spanbert_tf` only sets `tensorflow` when nothing is set): the programs call it right
after parsing their flags. A model dir resumes on the backend that wrote its checkpoints:
TensorFlow writes `ckpt-N.index` / `.data-*` (`tf.train.Checkpoint`), the Keras `fit` loop of
the other backends (`keras_fit.py`) writes `ckpt-N.weights.h5`.

Example:
```python
backend = select_backend(flags_backend, cpu_devices)   # "tensorflow" or "jax"
import keras                                            # now on that backend
check_checkpoint_backend("runs/pretrain", backend)     # InputError if another one wrote it
```
"""

import glob
import os
import re
import sys

from spanbert_tf.errors import InputError
from spanbert_tf.modeling.model_dir import CHECKPOINT_NAME
from spanbert_tf.modeling.model_dir import latest_checkpoint

BACKENDS = ("tensorflow", "jax", "torch")  # torch: from .npy blocks only (tasks/pretraining/run.py)
KERAS_CHECKPOINT_SUFFIX = ".weights.h5"
_KERAS_CHECKPOINT_RE = re.compile(
    rf"^{CHECKPOINT_NAME}-(\d+){re.escape(KERAS_CHECKPOINT_SUFFIX)}$")


def select_backend(backend=None, cpu_devices=None):
    """Sets KERAS_BACKEND (`backend`, else $KERAS_BACKEND, else tensorflow) before keras is
    imported and returns it; on JAX `cpu_devices` splits the host CPU into N XLA devices."""
    name = backend or os.environ.get("KERAS_BACKEND") or "tensorflow"
    if name not in BACKENDS:
        raise InputError(f"--backend={name}: pretraining runs on {', '.join(BACKENDS)}")
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != name:
            raise InputError(f"--backend={name}: keras is already imported on the {current} "
                             f"backend (set KERAS_BACKEND={name} before importing keras)")
        return name
    os.environ["KERAS_BACKEND"] = name
    if name == "jax" and cpu_devices:
        if "jax" in sys.modules:
            raise InputError("--cpu_devices: jax is already imported; set XLA_FLAGS="
                             f"--xla_force_host_platform_device_count={cpu_devices} instead")
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_"
                                   f"platform_device_count={int(cpu_devices)}").strip()
    return name


def keras_checkpoints(model_dir):
    """[(step, prefix)] of the `ckpt-N.weights.h5` checkpoints in `model_dir`, oldest first."""
    found = []
    pattern = os.path.join(str(model_dir), f"{CHECKPOINT_NAME}-*{KERAS_CHECKPOINT_SUFFIX}")
    for path in glob.glob(pattern):
        match = _KERAS_CHECKPOINT_RE.match(os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path[:-len(KERAS_CHECKPOINT_SUFFIX)]))
    return sorted(found)


def checkpoint_format(model_dir):
    """"tensorflow" (tf.train.Checkpoint), "keras" (ckpt-N.weights.h5) or None (none yet)."""
    if _may_hold_tf_checkpoint(model_dir) and latest_checkpoint(model_dir) is not None:
        return "tensorflow"
    return "keras" if keras_checkpoints(model_dir) else None


def _may_hold_tf_checkpoint(model_dir):
    """False for a local dir with no `checkpoint` state file and no `*.index` (no need to
    import TensorFlow to look: a TF-free run asks here)."""
    path = str(model_dir)
    if "://" in path:
        return True
    return (os.path.exists(os.path.join(path, "checkpoint"))
            or bool(glob.glob(os.path.join(glob.escape(path), "*.index"))))


def check_checkpoint_backend(model_dir, backend):
    """Raises InputError when `model_dir` holds checkpoints of another backend than `backend`."""
    found = checkpoint_format(model_dir)
    wanted = "tensorflow" if backend == "tensorflow" else "keras"
    if found is not None and found != wanted:
        other = "tensorflow" if found == "tensorflow" else "jax or torch"
        raise InputError(f"{model_dir} holds checkpoints written with --backend={other}: resume "
                         f"it with --backend={other}, or start another --model_dir (from its "
                         "weights: --init_weights / --init_checkpoint)")
