"""A virtualenv without TensorFlow for the TF-free tests (the JAX/PyTorch machines have none).

`make_notf_venv(folder)` creates, once per test session (`notf_python` fixture in
tests/conftest.py), `python -m venv --without-pip` whose site-packages links every package of
this interpreter's site-packages (jax, keras, keras-hub, torch, ...: nothing is downloaded)
EXCEPT TensorFlow and its own packages (`BLOCKED`, with their .dist-info): there,
`import tensorflow` fails as on a machine where it was never installed, and
`importlib.util.find_spec("tensorflow")` is None. It takes about a second.
"""

import os
import site
import subprocess
import sys
import sysconfig

BLOCKED = ("tensorflow", "tensorflow_text", "tensorflow_datasets", "tensorflow_metadata",
           "tensorflow_io_gcs_filesystem", "tf_keras", "tensorboard",
           "tensorboard_data_server")


def _blocked(entry):
    name = entry.split("-")[0].split(".")[0].lower().replace("-", "_")
    return name in BLOCKED or name.startswith("_tensorflow")


def make_notf_venv(folder):
    """Creates the venv in `folder` (if not there yet); returns its python."""
    python = os.path.join(folder, "bin", "python")
    if os.path.exists(python):
        return python
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", folder], check=True)
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], check=True, capture_output=True,
                             text=True).stdout.strip()
    sources = {d for d in site.getsitepackages() + [sysconfig.get_paths()["purelib"]]
               if os.path.isdir(d) and os.path.realpath(d) != os.path.realpath(purelib)}
    for source in sorted(sources):
        for entry in sorted(os.listdir(source)):
            target = os.path.join(purelib, entry)
            if _blocked(entry) or os.path.lexists(target) or entry == "__pycache__":
                continue
            os.symlink(os.path.join(source, entry), target)
    return python


def notf_env(repo):
    """The environment of a TF-free subprocess: the repository first on the path, CPU JAX."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("KERAS_BACKEND", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PYTHONPATH=str(repo), JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="")
    return env
