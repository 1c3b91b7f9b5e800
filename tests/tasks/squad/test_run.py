"""End to end: a few tiny-model steps with run_squad.py, prediction files, predict-only
from the output model dir, training and predicting on an MRQA file, and the QA SavedModel
reloaded in a fresh process."""

import dataclasses
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from spanbert_tf.tasks.squad import metrics as squad_metrics

V2_FILE = "squad/squad-v2.0-dev-subset_haystack-small.json"
V1_FILE = "squad/DERIVED_squad-v1.1-format_from_haystack-small_answerable.json"
FLAGS = ["--max_seq_length=128", "--doc_stride=64", "--max_query_length=32",
         "--predict_batch_size=128", "--version_2_with_negative", "--noprogress"]
NUM_EXPORT_CHECKS = 120


def _make_init_model_dir(path, cased_vocab):
    import tensorflow as tf

    from spanbert_tf.modeling.backbone import build_backbone
    from spanbert_tf.modeling.config import load_config
    from spanbert_tf.modeling.model_dir import write_model_dir_metadata

    import keras

    keras.utils.set_random_seed(1234)       # the same "pretrained" encoder every run
    config = load_config("tiny")
    backbone = build_backbone(config.model)
    zeros = np.zeros([1, 4], np.int32)
    backbone({"token_ids": zeros, "segment_ids": zeros, "padding_mask": zeros + 1})
    root = tf.train.Checkpoint(model=tf.train.Checkpoint(backbone=backbone))
    tf.train.CheckpointManager(root, str(path), 1, checkpoint_name="ckpt").save()
    write_model_dir_metadata(path, config, cased_vocab, do_lower_case=False)
    return backbone


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_data, cased_vocab):
    root = tmp_path_factory.mktemp("squad")
    _make_init_model_dir(root / "init", cased_vocab)
    # Training data: the dev subset, on the first of each question's answers.
    cmd = [sys.executable, "run_squad.py", f"--init_checkpoint={root / 'init'}",
           f"--output_dir={root / 'out'}", "--do_train", f"--train_file={shared_data / V2_FILE}",
           "--train_first_answer",
           "--do_predict", f"--predict_file={shared_data / V2_FILE}", "--train_batch_size=8",
           "--max_train_steps=3", "--learning_rate=1e-3", "--steps_per_loop=3",
           "--log_every=3", f"--export_dir={root / 'out' / 'saved_model'}"] + FLAGS
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    (root / "stdout.txt").write_text(run.stdout)
    (root / "stderr.txt").write_text(run.stderr)
    return root, json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_run_squad_trains_predicts_and_writes_official_files(trained, shared_data, check_png):
    root, summary = trained
    out = root / "out"
    assert summary["train"]["step"] == 3 and np.isfinite(summary["train"]["loss"])
    # train_log.png (no dev evaluation during SQuAD training: losses, learning rate).
    png = summary["train"]["train_log_png"]
    if importlib.util.find_spec("matplotlib") is None:
        assert png is None and not (out / "train_log.png").exists()
    else:
        assert png == str(out / "train_log.png")
        check_png(png)
    for name in ("predictions.json", "nbest_predictions.json", "null_odds.json",
                 "eval_results.json", "predictions_best_f1_thresh.json", "config.json",
                 "vocab.txt", "checkpoint", "ckpt-3.index", "train_log.jsonl"):
        assert (out / name).exists(), name
    preds = json.loads((out / "predictions.json").read_text())
    nbest = json.loads((out / "nbest_predictions.json").read_text())
    odds = json.loads((out / "null_odds.json").read_text())
    assert len(preds) == len(nbest) == len(odds) == 626
    assert all(isinstance(v, str) for v in preds.values())
    assert all(preds[q] == "" for q in preds if odds[q] > 0)
    assert all({"text", "probability", "start_logit", "end_logit"} <= set(e)
               for entries in nbest.values() for e in entries)
    config = json.loads((out / "config.json").read_text())
    assert config["task"]["name"] == "squad" and config["do_lower_case"] is False
    # The official v2.0 evaluation of predictions.json + null_odds.json gives the
    # scores run_squad.py reported (threshold 0 already applied to predictions.json).
    ours = json.loads((out / "eval_results.json").read_text())
    official = squad_metrics.evaluate_files(str(shared_data / V2_FILE),
                                            str(out / "predictions.json"),
                                            str(out / "null_odds.json"))
    for key in ("exact", "f1", "total", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1"):
        assert official[key] == pytest.approx(ours[key], abs=1e-9), key
    assert summary["predict"]["metrics"]["best_f1"] == ours["best_f1"]
    # What a person reads: the score line of the model's step, the kept checkpoint, what next.
    kept = json.loads((out / "kept_checkpoint.json").read_text())
    assert (kept["checkpoint"], kept["step"], kept["metric"]) == ("ckpt-3", 3, None)
    stderr = (root / "stderr.txt").read_text().splitlines()
    name = V2_FILE.split("/")[-1]
    assert f"step 3: {name} F1 {ours['f1']:.4g}, EM {ours['exact']:.4g}" in stderr
    stdout = (root / "stdout.txt").read_text().splitlines()
    assert f"  kept      {out / 'ckpt-3'} (step 3, the last step: no dev evaluation)" in stdout
    assert (f"  next      python run_squad.py --init_checkpoint={out} --output_dir={out} "
            f"--export_dir={out / 'saved_model'}") not in stdout    # exported already
    assert any(line.startswith("  next      python evaluate_squad.py") for line in stdout)


@pytest.mark.slow
def test_predict_only_from_the_output_model_dir(trained, shared_data):
    from spanbert_tf.tasks.squad.run import SquadRunError, SquadSettings, run_squad

    root, _ = trained
    # Window / decoding settings and the version come from the model dir's config.json.
    given = dict(init_checkpoint=str(root / "out"), output_dir=str(root / "again"),
                 do_predict=True, predict_file=str(shared_data / V2_FILE),
                 predict_batch_size=128)
    settings = SquadSettings(**given, show_progress=False, explicit=frozenset(given))
    summary = run_squad(settings)
    assert summary["predict"]["num_windows"] == 1162      # 128-piece windows, stride 64
    first = json.loads((root / "out" / "null_odds.json").read_text())
    again = json.loads((root / "again" / "null_odds.json").read_text())
    assert first.keys() == again.keys()
    assert max(abs(first[k] - again[k]) for k in first) < 1e-4
    preds = json.loads((root / "out" / "predictions.json").read_text())
    nbest = json.loads((root / "out" / "nbest_predictions.json").read_text())
    preds_again = json.loads((root / "again" / "predictions.json").read_text())
    differ = [q for q in preds if preds_again[q] != preds[q]]
    assert len(differ) <= 3 and all(
        near_tie(nbest[q], preds_again[q], preds[q]) or abs(first[q]) < TOL for q in differ)
    # Bad predict data: a clear error naming the file and the question.
    bad = json.loads((shared_data / V2_FILE).read_text(encoding="utf-8"))
    del bad["data"][1]["paragraphs"][2]["qas"][0]["question"]
    (root / "bad.json").write_text(json.dumps(bad))
    qid = bad["data"][1]["paragraphs"][2]["qas"][0]["id"]
    settings = SquadSettings(**dict(given, predict_file=str(root / "bad.json")))
    with pytest.raises(SquadRunError, match=f"bad.json: question {qid}: missing field"):
        run_squad(settings)


@pytest.mark.slow
def test_run_squad_trains_and_predicts_on_an_mrqa_file(trained, shared_data):
    from spanbert_tf.tasks.squad import mrqa
    from spanbert_tf.tasks.squad.run import SquadSettings, next_command, run_squad

    root, _ = trained
    # The first three paragraphs of the SQuAD 1.1 subset (10 questions) as an MRQA file.
    v1 = json.loads((shared_data / V1_FILE).read_text(encoding="utf-8"))
    v1["data"] = [dict(v1["data"][0], paragraphs=v1["data"][0]["paragraphs"][:3])]
    lines, _ = mrqa.squad_to_mrqa(v1, "SQuAD-subset", "dev")
    path = mrqa.write_mrqa(root / "mrqa.jsonl.gz", lines)
    given = dict(init_checkpoint=str(root / "init"), output_dir=str(root / "mrqa"),
                 do_train=True, train_file=path, do_predict=True, predict_file=path,
                 max_seq_length=128, doc_stride=64, max_query_length=32, train_batch_size=8,
                 max_train_steps=2, learning_rate=1e-3, steps_per_loop=2, log_every=2,
                 predict_batch_size=128)
    settings = SquadSettings(**given, show_progress=False, explicit=frozenset(given))
    summary = run_squad(settings)
    assert summary["train"]["step"] == 2 and np.isfinite(summary["train"]["loss"])
    qids = [qa["qid"] for record in lines[1:] for qa in record["qas"]]
    preds = json.loads((root / "mrqa" / "predictions.json").read_text())
    assert list(preds) == qids and len(qids) == 10
    assert all(isinstance(v, str) and v for v in preds.values())
    assert not (root / "mrqa" / "null_odds.json").exists()
    # eval_results.json: the official MRQA evaluation of predictions.json, as
    # evaluate_squad.py computes it; and (MRQA's definitions are SQuAD 1.1's) the v1.1
    # scores of the same questions.
    ours = json.loads((root / "mrqa" / "eval_results.json").read_text())
    assert ours == summary["predict"]["metrics"] and list(ours) == ["exact_match", "f1"]
    assert summary["predict"]["baseline"] == {"exact_match": 0.0, "f1": 0.0}
    # What to run next once exported: the MRQA evaluation of the predictions.
    command = next_command(dataclasses.replace(settings, export_dir=str(root / "mrqa_export")))
    assert command == (f"python evaluate_squad.py --format=mrqa --data_file={path} "
                       f"--pred_file={root / 'mrqa'}/predictions.json")
    run = subprocess.run([sys.executable] + command.split()[1:], capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == ours
    assert ours == squad_metrics.evaluate(v1, preds)


def test_run_squad_bad_flags_one_line_error(tmp_path):
    cmd = [sys.executable, "run_squad.py", f"--init_checkpoint={tmp_path / 'nope'}",
           f"--output_dir={tmp_path / 'out'}", "--do_predict", "--predict_file=x.json"]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.strip().endswith(f"{tmp_path / 'nope'} is neither a directory nor a "
                                       "checkpoint prefix")
    run = subprocess.run(cmd[:4] + ["--do_train"], capture_output=True, text=True)
    assert run.returncode == 1 and "--do_train needs --train_file" in run.stderr


@pytest.mark.parametrize("case", ["empty", "all_skipped"])
def test_run_squad_refuses_training_data_without_a_usable_question(tmp_path, cased_vocab,
                                                                    case):
    _make_init_model_dir(tmp_path / "init", cased_vocab)
    qas = [] if case == "empty" else [
        {"id": "q1", "question": "Who?", "answers": [{"text": "nobody", "answer_start": 0}]}]
    data = {"version": "1.1", "data": [] if case == "empty" else [
        {"title": "t", "paragraphs": [{"context": "Someone came home.", "qas": qas}]}]}
    (tmp_path / "train.json").write_text(json.dumps(data))
    run = subprocess.run(
        [sys.executable, "run_squad.py", f"--init_checkpoint={tmp_path / 'init'}",
         f"--output_dir={tmp_path / 'out'}", "--do_train",
         f"--train_file={tmp_path / 'train.json'}", "--noprogress"],
        capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
    why = ("the file holds none" if case == "empty"
           else "all 1 skipped: their answer is not found in the context")
    assert run.stderr.strip().splitlines()[-1] == (
        f"run_squad.py: error: {tmp_path / 'train.json'}: no usable questions ({why})")
    assert not (tmp_path / "out" / "checkpoint").exists()


_RELOAD = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops)
data = json.load(open(sys.argv[2]))
qas = [(qa["id"], qa["question"], p["context"]) for a in data["data"]
       for p in a["paragraphs"] for qa in p["qas"]][:int(sys.argv[3])]
loaded = tf.saved_model.load(sys.argv[1])
questions = tf.constant([q for _, q, _ in qas])
contexts = tf.constant([c for _, _, c in qas])
results = {}
for name, out in (
        ("default", loaded.signatures["serving_default"](question=questions, context=contexts)),
        ("threshold", loaded.signatures["serve_with_threshold"](
            question=questions, context=contexts,
            null_score_diff_threshold=tf.constant(float(sys.argv[4]))))):
    results[name] = {qid: {"answer": out["answer"][i].numpy().decode(),
                           "start_char": int(out["start_char"][i]),
                           "end_char": int(out["end_char"][i]),
                           "score": float(out["score"][i]),
                           "null_score_diff": float(out["null_score_diff"][i])}
                     for i, (qid, _, _) in enumerate(qas)}
print(json.dumps(results))
"""


TOL = 1e-4   # logits differ by ~1e-6 between batch shapes / kernels


def near_tie(entries, got, want):
    """Both answers are n-best candidates whose scores differ by less than TOL."""
    scores = {e["text"]: e["start_logit"] + e["end_logit"] for e in entries}
    return got in scores and want in scores and abs(scores[got] - scores[want]) < TOL


def _check_served(served, nbest, odds, threshold):
    """Served answers == the Python path's (v2.0 at `threshold`).

    Returns (#answered, #no answer, #near ties): a different answer is only accepted
    where the Python path's own scores tie within TOL (span vs span, or null odds vs
    the threshold).
    """
    counts = [0, 0, 0]
    for qid, got in served.items():
        best = next(e for e in nbest[qid] if e["text"])
        want = "" if odds[qid] > threshold else best["text"]
        assert got["null_score_diff"] == pytest.approx(odds[qid], abs=TOL), qid
        if best["text"] == "empty":      # no valid span: the Python path's placeholder
            assert got["answer"] == "" and got["start_char"] == -1
            continue
        assert got["score"] == pytest.approx(best["start_logit"] + best["end_logit"],
                                             abs=TOL), qid
        if got["answer"] != want:
            assert near_tie(nbest[qid], got["answer"], best["text"]) or (
                abs(odds[qid] - threshold) < TOL), (qid, got["answer"], want)
            counts[2] += 1
            continue
        if want:
            assert (got["start_char"], got["end_char"]) == (best["start_char"],
                                                            best["end_char"]), qid
        else:
            assert (got["start_char"], got["end_char"]) == (-1, -1)
        counts[not want] += 1
    return counts


def _threshold_in_widest_gap(values):
    """A threshold between two of the middle half of `values`, far from both."""
    v = np.sort(np.asarray(values, np.float64))
    mid = v[len(v) // 4: 3 * len(v) // 4 + 1]
    k = int(np.argmax(np.diff(mid)))
    return float(np.float32((mid[k] + mid[k + 1]) / 2))


@pytest.mark.slow
def test_saved_model_matches_python_prediction_path(trained, shared_data):
    from spanbert_tf.serving.ops import ops_outside_model_server

    root, _ = trained
    # Servable by TF Serving's model server (TF core + tensorflow-text 2.12.1 ops).
    assert ops_outside_model_server(str(root / "out" / "saved_model")) == []
    preds = json.loads((root / "out" / "predictions.json").read_text())
    nbest = json.loads((root / "out" / "nbest_predictions.json").read_text())
    odds = json.loads((root / "out" / "null_odds.json").read_text())
    # A threshold inside the observed null odds, so both outcomes are exercised.
    checked = list(odds)[:NUM_EXPORT_CHECKS]
    threshold = _threshold_in_widest_gap([odds[q] for q in checked])
    run = subprocess.run([sys.executable, "-c", _RELOAD, str(root / "out" / "saved_model"),
                          str(shared_data / V2_FILE), str(NUM_EXPORT_CHECKS), str(threshold)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    served = json.loads(run.stdout.strip().splitlines()[-1])
    assert list(served["default"]) == checked
    answered, _, ties = _check_served(served["default"], nbest, odds, 0.0)
    assert answered > 0 and ties <= 3
    assert all(served["default"][q]["answer"] == preds[q] for q in checked
               if not near_tie(nbest[q], served["default"][q]["answer"], preds[q])
               and abs(odds[q]) >= TOL and preds[q] != "empty")
    answered, unanswered, ties = _check_served(served["threshold"], nbest, odds, threshold)
    assert answered > 0 and unanswered > 0 and ties <= 3
