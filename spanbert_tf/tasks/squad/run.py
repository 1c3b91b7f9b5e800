"""SQuAD (and MRQA) fine-tuning and prediction end to end (what `run_squad.py` runs).

1. read the model dir of `init_checkpoint` (config, vocab, do_lower_case);
2. `do_train`: examples → windows → the one `Trainer` (AdamW, linear warmup over
   `warmup_proportion` of the steps then linear decay, backbone restored from
   `init_checkpoint`); `output_dir` becomes a model dir (config.json with a
   "task" entry, vocab.txt, checkpoints);
3. `do_predict`: windows → logits → n-best / null odds → predictions.json,
   nbest_predictions.json, null_odds.json (v2.0); with gold answers in the
   predict data, the official scores go to eval_results.json (v2.0: also
   best_f1 and its threshold, and predictions_best_f1_thresh.json; an MRQA
   `.jsonl[.gz]` predict file: the official MRQA evaluation);
4. `export_dir`: the QA SavedModel (raw question/context strings in, answer out).

Example:
```python
settings = SquadSettings(init_checkpoint="runs/pretrain", output_dir="runs/squad",
                         do_train=True, train_file="train-v1.1.json",
                         do_predict=True, predict_file="dev-v1.1.json")
summary = run_squad(settings)
```
"""

import dataclasses
import json
import math
import os
import sys
import time

import numpy as np

# TensorFlow-free modules only at the top (run_squad.py --help stays fast); the model,
# the Trainer and the export import TensorFlow and are imported where they are used.
from spanbert_tf.errors import InputError
from spanbert_tf.modeling.model_dir import (restore_model, task_entry, task_kind,
                                            write_model_dir_metadata)
from spanbert_tf.plotting.train_log_plot import write_train_log_plot
from spanbert_tf.tasks.squad import metrics as squad_metrics
from spanbert_tf.tasks.squad import mrqa
from spanbert_tf.tasks.squad import predict as squad_predict
from spanbert_tf.tasks.squad import reader as squad
from spanbert_tf.tasks.squad.features import convert_examples_to_features
from spanbert_tf.tasks.squad.predict import write_json_atomic
from spanbert_tf.tokenization import BertWordpieceTokenizer
from spanbert_tf.training import finetune

SQUAD_TASK_NAME = "squad"


class SquadRunError(InputError):
    """Bad settings or inputs for `run_squad` (message suitable for the command line)."""


@dataclasses.dataclass
class SquadSettings:
    """All `run_squad.py` flags (see the README section `squad`)."""

    init_checkpoint: str = None
    output_dir: str = None
    do_train: bool = False
    train_file: str = None
    do_predict: bool = False
    predict_file: str = None
    tfds_name: str = None
    tfds_data_dir: str = None
    version_2_with_negative: bool = False
    train_first_answer: bool = False
    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    train_batch_size: int = 32
    predict_batch_size: int = 32
    num_train_epochs: float = 4.0
    max_train_steps: int = None
    learning_rate: float = 2e-5
    warmup_proportion: float = 0.1
    weight_decay: float = 0.01
    n_best_size: int = 20
    max_answer_length: int = 30
    null_score_diff_threshold: float = 0.0
    strategy: str = "default"
    num_gpus: int = None
    tpu: str = None
    mixed_precision: str = "float32"
    steps_per_loop: int = 50
    log_every: int = 50
    save_checkpoints_steps: int = None
    seed: int = 42
    export_dir: str = None
    show_progress: bool = True
    # Names of the settings given explicitly; None = all. Without --do_train, the
    # others among INHERITED_SETTINGS come from the fine-tuned model dir's "task".
    explicit: frozenset = None


INHERITED_SETTINGS = ("version_2_with_negative", "max_seq_length", "doc_stride",
                      "max_query_length", "n_best_size", "max_answer_length",
                      "null_score_diff_threshold")


def _log(message):
    print(message, file=sys.stderr, flush=True)


def _read(settings, path, is_training):
    try:
        if mrqa.is_mrqa_path(path) and not settings.tfds_name:
            examples, stats = mrqa.read_mrqa_examples(path, is_training)
        else:
            examples, stats = squad.read_examples(
                path, is_training=is_training,
                version_2_with_negative=settings.version_2_with_negative,
                tfds_name=settings.tfds_name, tfds_data_dir=settings.tfds_data_dir,
                first_answer_only=is_training and settings.train_first_answer)
    except squad.SquadFormatError as e:
        raise SquadRunError(str(e)) from None
    if not examples:
        why = (f"all {stats.num_questions} skipped: their answer is not found in the context"
               if stats.skipped_answer_not_found else "the file holds none")
        raise SquadRunError(f"{path or settings.tfds_name}: no usable questions ({why})")
    _log(f"read {stats.num_questions} questions ({stats.num_impossible} unanswerable) from "
         f"{path or settings.tfds_name}; skipped {stats.skipped_answer_not_found} training "
         "answers not found in the context")
    return examples, stats


def _features(settings, examples, tokenizer, is_training):
    return convert_examples_to_features(
        examples, tokenizer, settings.max_seq_length, settings.doc_stride,
        settings.max_query_length, is_training=is_training, progress=settings.show_progress)


def _check(settings):
    if not settings.output_dir:
        raise SquadRunError("--output_dir is required")
    if not (settings.do_train or settings.do_predict or settings.export_dir):
        raise SquadRunError("nothing to do: give --do_train, --do_predict or --export_dir")
    if settings.do_train and not (settings.train_file or settings.tfds_name):
        raise SquadRunError("--do_train needs --train_file or --tfds_name")
    if settings.do_predict and not (settings.predict_file or settings.tfds_name):
        raise SquadRunError("--do_predict needs --predict_file or --tfds_name")
    if settings.doc_stride < 1 or settings.max_query_length < 1:
        raise SquadRunError("--doc_stride and --max_query_length must be >= 1")
    if settings.max_seq_length < settings.max_query_length + 4:
        raise SquadRunError(f"--max_seq_length={settings.max_seq_length} leaves no room for "
                            f"the context after a {settings.max_query_length}-piece question")


def task_metadata(settings):
    """The "task" entry of the output dir's config.json."""
    return task_entry(
        SQUAD_TASK_NAME, SQUAD_TASK_NAME,
        version_2_with_negative=settings.version_2_with_negative,
        max_seq_length=settings.max_seq_length, doc_stride=settings.doc_stride,
        max_query_length=settings.max_query_length, n_best_size=settings.n_best_size,
        max_answer_length=settings.max_answer_length,
        null_score_diff_threshold=settings.null_score_diff_threshold)


def load_model_info(settings):
    """The model dir a run reads (see `finetune.resolve_model_dir`)."""
    return finetune.resolve_model_dir(
        settings.do_train, settings.init_checkpoint, settings.output_dir, SQUAD_TASK_NAME,
        "a fine-tuned SQuAD model dir", alone="--do_predict")


def train(settings, info, tokenizer, strategy):
    """Fine-tunes through the fine-tuning driver (no dev evaluation: the last checkpoint is
    the kept one); returns (trainer, summary)."""
    from spanbert_tf.tasks.squad.task import SquadTask, train_dataset_fn
    from spanbert_tf.training.trainer import Trainer

    examples, _ = _read(settings, settings.train_file, is_training=True)
    features = _features(settings, examples, tokenizer, is_training=True)
    plan = finetune.TrainPlan(
        num_examples=len(features), unit="windows",
        steps_per_epoch=math.ceil(len(features) / settings.train_batch_size),
        epochs=settings.num_train_epochs, max_train_steps=settings.max_train_steps)
    num_steps = plan.num_train_steps
    warmup = int(settings.warmup_proportion * num_steps)
    _log(f"training: {len(examples)} questions, {len(features)} windows, batch "
         f"{settings.train_batch_size}, {warmup} warmup steps")
    opt = dataclasses.replace(
        info.config.optimizer, optimizer="adamw", learning_rate=settings.learning_rate,
        weight_decay=settings.weight_decay, num_warmup_steps=warmup, num_train_steps=num_steps,
        train_batch_size=settings.train_batch_size, end_learning_rate=0.0)
    write_model_dir_metadata(settings.output_dir, info.config, info.vocab_file,
                             info.do_lower_case, task=task_metadata(settings))
    trainer = Trainer(
        SquadTask(info.config.model), strategy, settings.output_dir, opt,
        train_dataset_fn(features, settings.train_batch_size, settings.seed),
        num_train_steps=num_steps, steps_per_loop=settings.steps_per_loop,
        save_checkpoints_steps=settings.save_checkpoints_steps or num_steps,
        log_every=settings.log_every, init_checkpoint=info.checkpoint_path,
        seed=settings.seed, mixed_precision=settings.mixed_precision,
        show_progress=settings.show_progress)
    outcome = finetune.train_and_keep_best(trainer, settings.output_dir, plan,
                                           finetune.FinetuneEvaluation(),
                                           show_progress=settings.show_progress)
    summary = dict(outcome.train)
    summary.setdefault("step", outcome.step)
    summary["checkpoint"] = outcome.checkpoint
    return trainer, summary


def load_finetuned_model(info):
    """A SQuAD model restored whole from a fine-tuned model dir."""
    from spanbert_tf.tasks.squad.task import SquadTask

    if task_kind(info) != SQUAD_TASK_NAME:
        raise SquadRunError(f"{info.model_dir}: not a fine-tuned SQuAD model dir (its "
                            f"config.json task is {info.task}); fine-tune one first with "
                            "--do_train")
    model = SquadTask(info.config.model).build_model()
    dummy = np.zeros([1, 8], np.int32)
    model({"token_ids": dummy, "segment_ids": dummy, "padding_mask": dummy + 1})
    try:
        restore_model(model, info.checkpoint_path)
    except (FileNotFoundError, ValueError) as e:
        raise SquadRunError(str(e)) from None
    return model


def predict(settings, model, tokenizer, trainer=None, step=None):
    """Writes the prediction files (and eval_results.json with gold answers); `step`: the
    model's, for the evaluation line."""
    from spanbert_tf.tasks.squad import model as squad_model

    examples, _ = _read(settings, settings.predict_file, is_training=False)
    features = _features(settings, examples, tokenizer, is_training=False)
    _log(f"predicting: {len(examples)} questions, {len(features)} windows")
    t0 = time.perf_counter()
    if trainer is not None:
        out = trainer.predict(squad_model.predict_dataset(features, settings.predict_batch_size))
        start_logits, end_logits = out["start_logits"], out["end_logits"]
    else:
        start_logits, end_logits = squad_model.predict_logits(model, features,
                                                              settings.predict_batch_size)
    seconds = time.perf_counter() - t0
    v2 = settings.version_2_with_negative
    preds, nbest, null_odds = squad_predict.make_predictions(
        examples, features, start_logits, end_logits, tokenizer, settings.n_best_size,
        settings.max_answer_length, tokenizer.do_lower_case, v2,
        settings.null_score_diff_threshold, progress=settings.show_progress)
    paths = squad_predict.write_prediction_files(settings.output_dir, preds, nbest,
                                                 null_odds if v2 else None)
    result = {"num_questions": len(examples), "num_windows": len(features),
              "predict_seconds": seconds, "files": paths}
    if mrqa.is_mrqa_path(settings.predict_file) and not settings.tfds_name:
        scored = _mrqa_scores(settings, preds)
    elif any(ex.answers for ex in examples):
        scored = _squad_scores(settings, examples, preds, nbest, null_odds, paths)
    else:
        scored = None
    if scored is not None:
        metrics, result["baseline"] = scored
        paths["eval_results"] = squad_predict.write_json_atomic(
            os.path.join(settings.output_dir, "eval_results.json"), metrics)
        result["metrics"] = dict(metrics)
        exact = "exact" if "exact" in metrics else "exact_match"
        finetune.say(finetune.evaluation_line(
            step, None, {"f1": float(metrics["f1"]), exact: float(metrics[exact])},
            {"f1": "F1", exact: "EM"}, what=os.path.basename(
                settings.predict_file or settings.tfds_name)))
    return result


def _squad_scores(settings, examples, preds, nbest, null_odds, paths):
    """(official SQuAD scores, no-answer baseline); v2.0 also writes
    predictions_best_f1_thresh.json."""
    version = "2.0" if settings.version_2_with_negative else "1.1"
    if settings.predict_file and not settings.tfds_name:
        gold = squad_metrics.load_json_file(settings.predict_file, "predict")
    else:
        gold = squad.gold_dataset_json(examples, version)
    if version == "2.0":
        raw = squad_predict.best_non_null_predictions(nbest)
        metrics = squad_metrics.evaluate(gold, raw, na_probs=null_odds, version=version,
                                         na_prob_thresh=settings.null_score_diff_threshold)
        best = squad_predict.apply_null_threshold(nbest, null_odds, metrics["best_f1_thresh"])
        paths["predictions_best_f1_thresh"] = squad_predict.write_json_atomic(
            os.path.join(settings.output_dir, "predictions_best_f1_thresh.json"), best)
    else:
        metrics = squad_metrics.evaluate(gold, preds, version=version)
    return metrics, squad_metrics.no_answer_baseline(gold, version)


def _mrqa_scores(settings, preds):
    """(official MRQA scores of predictions.json against the predict file's `answers`,
    no-answer baseline), or None when no question has gold answers."""
    gold, _ = mrqa.read_gold_answers(settings.predict_file)
    if not any(gold.values()):
        return None
    metrics = mrqa.evaluate(gold, preds, source=settings.predict_file)
    return metrics, dict(mrqa.no_answer_baseline(gold))


def checkpoint_step(path):
    """N of a `.../ckpt-N` checkpoint path, or None."""
    tail = os.path.basename(str(path or "")).rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def next_command(settings):
    """The command a person runs next with what `settings.output_dir` holds."""
    out = settings.output_dir
    data = settings.predict_file or settings.train_file or "dev.json"
    if settings.do_predict and settings.predict_file and not settings.export_dir:
        return (f"python run_squad.py --init_checkpoint={out} --output_dir={out} "
                f"--export_dir={os.path.join(out, 'saved_model')}")
    if settings.do_predict:
        fmt = "--format=mrqa " if mrqa.is_mrqa_path(data) else ""
        return (f"python evaluate_squad.py {fmt}--data_file={data} "
                f"--pred_file={out}/predictions.json")
    return (f"python run_squad.py --init_checkpoint={out} --output_dir={out} --do_predict "
            f"--predict_file={data}")


def run_squad(settings):
    """Runs the steps the settings ask for; returns a JSON-able summary."""
    _check(settings)
    info = load_model_info(settings)
    if not settings.do_train and info.task and settings.explicit is not None:
        inherited = {k: info.task[k] for k in INHERITED_SETTINGS
                     if k in info.task and k not in settings.explicit}
        if inherited:
            _log(f"from {info.model_dir}/config.json: {inherited}")
            settings = dataclasses.replace(settings, **inherited)
    from spanbert_tf.training import distribute

    if settings.max_seq_length > info.config.model.max_position_embeddings:
        raise SquadRunError(f"--max_seq_length={settings.max_seq_length} exceeds the model's "
                            "max_position_embeddings "
                            f"({info.config.model.max_position_embeddings})")
    tokenizer = BertWordpieceTokenizer(info.vocab_file, do_lower_case=info.do_lower_case)
    os.makedirs(settings.output_dir, exist_ok=True)
    try:
        strategy = distribute.get_strategy(settings.strategy, tpu=settings.tpu,
                                           num_gpus=settings.num_gpus)
    except distribute.StrategyError as e:
        raise SquadRunError(str(e)) from None
    summary, trainer, model = {}, None, None
    if settings.do_train:
        trainer, summary["train"] = train(settings, info, tokenizer, strategy)
        summary["train"]["train_log_png"] = write_train_log_plot(
            "run_squad", settings.output_dir, trainer.is_chief)
        model = trainer.model
    else:
        model = load_finetuned_model(info)
    if settings.do_predict:
        step = (int(trainer.global_step.numpy()) if trainer is not None
                else checkpoint_step(info.checkpoint_path))
        summary["predict"] = predict(settings, model, tokenizer, trainer, step)
    if settings.export_dir:
        from spanbert_tf.tasks.squad.export import export_qa_saved_model

        summary["export_dir"] = export_qa_saved_model(
            model, tokenizer, settings.export_dir, settings.max_seq_length,
            settings.doc_stride, settings.max_query_length, settings.n_best_size,
            settings.max_answer_length, settings.version_2_with_negative,
            settings.null_score_diff_threshold)

    write_json_atomic(os.path.join(settings.output_dir, "run_summary.json"),
                      json.loads(json.dumps(summary, default=str)))
    return summary
