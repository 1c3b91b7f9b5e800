"""backends.py: the backend is chosen before keras is imported; model dirs name their backend."""

import pytest

from spanbert_tf.errors import InputError
from spanbert_tf.training import backends


def test_backend_is_checked_against_the_imported_keras(monkeypatch):
    import keras

    assert keras.backend.backend() == "tensorflow"  # this test process
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert backends.select_backend() == "tensorflow"
    assert backends.select_backend("tensorflow") == "tensorflow"
    with pytest.raises(InputError, match="already imported on the tensorflow backend"):
        backends.select_backend("jax")
    with pytest.raises(InputError, match="already imported on the tensorflow backend"):
        backends.select_backend("torch")
    with pytest.raises(InputError, match="--backend=mxnet: pretraining runs on tensorflow, jax, torch"):
        backends.select_backend("mxnet")


def test_checkpoint_format_of_a_model_dir(tmp_path):
    assert backends.checkpoint_format(tmp_path) is None
    for name in ("ckpt-3.weights.h5", "ckpt-12.weights.h5", "ckpt-x.weights.h5",
                 "ckpt-5.tmp-1.weights.h5", "preset.weights.h5"):
        (tmp_path / name).write_bytes(b"")
    assert backends.keras_checkpoints(tmp_path) == [(3, str(tmp_path / "ckpt-3")),
                                                    (12, str(tmp_path / "ckpt-12"))]
    assert backends.checkpoint_format(tmp_path) == "keras"
    backends.check_checkpoint_backend(tmp_path, "jax")
    with pytest.raises(InputError, match="--backend=jax or torch: resume it with --backend=jax or torch"):
        backends.check_checkpoint_backend(tmp_path, "tensorflow")
