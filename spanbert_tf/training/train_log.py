"""What a training run reports: `train_log.jsonl`, TensorBoard, a progress bar.

`TrainLogger` writes one JSON object per logged step to `model_dir/train_log.jsonl`
(appending across resumed runs; entries past the restored step of a killed run
are dropped first, so the log never holds a step twice), the same scalars as
TensorBoard summaries under `model_dir/train/` (when TensorFlow is installed: a TF-free JAX /
PyTorch run keeps train_log.jsonl only), and shows a tqdm progress bar
with step, losses, learning rate, examples/s and tokens/s. Only the chief
worker writes; the others log nothing.

Example:
```python
logger = TrainLogger(model_dir, start_step=0, until_step=100)
logger.log(10, {"loss": 3.2, "learning_rate": 1e-4, "examples_per_sec": 50.0})
logger.close()
read_train_log(model_dir)   # [{"step": 10, "loss": 3.2, ...}]
```
"""

import json
import math
import os
import pathlib

import tqdm

from spanbert_tf.io_utils import write_text_atomic

LOG_NAME = "train_log.jsonl"
# Shown in the progress bar, in this order, when present.
BAR_KEYS = ("loss", "mlm_loss", "sbo_loss", "learning_rate", "examples_per_sec", "tokens_per_sec")
BAR_NAMES = {"learning_rate": "lr", "examples_per_sec": "ex/s", "tokens_per_sec": "tok/s"}


def read_train_log(model_dir):
    """Returns the list of logged step records of `model_dir/train_log.jsonl`."""
    path = pathlib.Path(model_dir) / LOG_NAME
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                # A line cut short by a killed process: only the last one can be.
                continue
    return records


def _fmt(value):
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.3g}"
        return f"{value:.4g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


class TrainLogger:
    """Writes the step records of one `train()` call (see module docstring)."""

    def __init__(self, model_dir, start_step, until_step, enabled=True, show_progress=True,
                 progress_bar=None):
        """`progress_bar`: a tqdm bar to advance instead of a new one (a fine-tuning run
        trains in several `train()` calls under ONE bar); left open by `close()`."""
        self.enabled = enabled
        self.path = pathlib.Path(model_dir) / LOG_NAME
        self._file = None
        self._writer = None
        self._bar = None
        self._own_bar = progress_bar is None
        if not enabled:
            return
        os.makedirs(model_dir, exist_ok=True)
        self._truncate_after(start_step)
        self._file = open(self.path, "a", encoding="utf-8")
        self._writer = _summary_writer(os.path.join(model_dir, "train"))
        if progress_bar is not None:
            self._bar = progress_bar
        elif show_progress:
            self._bar = tqdm.tqdm(
                total=until_step,
                initial=start_step,
                desc="train",
                unit="step",
                dynamic_ncols=True,
                mininterval=1.0,
            )

    def _truncate_after(self, step):
        """Drops records past `step` (left by a run killed after its last checkpoint)."""
        records = read_train_log(self.path.parent)
        kept = [r for r in records if r.get("step", 0) <= step]
        if len(kept) != len(records) or (self.path.exists() and not _ends_cleanly(self.path)):
            write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def advance(self, step):
        if self._bar is not None:
            self._bar.n = step
            self._bar.refresh()

    def log(self, step, values):
        """Records `values` (a dict of floats) for `step`."""
        if not self.enabled:
            return
        record = {"step": int(step)}
        record.update({k: _clean(v) for k, v in values.items()})
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._writer is not None:
            with self._writer.as_default(step=int(step)):
                for k, v in record.items():
                    if k != "step" and v is not None:
                        write_scalar_summary(k, v)
            self._writer.flush()
        if self._bar is not None:
            self._bar.n = int(step)
            self._bar.set_postfix_str(
                " ".join(
                    f"{BAR_NAMES.get(k, k)}={_fmt(record[k])}" for k in BAR_KEYS if k in record
                ),
                refresh=True,
            )

    def close(self):
        if self._bar is not None and self._own_bar:
            self._bar.close()
        if self._file is not None:
            self._file.close()
        if self._writer is not None:
            self._writer.close()
        self._bar = self._file = self._writer = None


def _summary_writer(logdir):
    """TensorBoard's writer of `logdir`, or None without TensorFlow (a TF-free run)."""
    try:
        import tensorflow as tf
    except ImportError:
        return None
    return tf.summary.create_file_writer(logdir)


def _scalar_metadata():
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR,
    )
    return metadata.SerializeToString()


def write_scalar_summary(name, value):
    """`tf.summary.scalar` without the tensorboard package (same event format)."""
    import tensorflow as tf

    tf.summary.write(name, tf.constant(value, tf.float32), metadata=_scalar_metadata())


def _clean(value):
    value = float(value)
    return value if math.isfinite(value) else None


def _ends_cleanly(path):
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return True
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"
