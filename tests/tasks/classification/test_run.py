"""run_classifier end to end on the tiny model: real GLUE files, hand-made TACRED records."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from spanbert_tf.modeling.backbone import build_backbone
from spanbert_tf.modeling.config import load_config
from spanbert_tf.modeling.model_dir import read_model_dir, write_model_dir_metadata
from spanbert_tf.plotting import train_log_plot
from spanbert_tf.tasks.classification import metrics as cm
from spanbert_tf.tasks.classification.run import ClassificationSettings, run_classifier

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.fixture(scope="module")
def init_dir(tmp_path_factory, cased_vocab):
    """A pretrained-model dir: tiny backbone + metadata + checkpoint."""
    path = str(tmp_path_factory.mktemp("init"))
    config = load_config("tiny")
    backbone = build_backbone(config.model)
    write_model_dir_metadata(path, config, cased_vocab, do_lower_case=False)
    root = tf.train.Checkpoint(model=tf.train.Checkpoint(backbone=backbone))
    tf.train.CheckpointManager(root, path, 1, checkpoint_name="ckpt").save(checkpoint_number=1)
    return path


def subset(src, dst, rows, header=True):
    lines = src.read_text(encoding="utf-8-sig").split("\n")
    keep = lines[:rows + int(header)]
    dst.write_text("\n".join(keep) + "\n", encoding="utf-8")


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.mark.slow
def test_rte_program_end_to_end(tmp_path, shared_data, init_dir, check_plot_written):
    data = tmp_path / "RTE"
    data.mkdir()
    subset(shared_data / "glue" / "RTE" / "train_resplit_part1.tsv", data / "train.tsv", 48)
    (data / "dev.tsv").write_bytes((shared_data / "glue" / "RTE" / "dev.tsv").read_bytes())
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "run_classifier.py"), "--task_name=RTE",
         f"--data_dir={data}", f"--init_checkpoint={init_dir}", f"--output_dir={out}",
         "--do_train", "--do_eval", "--num_train_epochs=2", "--train_batch_size=16",
         "--max_seq_length=64", "--learning_rate=1e-4", "--seed=3"],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = json.loads(proc.stdout.strip().splitlines()[-1])
    results = json.loads((out / "eval_results.json").read_text())
    baseline = printed.pop("baseline")
    assert list(results) == ["accuracy"] and results == printed
    # Beside the score: always predicting the most frequent training label.
    train_labels = [line.split("\t")[-1] for line in
                    (data / "train.tsv").read_text().strip().split("\n")[1:]]
    dev_labels = [line.split("\t")[-1] for line in
                  (data / "dev.tsv").read_text().strip().split("\n")[1:]]
    majority = max(("entailment", "not_entailment"), key=train_labels.count)
    assert baseline == {"always": majority,
                        "accuracy": pytest.approx(dev_labels.count(majority) / 277)}
    assert f"baseline always '{majority}': accuracy " in proc.stdout
    preds = read_jsonl(out / "dev_predictions.jsonl")
    assert [p["index"] for p in preds] == list(range(277))
    gold = [line.split("\t")[-1] for line in
            (data / "dev.tsv").read_text().strip().split("\n")[1:]]
    assert [p["label"] for p in preds] == gold
    # train_log.png: the training curves of train/ and the dev accuracy of each epoch.
    panels = train_log_plot.train_log_panels(str(out))
    assert panels[-1][0] == "dev metrics" and list(panels[-1][2]) == ["accuracy"]
    assert panels[-1][2]["accuracy"][0] == [3, 6]        # 48 examples / 16 a batch, 2 epochs
    check_plot_written(out / "train_log.png", proc.stderr, (1200, 320 * len(panels)))
    assert all(p["prediction"] in ("entailment", "not_entailment") for p in preds)
    assert all(abs(sum(p["probabilities"]) - 1) < 1e-6 for p in preds)
    assert results["accuracy"] == pytest.approx(
        np.mean([p["label"] == p["prediction"] for p in preds]))
    history = read_jsonl(out / "eval_history.jsonl")
    assert [h["epoch"] for h in history] == [1, 2] and history[0]["best"]
    best = max(history, key=lambda h: h["accuracy"])   # first of equals wins
    info = read_model_dir(str(out))
    assert info.checkpoint_path.endswith(f"ckpt-{best['step']}")
    assert info.task["labels"] == ["entailment", "not_entailment"]
    assert info.task["max_seq_length"] == 64
    assert results["accuracy"] == pytest.approx(best["accuracy"])
    log = read_jsonl(out / "train" / "train_log.jsonl")
    assert log[-1]["step"] == history[-1]["step"] == 6     # 48 // 16 steps per epoch, 2 epochs
    # What a person reads: one progress bar (its first frame has no rate yet), a dev line
    # per epoch with the best so far, and the kept checkpoint and the next command.
    frames = [f for part in proc.stderr.split("\n") for f in part.split("\r")]
    assert sum(f.startswith("train:") and "?step/s" in f for f in frames) == 1
    texts = [part.split("\r")[-1].strip() for part in proc.stderr.split("\n")]
    dev_lines = [t for t in texts if t.startswith("step ")]
    assert dev_lines == [
        f"step {h['step']}/6 (epoch {h['epoch']}): dev accuracy {h['accuracy']:.4g} | best "
        f"accuracy {best_so_far['accuracy']:.4g} (step {best_so_far['step']})"
        for i, h in enumerate(history)
        for best_so_far in [max(history[:i + 1], key=lambda r: r["accuracy"])]]
    assert (f"  kept      {out}/ckpt-{best['step']} (step {best['step']}, best dev accuracy "
            f"{best['accuracy']:.4g} of 2 evaluations)") in proc.stdout.splitlines()
    assert (f"  next      python run_classifier.py --task_name=RTE --data_dir={data} "
            f"--output_dir={out} --do_eval --export_dir={out}/export") in proc.stdout

    # Evaluation alone reloads the kept checkpoint: the same predictions.
    again = run_classifier(ClassificationSettings(
        task_name="rte", data_dir=str(data), output_dir=str(out), do_eval=True,
        show_progress=False))
    assert again.pop("baseline")["always"] == max(("entailment", "not_entailment"),
                                                  key=dev_labels.count)  # no training: dev's
    assert again == results
    np.testing.assert_allclose([p["probabilities"] for p in read_jsonl(
        out / "dev_predictions.jsonl")], [p["probabilities"] for p in preds], atol=1e-6)


@pytest.mark.slow
def test_program_reports_bad_row_with_line(tmp_path, shared_data, init_dir):
    data = tmp_path / "MRPC"
    data.mkdir()
    lines = (shared_data / "glue" / "MRPC" / "dev.tsv").read_text(encoding="utf-8-sig").split("\n")
    lines[7] = lines[7].replace("\t", " ", 1)
    (data / "train.tsv").write_text("\n".join(lines))
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "run_classifier.py"), "--task_name=MRPC",
         f"--data_dir={data}", f"--init_checkpoint={init_dir}",
         f"--output_dir={tmp_path / 'out'}", "--do_train"],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("run_classifier.py: error: ")
    assert "train.tsv:8: expected 5 tab-separated columns" in last
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("split", ["train", "dev"])
def test_program_refuses_a_split_without_examples(tmp_path, shared_data, init_dir, split):
    data = tmp_path / "RTE"
    data.mkdir()
    subset(shared_data / "glue" / "RTE" / "dev.tsv", data / "train.tsv", 8)
    subset(shared_data / "glue" / "RTE" / "dev.tsv", data / "dev.tsv", 8)
    subset(shared_data / "glue" / "RTE" / "dev.tsv", data / f"{split}.tsv", 0)  # header only
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "run_classifier.py"), "--task_name=RTE",
         f"--data_dir={data}", f"--init_checkpoint={init_dir}",
         f"--output_dir={tmp_path / 'out'}", "--do_train", "--do_eval"],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr[-2000:]
    what = "no training examples" if split == "train" else "no dev examples"
    assert lines[0] == f"run_classifier.py: error: {data / (split + '.tsv')}: {what}"
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_stsb_regression_in_process(tmp_path, shared_data, init_dir):
    # STS-B layout (regression) built from MRPC sentence pairs with made-up scores.
    stsb = tmp_path / "STS-B"
    stsb.mkdir()
    rows = (shared_data / "glue" / "MRPC" / "train.tsv").read_text(
        encoding="utf-8-sig").split("\n")[1:41]
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
    body = [f"{i}\tg\tf\ty\t{i}\ts\ts\t{r.split(chr(9))[3]}\t{r.split(chr(9))[4]}\t{i % 6}.0"
            for i, r in enumerate(rows)]
    (stsb / "train.tsv").write_text("\n".join([header] + body[:32]) + "\n")
    (stsb / "dev.tsv").write_text("\n".join([header] + body[32:]) + "\n")
    results = run_classifier(ClassificationSettings(
        task_name="sts-b", data_dir=str(stsb), init_checkpoint=init_dir,
        output_dir=str(tmp_path / "stsb_out"), do_train=True, do_eval=True,
        num_train_epochs=1, train_batch_size=8, max_seq_length=32, show_progress=False))
    assert list(results) == ["pearson", "spearmanr"]
    preds = read_jsonl(tmp_path / "stsb_out" / "dev_predictions.jsonl")
    assert [r["label"] for r in preds] == [float(i % 6) for i in range(32, 40)]
    assert all(isinstance(r["prediction"], float) and r["probabilities"] is None
               for r in preds)
    assert results["pearson"] == pytest.approx(
        cm.pearson([r["prediction"] for r in preds], [r["label"] for r in preds]))


def tacred_records(n, seed):
    rng = np.random.default_rng(seed)
    relations = ["no_relation", "per:city_of_birth", "org:founded_by"]
    out = []
    for i in range(n):
        rel = relations[i % 3]
        tokens = ("In 1990 , Anna Lee was born in Paris and later -LRB- reportedly -RRB- "
                  "moved away .").split()
        out.append({"id": f"{seed}-{i}", "relation": rel, "token": tokens,
                    "subj_start": 3, "subj_end": 4,
                    "subj_type": "PERSON" if rel != "org:founded_by" else "ORGANIZATION",
                    "obj_start": 8, "obj_end": 8,
                    "obj_type": ["CITY", "PERSON"][int(rng.integers(0, 2))]})
    return out


@pytest.mark.slow
def test_tacred_in_process(tmp_path, init_dir):
    data = tmp_path / "tacred"
    data.mkdir()
    (data / "train.json").write_text(json.dumps(tacred_records(24, 0)))
    (data / "dev.json").write_text(json.dumps(tacred_records(9, 1)))
    out = tmp_path / "out"
    results = run_classifier(ClassificationSettings(
        task_name="tacred", data_dir=str(data), init_checkpoint=init_dir,
        output_dir=str(out), do_train=True, do_eval=True, num_train_epochs=1,
        train_batch_size=8, max_seq_length=24, show_progress=False))
    assert list(results) == ["precision", "recall", "f1", "accuracy", "baseline"]
    # Always "no_relation" (most frequent training label; ties go to the first) scores F1 0.
    assert results["baseline"]["always"] == "no_relation" and results["baseline"]["f1"] == 0
    task = read_model_dir(str(out)).task
    assert task["labels"][0] == "no_relation"
    assert task["markers"]["[SUBJ-PERSON]"] == "[unused5]"     # dev first, [unused1-4] reserved
    preds = read_jsonl(out / "dev_predictions.jsonl")
    ids = {name: i for i, name in enumerate(task["labels"])}
    got = cm.micro_prf([ids[p["prediction"]] for p in preds], [ids[p["label"]] for p in preds])
    assert results["f1"] == pytest.approx(got["f1"])
    (data / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n")
    with pytest.raises(ValueError, match="not a model fine-tuned on rte"):
        run_classifier(ClassificationSettings(task_name="rte", data_dir=str(data),
                                         output_dir=str(out), do_eval=True))
