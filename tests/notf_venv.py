"""A virtualenv without TensorFlow for the TF-free tests (the JAX/PyTorch machines have none).

`make_notf_venv(folder)` creates, once per test session (`notf_python` fixture in
tests/conftest.py), `python -m venv --without-pip` whose `sitecustomize.py` adds this
interpreter's site-packages (jax, keras, keras-hub, torch, ...: nothing is downloaded) and
makes every TensorFlow package unimportable (`import tensorflow` raises ModuleNotFoundError,
in that process and in every subprocess it starts, as on a machine without TensorFlow).
Creating it takes about a second; no package is installed.
"""

import os
import site
import subprocess
import sys
import sysconfig

BLOCKED = ("tensorflow", "tensorflow_text", "tensorflow_datasets", "tf_keras")

_SITECUSTOMIZE = '''"""A TF-free venv (tests/notf_venv.py): the test interpreter's packages, TensorFlow blocked."""
import site
import sys

BLOCKED = {blocked!r}


class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (no TensorFlow in this venv)")


sys.meta_path.insert(0, NoTensorFlow())
for directory in {site_dirs!r}:
    site.addsitedir(directory)
'''


def make_notf_venv(folder):
    """Creates the venv in `folder` (if not there yet); returns its python."""
    python = os.path.join(folder, "bin", "python")
    if os.path.exists(python):
        return python
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", folder], check=True)
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], check=True, capture_output=True,
                             text=True).stdout.strip()
    site_dirs = [d for d in site.getsitepackages() + [sysconfig.get_paths()["purelib"]]
                 if os.path.isdir(d)]
    with open(os.path.join(purelib, "sitecustomize.py"), "w", encoding="utf-8") as f:
        f.write(_SITECUSTOMIZE.format(blocked=BLOCKED, site_dirs=sorted(set(site_dirs))))
    return python


def notf_env(repo):
    """The environment of a TF-free subprocess: the repository first on the path, CPU JAX."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("KERAS_BACKEND", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PYTHONPATH=str(repo), JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="")
    return env
