"""THE fine-tuning driver: what run_classifier.py, run_squad.py and run_coref.py share.

A fine-tuning program reads its data, builds its features, model and metric; this
module does the rest, the same way for every task:

* `resolve_model_dir`: which model dir a run reads (training: `--init_checkpoint`;
  evaluation/prediction alone: the output dir when it holds a checkpoint, else
  `--init_checkpoint`), and whether it is a model fine-tuned on this task;
* `TrainPlan`: how many steps (epochs x steps per epoch, capped by `--max_train_steps`:
  said in one line when the cap cannot be reached) and when to evaluate;
* `train_and_keep_best`: the loop. ONE progress bar for the whole run, one line per
  evaluation (step, the task's primary metric, the best so far), the best checkpoint
  (the last one without an evaluation) kept in the output dir as `ckpt-<step>` with
  `kept_checkpoint.json` beside it (step, metric, value: what `demo_clusters.py` and
  the exports report), `eval_history.jsonl` resumable;
* `closing_lines`: the lines of the closing summary (the kept checkpoint, the next
  command), printed by the program with `cli.print_summary`.

The task plugs in through `FinetuneEvaluation` (an evaluation function, its primary metric,
the labels of the metrics to show); a new task needs only its reader, model, metric
and export.

Example:
```python
info = resolve_model_dir(do_train=True, init_checkpoint="runs/pretrain",
                         output_dir="runs/ner", kind="ner", description="an NER model dir")
plan = TrainPlan(num_examples=len(train), unit="sentences", steps_per_epoch=len(train) // 32,
                 epochs=3, max_train_steps=None)
trainer = Trainer(task, strategy, "runs/ner/train", opt, train_fn, plan.num_train_steps)
outcome = train_and_keep_best(trainer, "runs/ner", plan,
                              FinetuneEvaluation(evaluate=lambda t: {"f1": score(t)},
                                           primary_metric="f1"))
outcome.checkpoint, outcome.value           # runs/ner/ckpt-30, 0.81
```
"""

import dataclasses
import math
import os
import shutil
import sys
import tempfile
from typing import Callable, Dict, Optional

import tqdm

from spanbert_tf.errors import InputError
from spanbert_tf.io_utils import read_jsonl, write_json_atomic, write_jsonl_atomic
from spanbert_tf.modeling import model_dir as model_dir_lib
from spanbert_tf.modeling.config import read_json_file

EVAL_HISTORY = "eval_history.jsonl"
KEPT_FILE = "kept_checkpoint.json"


def say(line):
    """One line for the person running the program (stderr, above any progress bar)."""
    tqdm.tqdm.write(line, file=sys.stderr)
    sys.stderr.flush()


# ---------------------------------------------------------------- which model dir
def resolve_model_dir(do_train, init_checkpoint, output_dir, kind, description,
                      accepts=None, alone="--do_eval"):
    """The `ModelDirInfo` a run reads.

    Training: `init_checkpoint` (required). Otherwise: `output_dir` when it holds a
    checkpoint, else `init_checkpoint`; that model dir must be fine-tuned on this task
    (config.json "task" of kind `kind`, and `accepts(task)` when given), else an
    InputError "<dir>: not <description> ...". `alone` names the flag that runs
    without --do_train (for the message).
    """
    if do_train:
        if not init_checkpoint:
            raise InputError("--do_train needs --init_checkpoint (a pretrained model dir)")
        return _read(init_checkpoint, "--init_checkpoint")
    source, flag = output_dir, "--output_dir"
    if not output_dir or model_dir_lib.latest_checkpoint(output_dir) is None:
        if not init_checkpoint:
            raise InputError(f"{alone} without --do_train: {output_dir} holds no checkpoint "
                             f"of {description} and no --init_checkpoint was given")
        source, flag = init_checkpoint, "--init_checkpoint"
    info = _read(source, flag)
    if (not info.task or model_dir_lib.task_kind(info) != kind
            or (accepts is not None and not accepts(info.task))):
        raise InputError(f"{info.model_dir}: not {description} (its config.json task is "
                         f"{info.task}); fine-tune one first with --do_train")
    return info


def _read(path, flag):
    try:
        return model_dir_lib.read_model_dir(path)
    except (FileNotFoundError, ValueError) as e:
        raise InputError(f"{flag}: {e}") from None


# ---------------------------------------------------------------------- the plan
@dataclasses.dataclass
class TrainPlan:
    """How long a run trains and when it evaluates.

    `num_train_steps` = ceil(steps_per_epoch x epochs) is the learning-rate schedule;
    training stops at `until` = min(that, max_train_steps); evaluations come every
    `eval_every` steps (default: each epoch) and at `until`.
    """

    num_examples: int
    unit: str                         # what an example is, for messages: "documents", ...
    steps_per_epoch: int
    epochs: float
    max_train_steps: Optional[int] = None
    eval_every: Optional[int] = None

    def __post_init__(self):
        if self.num_examples < 1 or self.steps_per_epoch < 1:
            raise InputError(f"no training {self.unit}: nothing to train on")
        if self.epochs <= 0:
            raise InputError(f"--num_train_epochs must be > 0, got {self.epochs}")
        for name in ("max_train_steps", "eval_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InputError(f"--{name} must be >= 1, got {value}")

    @property
    def num_train_steps(self):
        return max(1, int(math.ceil(self.steps_per_epoch * self.epochs)))

    @property
    def until(self):
        return min(self.num_train_steps, self.max_train_steps or self.num_train_steps)

    def evaluation_steps(self):
        """The steps after which the dev set is scored (the last one is `until`)."""
        every, until = self.eval_every or self.steps_per_epoch, self.until
        return sorted({min(until, e) for e in range(every, until + every, every)})

    def epoch_of(self, step):
        return int(math.ceil(step / self.steps_per_epoch))

    def capped_line(self):
        """The line saying that --max_train_steps cannot be reached, or None."""
        if not self.max_train_steps or self.max_train_steps <= self.num_train_steps:
            return None
        return (f"--max_train_steps={self.max_train_steps} is more than the "
                f"{self.num_train_steps} steps of {_epochs(self.epochs)} over "
                f"{self.num_examples} {self.unit} ({self.steps_per_epoch} per epoch): "
                f"training stops at step {self.num_train_steps}")

    def start_line(self):
        until = (f", stopping at step {self.until}" if self.until < self.num_train_steps
                 else "")
        return (f"training: {self.num_examples} {self.unit}, {self.steps_per_epoch} steps per "
                f"epoch, {self.num_train_steps} steps ({_epochs(self.epochs)}){until}")


def _epochs(epochs):
    return f"{epochs:g} epoch" + ("" if epochs == 1 else "s")


# ---------------------------------------------------------------- the evaluation
@dataclasses.dataclass
class FinetuneEvaluation:
    """What a task gives the loop: how to evaluate, and which metric picks the best.

    evaluate: `fn(trainer) -> {metric: float}`, the dev scores of the current model;
        None: no dev set, the last checkpoint is kept.
    primary_metric: the key of `evaluate`'s dict that picks the best checkpoint
        (higher is better).
    labels: `{metric: label}` of the metrics shown in the evaluation line, in order
        (default: the primary metric under its own name).
    """

    evaluate: Optional[Callable[[object], Dict[str, float]]] = None
    primary_metric: Optional[str] = None
    labels: Optional[Dict[str, str]] = None

    def __post_init__(self):
        if self.evaluate is not None and not self.primary_metric:
            raise InputError("FinetuneEvaluation: an evaluate function needs its primary_metric")

    def shown(self):
        return self.labels or {self.primary_metric: self.primary_metric}


@dataclasses.dataclass
class Outcome:
    """What `train_and_keep_best` kept: checkpoint path, its step and score, the history."""

    checkpoint: str
    step: int
    metric: Optional[str]
    value: Optional[float]
    history: list
    train: dict


def format_value(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def evaluation_line(step, until, metrics, labels, best=None, epoch=None, what="dev"):
    """`step 4/6 (epoch 2): dev CoNLL F1 12.3, MUC 20.1 | best CoNLL F1 12.3 (step 4)`."""
    where = ("the model" if step is None else
             f"step {step}" if until is None else f"step {step}/{until}") + (
        f" (epoch {epoch})" if epoch is not None else "")
    shown = ", ".join(f"{label} {format_value(metrics[key])}" for key, label in labels.items()
                      if key in metrics)
    line = f"{where}: {what} {shown}"
    if best is not None:
        key, value, best_step = best
        line += f" | best {labels.get(key, key)} {format_value(value)} (step {best_step})"
    return line


# ---------------------------------------------------------------------- the loop
def keep_checkpoint(trainer, output_dir):
    """Writes the model + step (no optimizer slots) as `output_dir/ckpt-<step>`, replacing
    the checkpoint kept before; returns its path (the chief's path on every worker).

    Every worker must call it (a multi-worker save is collective); a non-chief worker
    writes into a temporary dir that it removes at once, so only the chief's copy stays.
    """
    import tensorflow as tf

    target = output_dir if trainer.is_chief else tempfile.mkdtemp(prefix="spanbert_keep_")
    try:
        ckpt = tf.train.Checkpoint(model=trainer.model, step=trainer.global_step)
        manager = tf.train.CheckpointManager(ckpt, target, max_to_keep=1,
                                             checkpoint_name=model_dir_lib.CHECKPOINT_NAME)
        path = manager.save(checkpoint_number=int(trainer.global_step.numpy()))
    finally:
        if not trainer.is_chief:
            shutil.rmtree(target, ignore_errors=True)
    return os.path.join(output_dir, os.path.basename(path))


def write_kept_record(output_dir, checkpoint, step, metric=None, value=None, metrics=None,
                      evaluations=0):
    """`output_dir/kept_checkpoint.json`: which checkpoint is kept and why (atomically)."""
    return write_json_atomic(os.path.join(output_dir, KEPT_FILE), {
        "checkpoint": os.path.basename(checkpoint), "step": int(step),
        "metric": metric, "value": value, "metrics": metrics or {},
        "evaluations": int(evaluations)})


def read_kept_record(model_dir):
    """The `kept_checkpoint.json` of a model dir, or None."""
    path = os.path.join(str(model_dir), KEPT_FILE)
    return read_json_file(path) if os.path.isfile(path) else None


def train_and_keep_best(trainer, output_dir, plan, evaluation, show_progress=True):
    """Trains `trainer` to `plan.until`, scoring the dev set at `plan.evaluation_steps()`,
    and keeps the best checkpoint in `output_dir` (see the module docstring). Resumes: the
    trainer restores its own state, evaluations already in `eval_history.jsonl` are not
    redone. Returns an `Outcome`."""
    if plan.capped_line():
        say(plan.capped_line())
    say(plan.start_line())
    start = int(trainer.global_step.numpy())
    history = read_jsonl(os.path.join(output_dir, EVAL_HISTORY)) if start else []
    best = _best_of(history, evaluation.primary_metric)
    kept = model_dir_lib.latest_checkpoint(output_dir) if best else None
    bar = None
    if show_progress and trainer.is_chief:
        bar = tqdm.tqdm(total=plan.until, initial=min(start, plan.until), desc="train",
                        unit="step", dynamic_ncols=True, mininterval=1.0)
    summary = {}
    try:
        for end in plan.evaluation_steps():
            if end <= start and (evaluation.evaluate is None
                                 or any(h["step"] == end for h in history)):
                continue
            summary = trainer.train(until_step=end, progress_bar=bar)
            if evaluation.evaluate is None:
                continue
            metrics = evaluation.evaluate(trainer)
            record = {"epoch": plan.epoch_of(end), "step": end,
                      "train_loss": summary.get("loss"), **metrics}
            value = metrics[evaluation.primary_metric]
            if best is None or value > best[1]:
                best = (evaluation.primary_metric, value, end)
                kept = keep_checkpoint(trainer, output_dir)
                record["best"] = True
                if trainer.is_chief:
                    write_kept_record(output_dir, kept, end, evaluation.primary_metric, value,
                                      metrics, len(history) + 1)
            history.append(record)
            if trainer.is_chief:
                write_jsonl_atomic(os.path.join(output_dir, EVAL_HISTORY), history)
                if best[2] != end:
                    _count_evaluations(output_dir, len(history))
            say(evaluation_line(end, plan.until, metrics, evaluation.shown(), best,
                                plan.epoch_of(end)))
        if evaluation.evaluate is None:
            if os.path.abspath(trainer.model_dir) == os.path.abspath(output_dir):
                kept = summary.get("checkpoint") or model_dir_lib.latest_checkpoint(output_dir)
            else:
                kept = keep_checkpoint(trainer, output_dir)
            step = int(trainer.global_step.numpy())
            if trainer.is_chief:
                write_kept_record(output_dir, kept, step)
            return Outcome(kept, step, None, None, history, summary)
    finally:
        if bar is not None:
            bar.close()
    return Outcome(kept, best[2], best[0], best[1], history, summary)


def _best_of(history, metric):
    """(metric, value, step) of the first best record of a resumed history, or None."""
    if not metric or not history:
        return None
    record = max(history, key=lambda h: h[metric])
    return metric, record[metric], record["step"]


def _count_evaluations(output_dir, count):
    record = read_kept_record(output_dir)
    if record is not None:
        record["evaluations"] = count
        write_json_atomic(os.path.join(output_dir, KEPT_FILE), record)


def restored_trainer(build_trainer, checkpoint):
    """A predict-only trainer with the model of `checkpoint` (a fine-tuned model dir's):
    `build_trainer(model_dir)` is given a temporary dir, removed at once (nothing of the
    run is written there)."""
    tmp = tempfile.mkdtemp(prefix="spanbert_predict_")
    try:
        trainer = build_trainer(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    model_dir_lib.restore_model(trainer.model, checkpoint)
    return trainer


# ------------------------------------------------------------------- the summary
def closing_lines(output_dir, next_command=None):
    """The closing summary's lines about the kept model: which checkpoint, why, what next."""
    record = read_kept_record(output_dir) if output_dir else None
    lines = []
    if record is not None:
        why = (f"best dev {record['metric']} {format_value(record['value'])} of "
               f"{record['evaluations']} evaluations" if record.get("metric")
               else "the last step: no dev evaluation")
        lines.append(f"kept      {os.path.join(output_dir, record['checkpoint'])} "
                     f"(step {record['step']}, {why})")
    if next_command:
        lines.append(f"next      {next_command}")
    return lines
