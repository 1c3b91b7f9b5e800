"""Parameter groups: one optimizer per group of variables, each clipped on its own.

Fine-tuning recipes such as SpanBERT coreference (mandarjoshi90/coref
`optimization.create_custom_optimizer`) train the encoder and the task layers
with different optimizers: the backbone with AdamW (small learning rate,
warmup, weight decay except on LayerNorm/bias), the task layers with Adam (a
larger learning rate, no warmup), each group's gradients clipped to its own
global norm. `ParameterGroupOptimizer` holds one Keras optimizer per group and
splits `apply_gradients` between them; it is a `tf.Module`, so
`tf.train.Checkpoint(optimizer=...)` saves and restores every group's slots
and step counters.

Example:
```python
optimizer = backbone_and_head_optimizer(model, num_train_steps=1000,
                                        backbone_learning_rate=2e-5, head_learning_rate=1e-4)
optimizer.build(model.trainable_variables)
optimizer.apply_gradients(zip(grads, model.trainable_variables))
optimizer.learning_rates()     # {"backbone": ..., "head": ...} of the next update
```
"""

import keras
import tensorflow as tf

from spanbert_tf.training.optimization import (
    WarmupLinearDecay, exclude_from_weight_decay, learning_rate_at)


class ParameterGroupOptimizer(tf.Module):
    """Several optimizers, each over its own variables.

    Args:
        groups: list of `(name, optimizer, variables)`; every variable later
            passed to `build`/`apply_gradients` must be in exactly one group
            (matched by identity). `variables=None` on the last group means
            "every variable not in another group".
    """

    def __init__(self, groups, name="parameter_groups"):
        super().__init__(name=name)
        names = [group[0] for group in groups]
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"parameter group names must be unique and non-empty, got {names}")
        if any(group[2] is None for group in groups[:-1]):
            raise ValueError("only the last parameter group may take 'the rest' (variables=None)")
        self.group_names = names
        self.optimizers = [group[1] for group in groups]
        self._members = [None if group[2] is None else {id(v) for v in group[2]}
                         for group in groups]

    def group_of(self, variable):
        """The index of the group that trains `variable`."""
        for index, members in enumerate(self._members):
            if members is None or id(variable) in members:
                return index
        name = getattr(variable, "path", None) or variable.name
        raise ValueError(f"variable {name} is in no parameter group of {self.group_names}")

    def partition(self, variables):
        """{group name: [variables]} in the order given."""
        parts = {name: [] for name in self.group_names}
        for variable in variables:
            parts[self.group_names[self.group_of(variable)]].append(variable)
        return parts

    def build(self, variables):
        for optimizer, group_variables in zip(self.optimizers, self.partition(variables).values()):
            optimizer.build(group_variables)

    def apply_gradients(self, grads_and_vars):
        """Applies each group's (gradient, variable) pairs with that group's optimizer."""
        pairs = [[] for _ in self.optimizers]
        for grad, variable in grads_and_vars:
            pairs[self.group_of(variable)].append((grad, variable))
        for optimizer, group_pairs in zip(self.optimizers, pairs):
            if group_pairs:
                optimizer.apply_gradients(group_pairs)

    def apply(self, grads, trainable_variables):
        """Keras 3 `Optimizer.apply` form of `apply_gradients`."""
        self.apply_gradients(zip(grads, trainable_variables))

    @property
    def iterations(self):
        """The update counter of the first group."""
        return self.optimizers[0].iterations

    def learning_rates(self, offset=0):
        """{group name: learning rate of update `iterations + offset`}."""
        return {name: learning_rate_at(optimizer, offset)
                for name, optimizer in zip(self.group_names, self.optimizers)}


def backbone_and_head_optimizer(model, num_train_steps, backbone_learning_rate,
                                head_learning_rate, warmup_ratio=0.1, weight_decay=0.01,
                                backbone_epsilon=1e-6, head_epsilon=1e-8, clip_norm=1.0):
    """The two-group recipe of SpanBERT coreference.

    * "backbone" (`model.backbone.trainable_variables`): AdamW, linear warmup
      over `warmup_ratio` of the steps then linear decay to 0, decoupled
      weight decay except on LayerNorm parameters and biases, ε 1e-6;
    * "head" (every other variable): Adam, linear decay from the first step
      (no warmup), no weight decay, ε 1e-8 (TF1 `AdamOptimizer`'s default, as
      the official code);
    * each group clipped to its own global norm `clip_norm` (0 = no clipping).

    Differences from the official TF1 code: Keras AdamW applies Adam's bias
    correction (BERT's `AdamWeightDecayOptimizer` does not), and each group
    counts its own updates (the official code increments the shared global
    step twice per update, so its schedules run twice as fast as configured).
    """
    backbone_variables = list(model.backbone.trainable_variables)
    warmup = int(round(warmup_ratio * num_train_steps))
    clip = clip_norm or None
    backbone_optimizer = keras.optimizers.AdamW(
        learning_rate=WarmupLinearDecay(backbone_learning_rate, warmup, num_train_steps),
        beta_1=0.9, beta_2=0.999, epsilon=backbone_epsilon, weight_decay=weight_decay,
        global_clipnorm=clip, name="backbone_adamw")
    exclude_from_weight_decay(backbone_optimizer, backbone_variables)
    head_optimizer = keras.optimizers.Adam(
        learning_rate=WarmupLinearDecay(head_learning_rate, 0, num_train_steps),
        beta_1=0.9, beta_2=0.999, epsilon=head_epsilon, global_clipnorm=clip,
        name="head_adam")
    return ParameterGroupOptimizer([("backbone", backbone_optimizer, backbone_variables),
                                    ("head", head_optimizer, None)])
