"""Tests of spanbert_tf/training/optimization.py."""

import numpy as np
import pytest

import spanbert_tf  # noqa: F401
import keras
import tensorflow as tf

from spanbert_tf.modeling.config import OptimizerConfig
from spanbert_tf.training import optimization
from spanbert_tf.training.optimization import WarmupLinearDecay, create_optimizer


def test_schedule_values():
    s = WarmupLinearDecay(1e-3, num_warmup_steps=10, num_train_steps=110, end_learning_rate=1e-5)
    lr = lambda step: float(s(step))  # noqa: E731
    assert lr(0) == pytest.approx(1e-4)          # update 1 of 10 warmup updates
    assert lr(4) == pytest.approx(5e-4)
    assert lr(9) == pytest.approx(1e-3)          # update 10: the peak
    assert lr(10) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 99 / 100)
    assert lr(59) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 50 / 100)
    assert lr(109) == pytest.approx(1e-5)        # the last update reaches the end rate
    assert lr(500) == pytest.approx(1e-5)        # and stays there
    values = [lr(i) for i in range(110)]
    assert np.argmax(values) == 9 and all(np.diff(values[9:]) <= 0)
    no_warmup = WarmupLinearDecay(1.0, 0, 4)
    assert [float(no_warmup(i)) for i in range(4)] == pytest.approx([0.75, 0.5, 0.25, 0.0])
    assert WarmupLinearDecay.from_config(s.get_config()).get_config() == s.get_config()


def test_schedule_rejects_bad_lengths():
    with pytest.raises(ValueError, match="num_warmup_steps"):
        WarmupLinearDecay(1e-3, 20, 10)
    with pytest.raises(ValueError, match="num_train_steps"):
        WarmupLinearDecay(1e-3, 0, 0)


def test_create_optimizer_from_config_and_overrides():
    cfg = OptimizerConfig(learning_rate=2e-4, beta_1=0.8, beta_2=0.98, epsilon=1e-6,
                          weight_decay=0.01, num_warmup_steps=100, num_train_steps=1000,
                          clip_norm=1.0)
    opt = create_optimizer(cfg, num_train_steps=50, num_warmup_steps=5)
    assert isinstance(opt, keras.optimizers.AdamW)
    assert (opt.beta_1, opt.beta_2, opt.epsilon, opt.weight_decay) == (0.8, 0.98, 1e-6, 0.01)
    assert opt.global_clipnorm == 1.0
    sched = opt._learning_rate
    assert (sched.num_warmup_steps, sched.num_train_steps, sched.learning_rate) == (5, 50, 2e-4)
    lamb = create_optimizer(OptimizerConfig(optimizer="lamb", clip_norm=0.0))
    assert isinstance(lamb, keras.optimizers.Lamb) and lamb.global_clipnorm is None
    bad = OptimizerConfig()
    bad.optimizer = "sgd"
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        create_optimizer(bad)


class _Net(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(3, name="dense")
        self.layer_norm = keras.layers.LayerNormalization(name="layer_norm")
        self.embed = keras.layers.Embedding(5, 3, name="embedding")
        self.output_bias = self.add_weight(shape=(3,), initializer="ones", name="output_bias")

    def call(self, x):
        return self.layer_norm(self.dense(x)) + self.embed(tf.zeros([1], tf.int32)) + self.output_bias


def test_weight_decay_skips_layer_norm_and_biases():
    net = _Net()
    net(tf.ones([1, 3]))
    for v in net.trainable_variables:
        v.assign(tf.ones_like(v))
    opt = create_optimizer(OptimizerConfig(learning_rate=0.1, weight_decay=0.5,
                                           num_warmup_steps=0, num_train_steps=1000))
    excluded = optimization.exclude_from_weight_decay(opt, net.trainable_variables)
    assert sorted(v.name for v in excluded) == ["beta", "bias", "gamma", "output_bias"]
    opt.build(net.trainable_variables)
    # Zero gradients: Adam's step is 0, so only weight decay moves a variable.
    opt.apply([tf.zeros_like(v) for v in net.trainable_variables], net.trainable_variables)
    lr = 0.1 * 999 / 1000
    for v in net.trainable_variables:
        expected = 1.0 if v.name in ("beta", "bias", "gamma", "output_bias") else 1 - lr * 0.5
        np.testing.assert_allclose(v.numpy(), expected, rtol=1e-6, err_msg=v.path)


def test_global_norm_clipping():
    var = keras.Variable(np.zeros(4, np.float32))
    opt = create_optimizer(OptimizerConfig(optimizer="adamw", learning_rate=1.0, weight_decay=0.0,
                                           num_warmup_steps=0, num_train_steps=10, clip_norm=1.0))
    opt.build([var])
    grads = [tf.constant([30.0, 40.0, 0.0, 0.0])]  # norm 50 -> clipped to 1
    clipped = opt._clip_gradients(grads)
    np.testing.assert_allclose(clipped[0].numpy(), [0.6, 0.8, 0, 0], rtol=1e-6)


def test_learning_rate_at_follows_iterations():
    opt = create_optimizer(OptimizerConfig(learning_rate=1.0, num_warmup_steps=4,
                                           num_train_steps=8))
    var = keras.Variable(np.zeros(2, np.float32))
    opt.build([var])
    assert float(optimization.learning_rate_at(opt)) == pytest.approx(0.25)
    for _ in range(3):
        opt.apply([tf.ones(2)], [var])
    assert float(optimization.learning_rate_at(opt)) == pytest.approx(1.0)
    assert float(optimization.learning_rate_at(opt, offset=-1)) == pytest.approx(0.75)
    wrapped = keras.optimizers.LossScaleOptimizer(create_optimizer(OptimizerConfig()))
    assert float(optimization.learning_rate_at(wrapped)) > 0


def test_gradient_aggregation_is_disabled_on_the_inner_optimizer():
    opt = keras.optimizers.LossScaleOptimizer(keras.optimizers.AdamW())
    optimization.disable_optimizer_gradient_aggregation(opt)
    pairs = [(tf.ones(2), "v")]
    assert opt.inner_optimizer._all_reduce_sum_gradients(pairs) == pairs
