"""The TensorFlow training loop (pretraining and every fine-tuning program; JAX and PyTorch
pretraining use `keras_fit.py`).

A *task* says what to train; the `Trainer` does the rest: strategy scope,
optimizer, exact multi-replica loss, gradient accumulation, several steps per
`tf.function`, optional XLA and mixed precision, checkpoints and resume, logs.
A resumed run continues the data where the checkpoint left it
(`preemption.continued_dataset_fn`); SIGTERM/SIGINT while training finish the
current loop of steps, save a checkpoint there and raise `TrainingInterrupted`
(`spanbert_tf.training.preemption`).

The Task protocol (duck-typed):
```python
class MyTask:
    loss_weights = {"loss_a": 1.0}              # which terms form the loss, and weights
    def build_model(self):                      # called inside strategy.scope()
        return keras.Model(...)                 # with a `.backbone` attribute
    def loss_terms(self, model, batch, training):
        # LOCAL sums over this replica's batch: {name: (numerator, denominator)}
        return {"loss_a": (sum_of_losses, num_examples), "accuracy": (correct, num_examples)}
    def loss_denominators(self, batch):       # the same denominators, from the batch alone
        return {"loss_a": num_examples}       # (needed for grad_accum_steps > 1)
```
Every denominator of a weighted term is summed over all micro-batches of the
step and over replicas (`all_reduce(SUM)`) BEFORE the first backward pass (the
task computes them from the input weights alone), so
`loss = sum_t w_t * (sum num_t) / (sum den_t)` is the exact mean over the global
batch of every term, and the gradients summed over micro-batches and replicas are
the global-batch gradient: `mirrored` and `--grad_accum_steps=k` train exactly
like one `default` k-times batch (up to float summation order), whatever the
number of loss terms. Terms not in `loss_weights` are only logged (accuracies).

Example:
```python
trainer = Trainer(task, tf.distribute.get_strategy(), "runs/x", config.optimizer,
                  train_dataset_fn, num_train_steps=1000)
summary = trainer.train()                  # resumes from runs/x if it has checkpoints
outputs = trainer.predict(eval_dataset)    # {name: np.ndarray}, in dataset order
```

Optional task hooks (coreference uses all three):
```python
    def build_optimizer(self, model, num_train_steps):   # instead of optimizer_config,
        return ParameterGroupOptimizer(...)              # e.g. one optimizer per group
    def dummy_batch(self, element_spec):   # a small valid batch to create the variables
        return {...}                       # (when all-zeros inputs are not one)
```
`trainer.predict_elements(dataset)` returns one output dict per dataset element
(elements of different shapes, e.g. one document each), not concatenated.
"""

import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from spanbert_tf.errors import InputError
from spanbert_tf.modeling import model_dir as model_dir_lib
from spanbert_tf.training import distribute, exact_gradients, optimization, preemption
from spanbert_tf.training.batches import dummy_batch, model_inputs
from spanbert_tf.training.trainer_predict import TrainerPredictions
from spanbert_tf.training.precision import mixed_precision_policy
from spanbert_tf.training.train_log import TrainLogger


class Trainer(TrainerPredictions):
    """Trains `task.build_model()` with `strategy` into `model_dir`.

    Args:
        task: see the Task protocol in the module docstring.
        strategy: a `tf.distribute.Strategy` (see `distribute.get_strategy`).
        model_dir: checkpoints (`ckpt-N`), `train_log.jsonl`, TensorBoard `train/`.
        optimizer_config: an `OptimizerConfig` (optimizer, lr, warmup, decay, clip);
            unused (may be None) when the task has `build_optimizer`.
        train_dataset_fn: `fn(input_context) -> tf.data.Dataset` of PER-REPLICA
            batches (fixed size, `drop_remainder=True`), repeating for as long as
            training runs. None for a predict-only trainer.
        num_train_steps: length of the learning-rate schedule and default end of `train()`.
        steps_per_loop: optimizer steps per `tf.function` call (fewer Python round trips).
        grad_accum_steps: micro-batches per optimizer step (global batch =
            per-replica batch x replicas x grad_accum_steps).
        save_checkpoints_steps: checkpoint every N steps (and at the end of `train()`).
        keep_checkpoint_max: checkpoints kept by the `tf.train.CheckpointManager`.
        log_every: a `train_log.jsonl` record every N steps (and at the end).
        init_checkpoint: restore only the backbone from this checkpoint/model dir
            when `model_dir` has no checkpoint yet (fine-tuning, continued training).
        jit_compile: XLA-compile the forward+backward pass.
        seed: seeds Python, NumPy, TensorFlow and Keras (initialisation, dropout).
        num_warmup_steps: overrides `optimizer_config.num_warmup_steps`.
        mixed_precision: None/"float32", "mixed_float16" (dynamic loss scaling) or
            "mixed_bfloat16"; the Keras policy used to build the model.
        show_progress: show the tqdm progress bar.
    """

    def __init__(
        self,
        task,
        strategy,
        model_dir,
        optimizer_config,
        train_dataset_fn,
        num_train_steps,
        steps_per_loop=100,
        grad_accum_steps=1,
        save_checkpoints_steps=1000,
        keep_checkpoint_max=5,
        log_every=100,
        init_checkpoint=None,
        jit_compile=False,
        seed=42,
        num_warmup_steps=None,
        mixed_precision=None,
        show_progress=True,
    ):
        for name, value in (
            ("num_train_steps", num_train_steps),
            ("steps_per_loop", steps_per_loop),
            ("grad_accum_steps", grad_accum_steps),
            ("save_checkpoints_steps", save_checkpoints_steps),
            ("keep_checkpoint_max", keep_checkpoint_max),
            ("log_every", log_every),
        ):
            if int(value) < 1:
                raise InputError(f"{name} must be >= 1, got {value}")
        if int(grad_accum_steps) > 1 and not hasattr(task, "loss_denominators"):
            raise InputError(
                f"grad_accum_steps={grad_accum_steps} needs the task's denominators before "
                f"the backward passes: {type(task).__name__} has no loss_denominators(batch)"
            )
        self.task = task
        self.strategy = strategy
        self.model_dir = str(model_dir)
        self.train_dataset_fn = train_dataset_fn
        self.num_train_steps = int(num_train_steps)
        self.steps_per_loop = int(steps_per_loop)
        self.grad_accum_steps = int(grad_accum_steps)
        self.save_checkpoints_steps = int(save_checkpoints_steps)
        self.log_every = int(log_every)
        self.init_checkpoint = init_checkpoint
        self.jit_compile = bool(jit_compile)
        self.show_progress = show_progress
        self.is_chief = distribute.is_chief(strategy)
        self.mixed_precision = mixed_precision or "float32"
        if seed is not None:
            keras.utils.set_random_seed(int(seed))

        with strategy.scope():
            with mixed_precision_policy(self.mixed_precision):
                self.model = task.build_model()
            self._task_optimizer = hasattr(task, "build_optimizer")
            if self._task_optimizer:
                if self.mixed_precision == "mixed_float16":
                    raise InputError(f"{type(task).__name__} builds its own optimizer: "
                                     "mixed_float16 loss scaling is not supported with it")
                self.optimizer = task.build_optimizer(self.model, self.num_train_steps)
            else:
                self.optimizer = optimization.create_optimizer(
                    optimizer_config, num_train_steps=self.num_train_steps,
                    num_warmup_steps=num_warmup_steps,
                )
            if self.mixed_precision == "mixed_float16":
                self.optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer)
            self.global_step = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="global_step",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
        # A ParameterGroupOptimizer holds one Keras optimizer per group.
        for optimizer in getattr(self.optimizer, "optimizers", [self.optimizer]):
            optimization.disable_optimizer_gradient_aggregation(optimizer)
        self.checkpoint = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer, step=self.global_step
        )
        save_dir = self.model_dir if self.is_chief else os.path.join(
            self.model_dir, f".worker{distribute.worker_id(strategy)}_tmp"
        )
        self._save_dir = save_dir
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, save_dir, max_to_keep=int(keep_checkpoint_max),
            checkpoint_name=model_dir_lib.CHECKPOINT_NAME, step_counter=self.global_step,
        )
        self._built = False
        self._jit_forward = (tf.function(self._forward, jit_compile=True) if self.jit_compile
                             else self._forward)
        self._train_loop = None
        self._iterator = None
        self._predict_fn = None
        self._signature_predict_fns = {}
        if train_dataset_fn is not None:
            context = tf.distribute.InputContext(
                num_input_pipelines=1, input_pipeline_id=0,
                num_replicas_in_sync=strategy.num_replicas_in_sync,
            )
            self._build(train_dataset_fn(context).element_spec)

    # ----------------------------------------------------------------- state
    def _build(self, element_spec, for_training=True):
        """Creates model + optimizer variables, then restores the latest checkpoint."""
        if self._built:
            return
        with self.strategy.scope():
            make_dummy = getattr(self.task, "dummy_batch", None) or dummy_batch
            batch = make_dummy(element_spec)
            if for_training:
                terms = self.task.loss_terms(self.model, batch, training=False)
            else:
                self.model(model_inputs(batch), training=False)
            if not self._task_optimizer:  # a task's own optimizer sets its own exclusions
                optimization.exclude_from_weight_decay(self.optimizer,
                                                       self.model.trainable_variables)
            self.optimizer.build(self.model.trainable_variables)
        if for_training:
            missing = [n for n in self.loss_weights if n not in terms]
            if missing:
                raise KeyError(
                    f"task.loss_weights names {missing} are not among task.loss_terms "
                    f"{sorted(terms)}"
                )
            if hasattr(self.task, "loss_denominators"):
                dens = self.task.loss_denominators(batch)
                missing = [n for n in self.loss_weights if n not in dens]
                if missing:
                    raise KeyError(
                        f"task.loss_weights names {missing} are not among "
                        f"task.loss_denominators {sorted(dens)}"
                    )
            self._metric_names = sorted(terms) + ["loss", "examples", "tokens"]
        self._built = True
        latest = model_dir_lib.latest_checkpoint(self.model_dir)
        if latest:
            try:
                self.checkpoint.restore(latest).assert_existing_objects_matched()
            except AssertionError as e:
                raise InputError(
                    f"checkpoint {latest} does not match this model/optimizer (another config, "
                    f"optimizer or --mixed_precision=mixed_float16 vs not?): {str(e)[:300]}"
                ) from None
        elif self.init_checkpoint:
            backbone = getattr(self.model, "backbone", None)
            if backbone is None:
                raise InputError(f"init_checkpoint={self.init_checkpoint} given but "
                                 f"{type(self.model).__name__} has no .backbone")
            model_dir_lib.restore_backbone(backbone, self.init_checkpoint)

    def save_checkpoint(self):
        """Writes `model_dir/ckpt-<step>` and returns its path (chief's path on all workers)."""
        path = self.manager.save(checkpoint_number=self.global_step)
        if not self.is_chief:
            shutil.rmtree(self._save_dir, ignore_errors=True)
            path = os.path.join(self.model_dir, os.path.basename(path))
        return path

    @property
    def loss_weights(self):
        return dict(self.task.loss_weights)

    # ------------------------------------------------------------------ step
    def _forward(self, batch):
        terms = self.task.loss_terms(self.model, batch, training=True)
        return {k: (tf.cast(n, tf.float32), tf.cast(d, tf.float32)) for k, (n, d) in terms.items()}

    def _replica_step(self, micro_batches):
        """One optimizer step on this replica's micro-batches (replica context)."""
        grads, used, metrics = exact_gradients.replica_gradients(self, micro_batches)
        variables = self.model.trainable_variables
        self.optimizer.apply(grads, [variables[i] for i in used])
        return metrics

    def _make_train_loop(self):
        names = list(self._metric_names)

        @tf.function
        def train_loop(iterator, num_steps):
            out = {k: tf.constant(0.0) for k in names}
            totals = tf.zeros([2])
            for _ in tf.range(num_steps):
                micro = tuple(next(iterator) for _ in range(self.grad_accum_steps))
                per_replica = self.strategy.run(self._replica_step, args=(micro,))
                out = {k: distribute.local_value(self.strategy, v)
                       for k, v in per_replica.items()}
                totals += tf.stack([out["examples"], out["tokens"]])
                self.global_step.assign_add(1)
            return out, totals

        return train_loop

    # ----------------------------------------------------------------- train
    def train(self, until_step=None, progress_bar=None):
        """Trains until `until_step` (default `num_train_steps`), resuming from `model_dir`.

        `progress_bar`: a tqdm bar to advance instead of this call's own (see TrainLogger).

        Returns a summary dict: `step`, the last logged values, `train_seconds`,
        `examples_per_sec`, `checkpoint` (path of the last checkpoint).
        """
        if self.train_dataset_fn is None:
            raise InputError("this Trainer has no train_dataset_fn; it can only predict")
        until = self.num_train_steps if until_step is None else int(until_step)
        if self._iterator is None:
            self._iterator = iter(self.strategy.distribute_datasets_from_function(
                preemption.continued_dataset_fn(self.train_dataset_fn,
                                                int(self.global_step.numpy()),
                                                self.grad_accum_steps)))
            self._train_loop = self._make_train_loop()
        step = int(self.global_step.numpy())
        logger = TrainLogger(
            self.model_dir, start_step=step, until_step=until,
            enabled=self.is_chief, show_progress=self.show_progress,
            progress_bar=progress_bar,
        )
        last, path, t_total, ex_total = {}, None, 0.0, 0.0
        saved_step = None
        interval = np.zeros(3)  # examples, tokens, seconds since the last log record
        with preemption.StopOnSignals() as stop:
            try:
                while step < until:
                    n = self._steps_to_boundary(step, until)
                    t0 = time.perf_counter()
                    try:
                        out, totals = self._train_loop(self._iterator, tf.constant(n, tf.int32))
                    except tf.errors.OutOfRangeError:
                        raise self._data_ran_out(step, n, until) from None
                    totals = totals.numpy()
                    dt = time.perf_counter() - t0
                    t_total += dt
                    ex_total += float(totals[0])
                    interval += [totals[0], totals[1], dt]
                    step = int(self.global_step.numpy())
                    logger.advance(step)
                    if step % self.log_every == 0 or step == until:
                        last = self._log_values(out, interval)
                        logger.log(step, last)
                        interval[:] = 0.0
                    if step % self.save_checkpoints_steps == 0 or step == until:
                        path, saved_step = self.save_checkpoint(), step
                    if stop.requested and step < until:  # preempted: checkpoint, then stop
                        if saved_step != step:
                            path = self.save_checkpoint()
                        raise stop.interrupted(step, path)
            finally:
                logger.close()
        if path is None and self.manager.latest_checkpoint:
            path = os.path.join(self.model_dir, os.path.basename(self.manager.latest_checkpoint))
        summary = {"step": step, **last, "train_seconds": t_total,
                   "examples_per_sec": ex_total / t_total if t_total else 0.0,
                   "checkpoint": path}
        return summary

    def _data_ran_out(self, step, n, until):
        """The error of a training dataset that ended: empty from the start, or finite."""
        # Whether the dataset holds no batch at all: asked of a new one, only now that it
        # ended (global_step cannot tell: its increment may run before next() fails).
        context = tf.distribute.InputContext(
            num_input_pipelines=1, input_pipeline_id=0,
            num_replicas_in_sync=self.strategy.num_replicas_in_sync)
        probe = self.train_dataset_fn(context).take(1)
        if int(probe.reduce(tf.constant(0), lambda count, _: count + 1)) == 0:
            return ValueError(
                f"the training dataset yielded no batch (training was to run steps "
                f"{step + 1}-{until}): it is empty, or holds fewer examples than one batch "
                "with drop_remainder=True; nothing to train on")
        return ValueError(
            f"the training data ran out within steps {step + 1}-{step + n} (training "
            f"was to run until step {until}): train_dataset_fn must return a "
            "repeated dataset")

    def _steps_to_boundary(self, step, until):
        n = min(self.steps_per_loop, until - step)
        for every in (self.log_every, self.save_checkpoints_steps):
            n = min(n, every - step % every)
        return max(n, 1)

    def _log_values(self, out, interval):
        examples, tokens, seconds = (float(x) for x in interval)
        values = {k: float(v) for k, v in out.items() if k not in ("examples", "tokens")}
        ordered = {"loss": values.pop("loss")}
        ordered.update(sorted(values.items()))
        group_rates = getattr(self.optimizer, "learning_rates", None)
        if group_rates is not None:  # parameter groups: the first group's, then each
            rates = {name: float(lr) for name, lr in group_rates(offset=-1).items()}
            ordered["learning_rate"] = next(iter(rates.values()))
            ordered.update({f"learning_rate_{name}": lr for name, lr in rates.items()})
        else:
            lr = optimization.learning_rate_at(self.optimizer, offset=-1)
            ordered["learning_rate"] = float(lr)
        ordered["examples_per_sec"] = examples / seconds if seconds else 0.0
        if tokens > 0:
            ordered["tokens_per_sec"] = tokens / seconds if seconds else 0.0
        return ordered
