"""Pretraining with Keras `fit` on any Keras backend: the JAX (and PyTorch) twin of the `Trainer`.

`run_pretraining.py --backend=jax` trains through here: the same `SpanBertPretrainer`, the same
tf.data pipeline (static or dynamic masking; Keras turns its tensors into numpy batches), the
same optimizer (AdamW/LAMB, linear warmup then linear decay, no weight decay on LayerNorm and
biases, global-norm clipping), `keras.distribution.DataParallel` over all local devices (the
global batch is split across them; the loss is the global-batch mean, as on TensorFlow), and
the same model dir: config.json, vocab.txt, train_log.jsonl, TensorBoard train/.

Checkpoints are Keras files (the TF `tf.train.Checkpoint` format is TF-only):
```
MODEL_DIR/ckpt-N.weights.h5      the whole pretrainer's weights (any backend loads them) and
                                 the optimizer state (step counter, Adam moments)
MODEL_DIR/preset/                the backbone (and heads) as a keras-hub preset, written at the
                                 end of every run: what the fine-tuning programs read
                                 (`--init_checkpoint=MODEL_DIR/preset`, any backend)
```
A rerun resumes from the newest checkpoint: the step, the learning rate, the optimizer moments
and the data continue (`PretrainingDatasetFn.resume_at_step`, as on TensorFlow). SIGTERM or
SIGINT while `fit` runs (`preemption.StopOnSignals`) end it after the current execution of
`steps_per_execution` steps, with a checkpoint at that step: `TrainingInterrupted` is raised.

Example:
```python
import os; os.environ["KERAS_BACKEND"] = "jax"      # before keras is imported
summary = train_with_keras_fit(config, dataset_fn, "runs/jax", vocab_file, False,
                               FitSettings(num_train_steps=300))
```
"""

import dataclasses
import math
import os
import time

import keras
import numpy as np
from keras import ops

from spanbert_tf.errors import InputError
from spanbert_tf.modeling.model_dir import CHECKPOINT_NAME
from spanbert_tf.modeling.pretrainer import SpanBertPretrainer
from spanbert_tf.training.backends import KERAS_CHECKPOINT_SUFFIX as WEIGHTS_SUFFIX
from spanbert_tf.training.backends import keras_checkpoints
from spanbert_tf.training.precision import mixed_precision_policy
from spanbert_tf.training.preemption import StopOnSignals
from spanbert_tf.training.train_log import TrainLogger
from spanbert_tf.training.weight_decay import NO_DECAY_PATTERN, uses_weight_decay
from spanbert_tf.modeling import model_dir as model_dir_lib
from spanbert_tf.modeling import preset_dir

PRESET_DIR = preset_dir.MODEL_DIR_PRESET


@dataclasses.dataclass
class FitSettings:
    """The run settings `train_with_keras_fit` uses (a subset of `PretrainingSettings`)."""

    num_train_steps: int = 300
    sbo_loss_weight: float = 1.0
    seed: int = 12345
    steps_per_loop: int = 10
    log_every: int = 10
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 5
    mixed_precision: str = "float32"
    init_checkpoint: str = None
    init_weights: str = None
    num_devices: int = None
    show_progress: bool = True


# ------------------------------------------------------------------ checkpoints
def checkpoints(model_dir):
    """[(step, prefix)] of the `ckpt-N.weights.h5` checkpoints in `model_dir`, oldest first."""
    return keras_checkpoints(model_dir)


def latest_checkpoint(model_dir):
    """The newest `MODEL_DIR/ckpt-N` prefix (Keras format), or None."""
    found = checkpoints(model_dir)
    return found[-1][1] if found else None


def save_checkpoint(model, model_dir, step, keep):
    """Writes `ckpt-<step>.weights.h5` atomically (a compiled model's weights file holds the
    optimizer state too: step counter, moments); keeps the newest `keep`. Returns the prefix."""
    prefix = os.path.join(str(model_dir), f"{CHECKPOINT_NAME}-{int(step)}")
    tmp = f"{prefix}.tmp-{os.getpid()}{WEIGHTS_SUFFIX}"  # Keras wants the .weights.h5 suffix
    try:
        model.save_weights(tmp)
        os.replace(tmp, prefix + WEIGHTS_SUFFIX)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    for _, old in checkpoints(model_dir)[:-int(keep)]:
        os.unlink(old + WEIGHTS_SUFFIX)
    return prefix


def restore_checkpoint(model, prefix):
    """Loads the weights and the optimizer state of `prefix` (the optimizer must be built)."""
    try:
        model.load_weights(prefix + WEIGHTS_SUFFIX)
    except (ValueError, KeyError) as e:
        raise InputError(f"{prefix}{WEIGHTS_SUFFIX} does not fit this model and optimizer "
                         f"(another config, --optimizer or --mixed_precision?): "
                         f"{str(e).splitlines()[0][:300]}") from None


# ------------------------------------------------------------------ optimizer
@keras.saving.register_keras_serializable(package="spanbert_tf")
class WarmupLinearDecayOps(keras.optimizers.schedules.LearningRateSchedule):
    """`optimization.WarmupLinearDecay` in `keras.ops` (runs inside a jitted JAX step).

    Update `s = step + 1` uses `peak * s / warmup` while `s <= warmup`, then
    `end + (peak - end) * clip((total - s) / (total - warmup), 0, 1)`: the same float32 formula.
    """

    def __init__(self, learning_rate, num_warmup_steps, num_train_steps, end_learning_rate=0.0):
        if num_train_steps < 1 or not 0 <= num_warmup_steps <= num_train_steps:
            raise InputError(f"need 0 <= num_warmup_steps ({num_warmup_steps}) <= "
                             f"num_train_steps ({num_train_steps}) and num_train_steps >= 1")
        self.learning_rate = float(learning_rate)
        self.num_warmup_steps = int(num_warmup_steps)
        self.num_train_steps = int(num_train_steps)
        self.end_learning_rate = float(end_learning_rate)

    def __call__(self, step):
        s = ops.cast(step, "float32") + 1.0
        peak, end = self.learning_rate, self.end_learning_rate
        decay_len = float(max(self.num_train_steps - self.num_warmup_steps, 1))
        frac = ops.clip((self.num_train_steps - s) / decay_len, 0.0, 1.0)
        decay_lr = end + (peak - end) * frac
        if self.num_warmup_steps == 0:
            return decay_lr
        warm_lr = peak * s / float(self.num_warmup_steps)
        return ops.where(s <= float(self.num_warmup_steps), warm_lr, decay_lr)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "num_warmup_steps": self.num_warmup_steps,
                "num_train_steps": self.num_train_steps,
                "end_learning_rate": self.end_learning_rate}


def learning_rate_schedule(opt_config, num_train_steps):
    """The schedule `optimization.create_optimizer` builds, in `keras.ops`."""
    warmup = min(opt_config.num_warmup_steps, num_train_steps)
    return WarmupLinearDecayOps(opt_config.learning_rate, warmup, num_train_steps,
                                opt_config.end_learning_rate)


def create_optimizer(opt_config, schedule, trainable_variables):
    """The optimizer of `optimization.create_optimizer` (same settings, same exclusions from
    weight decay) with the `keras.ops` `schedule`, for any backend."""
    common = dict(
        learning_rate=schedule,
        beta_1=opt_config.beta_1, beta_2=opt_config.beta_2, epsilon=opt_config.epsilon,
        weight_decay=opt_config.weight_decay or (0.0 if opt_config.optimizer == "adamw" else None),
        global_clipnorm=opt_config.clip_norm or None)
    classes = {"adamw": keras.optimizers.AdamW, "lamb": keras.optimizers.Lamb}
    if opt_config.optimizer not in classes:
        raise InputError(f"unknown optimizer {opt_config.optimizer!r}; expected adamw or lamb")
    optimizer = classes[opt_config.optimizer](**common)
    optimizer.exclude_from_weight_decay(
        var_list=[v for v in trainable_variables if not uses_weight_decay(v)],
        var_names=[NO_DECAY_PATTERN])
    return optimizer


# ------------------------------------------------------------------ model
@keras.saving.register_keras_serializable(package="spanbert_tf")
class FitPretrainer(SpanBertPretrainer):
    """`SpanBertPretrainer` whose `fit` logs are the step's values, as the TF Trainer logs them:
    loss, mlm_loss, sbo_loss, mlm_accuracy, sbo_accuracy of the last step (not running means)
    and `tokens`, the real tokens seen since `fit` began (a running sum). Same weights, same
    weights file layout as `SpanBertPretrainer`."""

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        terms = self.loss_terms(x, y_pred)
        logs = {name: ops.divide_no_nan(num, den) for name, (num, den) in terms.items()}
        logs["loss"] = sum(w * logs[name] for name, w in self.loss_weights.items())
        self.token_counter.update_state(ops.sum(ops.cast(x["input_mask"], "float32")))
        logs["tokens"] = self.token_counter.result()
        return logs


def build_fit_pretrainer(config, sbo_loss_weight, mixed_precision):
    """A `FitPretrainer` under the `mixed_precision` Keras policy; the pooler is frozen (the loss
    does not reach it: the TF Trainer leaves it alone too, no update and no weight decay)."""
    from spanbert_tf.modeling.backbone import build_backbone

    with mixed_precision_policy(mixed_precision):
        backbone = build_backbone(config.model)
        model = FitPretrainer(backbone, max_pair_targets=config.model.max_pair_targets,
                              sbo_position_embedding_size=config.model.sbo_position_embedding_size,
                              sbo_loss_weight=sbo_loss_weight)
    backbone.pooled_dense.trainable = False
    model.token_counter = keras.metrics.Sum(name="tokens", dtype="float32")
    return model


def _restore_backbone(backbone, path):
    """--init_checkpoint on a Keras backend: a keras-hub preset dir, a backbone `.weights.h5`,
    or a model dir trained here (its preset/). TF checkpoints (ckpt-N.index) are TF-only."""
    path = str(path)
    if os.path.isdir(path) and preset_dir.is_preset_dir(os.path.join(path, PRESET_DIR)):
        path = os.path.join(path, PRESET_DIR)
    if not (preset_dir.is_preset_dir(path) or path.endswith(WEIGHTS_SUFFIX)):
        raise InputError(
            f"--init_checkpoint={path}: on the {keras.backend.backend()} backend it must be a "
            "keras-hub preset dir, a backbone .weights.h5 or a model dir trained with "
            "--backend=jax (TF checkpoints load only on TensorFlow: convert them with "
            "convert_checkpoint.py --output_format=keras_hub_preset)")
    model_dir_lib.restore_backbone(backbone, path)


class _CheckpointAndLog(keras.callbacks.Callback):
    """Logs every `log_every` steps (train_log.jsonl, TensorBoard, progress bar) and saves a
    checkpoint every `save_checkpoints_steps` steps and at the last one; when `stop` (a
    `StopOnSignals`) has caught a signal, saves one at this step and stops `fit`
    (`interrupted_at` = (step, checkpoint))."""

    def __init__(self, model_dir, settings, start_step, until_step, global_batch, schedule,
                 stop=None):
        super().__init__()
        self.stop, self.interrupted_at, self._saved_step = stop, None, None
        self.model_dir, self.settings, self.schedule = model_dir, settings, schedule
        self.start, self.until, self.global_batch = start_step, until_step, global_batch
        self.logger = TrainLogger(model_dir, start_step=start_step, until_step=until_step,
                                  show_progress=settings.show_progress)
        self.last, self.checkpoint, self.seconds = {}, None, 0.0
        self._mark = (start_step, 0.0, time.perf_counter())  # step, tokens, time of last log

    def on_train_batch_end(self, batch, logs=None):
        step = self.start + int(batch) + 1
        self.logger.advance(step)
        if step % self.settings.log_every == 0 or step == self.until:
            logs = {k: float(np.asarray(v)) for k, v in (logs or {}).items()}
            now = time.perf_counter()
            mark_step, mark_tokens, mark_time = self._mark
            seconds = now - mark_time
            self.seconds += seconds
            examples = (step - mark_step) * self.global_batch
            values = {"loss": logs["loss"]}
            values.update(sorted((k, v) for k, v in logs.items() if k not in ("loss", "tokens")))
            values["learning_rate"] = float(np.asarray(self.schedule(step - 1)))
            values["examples_per_sec"] = examples / seconds if seconds else 0.0
            values["tokens_per_sec"] = (logs["tokens"] - mark_tokens) / seconds if seconds else 0.0
            self.logger.log(step, values)
            self.last = values
            self._mark = (step, logs["tokens"], time.perf_counter())
        if step % self.settings.save_checkpoints_steps == 0 or step == self.until:
            t0 = time.perf_counter()
            self.checkpoint = save_checkpoint(self.model, self.model_dir, step,
                                              self.settings.keep_checkpoint_max)
            self._saved_step = step
            # Saving is not training time (the TF Trainer does not count it either).
            self._mark = (self._mark[0], self._mark[1],
                          self._mark[2] + time.perf_counter() - t0)
        if (self.stop is not None and self.stop.requested and self.interrupted_at is None
                and step < self.until):  # a signal at the last step: the run just ends
            if self._saved_step != step:
                self.checkpoint = save_checkpoint(self.model, self.model_dir, step,
                                                  self.settings.keep_checkpoint_max)
            self.interrupted_at = (step, self.checkpoint)
            self.model.stop_training = True

    def close(self):
        self.logger.close()


def train_with_keras_fit(config, dataset_fn, model_dir, vocab_file, do_lower_case, settings,
                         write_preset=None, devices=None):
    """Trains (or resumes) `SpanBertPretrainer` on `dataset_fn()` batches with Keras `fit`.

    Args:
        config: the `SpanBertConfig` (model + optimizer; its train_batch_size is the global batch).
        dataset_fn: a `PretrainingDatasetFn` (global batches; `resume_at_step` is honoured).
        model_dir: where checkpoints, train_log.jsonl and preset/ go (config.json and
            vocab.txt are written by the caller).
        vocab_file, do_lower_case: for the keras-hub preset written at the end.
        settings: a `FitSettings`.
        write_preset: `fn(model) -> path` called once training ends (the pretraining program
            writes the keras-hub preset with it: `tasks.pretraining.preset.write_model_dir_preset`;
            training imports no preset code).
        devices: the devices to train on (default `keras.distribution.list_devices()`; the
            torch backend has no distribution API: pass its one device).

    Returns the summary dict of `Trainer.train` (step, last logged values, train_seconds,
    examples_per_sec, checkpoint) plus `resumed_from_step`, `num_replicas` and `preset`.
    """
    backend = keras.backend.backend()
    devices = devices or keras.distribution.list_devices()
    if settings.num_devices:
        devices = devices[:int(settings.num_devices)]
    global_batch = config.optimizer.train_batch_size
    if global_batch % len(devices):
        raise InputError(f"--train_batch_size {global_batch} is not divisible by the "
                         f"{len(devices)} device(s) DataParallel splits it over")
    if len(devices) > 1:
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    if settings.seed is not None:
        keras.utils.set_random_seed(int(settings.seed))
    until = int(settings.num_train_steps)
    model = build_fit_pretrainer(config, settings.sbo_loss_weight, settings.mixed_precision)
    schedule = learning_rate_schedule(config.optimizer, until)
    optimizer = create_optimizer(config.optimizer, schedule, model.trainable_variables)
    model.compile(optimizer=optimizer, jit_compile=True if backend == "jax" else "auto")
    model.optimizer.build(model.trainable_variables)

    latest = latest_checkpoint(model_dir)
    if latest:
        restore_checkpoint(model, latest)
    elif settings.init_weights:
        try:
            model.load_weights(settings.init_weights)
        except (ValueError, KeyError) as e:
            raise InputError(f"--init_weights={settings.init_weights} does not hold this "
                             f"pretrainer's weights: {str(e).splitlines()[0][:300]}") from None
    elif settings.init_checkpoint:
        _restore_backbone(model.backbone, settings.init_checkpoint)
    start = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    if start:
        print(f"run_pretraining: resuming {model_dir} from step {start} ({latest})", flush=True)
    summary = {"step": start, "train_seconds": 0.0, "examples_per_sec": 0.0,
               "checkpoint": latest, "resumed_from_step": start, "num_replicas": len(devices)}
    if start < until:
        resume = getattr(dataset_fn, "resume_at_step", None)
        if resume is not None:  # the data continues where the checkpoint left it
            resume(start)
        dataset = dataset_fn()
        steps = until - start
        # Several steps per jitted call, at most up to the next log or checkpoint boundary.
        # (PyTorch runs one step per call: Keras refuses more there.)
        model.steps_per_execution = 1 if backend == "torch" else math.gcd(
            int(settings.steps_per_loop), settings.log_every, settings.save_checkpoints_steps,
            start, steps)
        model.make_train_function(force=True)
        with StopOnSignals() as stop:
            callback = _CheckpointAndLog(model_dir, settings, start, until, global_batch,
                                         schedule, stop)
            try:
                model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0,
                          callbacks=[callback])
            finally:
                callback.close()
            if callback.interrupted_at is not None:
                raise stop.interrupted(*callback.interrupted_at)
        summary.update(callback.last)
        summary.update(step=until, train_seconds=callback.seconds,
                       examples_per_sec=(steps * global_batch / callback.seconds
                                         if callback.seconds else 0.0),
                       checkpoint=callback.checkpoint)
    if write_preset is not None:
        summary["preset"] = write_preset(model)
    return summary

