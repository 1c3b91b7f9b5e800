"""cli: the front end every program shares (help, one-line errors, quiet start-up)."""

import pathlib
import signal
import subprocess
import sys

import pytest

from spanbert_tf import cli
from spanbert_tf.errors import InputError

REPO = pathlib.Path(__file__).resolve().parent.parent
PROGRAMS = ["create_pretraining_data.py", "run_pretraining.py", "export_saved_model.py",
            "convert_checkpoint.py", "run_squad.py", "evaluate_squad.py", "run_classifier.py"]
# Runs a program's console-script entry point (`module:run`) with --help, then reports
# whether TensorFlow was imported on the way.
HELP_PROBE = """
import importlib, sys
module = importlib.import_module(sys.argv[1])
sys.argv = ["spanbert-" + sys.argv[1].replace("_", "-"), "--help"]
try:
    module.run()
except SystemExit as e:
    code = e.code
print("PROBE", code, "tensorflow" in sys.modules)
"""


@pytest.mark.parametrize("program", PROGRAMS)
def test_help_lists_own_flags_grouped_exits_0_without_tensorflow(program):
    proc = subprocess.run([sys.executable, "-c", HELP_PROBE, program[:-3]], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.splitlines()[-1] == "PROBE 0 False", proc.stdout[-500:] + proc.stderr
    assert proc.stderr == ""
    text = proc.stdout
    assert "usage: " in text and "--verbosity=0" in text
    assert "\noutput:\n" in text or "\ninput:\n" in text
    assert "--helpfull" not in text and "--flagfile" not in text  # absl's own flags left out


def test_run_pretraining_help_groups():
    proc = subprocess.run([sys.executable, "run_pretraining.py", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    groups, current = {}, None
    for line in proc.stdout.splitlines():
        if line.endswith(":") and not line.startswith(" "):
            current = line[:-1]
        elif line.startswith("  --") and current:
            groups.setdefault(current, []).append(line.split()[0][2:])
    assert groups["input"] == ["input_files", "input_workers"]
    assert {"train_batch_size", "grad_accum_steps", "force", "skip_corrupt_records"} <= set(
        groups["training"])
    assert {"model_dir", "save_checkpoints_steps"} <= set(groups["output"])
    assert {"strategy", "tpu", "num_gpus"} <= set(groups["devices"])


def test_bad_flag_value_is_one_line():
    proc = subprocess.run([sys.executable, "run_classifier.py", "--task_name=rte",
                           "--output_dir=/tmp/x", "--num_train_epochs=abc"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("run_classifier.py: error: flag "), lines


def test_verbosity_and_error_line():
    assert cli.verbosity_requested(["p", "--verbosity=1"]) == 1
    assert cli.verbosity_requested(["p", "-v", "0"]) == 0
    assert cli.verbosity_requested(["p", "--model_dir=x"]) is None
    assert cli.is_verbose(["p", "--verbosity", "0"]) and not cli.is_verbose(["p"])
    error = InputError("x.json: bad\nsecond line")
    assert cli.error_line("prog", error) == "prog: error: x.json: bad"
    assert cli.error_line("prog", KeyError("name")) == "prog: error: name"
    assert cli.flag_group("train_batch_size") == "training"
    assert cli.flag_group("output_dir") == "output" and cli.flag_group("out_file") == "output"
    assert cli.flag_group("predict_file") == "input" and cli.flag_group("tpu") == "devices"


def test_one_input_error_type():
    from spanbert_tf.data.writing import documents
    from spanbert_tf.data.input import input_pipeline
    from spanbert_tf.tasks.squad import metrics, reader

    assert documents.InputError is input_pipeline.InputError is InputError
    assert issubclass(metrics.SquadEvalError, InputError)
    assert issubclass(reader.SquadFormatError, InputError)


def test_tensorflow_noise_silenced_unless_verbosity(tmp_path):
    """The error of a program that loaded TensorFlow is one line; --verbosity=0 shows the logs."""
    cmd = [sys.executable, "run_pretraining.py", f"--input_files={tmp_path}/none"]
    quiet = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 1
    assert quiet.stderr.strip().splitlines() == [
        f"run_pretraining: error: no input files match '{tmp_path}/none'"]
    loud = subprocess.run(cmd + ["--verbosity=0"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert loud.returncode == 1 and len(loud.stderr.strip().splitlines()) > 1
    assert loud.stderr.strip().splitlines()[-1] == quiet.stderr.strip()


# A program whose main raises what argv[1] names: through cli.run, as every program does.
RAISING_PROGRAM = """
import sys
from spanbert_tf import cli
from spanbert_tf.errors import InputError, MissingFileError

def main(argv):
    kind = {kind!r}
    if kind == "input":
        raise InputError("train.json: line 3: expected a JSON object")
    if kind == "missing":
        raise MissingFileError("vocab file not found: /nonexistent/vocab.txt")
    if kind == "system":
        open("/nonexistent-dir/out.txt", "w")
    if kind == "keyerror":
        {{}}["start_logits"]
    if kind == "valueerror":
        raise ValueError("shapes (3, 4) and (5,) not aligned")

cli.run(main, "prog")
"""


@pytest.mark.parametrize("kind", ["input", "missing", "system"])
def test_input_and_system_errors_are_one_line(kind):
    proc = subprocess.run([sys.executable, "-c", RAISING_PROGRAM.format(kind=kind)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("prog: error: ") and "Traceback" not in proc.stderr
    if kind == "system":
        assert "No such file or directory" in lines[0] and "/nonexistent-dir/out.txt" in lines[0]


@pytest.mark.parametrize("kind", ["keyerror", "valueerror"])
def test_a_bug_keeps_its_traceback_and_says_it_is_a_bug(kind):
    """A KeyError or a plain ValueError inside our code is not bad input: the traceback stays."""
    proc = subprocess.run([sys.executable, "-c", RAISING_PROGRAM.format(kind=kind)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == cli.BUG_EXIT_CODE, proc.stderr
    assert proc.stderr.startswith("Traceback (most recent call last):"), proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert ("KeyError: 'start_logits'" if kind == "keyerror" else
            "ValueError: shapes (3, 4) and (5,) not aligned") in lines[-2]
    assert lines[-1] == f"prog: error: {cli.BUG_REPORT}"


def test_every_error_class_of_the_library_is_an_input_error():
    """The error classes users meet derive from InputError (so the front end shows them as
    one line), and the missing-file / existing-output ones are still the built-in errors."""
    from spanbert_tf.errors import MissingFileError, OutputExistsError
    from spanbert_tf.serving import ops as serving_ops
    from spanbert_tf.tasks.coref import conll, metrics, segments
    from spanbert_tf.training import distribute

    for cls in (distribute.StrategyError, metrics.CorefScoreError, conll.CorefFormatError,
                segments.CorefJsonlinesError, serving_ops.UnservableOpsError):
        assert issubclass(cls, InputError), cls
    assert issubclass(MissingFileError, FileNotFoundError)
    assert issubclass(OutputExistsError, FileExistsError)


def test_a_vocab_path_that_is_a_directory_says_so(tmp_path):
    from spanbert_tf.tokenization import load_vocab

    with pytest.raises(InputError, match=f"vocab file {tmp_path} is a directory"):
        load_vocab(tmp_path)
    with pytest.raises(FileNotFoundError, match="vocab file not found"):
        load_vocab(tmp_path / "missing.txt")


INTERRUPTED_PROGRAM = """
import os, signal
from spanbert_tf import cli

def main(argv):
    if {kept!r}:
        cli.report_kept("first")
        cli.report_kept({kept!r})
    os.kill(os.getpid(), signal.SIGINT)   # a real Ctrl-C
    import time; time.sleep(30)

cli.run(main, "prog")
"""


def test_ctrl_c_is_one_line_saying_what_was_kept_exit_130():
    for kept, shown in (("no shards written", "no shards written"),
                        ("", "output may be incomplete")):
        proc = subprocess.run([sys.executable, "-c", INTERRUPTED_PROGRAM.format(kept=kept)],
                              cwd=REPO, capture_output=True, text=True, timeout=120,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        assert proc.returncode == 130, proc.stderr
        assert proc.stderr.strip().splitlines() == [f"prog: interrupted ({shown})"]
