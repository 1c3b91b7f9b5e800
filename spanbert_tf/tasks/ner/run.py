"""Training / prediction driver behind `run_ner.py`, on the fine-tuning driver.

With `train_file`: the encoder of `init_checkpoint` (a model dir: ours or converted) and
a fresh head (`config.ner.model_type`: "span", nested, or "token", flat BIO) are trained
on its windows (`features.py`) with the project's `Trainer` (state in
`output_dir/train/`, resumable); every `eval_every` steps (default each epoch) and at the
end `eval_file` is predicted and scored (exact-match micro F1, `metrics.py`), the best
checkpoint kept in `output_dir` (`finetune.train_and_keep_best`). The entity types are
those of the training data, saved with the config in `output_dir/ner_config.json`.
With `predict_file`: it is predicted with that model (or, without `train_file`, the NER
model dir in `output_dir` or `init_checkpoint`) and written in its own format with every
word kept: `predictions.tsv` (one document; a folder `predictions/` of `<doc>.tsv` for
several), `predictions.conll` (outermost entities only: the format is flat) or
`predictions.jsonl` (with a `"scores"` list beside `"entities"`); with gold entities in
the file, `eval_results.json` too.

Example:
```python
results = run_ner(NerSettings(init_checkpoint="runs/pretrain", output_dir="runs/ner",
                              config="ner_tiny", train_file="litbank/tsv",
                              train_split_file="litbank/splits/train.txt",
                              predict_file="dev.tsv"))
results["f1"]
```
"""

import dataclasses
import os
from typing import Optional

from absl import logging

from spanbert_tf.errors import InputError
from spanbert_tf.io_utils import write_json_atomic
from spanbert_tf.modeling import model_dir as model_dir_lib
from spanbert_tf.modeling.config import read_json_file
from spanbert_tf.plotting.train_log_plot import write_train_log_plot
from spanbert_tf.tasks.ner import features as features_lib
from spanbert_tf.tasks.ner import formats, metrics
from spanbert_tf.tasks.ner.config import load_ner_config, ner_config_from_dict
from spanbert_tf.tokenization import BertWordpieceTokenizer
from spanbert_tf.training import finetune

TRAIN_SUBDIR = "train"
CONFIG_FILE = "ner_config.json"
TASK_KIND = "ner"
METRIC_LABELS = {"f1": "F1", "precision": "P", "recall": "R"}


@dataclasses.dataclass
class NerSettings:
    """The settings of one run (the `run_ner.py` flags)."""

    output_dir: str
    init_checkpoint: Optional[str] = None
    config: str = "ner_spanbert_base"
    model_type: Optional[str] = None          # None: the config's
    train_file: Optional[str] = None
    train_split_file: Optional[str] = None
    eval_file: Optional[str] = None
    eval_split_file: Optional[str] = None
    predict_file: Optional[str] = None
    predict_split_file: Optional[str] = None
    tag_scheme: str = "bio"
    max_seq_length: Optional[int] = None      # None: the config's
    doc_stride: Optional[int] = None
    eval_every: Optional[int] = None
    num_train_epochs: Optional[float] = None
    max_train_steps: Optional[int] = None
    log_every: int = 10
    seed: int = 42
    show_progress: bool = True


@dataclasses.dataclass
class _Split:
    docs: list
    windows: list
    path: str


def load_model_config(model_dir):
    """(NerConfig, types, tag scheme) of a fine-tuned NER model dir."""
    path = os.path.join(str(model_dir), CONFIG_FILE)
    if not os.path.isfile(path):
        raise InputError(f"{model_dir}: no {CONFIG_FILE} (not an NER model dir)")
    data = read_json_file(path, what="NER model config")
    return ner_config_from_dict(data["config"], path), list(data["types"]), data["tag_scheme"]


def _load(path, split_file, opts, what, types=None):
    if not path:
        return None
    docs = formats.read_ner_files(path, split_file, opts.tag_scheme, types)
    if not docs or not any(doc.sentences for doc in docs):
        raise InputError(f"{path}: no sentences (--{what}_file)")
    return docs


def _windows(docs, path, tokenizer, types, head):
    windows = features_lib.document_windows(
        docs, tokenizer, types, head.max_seq_length, head.doc_stride, head.max_span_width,
        head.model_type)
    logging.info("%s: %d documents, %d windows", path, len(docs), len(windows))
    return _Split(docs, windows, path)


def _build_trainer(config, types, info, model_dir, train_fn=None, num_train_steps=1,
                   opts=None):
    from spanbert_tf.modeling.backbone import build_backbone
    from spanbert_tf.tasks.ner.task import NerTask
    from spanbert_tf.training.distribute import get_strategy
    from spanbert_tf.training.trainer import Trainer

    task = NerTask(config, len(types), backbone_fn=lambda: build_backbone(info.config.model))
    every = opts.log_every if opts else 1
    return Trainer(task, get_strategy("default"), model_dir, None, train_fn, num_train_steps,
                   steps_per_loop=every, save_checkpoints_steps=every, keep_checkpoint_max=1,
                   log_every=every, init_checkpoint=info.checkpoint_path if train_fn else None,
                   seed=opts.seed if opts else 42,
                   show_progress=opts.show_progress if opts else False)


def predict_entities(trainer, split, config, types):
    """[doc][sentence] entities (start, end, type, score) of a split's documents."""
    import tensorflow as tf

    head = config.ner
    arrays = features_lib.window_arrays(split.windows, head.model_type, head.max_seq_length)
    names = trainer.task.input_names
    dataset = tf.data.Dataset.from_tensor_slices({k: arrays[k] for k in names}).batch(
        head.eval_batch_size)
    out = trainer.predict(dataset)
    if head.model_type == "span":
        return features_lib.span_entities(split.docs, split.windows, out["span_logits"], types)
    return features_lib.token_entities(split.docs, split.windows, out["token_logits"], types)


def _score(trainer, split, config, types):
    predicted = predict_entities(trainer, split, config, types)
    return metrics.evaluate(metrics.by_doc_id(split.docs),
                            metrics.by_doc_id(split.docs, predicted)), predicted


def _train_dataset_fn(split, config, seed):
    import tensorflow as tf

    head = config.ner
    arrays = features_lib.window_arrays(split.windows, head.model_type, head.max_seq_length)

    def dataset_fn(input_context):
        per_replica = input_context.get_per_replica_batch_size(head.train_batch_size)
        ds = tf.data.Dataset.from_tensor_slices(arrays)
        if input_context.num_input_pipelines > 1:
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        ds = ds.shuffle(len(split.windows), seed=seed, reshuffle_each_iteration=True).repeat()
        return ds.batch(per_replica, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    return dataset_fn


def _train(opts, config, types, info, train, dev):
    batch = min(config.ner.train_batch_size, len(train.windows))
    config.ner.train_batch_size = batch
    plan = finetune.TrainPlan(
        num_examples=len(train.windows), unit="windows",
        steps_per_epoch=max(1, len(train.windows) // batch),
        epochs=opts.num_train_epochs or config.optimizer.num_epochs,
        max_train_steps=opts.max_train_steps, eval_every=opts.eval_every)
    trainer = _build_trainer(config, types, info, os.path.join(opts.output_dir, TRAIN_SUBDIR),
                             _train_dataset_fn(train, config, opts.seed), plan.num_train_steps,
                             opts)
    evaluation = finetune.FinetuneEvaluation(
        evaluate=None if dev is None else (
            lambda t: metrics.micro(_score(t, dev, config, types)[0])),
        primary_metric="f1", labels=METRIC_LABELS)
    outcome = finetune.train_and_keep_best(trainer, opts.output_dir, plan, evaluation,
                                           show_progress=opts.show_progress)
    return trainer, outcome


def prediction_path(output_dir, predict_file, docs):
    """Where the predictions of `predict_file` are written (see the module docstring)."""
    path = str(predict_file)
    if os.path.isdir(path):
        fmt = docs[0].fmt
    else:
        fmt = formats.format_of(path)
    if fmt == "tsv" and len(docs) > 1:
        return os.path.join(output_dir, "predictions")
    return os.path.join(output_dir, f"predictions.{fmt}")


def write_predictions(path, docs, predicted, scheme):
    """Writes the predictions (every word kept); the number of nested entities a flat
    output dropped is logged."""
    entities = [[[e[:3] for e in sentence] for sentence in doc] for doc in predicted]
    if path.endswith(".jsonl"):
        for doc, found in zip(docs, predicted):
            doc.records = [dict(r, scores=[round(e[3], 6) for e in sorted(s)])
                           for r, s in zip(doc.records or [{"doc_id": doc.doc_id}
                                                           for _ in doc.sentences], found)]
    if os.path.basename(path) == "predictions":
        for doc, found in zip(docs, entities):
            formats.write_layered_tsv(os.path.join(path, f"{doc.doc_id}.tsv"), doc, found)
        return path
    dropped = formats.write_like(path, docs, entities, scheme)
    if dropped:
        logging.warning("%s: %d nested entities not written (CoNLL columns are flat)",
                        path, dropped)
    return path


def next_command(opts, predictions=None):
    """The command a person runs next (`predictions`: the path the run wrote them to)."""
    if opts.predict_file and predictions:
        split = (f" --split_file={opts.predict_split_file}" if opts.predict_split_file
                 else "")
        return (f"python evaluate_ner.py --gold_file={opts.predict_file}{split} "
                f"--pred_file={predictions}")
    data = opts.eval_file or opts.train_file or "TEXTS.tsv"
    return f"python run_ner.py --output_dir={opts.output_dir} --predict_file={data}"


def run_ner(opts):
    """Runs training and/or prediction; returns the prediction scores (or the dev record)."""
    if not (opts.train_file or opts.predict_file):
        raise InputError("nothing to do: give --train_file and/or --predict_file")
    if not opts.output_dir:
        raise InputError("--output_dir is required")
    do_train = bool(opts.train_file)
    info = finetune.resolve_model_dir(do_train, opts.init_checkpoint, opts.output_dir,
                                      TASK_KIND, "an NER model dir", alone="--predict_file")
    if do_train:
        config = load_ner_config(opts.config)
        for name in ("model_type", "max_seq_length", "doc_stride"):
            if getattr(opts, name) is not None:
                setattr(config.ner, name, getattr(opts, name))
        config.ner.validate("flags")
        types = None
    else:
        config, types, opts.tag_scheme = load_model_config(info.model_dir)
        for name in ("max_seq_length", "doc_stride"):
            if getattr(opts, name) is not None:
                setattr(config.ner, name, getattr(opts, name))
    if config.ner.max_seq_length > info.config.model.max_position_embeddings:
        raise InputError(f"max_seq_length {config.ner.max_seq_length} > the backbone's "
                         f"max_position_embeddings {info.config.model.max_position_embeddings}")
    tokenizer = BertWordpieceTokenizer(info.vocab_file, do_lower_case=info.do_lower_case)
    # The data first: a malformed file is reported before any model is built.
    train_docs = _load(opts.train_file, opts.train_split_file, opts, "train")
    if do_train:
        types = sorted({e[2] for d in train_docs for s in d.entities for e in s})
        if not types:
            raise InputError(f"{opts.train_file}: no entities to learn")
    dev_docs = _load(opts.eval_file, opts.eval_split_file, opts, "eval")
    test_docs = _load(opts.predict_file, opts.predict_split_file, opts, "predict")
    head = config.ner
    train = _windows(train_docs, opts.train_file, tokenizer, types, head) if do_train else None
    dev = _windows(dev_docs, opts.eval_file, tokenizer, types, head) if dev_docs else None
    test = _windows(test_docs, opts.predict_file, tokenizer, types, head) if test_docs else None

    results = {}
    if do_train:
        model_dir_lib.write_model_dir_metadata(
            opts.output_dir, info.config, info.vocab_file, info.do_lower_case,
            task=model_dir_lib.task_entry(TASK_KIND, TASK_KIND, config=config.name,
                                          model_type=head.model_type))
        write_json_atomic(os.path.join(opts.output_dir, CONFIG_FILE),
                          {"config": config.to_dict(), "types": types,
                           "tag_scheme": opts.tag_scheme})
        trainer, outcome = _train(opts, config, types, info, train, dev)
        write_train_log_plot("run_ner", opts.output_dir, trainer.is_chief)
        model_dir_lib.restore_model(trainer.model, outcome.checkpoint)
        results = outcome.history[-1] if outcome.history else {}
    else:
        trainer = finetune.restored_trainer(
            lambda tmp: _build_trainer(config, types, info, tmp), info.checkpoint_path)

    if test is not None:
        scores, predicted = _score(trainer, test, config, types)
        path = prediction_path(opts.output_dir, opts.predict_file, test.docs)
        write_predictions(path, test.docs, predicted, opts.tag_scheme)
        has_gold = any(e for d in test.docs for e in d.entities)
        results = {**scores, "predictions": path} if has_gold else {
            "num_documents": len(test.docs), "predictions": path}
        if has_gold:
            write_json_atomic(os.path.join(opts.output_dir, "eval_results.json"), results)
            logging.info("%s\nwritten: %s", metrics.format_table(scores), path)
    return results

