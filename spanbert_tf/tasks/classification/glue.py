"""GLUE readers: the official TSV files and TFDS `glue/<task>` from a local data dir.

Every GLUE task is described by one `GlueSpec` (files, columns, label list,
metrics). The TSV reader follows the official GLUE layout exactly as
SpanBERT's `run_glue.py` reads it: tab separated, no quoting (a `"` is an
ordinary character), a header row everywhere except CoLA, an optional UTF-8
BOM (MRPC). Every row must have as many fields as the header (CoLA: 4);
a bad row or an unknown label raises `ValueError` naming the file and line.

Example:
```python
task = get_glue_task("rte")
dev = read_glue_split(task, "/data/glue/RTE", "dev")
dev[0].text_a, dev[0].text_b, dev[0].label   # 'Dana Reeve, ...', '...', 'not_entailment'
```
"""

import dataclasses
import os
from typing import Optional, Union

from spanbert_tf.errors import InputError, MissingFileError

# Column spec: a header name, or an int index for header-less files (CoLA).
Column = Union[str, int]


@dataclasses.dataclass(frozen=True)
class GlueSpec:
    """One GLUE task: where its text and label live and how it is scored."""

    name: str                      # canonical flag value, e.g. "sst-2"
    text_a: Column
    text_b: Optional[Column]
    label: Column
    labels: Optional[tuple]        # label names (official order); None = regression
    metrics: tuple                 # metric names written to eval_results.json
    selection_metric: str          # what "best checkpoint by dev metric" maximises
    has_header: bool = True
    num_columns: Optional[int] = None   # required for header-less files
    dev_file: str = "dev.tsv"
    tfds_name: str = ""
    tfds_text_a: str = ""
    tfds_text_b: Optional[str] = None
    tfds_dev_split: str = "validation"

    @property
    def is_regression(self):
        return self.labels is None

    @property
    def is_pair(self):
        return self.text_b is not None

    @property
    def num_classes(self):
        return 1 if self.labels is None else len(self.labels)


_BINARY = ("0", "1")
_ENTAIL2 = ("entailment", "not_entailment")

GLUE_TASKS = {
    t.name: t
    for t in [
        GlueSpec("cola", text_a=3, text_b=None, label=1, labels=_BINARY,
                 metrics=("accuracy", "matthews_corrcoef"), selection_metric="matthews_corrcoef",
                 has_header=False, num_columns=4, tfds_name="cola", tfds_text_a="sentence"),
        GlueSpec("sst-2", text_a="sentence", text_b=None, label="label", labels=_BINARY,
                 metrics=("accuracy",), selection_metric="accuracy",
                 tfds_name="sst2", tfds_text_a="sentence"),
        GlueSpec("mrpc", text_a="#1 String", text_b="#2 String", label="Quality", labels=_BINARY,
                 metrics=("accuracy", "f1"), selection_metric="acc_and_f1",
                 tfds_name="mrpc", tfds_text_a="sentence1", tfds_text_b="sentence2"),
        GlueSpec("sts-b", text_a="sentence1", text_b="sentence2", label="score", labels=None,
                 metrics=("pearson", "spearmanr"), selection_metric="corr",
                 tfds_name="stsb", tfds_text_a="sentence1", tfds_text_b="sentence2"),
        GlueSpec("qqp", text_a="question1", text_b="question2", label="is_duplicate",
                 labels=_BINARY, metrics=("accuracy", "f1"), selection_metric="acc_and_f1",
                 tfds_name="qqp", tfds_text_a="question1", tfds_text_b="question2"),
        GlueSpec("mnli", text_a="sentence1", text_b="sentence2", label="gold_label",
                 labels=("contradiction", "entailment", "neutral"), metrics=("accuracy",),
                 selection_metric="accuracy", dev_file="dev_matched.tsv", tfds_name="mnli",
                 tfds_text_a="premise", tfds_text_b="hypothesis",
                 tfds_dev_split="validation_matched"),
        GlueSpec("mnli-mm", text_a="sentence1", text_b="sentence2", label="gold_label",
                 labels=("contradiction", "entailment", "neutral"), metrics=("accuracy",),
                 selection_metric="accuracy", dev_file="dev_mismatched.tsv", tfds_name="mnli",
                 tfds_text_a="premise", tfds_text_b="hypothesis",
                 tfds_dev_split="validation_mismatched"),
        GlueSpec("qnli", text_a="question", text_b="sentence", label="label", labels=_ENTAIL2,
                 metrics=("accuracy",), selection_metric="accuracy",
                 tfds_name="qnli", tfds_text_a="question", tfds_text_b="sentence"),
        GlueSpec("rte", text_a="sentence1", text_b="sentence2", label="label", labels=_ENTAIL2,
                 metrics=("accuracy",), selection_metric="accuracy",
                 tfds_name="rte", tfds_text_a="sentence1", tfds_text_b="sentence2"),
        GlueSpec("wnli", text_a="sentence1", text_b="sentence2", label="label", labels=_BINARY,
                 metrics=("accuracy",), selection_metric="accuracy",
                 tfds_name="wnli", tfds_text_a="sentence1", tfds_text_b="sentence2"),
    ]
}

_ALIASES = {"sst2": "sst-2", "stsb": "sts-b", "sts": "sts-b", "mnli-m": "mnli",
            "mnli_matched": "mnli", "mnli-matched": "mnli", "mnli_mismatched": "mnli-mm",
            "mnli-mismatched": "mnli-mm"}


@dataclasses.dataclass
class ClassificationExample:
    """One example: text(s), label (name, or float for STS-B) and where it came from."""

    guid: str
    text_a: str
    text_b: Optional[str]
    label: Union[str, float, None]
    source: str = ""               # "file:line", for error messages


def get_glue_task(name):
    """Returns the `GlueSpec` for a flag value (case-insensitive; `SST-2`, `sst2` ...)."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in GLUE_TASKS:
        raise InputError(
            f"unknown GLUE task {name!r}; expected one of {sorted(GLUE_TASKS)}")
    return GLUE_TASKS[key]


def _split_lines(path):
    """Lines of a TSV split on '\\n' only (GLUE text may hold other Unicode breaks)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise MissingFileError(f"GLUE file not found: {path}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not valid UTF-8 ({e.reason})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _column_index(task, header, column, path):
    if isinstance(column, int):
        return column
    if column not in header:
        raise InputError(
            f"{path}:1: header has no column {column!r} for task {task.name} "
            f"(header: {header})")
    return header.index(column)


def read_glue_tsv(task, path, split="dev"):
    """Reads one official GLUE TSV file into `ClassificationExample`s, in file order.

    Args:
        task: a `GlueSpec` or task name.
        path: the TSV file.
        split: used in the example ids ("train-0", "dev-12").
    """
    task = get_glue_task(task) if isinstance(task, str) else task
    lines = _split_lines(path)
    start = 0
    if task.has_header:
        if not lines:
            raise InputError(f"{path}: empty file (expected a header row)")
        header = lines[0].split("\t")
        num_columns = len(header)
        start = 1
    else:
        header = []
        num_columns = task.num_columns
    ia = _column_index(task, header, task.text_a, path)
    ib = None if task.text_b is None else _column_index(task, header, task.text_b, path)
    il = _column_index(task, header, task.label, path)
    valid = None if task.labels is None else set(task.labels)
    examples = []
    for line_no in range(start + 1, len(lines) + 1):
        fields = lines[line_no - 1].split("\t")
        where = f"{path}:{line_no}"
        if len(fields) != num_columns:
            raise InputError(
                f"{where}: expected {num_columns} tab-separated columns for task "
                f"{task.name}, found {len(fields)}")
        raw_label = fields[il].strip()
        if valid is None:
            try:
                label = float(raw_label)
            except ValueError:
                raise InputError(f"{where}: label {raw_label!r} is not a number "
                                 f"(task {task.name} is a regression)") from None
        else:
            if raw_label not in valid:
                raise InputError(f"{where}: unknown label {raw_label!r} for task {task.name}"
                                 f" (expected one of {list(task.labels)})")
            label = raw_label
        examples.append(ClassificationExample(
            guid=f"{split}-{len(examples)}", text_a=fields[ia],
            text_b=None if ib is None else fields[ib], label=label, source=where))
    return examples


def glue_split_path(task, data_dir, split):
    """The official file of a split: train.tsv, dev.tsv (MNLI: dev_matched/dev_mismatched)."""
    task = get_glue_task(task) if isinstance(task, str) else task
    if split == "train":
        return os.path.join(data_dir, "train.tsv")
    if split == "dev":
        return os.path.join(data_dir, task.dev_file)
    raise InputError(f"unknown split {split!r} (expected 'train' or 'dev')")


def read_glue_split(task, data_dir, split):
    """Reads `split` ("train" or "dev") of a GLUE task from its official directory."""
    task = get_glue_task(task) if isinstance(task, str) else task
    return read_glue_tsv(task, glue_split_path(task, data_dir, split), split)


def tfds_label_name(task, value, names):
    """Maps a TFDS integer label to our (official TSV) label name."""
    if task.labels is None:
        return float(value)
    if task.labels == _BINARY:
        # TFDS orders the binary tasks as the TSVs do (0 = negative / not ...).
        return str(int(value))
    return names[int(value)]


def read_glue_tfds(task, split, data_dir):
    """Reads TFDS `glue/<task>` (already prepared under `data_dir`, no download).

    Args:
        task: a `GlueSpec` or task name.
        split: "train" or "dev" (the task's TFDS validation split).
        data_dir: the TFDS data dir holding `glue/<config>/<version>/`.
    """
    import tensorflow_datasets as tfds

    task = get_glue_task(task) if isinstance(task, str) else task
    tfds_split = {"train": "train", "dev": task.tfds_dev_split}.get(split)
    if tfds_split is None:
        raise InputError(f"unknown split {split!r} (expected 'train' or 'dev')")
    name = f"glue/{task.tfds_name}"
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        dataset = builder.as_dataset(split=tfds_split, shuffle_files=False)
    except Exception as e:  # tfds raises several types for a missing/unprepared dataset
        raise InputError(f"TFDS dataset {name} split {tfds_split} is not available under "
                         f"{data_dir}: {e}") from None
    names = None
    if task.labels is not None:
        names = builder.info.features["label"].names
    rows = list(tfds.as_numpy(dataset))
    if rows and "idx" in rows[0]:
        rows.sort(key=lambda r: int(r["idx"]))  # the official file order
    examples = []
    for i, row in enumerate(rows):
        text_b = None
        if task.tfds_text_b is not None:
            text_b = row[task.tfds_text_b].decode("utf-8")
        label = tfds_label_name(task, row["label"], names)
        if task.labels is not None and label not in task.labels:
            raise InputError(f"{name}[{tfds_split}] row {i}: unknown label {row['label']!r}")
        examples.append(ClassificationExample(
            guid=f"{split}-{i}", text_a=row[task.tfds_text_a].decode("utf-8"),
            text_b=text_b, label=label, source=f"{name}[{tfds_split}]:{i}"))
    return examples
