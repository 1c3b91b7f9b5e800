"""Training / prediction driver behind `run_coref.py` (c2f-coref independent on our backbone).

`--do_train`: the encoder of `init_checkpoint` (a model dir: ours or converted)
and fresh coreference layers are trained on `train_file` with the project's
`Trainer` (trainer state, resumable, in `output_dir/train/`): one document per
step, a random window of `max_training_segments` segments of longer documents
(`truncate_document`; the order and windows are a function of the seed and the
step, so a resumed run sees the same documents), the two-group optimizer of the
config. Every `eval_every` steps (and at the end) `dev_file` is predicted in
full and scored with the CoNLL average F1 (`metrics.py`); the best checkpoint
is kept in `output_dir` (a model dir; without `dev_file`, the last one).
`--do_predict`: predicts `predict_file` with that model (or, without
`--do_train`, the coreference model dir in `output_dir` or `init_checkpoint`)
and writes `predictions.conll` (CoNLL input only: the input with its
coreference column replaced), `predictions.jsonlines` (word-span clusters with
their text) and, when the input has gold clusters, `eval_results.json`.

Files are `.conll` / `*_gold_conll`, a folder of them (`--*_split_file` naming
the documents), or official `.jsonlines`.

Example:
```python
results = run_coref(CorefSettings(init_checkpoint="runs/pretrain", output_dir="runs/coref",
                                 config="coref_tiny", do_train=True, train_file="train.conll",
                                 do_predict=True, predict_file="dev.conll"))
results["conll_f1"]
```
"""

import dataclasses
import json
import os
from typing import Optional

import numpy as np
from absl import logging

from spanbert_tf.errors import InputError
from spanbert_tf.io_utils import write_json_atomic, write_text_atomic
from spanbert_tf.modeling import model_dir as model_dir_lib
from spanbert_tf.plotting.train_log_plot import write_train_log_plot
from spanbert_tf.tasks.coref import conll, metrics, segments
from spanbert_tf.tasks.coref.config import load_coref_config
from spanbert_tf.tokenization import BertWordpieceTokenizer
from spanbert_tf.training import finetune

TRAIN_SUBDIR = "train"
EVAL_HISTORY = finetune.EVAL_HISTORY
CONFIG_FILE = "coref_config.json"
TASK_KIND = "coref"


@dataclasses.dataclass
class CorefSettings:
    """The settings of one run (the `run_coref.py` flags)."""

    output_dir: str
    init_checkpoint: Optional[str] = None
    config: str = "coref_spanbert_base"
    do_train: bool = False
    train_file: Optional[str] = None
    train_split_file: Optional[str] = None
    dev_file: Optional[str] = None
    dev_split_file: Optional[str] = None
    do_predict: bool = False
    predict_file: Optional[str] = None
    predict_split_file: Optional[str] = None
    output_singletons: bool = False
    eval_every: Optional[int] = None        # None: once per epoch
    num_train_epochs: Optional[float] = None  # None: the config's num_epochs
    max_train_steps: Optional[int] = None     # stop early (the schedule spans all epochs)
    log_every: int = 10
    seed: int = 42
    show_progress: bool = True


@dataclasses.dataclass
class _Split:
    """Documents of one file: minimized, their features, and the CoNLL sources (or None)."""

    docs: list
    features: list
    sources: Optional[list]


def _load_split(path, split_file, tokenizer, max_segment_len, what):
    if not path:
        raise InputError(f"--{what}_file is required")
    docs, sources = segments.load_documents(path, tokenizer, max_segment_len, split_file)
    if not docs:
        named = f" named in {split_file}" if split_file else ""
        raise InputError(f"{path}: no documents{named} (--{what}_file: expected CoNLL "
                         "'#begin document' blocks or .jsonlines records)")
    features = [segments.document_to_features(d, max_segment_len) for d in docs]
    logging.info("%s: %d documents, %d subtokens", path, len(docs),
                 sum(int(f["input_mask"].sum()) for f in features))
    return _Split(docs, features, sources)


def gold_word_clusters(split):
    """{doc_key: word-span clusters}: the CoNLL clusters, or the jsonlines ones via subtoken_map."""
    if split.sources is not None:
        return {d.doc_key: d.clusters for d in split.sources}
    return {d.doc_key: segments.subtoken_clusters_to_words(d.clusters, d.subtoken_map)
            for d in split.docs}


def word_clusters(subtoken_clusters, subtoken_map, singletons=False):
    """Subtoken-span clusters -> word spans; a word span already in an earlier (or the
    same) cluster is dropped (two wordpiece spans can cover the same words), as are
    clusters left with one mention (unless they were singletons and `singletons`).
    Returns (clusters, number of mentions dropped)."""
    seen, out, dropped = set(), [], 0
    for cluster in subtoken_clusters:
        kept = []
        for start, end in cluster:
            span = (int(subtoken_map[start]), int(subtoken_map[end]))
            if span in seen:
                dropped += 1
                continue
            seen.add(span)
            kept.append(span)
        if len(kept) >= 2 or (singletons and len(kept) == 1 and len(cluster) == 1):
            out.append(kept)
        else:
            dropped += len(kept)
            seen.difference_update(kept)
    return out, dropped


def _predict_dataset(features):
    import tensorflow as tf

    from spanbert_tf.tasks.coref.model import MODEL_INPUT_NAMES
    from spanbert_tf.tasks.coref.task import input_signature

    signature = {k: v for k, v in input_signature().items() if k in MODEL_INPUT_NAMES}

    def generate():
        for f in features:
            yield {k: f[k] for k in MODEL_INPUT_NAMES}

    return tf.data.Dataset.from_generator(generate, output_signature=signature)


def predict_clusters(trainer, split, output_singletons=False):
    """{doc_key: word-span clusters} of every document of `split`, predicted in full."""
    from spanbert_tf.tasks.coref.clusters import predicted_clusters

    outputs = trainer.predict_elements(_predict_dataset(split.features))
    out, dropped = {}, 0
    for doc, output in zip(split.docs, outputs):
        clusters = predicted_clusters(output, output_singletons)
        out[doc.doc_key], n = word_clusters(clusters, doc.subtoken_map, output_singletons)
        dropped += n
    if dropped:
        logging.info("%d predicted mentions covered the words of an earlier one: dropped",
                     dropped)
    return out


def _train_dataset_fn(split, max_training_segments, seed, position):
    """`fn(input_context)`: an endless dataset of one (cropped) document per step, with a
    leading axis of 1. Step s uses document `permutation(seed + epoch)[s % n]` and crop
    seed (seed, s); it starts at `position["step"]` when iterated (resume)."""
    import tensorflow as tf

    from spanbert_tf.tasks.coref.model import GOLD_NAMES, MODEL_INPUT_NAMES
    from spanbert_tf.tasks.coref.task import input_signature
    from spanbert_tf.tasks.coref.task import truncate_document

    names = MODEL_INPUT_NAMES + GOLD_NAMES
    n = len(split.features)

    def generate():
        step = position["step"]
        while True:
            epoch, index = divmod(step, n)
            order = np.random.default_rng(seed + epoch).permutation(n)
            rng = np.random.default_rng([seed, step])
            doc = truncate_document(split.features[order[index]], max_training_segments, rng)
            yield {k: np.asarray(doc[k])[None] for k in names}
            step += 1

    def dataset_fn(input_context):
        if input_context.num_replicas_in_sync != 1:
            raise InputError("coreference trains one document per step on one replica")
        signature = {k: tf.TensorSpec([1] + spec.shape.as_list(), spec.dtype, k)
                     for k, spec in input_signature(with_gold=True).items()}
        return tf.data.Dataset.from_generator(generate, output_signature=signature).prefetch(1)

    return dataset_fn


def _build_trainer(config, info, model_dir, train_fn=None, num_train_steps=1, opts=None):
    from spanbert_tf.modeling.backbone import build_backbone
    from spanbert_tf.tasks.coref.task import CorefTask
    from spanbert_tf.training.distribute import get_strategy
    from spanbert_tf.training.trainer import Trainer

    task = CorefTask(config, backbone_fn=lambda: build_backbone(info.config.model))
    every = opts.log_every if opts else 1
    return Trainer(task, get_strategy("default"), model_dir, None, train_fn, num_train_steps,
                   steps_per_loop=every, save_checkpoints_steps=every, keep_checkpoint_max=1,
                   log_every=every, init_checkpoint=info.checkpoint_path if train_fn else None,
                   seed=opts.seed if opts else 42,
                   show_progress=opts.show_progress if opts else False)


def _score(trainer, split, output_singletons):
    predicted = predict_clusters(trainer, split, output_singletons)
    return metrics.evaluate(gold_word_clusters(split), predicted), predicted


def _dev_record(trainer, dev, output_singletons):
    """The dev scores of the current model: CoNLL F1 and each metric's F1."""
    results, _ = _score(trainer, dev, output_singletons)
    return {"conll_f1": results["conll_f1"], **{m: results[m]["f1"] for m in metrics.METRICS}}


METRIC_LABELS = {"conll_f1": "CoNLL F1", **{m: m.upper() for m in metrics.METRICS}}


def _train(opts, config, info, train, dev):
    """Trains through the fine-tuning driver; keeps the best (or last) checkpoint in
    output_dir. Returns (trainer, driver outcome)."""
    plan = finetune.TrainPlan(
        num_examples=len(train.docs), unit="documents", steps_per_epoch=len(train.docs),
        epochs=opts.num_train_epochs or config.optimizer.num_epochs,
        max_train_steps=opts.max_train_steps, eval_every=opts.eval_every)
    position = {"step": 0}
    train_fn = _train_dataset_fn(train, config.coref.max_training_segments, opts.seed, position)
    trainer = _build_trainer(config, info, os.path.join(opts.output_dir, TRAIN_SUBDIR),
                             train_fn, plan.num_train_steps, opts)
    position["step"] = int(trainer.global_step.numpy())
    evaluation = finetune.FinetuneEvaluation(
        evaluate=None if dev is None else (
            lambda t: _dev_record(t, dev, opts.output_singletons)),
        primary_metric="conll_f1", labels=METRIC_LABELS)
    outcome = finetune.train_and_keep_best(trainer, opts.output_dir, plan, evaluation,
                                           show_progress=opts.show_progress)
    return trainer, outcome


def next_command(opts):
    """The command a person runs next with the model dir `opts.output_dir` holds."""
    if opts.do_predict:
        if any(os.path.isfile(os.path.join(opts.output_dir, f"predictions.{ext}"))
               for ext in ("conll",)):
            return (f"python evaluate_coref.py --gold_file={opts.predict_file} "
                    f"--pred_file={os.path.join(opts.output_dir, 'predictions.conll')}")
        return (f"python export_saved_model.py --model_dir={opts.output_dir} "
                f"--export_dir={os.path.join(opts.output_dir, 'export')} --models=coref")
    data = opts.dev_file or opts.train_file or "DOCUMENTS.conll"
    return (f"python run_coref.py --output_dir={opts.output_dir} --do_predict "
            f"--predict_file={data}")


def _words_of(split):
    """{doc_key: words} of a split (CoNLL words, or words rebuilt from wordpieces)."""
    if split.sources is not None:
        return {d.doc_key: d.words() for d in split.sources}
    out = {}
    for doc in split.docs:
        words = {}
        pieces = [p for segment in doc.sentences for p in segment]
        for piece, word in zip(pieces, doc.subtoken_map):
            if piece in (segments.CLS, segments.SEP):
                continue
            words[word] = words.get(word, "") + (piece[2:] if piece.startswith("##") else piece)
        out[doc.doc_key] = [words.get(i, "") for i in range(max(words, default=-1) + 1)]
    return out


def write_predictions(output_dir, split, predicted):
    """predictions.jsonlines (and predictions.conll for CoNLL input); returns their paths."""
    words = _words_of(split)
    records = []
    for doc in split.docs:
        clusters = [[[s, e, " ".join(words[doc.doc_key][s:e + 1])] for s, e in cluster]
                    for cluster in predicted[doc.doc_key]]
        records.append(json.dumps({"doc_key": doc.doc_key, "clusters": clusters}) + "\n")
    paths = [os.path.join(output_dir, "predictions.jsonlines")]
    write_text_atomic(paths[0], "".join(records))
    if split.sources is not None:
        paths.append(os.path.join(output_dir, "predictions.conll"))
        conll.write_conll(paths[1], split.sources, predicted)
    return paths


def run_coref(opts):
    """Runs training and/or prediction; returns the prediction scores (or the last dev record)."""
    if not (opts.do_train or opts.do_predict):
        raise InputError("at least one of --do_train / --do_predict is required")
    if not opts.output_dir:
        raise InputError("--output_dir is required")
    info = finetune.resolve_model_dir(opts.do_train, opts.init_checkpoint, opts.output_dir,
                                      TASK_KIND, "a coreference model dir",
                                      alone="--do_predict")
    if opts.do_train:
        config = load_coref_config(opts.config)
    else:
        config = load_coref_config(os.path.join(info.model_dir, CONFIG_FILE))
    max_len = config.coref.max_segment_len
    if max_len > info.config.model.max_position_embeddings:
        raise InputError(f"coref.max_segment_len {max_len} > the backbone's "
                         f"max_position_embeddings {info.config.model.max_position_embeddings}")
    tokenizer = BertWordpieceTokenizer(info.vocab_file, do_lower_case=info.do_lower_case)
    # The data first: a malformed file is reported before any model is built.
    train = dev = test = None
    if opts.do_train:
        train = _load_split(opts.train_file, opts.train_split_file, tokenizer, max_len, "train")
        if opts.dev_file:
            dev = _load_split(opts.dev_file, opts.dev_split_file, tokenizer, max_len, "dev")
    if opts.do_predict:
        test = _load_split(opts.predict_file, opts.predict_split_file, tokenizer, max_len,
                           "predict")

    results = {}
    if opts.do_train:
        model_dir_lib.write_model_dir_metadata(
            opts.output_dir, info.config, info.vocab_file, info.do_lower_case,
            task=model_dir_lib.task_entry(TASK_KIND, TASK_KIND, config=config.name))
        write_json_atomic(os.path.join(opts.output_dir, CONFIG_FILE), config.to_dict())
        trainer, outcome = _train(opts, config, info, train, dev)
        write_train_log_plot("run_coref", opts.output_dir, trainer.is_chief)
        model_dir_lib.restore_model(trainer.model, outcome.checkpoint)
        results = outcome.history[-1] if outcome.history else {}
    else:
        trainer = finetune.restored_trainer(lambda tmp: _build_trainer(config, info, tmp),
                                            info.checkpoint_path)

    if opts.do_predict:
        predicted = predict_clusters(trainer, test, opts.output_singletons)
        os.makedirs(opts.output_dir, exist_ok=True)
        paths = write_predictions(opts.output_dir, test, predicted)
        gold = gold_word_clusters(test)
        if any(gold.values()):
            results = metrics.evaluate(gold, predicted)
            write_json_atomic(os.path.join(opts.output_dir, "eval_results.json"), results)
            logging.info("%s\nwritten: %s", metrics.format_table(results), ", ".join(paths))
        else:
            results = {"num_documents": len(test.docs), "predictions": paths}
    return results
