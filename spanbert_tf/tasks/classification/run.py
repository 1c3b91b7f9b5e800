"""Fine-tuning / evaluation driver behind `run_classifier.py` (GLUE and TACRED).

`--do_train`: the encoder of `init_checkpoint` (a model dir) is fine-tuned
with the project's `Trainer` (trainer state in `output_dir/train/`); after
every epoch the dev set is scored (with `--do_eval`) and the best checkpoint
by the task's selection metric is kept in `output_dir`, which is a model dir
(config.json with a "task" object: labels, max_seq_length, TACRED markers;
vocab.txt; ckpt-N). Without `--do_eval` the last epoch is kept.
`--do_eval`: scores the dev set with the kept model (or, without
`--do_train`, with the fine-tuned model dir in `output_dir` or
`init_checkpoint`) and writes `eval_results.json` and `dev_predictions.jsonl`.

Example:
```python
results = run_classifier(ClassificationSettings(
    task_name="rte", data_dir="glue/RTE", init_checkpoint="runs/pretrain",
    output_dir="runs/rte", do_train=True, do_eval=True))
results["accuracy"]
```
"""

import dataclasses
import json
import os
from typing import Optional

import numpy as np
from absl import logging

from spanbert_tf.errors import InputError
from spanbert_tf.io_utils import write_jsonl_atomic, write_text_atomic
from spanbert_tf.modeling import model_dir as model_dir_lib
from spanbert_tf.plotting.train_log_plot import write_train_log_plot
from spanbert_tf.tasks.classification import glue
from spanbert_tf.tasks.classification import tacred
from spanbert_tf.tasks.classification.metrics import compute_metrics
from spanbert_tf.tokenization import BertWordpieceTokenizer
from spanbert_tf.training import finetune

TACRED = "tacred"
TACRED_METRICS = ("precision", "recall", "f1", "accuracy")
TRAIN_SUBDIR = "train"
EVAL_HISTORY = finetune.EVAL_HISTORY


@dataclasses.dataclass
class ClassificationSettings:
    """The settings of one run (the `run_classifier.py` flags)."""

    task_name: str
    output_dir: str
    data_dir: Optional[str] = None
    init_checkpoint: Optional[str] = None
    do_train: bool = False
    do_eval: bool = False
    max_seq_length: int = 128
    train_batch_size: int = 32
    eval_batch_size: int = 32
    num_train_epochs: Optional[float] = None      # None: 10 (CoLA 4)
    learning_rate: float = 2e-5
    warmup_proportion: float = 0.1
    strategy: str = "default"
    tpu: Optional[str] = None
    mixed_precision: str = "float32"
    seed: int = 42
    tfds_data_dir: Optional[str] = None
    export_dir: Optional[str] = None
    negative_label: str = tacred.NEGATIVE_LABEL
    show_progress: bool = True


@dataclasses.dataclass
class _Split:
    examples: list
    features: dict
    label_ids: list


def default_num_epochs(task_name):
    """SpanBERT's fine-tuning defaults: 10 epochs, CoLA 4."""
    return 4.0 if task_name == "cola" else 10.0


def _canonical_task(name):
    if name.strip().lower() == TACRED:
        return TACRED, None
    try:
        spec = glue.get_glue_task(name)
    except ValueError:
        raise InputError(f"unknown --task_name {name!r}; expected tacred or one of "
                         f"{sorted(glue.GLUE_TASKS)}") from None
    return spec.name, spec


def _family(name):
    return "mnli" if name in ("mnli", "mnli-mm") else name


def _read_split(opts, task_name, spec, split):
    if task_name == TACRED:
        if not opts.data_dir:
            raise InputError("--data_dir is required for tacred (train.json / dev.json)")
        return tacred.read_tacred_json(os.path.join(opts.data_dir, f"{split}.json"))
    if opts.tfds_data_dir:
        return glue.read_glue_tfds(spec, split, opts.tfds_data_dir)
    if not opts.data_dir:
        raise InputError("--data_dir (official TSVs) or --tfds_data_dir is required")
    return glue.read_glue_split(spec, opts.data_dir, split)


def _split_source(opts, task_name, spec, split):
    """Where a split is read from, for messages: its file, or the TFDS dataset."""
    if task_name == TACRED:
        return os.path.join(opts.data_dir, f"{split}.json")
    if opts.tfds_data_dir:
        return f"TFDS glue/{spec.tfds_name} ({split}) in {opts.tfds_data_dir}"
    return glue.glue_split_path(spec, opts.data_dir, split)


def _encode(examples, meta, tokenizer, markers):
    from spanbert_tf.tasks.classification import model as classification  # imports TensorFlow

    labels = meta["labels"]
    if meta["name"] == TACRED:
        features = tacred.encode_tacred(examples, tokenizer, markers, meta["max_seq_length"])
    else:
        texts_b = None if examples[0].text_b is None else [ex.text_b for ex in examples]
        features = classification.encode_pairs(
            tokenizer, [ex.text_a for ex in examples], texts_b, meta["max_seq_length"])
    if labels is None:
        label_ids = [float(ex.label) for ex in examples]
    else:
        index = {name: i for i, name in enumerate(labels)}
        label_ids = []
        for ex in examples:
            if ex.label not in index:
                raise InputError(f"{ex.source}: label {ex.label!r} is not one of the model's "
                                 f"{len(labels)} labels")
            label_ids.append(index[ex.label])
    if features["num_truncated"]:
        logging.info("%d of %d examples cut to max_seq_length=%d", features["num_truncated"],
                     len(examples), meta["max_seq_length"])
    return _Split(examples, features, label_ids)


def _metric_names(meta):
    if meta["name"] == TACRED:
        return TACRED_METRICS, "f1"
    spec = glue.get_glue_task(meta["name"])
    return spec.metrics, spec.selection_metric


def _score(trainer, split, meta, batch_size):
    """Predicts `split`; returns (metrics, prediction records)."""
    from spanbert_tf.tasks.classification import model as classification  # imports TensorFlow

    regression = meta["labels"] is None
    dataset = classification.make_eval_dataset(split.features, split.label_ids, batch_size,
                                               regression)
    logits = trainer.predict(dataset)["logits"]
    names, selection = _metric_names(meta)
    records = []
    if regression:
        preds = logits[:, 0].astype(float)
        for i, ex in enumerate(split.examples):
            records.append({"index": i, "label": float(ex.label),
                            "prediction": float(preds[i]), "probabilities": None})
    else:
        probs = classification.softmax(logits)
        preds = probs.argmax(axis=-1)
        labels = meta["labels"]
        for i, ex in enumerate(split.examples):
            records.append({"index": i, "label": ex.label, "prediction": labels[int(preds[i])],
                            "probabilities": [float(p) for p in probs[i]]})
    wanted = tuple(names) + ((selection,) if selection not in names else ())
    metrics = compute_metrics(wanted, preds, split.label_ids, negative=0)
    return metrics, records


def majority_baseline(names, meta, dev, train_examples=None):
    """The dev scores of always predicting the most frequent training label (dev's when
    not training): what a model that learned nothing gets. None for regression."""
    labels = meta["labels"]
    if labels is None or dev is None:
        return None
    source = train_examples or dev.examples
    counts = {label: 0 for label in labels}
    for ex in source:
        counts[ex.label] = counts.get(ex.label, 0) + 1
    majority = max(labels, key=lambda label: counts[label])
    preds = np.full(len(dev.label_ids), labels.index(majority))
    scores = compute_metrics(tuple(names), preds, dev.label_ids, negative=0)
    return {"always": majority, **{name: scores[name] for name in names}}


def _optimizer_config(base, opts, num_train_steps, num_warmup_steps):
    return dataclasses.replace(
        base, optimizer="adamw", learning_rate=opts.learning_rate, beta_1=0.9, beta_2=0.999,
        epsilon=1e-6, weight_decay=0.01, clip_norm=1.0, end_learning_rate=0.0,
        num_train_steps=num_train_steps, num_warmup_steps=num_warmup_steps,
        train_batch_size=opts.train_batch_size)


def _build_trainer(opts, meta, config, model_dir, train_fn=None, num_train_steps=1,
                   init_checkpoint=None, steps_per_epoch=1, num_warmup_steps=0):
    from spanbert_tf.tasks.classification.task import ClassificationTask  # imports TensorFlow
    from spanbert_tf.training.distribute import get_strategy
    from spanbert_tf.training.trainer import Trainer

    strategy = get_strategy(opts.strategy, tpu=opts.tpu)
    regression = meta["labels"] is None
    task = ClassificationTask(
        config.model, 1 if regression else len(meta["labels"]), is_regression=regression)
    every = max(1, min(100, steps_per_epoch))
    return Trainer(
        task, strategy, model_dir,
        _optimizer_config(config.optimizer, opts, num_train_steps, num_warmup_steps),
        train_fn, num_train_steps, steps_per_loop=every, save_checkpoints_steps=steps_per_epoch,
        keep_checkpoint_max=1, log_every=every, init_checkpoint=init_checkpoint,
        seed=opts.seed, num_warmup_steps=num_warmup_steps,
        mixed_precision=opts.mixed_precision, show_progress=opts.show_progress)


def _train(opts, meta, info, train, dev):
    """Fine-tunes through the fine-tuning driver; keeps the best (or last) checkpoint in
    output_dir. Returns (trainer, driver outcome)."""
    from spanbert_tf.tasks.classification import model as classification  # imports TensorFlow

    # As officially (drop_last=True): full batches only.
    plan = finetune.TrainPlan(
        num_examples=len(train.examples), unit="examples",
        steps_per_epoch=max(1, len(train.examples) // opts.train_batch_size),
        epochs=opts.num_train_epochs or default_num_epochs(meta["name"]))
    num_warmup_steps = int(plan.num_train_steps * opts.warmup_proportion)

    def train_fn(input_context):
        replicas = input_context.num_replicas_in_sync
        if opts.train_batch_size % replicas:
            raise InputError(f"--train_batch_size={opts.train_batch_size} is not divisible "
                             f"by the {replicas} replicas")
        return classification.make_train_dataset_fn(
            train.features, train.label_ids, opts.train_batch_size // replicas, opts.seed,
            meta["labels"] is None)(input_context)

    trainer = _build_trainer(
        opts, meta, info.config, os.path.join(opts.output_dir, TRAIN_SUBDIR), train_fn,
        plan.num_train_steps, init_checkpoint=info.checkpoint_path,
        steps_per_epoch=plan.steps_per_epoch, num_warmup_steps=num_warmup_steps)
    names, selection = _metric_names(meta)
    evaluation = finetune.FinetuneEvaluation(
        evaluate=None if dev is None else (
            lambda t: _score(t, dev, meta, opts.eval_batch_size)[0]),
        primary_metric=selection,
        labels={selection: selection, **{n: n for n in names if n != selection}})
    outcome = finetune.train_and_keep_best(trainer, opts.output_dir, plan, evaluation,
                                           show_progress=opts.show_progress)
    return trainer, outcome


def next_command(opts):
    """The command a person runs next with what `opts.output_dir` holds."""
    data = (f"--data_dir={opts.data_dir}" if opts.data_dir
            else f"--tfds_data_dir={opts.tfds_data_dir}")
    command = (f"python run_classifier.py --task_name={opts.task_name} {data} "
               f"--output_dir={opts.output_dir} --do_eval")
    if opts.do_eval and not opts.export_dir:   # scored: serve it
        command += f" --export_dir={os.path.join(opts.output_dir, 'export')}"
    return command


def run_classifier(opts):
    """Runs training and/or evaluation; returns the dev metrics (or {})."""
    if not (opts.do_train or opts.do_eval):
        raise InputError("at least one of --do_train / --do_eval is required")
    if not opts.output_dir:
        raise InputError("--output_dir is required")
    task_name, spec = _canonical_task(opts.task_name)
    # The data first: a bad row is reported before TensorFlow is even imported.
    dev_examples = _read_split(opts, task_name, spec, "dev") if opts.do_eval else None
    if opts.do_eval and not dev_examples:
        raise InputError(f"{_split_source(opts, task_name, spec, 'dev')}: no dev examples")
    if opts.do_train:
        if not opts.init_checkpoint:
            raise InputError("--do_train needs --init_checkpoint (a pretrained model dir)")
        train_examples = _read_split(opts, task_name, spec, "train")
        if not train_examples:
            raise InputError(f"{_split_source(opts, task_name, spec, 'train')}: no training "
                             "examples")
    info = finetune.resolve_model_dir(
        opts.do_train, opts.init_checkpoint, opts.output_dir, "classification",
        f"a model fine-tuned on {task_name}",
        accepts=lambda task: _family(task.get("name")) == _family(task_name))
    tokenizer = BertWordpieceTokenizer(info.vocab_file, do_lower_case=info.do_lower_case)
    markers = None
    if opts.do_train:
        meta = model_dir_lib.task_entry(
            "classification", task_name, max_seq_length=opts.max_seq_length,
            labels=(tacred.tacred_label_list(train_examples, opts.negative_label)
                    if task_name == TACRED else
                    None if spec.is_regression else list(spec.labels)))
        if task_name == TACRED:
            # Official order: dev markers first, then train (dev.json is read for
            # the mapping even without --do_eval, so the ids never depend on flags).
            mapping_dev = dev_examples
            if mapping_dev is None and os.path.isfile(os.path.join(opts.data_dir, "dev.json")):
                mapping_dev = _read_split(opts, task_name, spec, "dev")
            markers = tacred.TacredMarkers.build(
                [mapping_dev or [], train_examples], tokenizer.vocab, info.vocab_file)
            meta["markers"] = markers.to_json()
            meta["negative_label"] = opts.negative_label
    else:
        meta = dict(info.task)
        if task_name != meta["name"]:
            meta["name"] = task_name          # mnli model scored on mnli-mm
        if task_name == TACRED:
            markers = tacred.TacredMarkers.from_json(meta["markers"])
            markers.add_examples(dev_examples, tokenizer.vocab, info.vocab_file)
    negative = meta.get("negative_label", opts.negative_label)
    if task_name == TACRED and meta["labels"][0] != negative:
        raise InputError(f"TACRED label list must start with the negative label {negative!r}: "
                         f"{meta['labels'][:3]}")
    dev = _encode(dev_examples, meta, tokenizer, markers) if dev_examples else None

    if opts.do_train:
        model_dir_lib.write_model_dir_metadata(
            opts.output_dir, info.config, info.vocab_file, info.do_lower_case, task=meta)
        train = _encode(train_examples, meta, tokenizer, markers)
        trainer, outcome = _train(opts, meta, info, train, dev)
        write_train_log_plot("run_classifier", opts.output_dir, trainer.is_chief)
        model_dir_lib.restore_model(trainer.model, outcome.checkpoint)
    else:
        trainer = finetune.restored_trainer(
            lambda tmp: _build_trainer(opts, meta, info.config, tmp), info.checkpoint_path)

    results = {}
    if opts.do_eval:
        names, _ = _metric_names(meta)
        metrics, records = _score(trainer, dev, meta, opts.eval_batch_size)
        results = {name: metrics[name] for name in names}
        if trainer.is_chief:
            os.makedirs(opts.output_dir, exist_ok=True)
            write_text_atomic(os.path.join(opts.output_dir, "eval_results.json"),
                              json.dumps(results, indent=2) + "\n")
            write_jsonl_atomic(os.path.join(opts.output_dir, "dev_predictions.jsonl"), records)
        logging.info("dev results (%d examples): %s", len(records), results)
        # Returned (and printed) beside the scores, not in eval_results.json.
        baseline = majority_baseline(names, meta, dev, train_examples if opts.do_train else None)
        if baseline:
            results["baseline"] = baseline
    if opts.export_dir:
        from spanbert_tf.tasks.classification.export import export_classifier

        source = opts.output_dir if opts.do_train else info.model_dir
        export_classifier(source, opts.export_dir)
    return results
