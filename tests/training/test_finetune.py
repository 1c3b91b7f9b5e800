"""The fine-tuning driver (spanbert_tf/training/finetune.py) on the toy Task: which model dir
a run reads, the step plan and its cap, the one progress bar, the evaluation lines, and the
best checkpoint kept (chief and non-chief)."""

import json
import os

import pytest
import tensorflow as tf

from spanbert_tf.errors import InputError
from spanbert_tf.modeling.config import OptimizerConfig, load_config
from spanbert_tf.modeling.model_dir import (latest_checkpoint, task_entry,
                                            write_model_dir_metadata)
from spanbert_tf.training import distribute, finetune, train_log
from spanbert_tf.training.trainer import Trainer
from training_toy_task import ToyTask, toy_dataset_fn


def _model_dir(path, vocab, task=None, checkpoint=True):
    """A model dir: tiny config, vocab, and (unless `checkpoint` is False) a ckpt-1."""
    write_model_dir_metadata(str(path), load_config("tiny"), vocab, task=task)
    if checkpoint:
        tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(1.0)), str(path), 1,
                                   checkpoint_name="ckpt").save(checkpoint_number=1)
    return str(path)


def test_resolve_model_dir(tmp_path, cased_vocab):
    pretrained = _model_dir(tmp_path / "pretrained", cased_vocab)
    coref = task_entry("coref", "coref")
    finetuned = _model_dir(tmp_path / "finetuned", cased_vocab, task=coref)
    empty_out = str(tmp_path / "not_yet")
    resolve = finetune.resolve_model_dir
    # Training reads --init_checkpoint, whatever the output dir holds.
    assert resolve(True, pretrained, finetuned, "coref", "x").model_dir == pretrained
    with pytest.raises(InputError, match="--do_train needs --init_checkpoint"):
        resolve(True, None, empty_out, "coref", "x")
    with pytest.raises(InputError, match="--init_checkpoint: model dir not found"):
        resolve(True, str(tmp_path / "missing"), empty_out, "coref", "x")
    # Alone: the output dir when it holds a checkpoint, else --init_checkpoint ...
    assert resolve(False, pretrained, finetuned, "coref", "x").model_dir == finetuned
    assert resolve(False, finetuned, empty_out, "coref", "x").model_dir == finetuned
    with pytest.raises(InputError, match=f"--do_predict without --do_train: {empty_out} holds "
                                         "no checkpoint of a coreference model dir"):
        resolve(False, None, empty_out, "coref", "a coreference model dir",
                alone="--do_predict")
    # ... which must be fine-tuned on this task (kind, then the task's own test).
    with pytest.raises(InputError, match="pretrained: not a coreference model dir .*task is "
                                         "None"):
        resolve(False, pretrained, empty_out, "coref", "a coreference model dir")
    with pytest.raises(InputError, match="finetuned: not a SQuAD model"):
        resolve(False, finetuned, empty_out, "squad", "a SQuAD model")
    rte = _model_dir(tmp_path / "rte", cased_vocab,
                     task=task_entry("classification", "rte", labels=["a", "b"]))
    with pytest.raises(InputError, match="rte: not a model fine-tuned on mrpc"):
        resolve(False, rte, empty_out, "classification", "a model fine-tuned on mrpc",
                accepts=lambda task: task["name"] == "mrpc")


def test_train_plan_steps_evaluations_and_cap():
    plan = finetune.TrainPlan(num_examples=2, unit="documents", steps_per_epoch=2, epochs=3)
    assert (plan.num_train_steps, plan.until) == (6, 6)
    assert plan.evaluation_steps() == [2, 4, 6] and plan.capped_line() is None
    # --max_train_steps below the schedule stops early, silently (asked for).
    early = finetune.TrainPlan(2, "documents", 2, 3, max_train_steps=5, eval_every=4)
    assert early.until == 5 and early.evaluation_steps() == [4, 5]
    assert early.capped_line() is None and "stopping at step 5" in early.start_line()
    # Above it: said in one line, and training stops where the epochs end.
    capped = finetune.TrainPlan(2, "documents", 2, 10, max_train_steps=30)
    assert capped.until == 20 and capped.evaluation_steps()[-1] == 20
    assert capped.capped_line() == (
        "--max_train_steps=30 is more than the 20 steps of 10 epochs over 2 documents "
        "(2 per epoch): training stops at step 20")
    assert [plan.epoch_of(s) for s in (1, 2, 3, 6)] == [1, 1, 2, 3]
    with pytest.raises(InputError, match="no training windows"):
        finetune.TrainPlan(0, "windows", 0, 2)
    with pytest.raises(InputError, match="--eval_every must be >= 1"):
        finetune.TrainPlan(2, "documents", 2, 1, eval_every=0)


def _trainer(model_dir, steps, **kwargs):
    opt = OptimizerConfig(learning_rate=0.05, num_warmup_steps=1, num_train_steps=steps)
    return Trainer(ToyTask(), distribute.get_strategy("default"), str(model_dir), opt,
                   toy_dataset_fn(16), steps, steps_per_loop=1, log_every=1,
                   save_checkpoints_steps=steps, keep_checkpoint_max=1, show_progress=True,
                   **kwargs)


def _scripted(scores):
    """An evaluate fn whose primary metric at each step is `scores[step]`."""
    return lambda trainer: {"acc": scores[int(trainer.global_step.numpy())], "other": 1.0}


def test_keeps_the_best_checkpoint_with_one_bar_and_a_line_per_evaluation(
        tmp_path, capsys, monkeypatch):
    bars = []
    real_tqdm = finetune.tqdm.tqdm

    class CountedBar(real_tqdm):
        def __init__(self, *args, **kwargs):
            bars.append(kwargs.get("total"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(finetune.tqdm, "tqdm", CountedBar)   # train_log's bars too
    out = tmp_path / "out"
    trainer = _trainer(tmp_path / "out" / "train", steps=6)
    plan = finetune.TrainPlan(num_examples=32, unit="examples", steps_per_epoch=2, epochs=3,
                              max_train_steps=10)
    task = finetune.FinetuneEvaluation(_scripted({2: 0.5, 4: 0.9, 6: 0.7}), "acc",
                                 labels={"acc": "accuracy", "other": "other"})
    outcome = finetune.train_and_keep_best(trainer, str(out), plan, task)
    assert bars == [6], "one progress bar for the whole run (train() calls make none)"
    assert (outcome.step, outcome.metric, outcome.value) == (4, "acc", 0.9)
    assert outcome.checkpoint == str(out / "ckpt-4") and latest_checkpoint(str(out)) == \
        str(out / "ckpt-4")
    assert json.loads((out / finetune.KEPT_FILE).read_text()) == {
        "checkpoint": "ckpt-4", "step": 4, "metric": "acc", "value": 0.9,
        "metrics": {"acc": 0.9, "other": 1.0}, "evaluations": 3}
    history = [json.loads(line) for line in open(out / finetune.EVAL_HISTORY)]
    assert [(h["step"], h["epoch"], h.get("best", False)) for h in history] == [
        (2, 1, True), (4, 2, True), (6, 3, False)]
    # What a person reads: each line's text after the bar's carriage returns, bar lines out.
    lines = [text for text in (part.split("\r")[-1].strip()
                               for part in capsys.readouterr().err.split("\n"))
             if text and not text.startswith("train:")]
    assert lines == [
        "--max_train_steps=10 is more than the 6 steps of 3 epochs over 32 examples "
        "(2 per epoch): training stops at step 6",
        "training: 32 examples, 2 steps per epoch, 6 steps (3 epochs)",
        "step 2/6 (epoch 1): dev accuracy 0.5, other 1 | best accuracy 0.5 (step 2)",
        "step 4/6 (epoch 2): dev accuracy 0.9, other 1 | best accuracy 0.9 (step 4)",
        "step 6/6 (epoch 3): dev accuracy 0.7, other 1 | best accuracy 0.9 (step 4)"]
    assert finetune.closing_lines(str(out), "python next.py") == [
        f"kept      {out / 'ckpt-4'} (step 4, best dev acc 0.9 of 3 evaluations)",
        "next      python next.py"]

    # Resumed with a longer schedule: evaluations already made are not redone and the
    # best so far still counts.
    trainer = _trainer(tmp_path / "out" / "train", steps=8)
    plan = finetune.TrainPlan(32, "examples", 2, 4)
    outcome = finetune.train_and_keep_best(
        trainer, str(out), plan, finetune.FinetuneEvaluation(_scripted({8: 0.95}), "acc"),
        show_progress=False)
    assert (outcome.step, outcome.value) == (8, 0.95)
    assert [h["step"] for h in outcome.history] == [2, 4, 6, 8]
    assert json.loads((out / finetune.KEPT_FILE).read_text())["evaluations"] == 4


def test_without_a_dev_set_the_last_checkpoint_is_kept(tmp_path):
    out = tmp_path / "out"
    trainer = _trainer(out / "train", steps=3)
    outcome = finetune.train_and_keep_best(
        trainer, str(out), finetune.TrainPlan(16, "examples", 1, 3), finetune.FinetuneEvaluation(),
        show_progress=False)
    assert (outcome.checkpoint, outcome.step, outcome.metric) == (str(out / "ckpt-3"), 3, None)
    assert not (out / finetune.EVAL_HISTORY).exists()
    assert finetune.closing_lines(str(out))[0].endswith("(step 3, the last step: no dev "
                                                        "evaluation)")
    # A trainer writing into the output dir itself (run_squad): its last checkpoint is kept.
    same = tmp_path / "same"
    trainer = _trainer(same, steps=2)
    outcome = finetune.train_and_keep_best(
        trainer, str(same), finetune.TrainPlan(16, "examples", 1, 2), finetune.FinetuneEvaluation(),
        show_progress=False)
    assert outcome.checkpoint == str(same / "ckpt-2")
    assert sorted(p for p in os.listdir(same) if p.startswith("ckpt-2")) == [
        "ckpt-2.data-00000-of-00001", "ckpt-2.index"]


def test_a_non_chief_worker_keeps_nothing_of_its_own(tmp_path, monkeypatch):
    made = []
    real_mkdtemp = finetune.tempfile.mkdtemp

    def recorded_mkdtemp(*args, **kwargs):
        made.append(real_mkdtemp(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(finetune.tempfile, "mkdtemp", recorded_mkdtemp)
    out = tmp_path / "out"
    out.mkdir()
    trainer = _trainer(tmp_path / "worker_train", steps=2)
    trainer.is_chief = False
    outcome = finetune.train_and_keep_best(
        trainer, str(out), finetune.TrainPlan(16, "examples", 1, 2),
        finetune.FinetuneEvaluation(_scripted({1: 0.1, 2: 0.2}), "acc"), show_progress=False)
    # It saved (a multi-worker save is collective) into temp dirs it removed; it names the
    # chief's checkpoint and writes neither history nor record.
    assert len(made) == 2 and not any(os.path.exists(p) for p in made)
    assert outcome.checkpoint == str(out / "ckpt-2")
    assert os.listdir(out) == []


class RecordingBar:
    """The part of a tqdm bar TrainLogger uses, recording what it was told."""

    def __init__(self):
        self.n, self.postfix, self.closed = 0, None, False

    def refresh(self):
        pass

    def set_postfix_str(self, text, refresh=True):
        self.postfix = text

    def close(self):
        self.closed = True


def test_the_train_logger_advances_a_given_bar_and_leaves_it_open(tmp_path):
    bar = RecordingBar()
    logger = train_log.TrainLogger(str(tmp_path), 0, 4, progress_bar=bar)
    logger.advance(2)
    logger.log(3, {"loss": 0.5})
    logger.close()
    assert (bar.n, bar.postfix, bar.closed) == (3, "loss=0.5", False)
