"""run_coref end to end on the tiny model and 2 real LitBank documents (their first sentences)."""

import dataclasses
import importlib.util
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
from spanbert_tf.plotting import train_log_plot
from spanbert_tf.tasks.coref import conll, metrics
from spanbert_tf.tasks.coref.run import CorefSettings, run_coref, word_clusters
from spanbert_tf.training.train_log import read_train_log

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DOCS = ("1023_bleak_house_brat", "105_persuasion_brat")
NUM_SENTENCES = 14


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


def first_sentences(document, count):
    """The document cut after `count` sentences; mentions crossing the cut are dropped."""
    num_words = sum(len(s) for s in document.sentences[:count])
    clusters = [[m for m in c if m[1] < num_words] for c in document.clusters]
    return dataclasses.replace(
        document, sentences=document.sentences[:count], speakers=document.speakers[:count],
        rows=document.rows[:num_words],
        coref_column_offsets=document.coref_column_offsets[:num_words],
        clusters=[c for c in clusters if c])


@pytest.fixture(scope="module")
def litbank_file(tmp_path_factory, shared_data):
    folder = shared_data / "coref" / "litbank" / "conll"
    docs = [first_sentences(conll.read_conll(str(folder / f"{name}.conll"))[0], NUM_SENTENCES)
            for name in DOCS]
    path = str(tmp_path_factory.mktemp("litbank") / "two.conll")
    conll.write_conll(path, docs)
    assert all(len(d.clusters) >= 5 for d in conll.read_conll(path))
    return path


def options(output_dir, init_dir, litbank_file, **kwargs):
    values = dict(output_dir=str(output_dir), init_checkpoint=init_dir, config="coref_tiny",
                  do_train=True, train_file=litbank_file, dev_file=litbank_file,
                  do_predict=True, predict_file=litbank_file, output_singletons=True,
                  eval_every=4, num_train_epochs=3, log_every=2, show_progress=False)
    values.update(kwargs)
    return CorefSettings(**values)


def test_word_clusters_drops_repeated_word_spans():
    subtoken_map = [0, 0, 1, 2, 2, 3]
    clusters = [((0, 0), (1, 1), (2, 2)), ((3, 4), (5, 5)), ((1, 2),)]
    assert word_clusters(clusters, subtoken_map) == ([[(0, 0), (1, 1)], [(2, 2), (3, 3)]], 2)
    got, dropped = word_clusters(clusters + [((0, 1),)], subtoken_map, singletons=True)
    assert got == [[(0, 0), (1, 1)], [(2, 2), (3, 3)], [(0, 1)]] and dropped == 2


def test_train_predict_files_and_resume(tmp_path, init_dir, litbank_file, check_png, capfd):
    out = tmp_path / "run"
    # 2 documents x 3 epochs = 6 steps; stop at 4, then resume to the end.
    first = run_coref(options(out, init_dir, litbank_file, max_train_steps=4))
    history = [json.loads(line) for line in open(out / "eval_history.jsonl")]
    assert [h["step"] for h in history] == [4] and history[0]["best"]
    log = read_train_log(out / "train")
    assert [r["step"] for r in log] == [2, 4]
    assert {"learning_rate_backbone", "learning_rate_head", "coref_loss"} <= set(log[0])
    assert np.isfinite(first["conll_f1"])
    # train_log.png: coref loss, the two learning rates, the number of top spans and the
    # dev scores after step 4.
    panels = train_log_plot.train_log_panels(str(out))
    assert [p[0] for p in panels] == ["training losses", "learning rate", "training counts",
                                      "dev metrics"]
    assert set(panels[0][2]) == {"loss", "coref_loss"} and list(panels[2][2]) == ["num_top_spans"]
    assert {"learning_rate_backbone", "learning_rate_head"} <= set(panels[1][2])
    assert panels[3][2]["conll_f1"] == ([4], [history[0]["conll_f1"]]) and panels[3][3] == [4]
    if importlib.util.find_spec("matplotlib") is not None:
        check_png(out / "train_log.png", (1200, 4 * 320))
    else:
        assert "run_coref: no plot written: matplotlib is not installed" in capfd.readouterr().err

    # Files written; evaluate_coref on them reproduces eval_results.json.
    results = json.load(open(out / "eval_results.json"))
    pred_docs = conll.read_conll(str(out / "predictions.conll"))
    assert [d.doc_key for d in pred_docs] == [d.doc_key for d in conll.read_conll(litbank_file)]
    assert [d.words() for d in pred_docs] == [d.words() for d in conll.read_conll(litbank_file)]
    records = [json.loads(line) for line in open(out / "predictions.jsonlines")]
    words = {d.doc_key: d.words() for d in pred_docs}
    for record in records:
        for cluster in record["clusters"]:
            for start, end, text in cluster:
                assert text == " ".join(words[record["doc_key"]][start:end + 1])
    for pred_file in ("predictions.conll", "predictions.jsonlines"):
        again = metrics.evaluate_files(litbank_file, str(out / pred_file))
        assert again["counts"] == results["counts"], pred_file
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "evaluate_coref.py"), f"--gold_file={litbank_file}",
         f"--pred_file={out / 'predictions.conll'}"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
        env={**os.environ, "PYTHONPATH": REPO})
    assert proc.returncode == 0, proc.stderr[-2000:]
    printed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert printed["conll_f1"] == pytest.approx(results["conll_f1"], abs=1e-9)

    # Resume: the trainer continues from step 4 to 6 and the history grows.
    run_coref(options(out, init_dir, litbank_file, do_predict=False))
    history = [json.loads(line) for line in open(out / "eval_history.jsonl")]
    assert [h["step"] for h in history] == [4, 6]
    assert [r["step"] for r in read_train_log(out / "train")] == [2, 4, 6]

    # Predict-only from the coreference model dir: the best model's predictions again.
    again = run_coref(CorefSettings(output_dir=str(out), do_predict=True,
                                   predict_file=litbank_file, output_singletons=True,
                                   show_progress=False))
    best = max(history, key=lambda h: h["conll_f1"])
    assert again["conll_f1"] == pytest.approx(best["conll_f1"], abs=1e-6)


def test_bad_input_is_reported(tmp_path, init_dir, litbank_file):
    bad = tmp_path / "bad.conll"
    text = open(litbank_file).read().replace("#end document", "", 1)
    bad.write_text(text)
    with pytest.raises(ValueError, match="bad.conll"):
        run_coref(options(tmp_path / "out", init_dir, str(bad)))
    with pytest.raises(ValueError, match="coreference model dir"):
        run_coref(CorefSettings(output_dir=str(tmp_path / "x"), init_checkpoint=init_dir,
                               do_predict=True, predict_file=litbank_file))


# The run_coref.py program: its console entry point with --help, then whether TensorFlow
# was imported on the way (the help must come fast, before any heavy import).
HELP_PROBE = """
import sys
import run_coref
sys.argv = ["run_coref.py", "--help"]
try:
    run_coref.run()
except SystemExit as e:
    code = e.code
print("PROBE", code, "tensorflow" in sys.modules)
"""


def test_cli_help_is_fast_and_lists_the_flags():
    proc = subprocess.run([sys.executable, "-c", HELP_PROBE], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.stdout.splitlines()[-1] == "PROBE 0 False", proc.stdout[-500:] + proc.stderr
    for flag in ("--init_checkpoint", "--output_dir", "--train_file", "--predict_file",
                 "--output_singletons", "--eval_every"):
        assert flag in proc.stdout


@pytest.mark.parametrize("argv, message", [
    (["--output_dir=x", "--eval_every=abc"], "run_coref.py: error: flag --eval_every"),
    (["--output_dir=x"], "run_coref.py: error: at least one of --do_train / --do_predict"),
])
def test_cli_errors_are_one_line(tmp_path, argv, message):
    proc = subprocess.run([sys.executable, os.path.join(REPO, "run_coref.py")] + argv,
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": REPO})
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith(message), lines


def _what_a_person_reads(stderr):
    """stderr's lines as a terminal shows them (text after the bar's carriage returns, bar
    frames left out), and the number of progress bars: each bar's first frame, drawn
    before any step, shows an unknown rate ("?step/s"), later frames a measured one."""
    texts = [part.split("\r")[-1].strip() for part in stderr.split("\n")]
    frames = [f for part in stderr.split("\n") for f in part.split("\r")]
    return ([t for t in texts if t and not t.startswith("train:")],
            sum(f.startswith("train:") and "?step/s" in f for f in frames))


@pytest.mark.slow
def test_program_output_one_bar_capped_steps_dev_lines_and_summary(tmp_path, init_dir,
                                                                   litbank_file):
    out = tmp_path / "run"
    # 2 documents x 1 epoch = 2 steps: --max_train_steps=30 cannot be reached.
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "run_coref.py"), f"--init_checkpoint={init_dir}",
         f"--output_dir={out}", "--config=coref_tiny", "--do_train",
         f"--train_file={litbank_file}", f"--dev_file={litbank_file}", "--eval_every=1",
         "--num_train_epochs=1", "--max_train_steps=30", "--log_every=1"],
        capture_output=True, text=True, cwd=str(tmp_path), timeout=600,
        env={**os.environ, "PYTHONPATH": REPO})
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines, bars = _what_a_person_reads(proc.stderr)
    assert bars == 1, proc.stderr
    history = [json.loads(line) for line in open(out / "eval_history.jsonl")]
    assert [h["step"] for h in history] == [1, 2]
    assert lines[0] == ("--max_train_steps=30 is more than the 2 steps of 1 epoch over 2 "
                        "documents (2 per epoch): training stops at step 2")
    dev_lines = [line for line in lines if line.startswith("step ")]
    assert [line.split(":")[0] for line in dev_lines] == ["step 1/2 (epoch 1)",
                                                          "step 2/2 (epoch 1)"]
    best = max(history, key=lambda h: h["conll_f1"])
    assert f"dev CoNLL F1 {history[0]['conll_f1']:.4g}, MUC " in dev_lines[0]
    assert dev_lines[1].endswith(f"| best CoNLL F1 {best['conll_f1']:.4g} (step {best['step']})")
    # The kept model dir records its step and dev score; the summary names it and what next.
    kept = json.loads((out / "kept_checkpoint.json").read_text())
    assert (kept["checkpoint"], kept["metric"], kept["value"], kept["evaluations"]) == (
        f"ckpt-{best['step']}", "conll_f1", best["conll_f1"], 2)
    stdout = proc.stdout.strip().splitlines()
    assert stdout[0] == "run_coref.py: done"
    assert any(line.startswith(f"  kept      {out / kept['checkpoint']} (step {best['step']}, "
                               "best dev conll_f1 ") for line in stdout), stdout
    assert (f"  next      python run_coref.py --output_dir={out} --do_predict "
            f"--predict_file={litbank_file}") in stdout
    assert json.loads(stdout[-1])["step"] == 2


@pytest.mark.parametrize("which", ["train", "dev"])
def test_program_refuses_a_file_without_documents(tmp_path, init_dir, litbank_file, which):
    empty = tmp_path / "empty.conll"
    empty.write_text("")
    files = {"train": litbank_file, "dev": litbank_file, which: str(empty)}
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "run_coref.py"), f"--init_checkpoint={init_dir}",
         f"--output_dir={tmp_path / 'out'}", "--config=coref_tiny", "--do_train",
         f"--train_file={files['train']}", f"--dev_file={files['dev']}"],
        capture_output=True, text=True, cwd=str(tmp_path), timeout=300,
        env={**os.environ, "PYTHONPATH": REPO})
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0] == (f"run_coref.py: error: {empty}: no documents (--{which}_file: expected "
                        "CoNLL '#begin document' blocks or .jsonlines records)")
    assert not (tmp_path / "out" / "train").exists()
