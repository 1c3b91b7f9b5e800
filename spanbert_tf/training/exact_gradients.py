"""The exact loss of one optimizer step over micro-batches and replicas (the `Trainer`'s math).

For every loss term t of a task, with numerators num_t and denominators den_t summed over the
micro-batches of a gradient-accumulation step and over the replicas:

    loss = Σ_t w_t · Σ num_t / Σ den_t

Each micro-batch adds the gradient of its share of the numerators, divided by the whole
step's denominators (known before the first forward pass when the task has
`loss_denominators(batch)`), and the replicas' gradients are summed: k micro-batches on r
replicas give exactly the gradient of one k·r× batch, for every term
(`tests/training/test_trainer.py` checks it against one big batch).
"""

import keras
import tensorflow as tf

from spanbert_tf.training.batches import count_tokens


def global_denominators(task, loss_weights, strategy, micro_batches):
    """Σ over micro-batches and replicas of each loss term's denominator.

    Known before the first forward pass (the task computes them from the
    batch alone), so every micro-batch's loss can be divided by the whole
    update's denominators: k micro-batches give exactly the gradient of one
    k× batch, for every loss term. None when the task has no
    `loss_denominators` (then `grad_accum_steps` is 1 and each term's own
    denominator is all-reduced inside the step).
    """
    denominators_fn = getattr(task, "loss_denominators", None)
    if denominators_fn is None:
        return None
    names = sorted(loss_weights)
    local = [tf.constant(0.0)] * len(names)
    for batch in micro_batches:
        dens = denominators_fn(batch)
        local = [s + tf.cast(dens[n], tf.float32) for s, n in zip(local, names)]
    if strategy.num_replicas_in_sync > 1:
        local = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, local)
    return dict(zip(names, local))


def replica_gradients(trainer, micro_batches):
    """(gradients, indices of the variables they belong to, metrics) of one step.

    loss = Σ_t w_t · (Σ_micro-batches,replicas num_t) / (Σ_micro-batches,replicas den_t);
    each micro-batch adds the gradient of its share of the numerators, and the
    replicas' gradients are summed: exactly the gradient of the global batch
    (loss-scaled under mixed_float16). Replica context.
    """
    ctx = tf.distribute.get_replica_context()
    replicas = trainer.strategy.num_replicas_in_sync
    weights = trainer.loss_weights
    variables = trainer.model.trainable_variables
    forward = trainer._jit_forward
    scaled = isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    global_den = global_denominators(trainer.task, weights, trainer.strategy, micro_batches)
    sums, acc_grads = None, None
    examples = tf.constant(0.0)
    tokens = tf.constant(0.0)
    for batch in micro_batches:
        with tf.GradientTape() as tape:
            terms = forward(batch)
            names = sorted(terms)
            den = global_den
            if den is None:  # one micro-batch: its own denominators, summed over replicas
                dens = [tf.stop_gradient(terms[n][1]) for n in weights]
                if replicas > 1:
                    dens = ctx.all_reduce(tf.distribute.ReduceOp.SUM, dens)
                den = dict(zip(weights, dens))
            loss = tf.add_n([
                w * tf.math.divide_no_nan(terms[n][0], den[n]) for n, w in weights.items()
            ])
            if scaled:
                loss = trainer.optimizer.scale_loss(loss)
        grads = tape.gradient(loss, variables)
        # Variables the loss does not reach (e.g. the pooler in pretraining) are
        # left alone: no update and no weight decay, as in the official code.
        used = [i for i, g in enumerate(grads) if g is not None]
        grads = [tf.convert_to_tensor(grads[i]) for i in used]
        if acc_grads is None:
            acc_grads = grads
        else:
            acc_grads = [a + g for a, g in zip(acc_grads, grads)]
        local = {n: (tf.stop_gradient(terms[n][0]), tf.stop_gradient(terms[n][1]))
                 for n in names}
        if sums is None:
            sums = local
        else:
            sums = {n: (sums[n][0] + local[n][0], sums[n][1] + local[n][1]) for n in names}
        examples += tf.cast(tf.shape(tf.nest.flatten(batch)[0])[0], tf.float32)
        tokens += count_tokens(batch)
    totals = [sums[n][0] for n in names] + [sums[n][1] for n in names] + [examples, tokens]
    if replicas > 1:
        acc_grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, acc_grads)
        totals = ctx.all_reduce(tf.distribute.ReduceOp.SUM, totals)
    k = len(names)
    metrics = {n: tf.math.divide_no_nan(totals[i], totals[k + i]) for i, n in enumerate(names)}
    metrics["loss"] = tf.add_n([w * metrics[n] for n, w in weights.items()])
    metrics["examples"], metrics["tokens"] = totals[-2], totals[-1]
    return acc_grads, used, metrics
