"""The on-disk "model dir" every program reads and writes.

```
MODEL_DIR/config.json     SpanBertConfig.to_dict() + "do_lower_case" (+ optional "task")
MODEL_DIR/vocab.txt       the WordPiece vocabulary the model was trained with
MODEL_DIR/checkpoint      tf.train.CheckpointManager state (checkpoint_name "ckpt")
MODEL_DIR/ckpt-N.index, ckpt-N.data-*
```

This module is the one place that names (`CHECKPOINT_NAME`), finds (`latest_checkpoint`,
`resolve_checkpoint`) and restores (`restore_backbone`, `restore_model`) checkpoints; the
Trainer and every program go through it.

The checkpoint object graph is `tf.train.Checkpoint(model=<keras model with a
.backbone attribute>, optimizer=..., step=...)`. Pretraining and fine-tuning
models all expose `.backbone`, so `restore_backbone` moves an encoder between
them (pretrainer → SQuAD model, ...), ignoring heads and optimizer slots.

Example:
```python
write_model_dir_metadata("runs/pretrain", config, "vocab.txt")
info = read_model_dir("runs/pretrain")           # or "runs/pretrain/ckpt-300"
backbone = build_backbone(info.config.model)
restore_backbone(backbone, info.checkpoint_path)
```
"""

import glob
import json
import os
import pathlib

from spanbert_tf.errors import InputError, MissingFileError
from spanbert_tf.io_utils import copy_file_atomic, write_text_atomic
from spanbert_tf.modeling import preset_dir
from spanbert_tf.modeling.config import ModelDirInfo, SpanBertConfig, read_json_file  # noqa: F401  (ModelDirInfo: part of this API)

CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.txt"
CHECKPOINT_NAME = "ckpt"
# Every fine-tuning program writes its "task" object with the same two keys: "kind", the task
# family (which program and model class: "squad", "classification", "coref"), and "name", the
# task within it ("squad", "rte", "tacred", "coref", ...). `LEGACY_TASK_NAME_KEY` is the older
# key fine-tuned classifiers wrote; model dirs written before "kind" existed get it inferred.
TASK_KIND_KEY = "kind"
TASK_NAME_KEY = "name"
LEGACY_TASK_NAME_KEY = "task_name"
TASK_KINDS = ("squad", "classification", "coref", "ner")


def task_entry(kind, name, **fields):
    """The "task" object of config.json: `{"kind": kind, "name": name, **fields}`."""
    if kind not in TASK_KINDS:
        raise InputError(f"unknown task kind {kind!r}; expected one of {TASK_KINDS}")
    return {TASK_KIND_KEY: kind, TASK_NAME_KEY: name, **fields}


def task_kind(info_or_task):
    """The task family ("squad", "classification", "coref") of a model dir, or None."""
    task = getattr(info_or_task, "task", info_or_task)
    return (task or {}).get(TASK_KIND_KEY)


def _normalize_task(task):
    """Reads the older task objects: "task_name" → "name"; a missing "kind" inferred."""
    task = dict(task)
    if TASK_NAME_KEY not in task and LEGACY_TASK_NAME_KEY in task:
        task[TASK_NAME_KEY] = task.pop(LEGACY_TASK_NAME_KEY)
    if TASK_KIND_KEY not in task:
        if task.get(TASK_NAME_KEY) == "squad":
            task[TASK_KIND_KEY] = "squad"
        elif "labels" in task or "label_list" in task:
            task[TASK_KIND_KEY] = "classification"
    if task.get(TASK_KIND_KEY) == "coref" and TASK_NAME_KEY not in task:
        task[TASK_NAME_KEY] = "coref"
    return task


def write_model_dir_metadata(model_dir, config, vocab_file, do_lower_case=False, task=None):
    """Writes `config.json` and `vocab.txt` into `model_dir` (each atomically).

    Args:
        model_dir: directory, created if needed.
        config: a `SpanBertConfig`.
        vocab_file: the vocabulary to copy to `model_dir/vocab.txt`.
        do_lower_case: stored at the top level of config.json.
        task: optional JSON-able dict describing a fine-tuning task (labels, ...).
    """
    if not isinstance(config, SpanBertConfig):
        raise TypeError(f"config must be a SpanBertConfig, got {type(config).__name__}")
    vocab_file = pathlib.Path(vocab_file)
    if not vocab_file.is_file():
        raise MissingFileError(f"vocabulary file not found: {vocab_file}")
    model_dir = pathlib.Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    target = model_dir / VOCAB_FILE
    if not (target.exists() and os.path.samefile(target, vocab_file)):
        copy_file_atomic(vocab_file, target)
    data = config.to_dict()
    data["do_lower_case"] = bool(do_lower_case)
    if task is not None:
        data["task"] = task
    write_text_atomic(model_dir / CONFIG_FILE, json.dumps(data, indent=2) + "\n")


def _is_checkpoint_prefix(path):
    import tensorflow as tf  # tf.io.gfile: local paths and gs:// alike

    return tf.io.gfile.exists(str(path) + ".index")


def latest_checkpoint(model_dir):
    """The newest checkpoint prefix in `model_dir`, or None.

    Uses the CheckpointManager state file, resolved relative to `model_dir`
    so that a moved or copied model dir still works.
    """
    import tensorflow as tf

    model_dir = str(model_dir)
    state = tf.train.get_checkpoint_state(model_dir)
    if state is not None and state.model_checkpoint_path:
        for candidate in (
            state.model_checkpoint_path,
            os.path.join(model_dir, state.model_checkpoint_path),
            os.path.join(model_dir, os.path.basename(state.model_checkpoint_path)),
        ):
            if _is_checkpoint_prefix(candidate):
                return candidate
    return None


def resolve_checkpoint(path):
    """A checkpoint prefix from a model dir (latest checkpoint) or a prefix."""
    path = str(path)
    if _is_checkpoint_prefix(path):
        return path
    import tensorflow as tf

    if tf.io.gfile.isdir(path):
        found = latest_checkpoint(path)
        if found is None:
            raise MissingFileError(
                f"no checkpoint in model dir {path} (expected a 'checkpoint' state file "
                f"and {CHECKPOINT_NAME}-N.index / .data files)"
            )
        return found
    raise MissingFileError(
        f"checkpoint not found: {path} is neither a model dir nor a checkpoint prefix "
        f"({path}.index does not exist)"
    )


def read_model_dir(path, require_checkpoint=True):
    """Reads a model dir, or the model dir around a checkpoint prefix.

    Args:
        path: a model dir (its latest checkpoint is used), a checkpoint prefix
            such as `runs/pretrain/ckpt-300`, or a keras-hub preset dir
            (`checkpoint_path` is then its `model.weights.h5`; see `preset_dir`). A
            model dir trained with `--backend=jax` (no TF checkpoint) is read
            through the preset its run wrote, `MODEL_DIR/preset`.
        require_checkpoint: if False, a model dir without checkpoints is accepted
            and `checkpoint_path` is None.

    Returns:
        `ModelDirInfo(config, vocab_file, do_lower_case, checkpoint_path, task, model_dir)`.
    """
    path = str(path)
    if preset_dir.is_preset_dir(path):  # a keras-hub preset: checkpoint_path = its model.weights.h5
        return preset_dir.read_preset_dir(path)
    if _is_checkpoint_prefix(path):
        model_dir, checkpoint_path = os.path.dirname(path) or ".", path
    elif os.path.isdir(path):
        model_dir = path
        checkpoint_path = latest_checkpoint(path)
        trained_preset = os.path.join(path, preset_dir.MODEL_DIR_PRESET)
        if (checkpoint_path is None and require_checkpoint
                and preset_dir.is_preset_dir(trained_preset)):
            return preset_dir.read_preset_dir(trained_preset)  # trained with --backend=jax
    else:
        raise MissingFileError(
            f"model dir not found: {path} is neither a directory nor a checkpoint prefix"
        )
    config_file = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.isfile(config_file):
        raise MissingFileError(f"model dir {model_dir} has no {CONFIG_FILE} ({config_file})")
    data = read_json_file(config_file)
    do_lower_case = data.pop("do_lower_case", None)
    if do_lower_case is None:
        raise InputError(f"{config_file}: missing top-level key 'do_lower_case'")
    if not isinstance(do_lower_case, bool):
        raise InputError(f"{config_file}: 'do_lower_case' must be true or false, got {do_lower_case!r}")
    task = data.pop("task", None)
    if task is not None and not isinstance(task, dict):
        raise InputError(f"{config_file}: 'task' must be a JSON object, got {task!r}")
    if task is not None:
        task = _normalize_task(task)
    config = SpanBertConfig.from_dict(data, source=config_file)
    vocab_file = os.path.join(model_dir, VOCAB_FILE)
    if not os.path.isfile(vocab_file):
        raise MissingFileError(f"model dir {model_dir} has no {VOCAB_FILE} ({vocab_file})")
    if checkpoint_path is None and require_checkpoint:
        if glob.glob(os.path.join(glob.escape(model_dir), "ckpt-*" + preset_dir.WEIGHTS_SUFFIX)):
            raise MissingFileError(
                f"model dir {model_dir} was trained on a Keras backend (--backend=jax: "
                f"ckpt-N{preset_dir.WEIGHTS_SUFFIX}) and has no {preset_dir.MODEL_DIR_PRESET}/ "
                "yet, which its run writes when it ends: finish or resume the run, or load a "
                "ckpt-N.weights.h5 with run_pretraining.py --init_weights")
        raise MissingFileError(
            f"no checkpoint in model dir {model_dir} (expected a 'checkpoint' state file "
            f"and {CHECKPOINT_NAME}-N.index / .data files)"
        )
    return ModelDirInfo(
        config=config,
        vocab_file=vocab_file,
        do_lower_case=do_lower_case,
        checkpoint_path=checkpoint_path,
        task=task,
        model_dir=model_dir,
    )


def _restore(root, checkpoint_path, what):
    import tensorflow as tf

    checkpoint_path = resolve_checkpoint(checkpoint_path)
    try:
        # read(), not restore(): restore() creates the root's save_counter, which
        # checkpoints written with Checkpoint.write() do not have.
        status = root.read(checkpoint_path).expect_partial()
        status.assert_existing_objects_matched()
    except AssertionError as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise InputError(
            f"checkpoint {checkpoint_path} does not hold the {what} weights this model "
            f"needs (different config, or not a model with a .backbone?): {first[:300]}"
        ) from None
    except (ValueError, tf.errors.InvalidArgumentError) as e:
        raise InputError(
            f"checkpoint {checkpoint_path} does not fit this {what} (shape mismatch: "
            f"different config?): {str(e).splitlines()[0][:300]}"
        ) from None
    return checkpoint_path


def restore_backbone(backbone, checkpoint_path):
    """Restores ONLY the encoder weights from a model dir or checkpoint prefix.

    Works for any checkpoint written as `tf.train.Checkpoint(model=m, ...)`
    where `m.backbone` is a backbone of the same config (pretrainer, SQuAD,
    classifier), or a keras-hub preset's `model.weights.h5`. Heads and
    optimizer slots in the checkpoint are ignored.
    Raises ValueError if the backbone's variables are not all in the checkpoint.
    """
    import tensorflow as tf

    if not backbone.weights:
        raise InputError("restore_backbone: the backbone has no variables yet (build it first)")
    if preset_dir.is_preset_dir(str(checkpoint_path)):  # a keras-hub preset dir
        checkpoint_path = preset_dir.read_preset_dir(str(checkpoint_path)).checkpoint_path
    if str(checkpoint_path).endswith(preset_dir.WEIGHTS_SUFFIX):  # a keras-hub preset's weights
        preset_dir.load_preset_weights(backbone, str(checkpoint_path))
        return
    root = tf.train.Checkpoint(model=tf.train.Checkpoint(backbone=backbone))
    _restore(root, checkpoint_path, "backbone")


def restore_model(model, checkpoint_path):
    """Restores a whole model (backbone + heads) written as `Checkpoint(model=...)`.

    The model must be built (its variables created). Optimizer slots and the
    step counter in the checkpoint are ignored. Raises ValueError if some of
    the model's variables are not in the checkpoint.
    """
    import tensorflow as tf

    if not model.weights:
        raise InputError(
            f"restore_model: {type(model).__name__} has no variables yet; call it on a "
            f"batch (or build it) before restoring"
        )
    root = tf.train.Checkpoint(model=model)
    _restore(root, checkpoint_path, "model")
