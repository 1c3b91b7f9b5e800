"""`train_log.png`: a training run's losses, learning rate and dev metrics against steps.

Every training program writes it into its model/output dir at the end of training, and
`python -m spanbert_tf.plot MODEL_DIR` (re)writes it on demand. The data:

* `train_log.jsonl` (`spanbert_tf.training.train_log`) in MODEL_DIR (pretraining,
  run_squad.py) or MODEL_DIR/train/ (run_classifier.py, run_coref.py): the loss and
  each loss term (`loss`, `mlm_loss`, `sbo_loss`, ...), training accuracies
  (`mlm_accuracy`, ...) and the learning rate(s) of every logged step (throughputs are
  left out);
* `eval_history.jsonl` in MODEL_DIR (run_classifier.py, run_coref.py): the dev metrics
  after each epoch / evaluation, the best one marked.

One panel per kind of curve, one row each: losses, learning rate, then training
accuracies, counts (`num_*`, e.g. coref's num_top_spans) and dev metrics where the logs
have them.

Example:
```python
result = plot_train_log("runs/pretrain")
result.path    # runs/pretrain/train_log.png
result.lines   # {"losses": 3, "learning rate": 1}
```
"""

import dataclasses
import json
import math
import os

from spanbert_tf import plotting
from spanbert_tf.errors import InputError

LOG_NAME = "train_log.jsonl"            # spanbert_tf.training.train_log.LOG_NAME
EVAL_HISTORY = "eval_history.jsonl"     # the fine-tuning programs' dev evaluations
TRAIN_SUBDIR = "train"                  # where the fine-tuning programs' Trainer logs
PNG_NAME = "train_log.png"
PANEL_HEIGHT_INCHES = 3.2
# Record keys that are not curves of the dev-metric panel.
_NOT_DEV_METRICS = {"step", "epoch", "train_loss", "best"}
_THROUGHPUT_SUFFIX = "_per_sec"  # examples_per_sec, tokens_per_sec: not drawn
_COUNT_PREFIX = "num_"


@dataclasses.dataclass
class TrainLogPlot:
    """What `plot_train_log` drew: the PNG's path and the curves of each panel."""

    path: str
    lines: dict


def find_train_log(model_dir):
    """The `train_log.jsonl` of a model dir (MODEL_DIR or MODEL_DIR/train/), or None."""
    for folder in (model_dir, os.path.join(model_dir, TRAIN_SUBDIR)):
        path = os.path.join(folder, LOG_NAME)
        if os.path.isfile(path):
            return path
    return None


def _finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _series(records, key):
    """(steps, values) of `key` in `records`, leaving out steps where it is missing/NaN."""
    points = [(r["step"], r[key]) for r in records if "step" in r and _finite(r.get(key))]
    return [p[0] for p in points], [p[1] for p in points]


def _keys(records, accept):
    keys = []
    for record in records:
        for key, value in record.items():
            if key not in keys and key != "step" and _finite(value) and accept(key):
                keys.append(key)
    return keys


def _read_records(path):
    """The step records of a .jsonl log, a cut-short last line (a killed run) left out."""
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


def train_log_panels(model_dir):
    """The panels of `train_log.png`: a list of (title, y label, {curve: (steps, values)},
    best-marker steps). Raises `InputError` for a dir without a train log."""
    if not os.path.isdir(model_dir):
        raise InputError(f"{model_dir}: not a directory (expected a model dir with "
                         f"{LOG_NAME})")
    log_path = find_train_log(model_dir)
    if log_path is None:
        raise InputError(f"{model_dir}: no {LOG_NAME} here nor in {TRAIN_SUBDIR}/ (not the "
                         "model dir of a training run)")
    records = _read_records(log_path)
    if not any("step" in r for r in records):
        raise InputError(f"{log_path}: no logged step (training logged nothing yet)")
    panels = []
    rates = _keys(records, lambda k: k.startswith("learning_rate"))
    accuracies = _keys(records, lambda k: k.endswith("accuracy"))
    # Counts a task logs beside its losses (coref's num_top_spans).
    counts = _keys(records, lambda k: k.startswith(_COUNT_PREFIX))
    # The loss and each loss term (whatever the task calls them): the rest but throughputs.
    losses = _keys(records, lambda k: k not in rates and k not in accuracies
                   and k not in counts and not k.endswith(_THROUGHPUT_SUFFIX))
    for title, ylabel, keys in (("training losses", "loss", losses),
                                ("learning rate", "learning rate", rates),
                                ("training accuracy", "accuracy", accuracies),
                                ("training counts", "count", counts)):
        if keys:
            panels.append((title, ylabel, {k: _series(records, k) for k in keys}, []))
    history_path = os.path.join(model_dir, EVAL_HISTORY)
    history = _read_records(history_path) if os.path.isfile(history_path) else []
    dev_keys = _keys(history, lambda k: k not in _NOT_DEV_METRICS)
    if dev_keys:
        best = [r["step"] for r in history if r.get("best") and "step" in r]
        panels.append(("dev metrics", "score",
                       {k: _series(history, k) for k in dev_keys}, best))
    return panels


def plot_train_log(model_dir, out_path=None):
    """Draws `train_log.png` (default: in `model_dir`); returns a `TrainLogPlot`.

    Raises `InputError` for a dir without a train log, `plotting.MatplotlibMissing`
    without matplotlib.
    """
    model_dir = str(model_dir)
    panels = train_log_panels(model_dir)
    plt = plotting.pyplot()
    fig, axes = plt.subplots(
        len(panels), 1, squeeze=False, sharex=True, layout="constrained",
        figsize=(plotting.WIDTH_INCHES, PANEL_HEIGHT_INCHES * len(panels)))
    lines = {}
    for ax, (title, ylabel, curves, best) in zip(axes[:, 0], panels):
        for name, (steps, values) in curves.items():
            marker = "o" if len(steps) <= 30 else None
            ax.plot(steps, values, label=name, marker=marker, markersize=3)
        for step in best:
            ax.axvline(step, color="0.6", linestyle=":", linewidth=1)
        if ylabel == "learning rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        ax.set_title(title + (" (dotted: best checkpoint)" if best else ""), loc="left")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize="small")
        lines[title] = len(ax.get_lines()) - len(best)
    axes[-1, 0].set_xlabel("step")
    fig.suptitle(os.path.abspath(model_dir), fontsize="small")
    path = out_path or os.path.join(model_dir, PNG_NAME)
    return TrainLogPlot(plotting.save_figure(plt, fig, path), lines)


def write_train_log_plot(program, model_dir, enabled=True):
    """The end of a training program: draws `model_dir/train_log.png` (when `enabled`: the
    chief worker) and returns its path; without matplotlib or a train log, one line on
    stderr and None (training went well; the picture is extra)."""
    if not enabled:
        return None
    return plotting.plot_or_note(program, plot_train_log, model_dir)
