"""run_ner end to end on the tiny model and real LitBank documents: learning on a held-out
document, the predictions in the input's format, prediction alone, evaluate_ner.py."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from spanbert_tf.modeling.backbone import build_backbone
from spanbert_tf.modeling.config import load_config
from spanbert_tf.modeling.model_dir import write_model_dir_metadata
from spanbert_tf.tasks.ner import features, formats, metrics
from spanbert_tf.tasks.ner.config import load_ner_config
from spanbert_tf.tasks.ner.run import NerSettings, run_ner
from spanbert_tf.tasks.ner.task import NerTask
from spanbert_tf.tokenization import BertWordpieceTokenizer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TRAIN = ("1342_pride_and_prejudice_brat", "158_emma_brat", "105_persuasion_brat")
HELD_OUT = "41286_miss_marjoribanks_brat"


@pytest.fixture(scope="module")
def init_dir(tmp_path_factory, cased_vocab):
    """A pretrained-model dir: tiny backbone + metadata + checkpoint."""
    path = str(tmp_path_factory.mktemp("init"))
    config = load_config("tiny")
    tf.keras.utils.set_random_seed(7)   # the same weights whatever ran before in this worker
    backbone = build_backbone(config.model)
    write_model_dir_metadata(path, config, cased_vocab, do_lower_case=False)
    root = tf.train.Checkpoint(model=tf.train.Checkpoint(backbone=backbone))
    tf.train.CheckpointManager(root, path, 1, checkpoint_name="ckpt").save(checkpoint_number=1)
    return path


def _first(doc, count):
    return dataclasses.replace(doc, sentences=doc.sentences[:count],
                               entities=doc.entities[:count])


@pytest.fixture(scope="module")
def data(tmp_path_factory, shared_data):
    """Train: the first 40 sentences of 3 Austen novels (one JSON lines file); held out:
    the first 40 of a fourth, as layered TSV."""
    folder = shared_data / "ner" / "litbank" / "tsv"
    out = tmp_path_factory.mktemp("litbank")
    train = [_first(formats.read_ner_files(str(folder / f"{n}.tsv"))[0], 40) for n in TRAIN]
    formats.write_jsonl(str(out / "train.jsonl"), train)
    held = _first(formats.read_ner_files(str(folder / f"{HELD_OUT}.tsv"))[0], 40)
    formats.write_layered_tsv(str(out / "held_out.tsv"), held)
    return {"train": str(out / "train.jsonl"), "held_out": str(out / "held_out.tsv"),
            "held_doc": held}


def _untrained_f1(init_dir, data, types):
    """The micro F1 on the held-out document of the model before any training step."""
    config = load_ner_config("ner_tiny")
    tf.keras.utils.set_random_seed(42)
    model = NerTask(config, len(types)).build_model()
    doc = data["held_doc"]
    tokenizer = BertWordpieceTokenizer(os.path.join(init_dir, "vocab.txt"))
    windows = features.document_windows([doc], tokenizer, types, 64, 32, 8)
    arrays = features.window_arrays(windows, "span", 64)
    logits = model({k: arrays[k] for k in trainer_inputs()}, training=False)["span_logits"]
    found = features.span_entities([doc], windows, np.asarray(logits), types)
    return metrics.evaluate(metrics.by_doc_id([doc]), metrics.by_doc_id([doc], found))["f1"]


def trainer_inputs():
    from spanbert_tf.tasks.ner.model import SPAN_INPUTS
    return SPAN_INPUTS


@pytest.fixture(scope="module")
def trained(tmp_path_factory, init_dir, data):
    out = tmp_path_factory.mktemp("ner")
    results = run_ner(NerSettings(
        output_dir=str(out), init_checkpoint=init_dir, config="ner_tiny",
        train_file=data["train"], eval_file=data["held_out"], predict_file=data["held_out"],
        num_train_epochs=7, eval_every=50, log_every=25, show_progress=False))
    return str(out), results


def test_f1_rises_above_the_untrained_model_on_a_held_out_document(trained, init_dir, data):
    out, results = trained
    types = json.load(open(os.path.join(out, "ner_config.json")))["types"]
    assert types == ["FAC", "GPE", "LOC", "PER", "VEH"]
    untrained = _untrained_f1(init_dir, data, types)
    assert results["f1"] > max(10.0, untrained + 10.0), (results["f1"], untrained)
    history = [json.loads(line) for line in open(os.path.join(out, "eval_history.jsonl"))]
    assert results["f1"] == max(h["f1"] for h in history)     # the best checkpoint kept


def test_predictions_in_the_input_format_with_every_word(trained, data):
    out, results = trained
    path = os.path.join(out, "predictions.tsv")
    assert results["predictions"] == path
    [pred] = formats.read_ner_files(path)
    gold = data["held_doc"]
    assert pred.sentences == gold.sentences
    scores = metrics.evaluate_files(data["held_out"], path)
    assert scores["f1"] == results["f1"]
    assert json.load(open(os.path.join(out, "eval_results.json")))["f1"] == results["f1"]


def test_prediction_alone_and_evaluate_ner_program(trained, data, tmp_path):
    out, results = trained
    again = run_ner(NerSettings(output_dir=out, predict_file=data["held_out"],
                                show_progress=False))
    assert again["f1"] == results["f1"]
    proc = subprocess.run([sys.executable, os.path.join(REPO, "evaluate_ner.py"),
                           f"--gold_file={data['held_out']}",
                           f"--pred_file={os.path.join(out, 'predictions.tsv')}"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["type", "precision", "recall", "f1"]
    assert json.loads(lines[-1]) == metrics.micro(results)
    bad = tmp_path / "bad.tsv"
    bad.write_text("word\tX-PER\n")
    proc = subprocess.run([sys.executable, os.path.join(REPO, "evaluate_ner.py"),
                           f"--gold_file={bad}", f"--pred_file={bad}"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"evaluate_ner.py: error: {bad}:1: layer 1: label 'X-PER' is not a BIO tag "
        "(expected O, B-TYPE, I-TYPE)")


def test_token_model_writes_flat_conll(tmp_path, init_dir, data):
    held = data["held_doc"]
    conll = str(tmp_path / "held.conll")
    formats.write_conll_columns(conll, [held])
    results = run_ner(NerSettings(
        output_dir=str(tmp_path / "token"), init_checkpoint=init_dir, config="ner_tiny",
        model_type="token", train_file=data["train"], predict_file=conll,
        max_train_steps=10, num_train_epochs=1, log_every=5, show_progress=False))
    path = str(tmp_path / "token" / "predictions.conll")
    assert results["predictions"] == path
    [pred] = formats.read_ner_files(path)
    assert pred.sentences == held.sentences
    assert all(formats.outermost(s)[1] == 0 for s in pred.entities)
    # The token model dir as a keras-hub Task: the same logits as the model run_ner.py kept.
    from spanbert_tf.hub import TASK_PRESETS
    from spanbert_tf.tasks.ner.export import load_ner_model

    tagger = TASK_PRESETS["ner"](str(tmp_path / "token"))
    model, tokenizer, config, types = load_ner_model(str(tmp_path / "token"))
    windows = features.document_windows([held], tokenizer, types, 64, 32, 8, "token")
    arrays = features.window_arrays(windows[:2], "token", 64)
    expected = model({k: arrays[k] for k in ("input_ids", "input_mask")})["token_logits"]
    got = tagger({"token_ids": arrays["input_ids"], "padding_mask": arrays["input_mask"],
                  "segment_ids": np.zeros_like(arrays["input_ids"])}, training=False)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-5)
