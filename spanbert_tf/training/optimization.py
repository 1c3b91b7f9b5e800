"""Optimizers of the paper: AdamW (or LAMB), linear warmup then linear decay.

SpanBERT (fairseq `polynomial_decay`, power 1) warms the learning rate up
linearly for `num_warmup_steps` updates, then decays it linearly to
`end_learning_rate` at `num_train_steps`. Weight decay is decoupled (AdamW) and
is not applied to LayerNorm parameters or biases; gradients are clipped to a
global norm of `clip_norm`.

Example:
```python
config = load_config("tiny")
optimizer = create_optimizer(config.optimizer)
exclude_from_weight_decay(optimizer, model.trainable_variables)
optimizer.build(model.trainable_variables)
```
"""

import keras
import tensorflow as tf

from spanbert_tf.errors import InputError
# Variables whose name or path matches NO_DECAY_PATTERN are not weight-decayed (BERT:
# "LayerNorm", "layer_norm", "bias"; Keras LayerNormalization calls its weights gamma/beta).
from spanbert_tf.training.weight_decay import NO_DECAY_PATTERN, uses_weight_decay  # noqa: F401  (part of this API)


@keras.saving.register_keras_serializable(package="spanbert_tf")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to `learning_rate`, then linear decay to `end_learning_rate`.

    `step` is the optimizer's update counter (0 for the first update); update
    number `s = step + 1` uses `learning_rate * s / num_warmup_steps` while
    `s <= num_warmup_steps`, then
    `end + (learning_rate - end) * (num_train_steps - s) / (num_train_steps - num_warmup_steps)`,
    which reaches `end_learning_rate` on the last update and stays there.

    Example:
    ```python
    schedule = WarmupLinearDecay(1e-4, num_warmup_steps=10, num_train_steps=100)
    float(schedule(9))   # 1e-4: the 10th update uses the peak rate
    ```
    """

    def __init__(self, learning_rate, num_warmup_steps, num_train_steps, end_learning_rate=0.0):
        if num_train_steps < 1:
            raise InputError(f"num_train_steps must be >= 1, got {num_train_steps}")
        if not 0 <= num_warmup_steps <= num_train_steps:
            raise InputError(
                f"num_warmup_steps must be in [0, num_train_steps={num_train_steps}], "
                f"got {num_warmup_steps}"
            )
        self.learning_rate = float(learning_rate)
        self.num_warmup_steps = int(num_warmup_steps)
        self.num_train_steps = int(num_train_steps)
        self.end_learning_rate = float(end_learning_rate)

    def __call__(self, step):
        s = tf.cast(step, tf.float32) + 1.0
        peak = tf.constant(self.learning_rate, tf.float32)
        end = tf.constant(self.end_learning_rate, tf.float32)
        warmup = float(max(self.num_warmup_steps, 1))
        warm_lr = peak * s / warmup
        decay_len = float(max(self.num_train_steps - self.num_warmup_steps, 1))
        frac = tf.clip_by_value((self.num_train_steps - s) / decay_len, 0.0, 1.0)
        decay_lr = end + (peak - end) * frac
        if self.num_warmup_steps == 0:
            return decay_lr
        return tf.where(s <= float(self.num_warmup_steps), warm_lr, decay_lr)

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "num_warmup_steps": self.num_warmup_steps,
            "num_train_steps": self.num_train_steps,
            "end_learning_rate": self.end_learning_rate,
        }


def create_optimizer(opt_config, num_train_steps=None, num_warmup_steps=None):
    """Builds the optimizer described by an `OptimizerConfig`.

    Args:
        opt_config: `spanbert_tf.modeling.config.OptimizerConfig`.
        num_train_steps, num_warmup_steps: override the config's values (the
            schedule length of a run is usually a flag).

    Returns:
        `keras.optimizers.AdamW` or `keras.optimizers.Lamb` with a
        `WarmupLinearDecay` schedule, `global_clipnorm=clip_norm` (None if 0)
        and LayerNorm/bias variables excluded from weight decay by name.
    """
    total = opt_config.num_train_steps if num_train_steps is None else num_train_steps
    warmup = opt_config.num_warmup_steps if num_warmup_steps is None else num_warmup_steps
    warmup = min(warmup, total)
    schedule = WarmupLinearDecay(
        opt_config.learning_rate, warmup, total, opt_config.end_learning_rate
    )
    common = dict(
        learning_rate=schedule,
        beta_1=opt_config.beta_1,
        beta_2=opt_config.beta_2,
        epsilon=opt_config.epsilon,
        weight_decay=opt_config.weight_decay or None,
        global_clipnorm=opt_config.clip_norm or None,
    )
    if opt_config.optimizer == "adamw":
        if not opt_config.weight_decay:
            common["weight_decay"] = 0.0
        optimizer = keras.optimizers.AdamW(**common)
    elif opt_config.optimizer == "lamb":
        optimizer = keras.optimizers.Lamb(**common)
    else:
        raise InputError(
            f"unknown optimizer {opt_config.optimizer!r}; expected 'adamw' or 'lamb'"
        )
    optimizer.exclude_from_weight_decay(var_names=[NO_DECAY_PATTERN])
    return optimizer


def exclude_from_weight_decay(optimizer, variables):
    """Excludes LayerNorm/bias `variables` from decay by identity (before `build`).

    Keras matches `var_names` against the short variable name only; this also
    matches the full path (e.g. `.../layer_norm/gamma`), so heads whose biases
    have custom names are still excluded. Works through a LossScaleOptimizer.
    """
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    excluded = [v for v in variables if not uses_weight_decay(v)]
    inner.exclude_from_weight_decay(var_list=excluded, var_names=[NO_DECAY_PATTERN])
    return excluded


def learning_rate_at(optimizer, offset=0):
    """The learning rate of update `iterations + offset` (offset -1: the last update)."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    lr = inner._learning_rate  # the schedule object or a variable
    if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
        step = tf.maximum(tf.cast(inner.iterations, tf.int64) + offset, 0)
        return tf.cast(lr(step), tf.float32)
    return tf.cast(lr, tf.float32)


def disable_optimizer_gradient_aggregation(optimizer):
    """Makes Keras apply gradients as given (the Trainer already all-reduced them).

    Keras' TF optimizer sums gradients over replicas inside `apply()`, after
    clipping them per replica. The Trainer instead all-reduces first, so that
    clipping sees the global-batch gradient (identical on every replica), and
    turns Keras' second all-reduce off here.
    """
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    if not hasattr(inner, "_all_reduce_sum_gradients"):
        raise RuntimeError(
            f"{type(inner).__name__} has no _all_reduce_sum_gradients: this Keras version "
            "aggregates gradients differently; the Trainer would sum them twice"
        )
    inner._all_reduce_sum_gradients = lambda grads_and_vars: list(grads_and_vars)
