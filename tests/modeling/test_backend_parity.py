"""The models give the same outputs on TensorFlow, JAX and PyTorch, and weights move between them.

This process runs on TensorFlow; one fresh process per other backend
(`backend_parity_check.py`, both started at once) loads the weights and the
keras-hub backbone preset written here, and writes weights of its own that are
loaded back here. Same weights → same outputs within 1e-5 (float32).
"""

import keras
import numpy as np
import pytest

import backend_parity_check as check
from modeling_test_utils import run_on_other_backends

OTHER_BACKENDS = ("jax", "torch")
TOLERANCE = 1e-5
# Two fresh processes, each importing TensorFlow (keras-hub does) plus JAX or PyTorch: ~30 s.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def parity_run(tmp_path_factory):
    assert keras.backend.backend() == "tensorflow"
    work_dir = tmp_path_factory.mktemp("backend_parity")
    reference = check.write_reference(work_dir)
    run_on_other_backends(check.__file__, work_dir, OTHER_BACKENDS, timeout=300)
    return work_dir, reference


def _assert_close(got, want, where):
    assert set(got) == set(want), where
    for key in want:
        assert got[key].shape == want[key].shape, f"{where}: {key}"
        error = float(np.max(np.abs(got[key] - want[key])))
        assert error <= TOLERANCE, f"{where}: {key} differs by {error:.2e}"


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_tensorflow_weights_and_preset_give_the_same_outputs(parity_run, backend):
    work_dir, reference = parity_run
    got = dict(np.load(work_dir / backend / "from_tensorflow.npz"))
    # All three models and the preset backbone were compared, with non-trivial outputs.
    assert {k.split("/")[0] for k in got} == set(check.MODEL_NAMES) | {"backbone"}
    assert np.std(reference["pretrainer/sbo_logits"]) > 0.1
    _assert_close(got, reference, f"tensorflow weights on {backend}")


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_weights_written_on_another_backend_load_here(parity_run, backend):
    work_dir, reference = parity_run
    want = dict(np.load(work_dir / backend / "own.npz"))
    got = check.run_models(check.load_models(work_dir / backend), check.model_inputs())
    # Different weights from the reference: the files were really written there.
    assert np.max(np.abs(want["pretrainer/mlm_logits"] - reference["pretrainer/mlm_logits"])) > 0.1
    _assert_close(got, want, f"{backend} weights on tensorflow")
