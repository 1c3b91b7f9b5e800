"""Two-parameter-group optimizer: partition, schedules, per-group clipping, decay, checkpoint."""

import numpy as np
import pytest

import spanbert_tf  # noqa: F401

import keras
import tensorflow as tf

from spanbert_tf.training.param_groups import ParameterGroupOptimizer, backbone_and_head_optimizer


class ToyModel(keras.Model):
    def __init__(self):
        super().__init__()
        self.backbone = keras.Sequential([keras.layers.Dense(4, name="dense"),
                                          keras.layers.LayerNormalization(name="layer_norm")])
        self.head = keras.layers.Dense(2, name="head")

    def call(self, x):
        return self.head(self.backbone(x))


def toy():
    model = ToyModel()
    model(np.ones((1, 3), np.float32))
    return model


def test_partition_and_schedules():
    model = toy()
    optimizer = backbone_and_head_optimizer(model, num_train_steps=100, backbone_learning_rate=2e-5,
                                            head_learning_rate=1e-4)
    parts = optimizer.partition(model.trainable_variables)
    assert ([v.path for v in parts["backbone"]]
            == [v.path for v in model.backbone.trainable_variables])
    assert [v.path for v in parts["head"]] == [v.path for v in model.head.trainable_variables]
    rates = {k: float(v) for k, v in optimizer.learning_rates().items()}
    # Update 1: backbone warms up over 10 steps; the head decays linearly from the start.
    assert rates["backbone"] == pytest.approx(2e-5 / 10)
    assert rates["head"] == pytest.approx(1e-4 * 99 / 100)
    assert float(optimizer.learning_rates(offset=9)["backbone"]) == pytest.approx(2e-5)
    assert float(optimizer.learning_rates(offset=99)["head"]) == pytest.approx(0.0, abs=1e-12)


def test_each_group_clipped_on_its_own_and_decay_only_on_backbone_weights():
    model = toy()
    optimizer = backbone_and_head_optimizer(model, num_train_steps=10, backbone_learning_rate=0.1,
                                            head_learning_rate=0.1, warmup_ratio=0.0)
    variables = model.trainable_variables
    optimizer.build(variables)
    before = [v.numpy().copy() for v in variables]
    # Backbone gradients of global norm 0.5 (kept), head gradients of norm 100 (clipped to 1).
    backbone_ids = {id(v) for v in model.backbone.trainable_variables}
    grads = [np.ones(v.shape, np.float32) for v in variables]
    norms = {side: np.sqrt(sum(g.size for g, v in zip(grads, variables)
                               if (id(v) in backbone_ids) == side)) for side in (True, False)}
    grads = [g * (0.5 if id(v) in backbone_ids else 100.0) / norms[id(v) in backbone_ids]
             for g, v in zip(grads, variables)]
    optimizer.apply_gradients(zip([tf.constant(g) for g in grads], variables))
    for group, inner in zip(("backbone", "head"), optimizer.optimizers):
        group_vars = optimizer.partition(variables)[group]
        # Adam's first moment after one update = (1 - beta_1) * the clipped gradient.
        first_moments = [inner._momentums[inner._get_variable_index(v)].numpy() for v in group_vars]
        norm = np.sqrt(sum((m ** 2).sum() for m in first_moments)) / 0.1
        assert norm == pytest.approx(0.5 if group == "backbone" else 1.0, rel=1e-4)
    assert int(optimizer.iterations) == 1
    # Zero gradients: only decayed backbone weights move (by lr * wd); LayerNorm, biases,
    # head do not.
    before = [v.numpy().copy() for v in variables]
    for inner in optimizer.optimizers:
        for slot in inner._momentums + inner._velocities:
            slot.assign(tf.zeros_like(slot))
    lr = float(optimizer.learning_rates()["backbone"])          # of the coming update
    optimizer.apply_gradients(zip([tf.zeros(v.shape) for v in variables], variables))
    for v, old in zip(variables, before):
        if v.path.endswith("dense/kernel") and id(v) in backbone_ids:
            np.testing.assert_allclose(v.numpy(), old * (1 - lr * 0.01), rtol=1e-6)
        else:
            np.testing.assert_array_equal(v.numpy(), old)


def test_checkpoint_round_trip(tmp_path):
    model = toy()
    optimizer = backbone_and_head_optimizer(model, 10, 1e-3, 1e-3)
    optimizer.build(model.trainable_variables)
    optimizer.apply([tf.ones(v.shape) for v in model.trainable_variables],
                    model.trainable_variables)
    path = tf.train.Checkpoint(optimizer=optimizer).save(str(tmp_path / "ckpt"))
    fresh = backbone_and_head_optimizer(model, 10, 1e-3, 1e-3)
    fresh.build(model.trainable_variables)
    tf.train.Checkpoint(optimizer=fresh).restore(path).assert_existing_objects_matched()
    assert [int(o.iterations) for o in fresh.optimizers] == [1, 1]
    np.testing.assert_array_equal(fresh.optimizers[1]._momentums[0],
                                  optimizer.optimizers[1]._momentums[0])


def test_bad_groups_fail_clearly():
    model = toy()
    adam = keras.optimizers.Adam()
    with pytest.raises(ValueError, match="unique"):
        ParameterGroupOptimizer([("a", adam, None), ("a", adam, None)])
    with pytest.raises(ValueError, match="last parameter group"):
        ParameterGroupOptimizer([("a", adam, None), ("b", adam, [])])
    only_head = ParameterGroupOptimizer([("head", adam, model.head.trainable_variables)])
    with pytest.raises(ValueError, match="in no parameter group"):
        only_head.partition(model.trainable_variables)
