"""keras_fit's pieces on this process's backend (TensorFlow): the learning-rate schedule and the
optimizer are the TF Trainer's, checkpoints are found, kept and restored. The JAX runs against
TensorFlow runs are in tests/tasks/pretraining/test_run_jax.py."""

import json

import keras
import numpy as np
import pytest

from spanbert_tf.modeling.config import load_config
from spanbert_tf.training import keras_fit, optimization


def test_schedule_is_the_tensorflow_schedule():
    for warmup, total, end in ((0, 10, 0.0), (3, 10, 0.0), (10, 10, 1e-5), (30, 300, 2e-6)):
        ours = keras_fit.WarmupLinearDecayOps(1e-3, warmup, total, end)
        theirs = optimization.WarmupLinearDecay(1e-3, warmup, total, end)
        got = [float(ours(step)) for step in range(total + 3)]
        want = [float(theirs(step)) for step in range(total + 3)]
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=0)
        assert keras_fit.WarmupLinearDecayOps(**ours.get_config()).get_config() == ours.get_config()
    with pytest.raises(ValueError, match="num_warmup_steps"):
        keras_fit.WarmupLinearDecayOps(1e-3, 11, 10)


@pytest.mark.parametrize("name", ["adamw", "lamb"])
def test_optimizer_is_the_tensorflow_optimizer(name):
    config = load_config("tiny")
    opt_config = config.optimizer
    opt_config.optimizer = name
    model = keras_fit.build_fit_pretrainer(config, 1.0, "float32")
    variables = model.trainable_variables
    ours = keras_fit.create_optimizer(
        opt_config, keras_fit.learning_rate_schedule(opt_config, 300), variables)
    theirs = optimization.create_optimizer(opt_config, num_train_steps=300)
    optimization.exclude_from_weight_decay(theirs, variables)
    assert type(ours) is type(theirs)
    for key in ("beta_1", "beta_2", "epsilon", "weight_decay", "global_clipnorm", "clipnorm"):
        assert getattr(ours, key) == getattr(theirs, key), key
    decayed = [v.path for v in variables if ours._use_weight_decay(v)]
    assert decayed == [v.path for v in variables if theirs._use_weight_decay(v)]
    assert not any("layer_norm" in p or p.endswith("bias") for p in decayed)
    assert any(p.endswith("kernel") for p in decayed)
    # The pooler, which the pretraining loss does not reach, is not trained (as in the Trainer).
    assert not any("pooled_dense" in v.path for v in variables)


def test_checkpoints_are_found_kept_and_restored(tmp_path):
    config = load_config("tiny")
    data = config.to_dict()
    data["model"].update(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
                         vocab_size=100, sbo_position_embedding_size=8)
    (tmp_path / "c.json").write_text(json.dumps(data))
    config = load_config(str(tmp_path / "c.json"))

    def compiled():
        model = keras_fit.build_fit_pretrainer(config, 1.0, "float32")
        schedule = keras_fit.learning_rate_schedule(config.optimizer, 10)
        model.compile(optimizer=keras_fit.create_optimizer(config.optimizer, schedule,
                                                           model.trainable_variables))
        model.optimizer.build(model.trainable_variables)
        return model

    model = compiled()
    (tmp_path / "ckpt-7.index").write_text("")  # not a Keras checkpoint
    for step in (2, 4, 10, 6):
        model.optimizer.iterations.assign(step)
        keras_fit.save_checkpoint(model, tmp_path, step, keep=2)
    assert keras_fit.checkpoints(tmp_path) == [(6, str(tmp_path / "ckpt-6")),
                                               (10, str(tmp_path / "ckpt-10"))]
    assert keras_fit.latest_checkpoint(tmp_path) == str(tmp_path / "ckpt-10")
    assert not list(tmp_path.glob("*.tmp-*"))
    restored = compiled()
    keras_fit.restore_checkpoint(restored, str(tmp_path / "ckpt-6"))
    assert int(restored.optimizer.iterations.numpy()) == 6
    for a, b in zip(model.weights, restored.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    data["model"]["hidden_size"] = 32
    (tmp_path / "c.json").write_text(json.dumps(data))
    config = load_config(str(tmp_path / "c.json"))
    with pytest.raises(ValueError, match="ckpt-6.weights.h5 does not fit"):
        keras_fit.restore_checkpoint(compiled(), str(tmp_path / "ckpt-6"))
    assert keras_fit.latest_checkpoint(tmp_path / "missing") is None
    assert keras.backend.backend() == "tensorflow"
