"""train_log.png and `python -m spanbert_tf.plot` on the logs of a real (toy) Trainer run."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from spanbert_tf.errors import InputError
from spanbert_tf.plotting import train_log_plot

REPO = pathlib.Path(__file__).resolve().parents[2]
TOY_DIR = REPO / "tests" / "training"


def _env(**extra):
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
        TF_CPP_MIN_LOG_LEVEL="2", **extra)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A model dir of 24 real Trainer steps of the toy task (two loss terms, accuracy,
    warm-up then linear decay), and the same laid out as a fine-tuning output dir
    (train/ plus an eval_history.jsonl as run_classifier.py writes it)."""
    sys.path.insert(0, str(TOY_DIR))
    try:
        from training_toy_task import ToyTask, toy_dataset_fn
    finally:
        sys.path.remove(str(TOY_DIR))
    from spanbert_tf.modeling.config import OptimizerConfig
    from spanbert_tf.training import distribute
    from spanbert_tf.training.trainer import Trainer

    model_dir = tmp_path_factory.mktemp("toy")
    opt = OptimizerConfig(learning_rate=0.05, num_warmup_steps=4, num_train_steps=24)
    Trainer(ToyTask(second_term_weight=0.5), distribute.get_strategy("default"),
            str(model_dir), opt, toy_dataset_fn(32), 24, show_progress=False, log_every=2,
            steps_per_loop=4, save_checkpoints_steps=24).train()
    finetune_dir = tmp_path_factory.mktemp("finetune")
    (finetune_dir / "train").mkdir()
    (finetune_dir / "train" / "train_log.jsonl").write_bytes(
        (model_dir / "train_log.jsonl").read_bytes())
    history = [{"epoch": 1, "step": 12, "train_loss": 1.1, "accuracy": 0.6, "f1": 0.5,
                "best": True},
               {"epoch": 2, "step": 24, "train_loss": 0.7, "accuracy": 0.55, "f1": 0.52}]
    (finetune_dir / "eval_history.jsonl").write_text(
        "".join(json.dumps(h) + "\n" for h in history))
    return model_dir, finetune_dir


def test_panels_follow_the_log(toy_run):
    model_dir, finetune_dir = toy_run
    panels = train_log_plot.train_log_panels(str(model_dir))
    titles = [p[0] for p in panels]
    assert titles == ["training losses", "learning rate", "training accuracy"]
    losses = panels[0][2]
    assert set(losses) == {"loss", "ce", "ce_first_half"}        # no throughputs
    steps, rates = panels[1][2]["learning_rate"]
    assert steps == list(range(2, 25, 2))
    assert rates[1] > rates[0] and rates[-1] < max(rates)       # warm-up, then decay
    panels = train_log_plot.train_log_panels(str(finetune_dir))
    dev_title, _, dev, best = panels[-1]
    assert dev_title == "dev metrics" and set(dev) == {"accuracy", "f1"} and best == [12]
    assert dev["f1"] == ([12, 24], [0.5, 0.52])


def test_plot_draws_every_curve(toy_run, check_png):
    pytest.importorskip("matplotlib")
    model_dir, finetune_dir = toy_run
    result = train_log_plot.plot_train_log(model_dir)
    assert result.path == str(model_dir / "train_log.png")
    assert result.lines == {"training losses": 3, "learning rate": 1, "training accuracy": 1}
    assert check_png(result.path, (1200, 3 * 320)) == (1200, 960)
    result = train_log_plot.plot_train_log(finetune_dir)
    assert result.lines["dev metrics"] == 2 and len(result.lines) == 4
    check_png(result.path, (1200, 4 * 320))
    assert not [p for p in os.listdir(finetune_dir) if p.endswith(".tmp")]  # atomic


def test_module_cli_rewrites_the_png(toy_run, check_png, tmp_path):
    pytest.importorskip("matplotlib")
    model_dir, _ = toy_run
    png = model_dir / "train_log.png"
    png.write_bytes(b"stale")
    proc = subprocess.run([sys.executable, "-m", "spanbert_tf.plot", str(model_dir)],
                          capture_output=True, text=True, env=_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(png)
    check_png(png, (1200, 960))


@pytest.mark.parametrize("make, message", [
    (lambda d: d, "no train_log.jsonl here nor in train/ (not the model dir of a training run)"),
    (lambda d: d / "missing", "not a directory"),
])
def test_module_cli_refuses_a_dir_without_log_in_one_line(tmp_path, make, message):
    proc = subprocess.run([sys.executable, "-m", "spanbert_tf.plot", str(make(tmp_path))],
                          capture_output=True, text=True, env=_env(), timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("spanbert_tf.plot: error: ")
    assert message in proc.stderr
    with pytest.raises(InputError, match="not"):
        train_log_plot.plot_train_log(make(tmp_path))


_NO_MATPLOTLIB = """
import sys
sys.modules["matplotlib"] = None  # as if not installed: `import matplotlib` raises
from spanbert_tf.plotting.train_log_plot import write_train_log_plot
print("returned", write_train_log_plot("run_test", sys.argv[1]))
from spanbert_tf import plot
sys.exit(plot.main([sys.argv[1]]))
"""


def test_without_matplotlib_one_line_and_go_on(toy_run):
    model_dir, _ = toy_run
    png = model_dir / "train_log.png"
    if png.exists():
        png.unlink()
    proc = subprocess.run([sys.executable, "-c", _NO_MATPLOTLIB, str(model_dir)],
                          capture_output=True, text=True, env=_env(), timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == "returned None\n"          # the program goes on
    hint = 'matplotlib is not installed (get it with `pip install -e ".[plots]"`)'
    assert proc.stderr.splitlines() == [
        f"run_test: no plot written: {hint}", f"spanbert_tf.plot: error: {hint}"]
    assert not png.exists()
