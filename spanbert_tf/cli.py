"""The one front end of every program: quiet start-up, one-line errors, exit codes.

Every top-level program (run_pretraining.py, run_squad.py, ...) ends with
`cli.run(main, "run_pretraining")` instead of `absl.app.run(main)`. That gives each
program the same behaviour:

* TensorFlow / CUDA / absl start-up noise (oneDNN and cuInit lines, "All log messages
  before absl::InitializeLog()", Python `WARNING:absl` lines, Keras warnings) is
  silenced, in the program and in the worker processes it starts (they inherit the
  environment). `--verbosity=0` (absl's own flag; 1 = debug) brings it all back.
* Bad input (`spanbert_tf.errors.InputError` and its subclasses, and an OSError the operating
  system raised on a path: no space left, permission denied) ends the program with ONE line,
  `<program>: error: <message>`, exit 1. Anything else is a bug in this package: its
  traceback is printed, then a line saying it is a bug to report, exit 70.
* A flag value absl refuses is one line too, exit 1; stray positional arguments are
  refused with one line, exit 2.
* Training stopped by SIGTERM/SIGINT after its checkpoint (`TrainingInterrupted`, see
  `spanbert_tf.training.preemption`) is one line `<program>: interrupted (...)`, exit
  128 + the signal number: 143 for SIGTERM (a preemption notice), 130 for SIGINT.
* Ctrl-C (SIGINT: a `KeyboardInterrupt` reaching `run`) ends it with ONE line,
  `<program>: interrupted (<what was kept>)`, exit 130 (128 + SIGINT, as a shell reports
  it). A program says what an interrupt keeps with `report_kept("...")` (e.g. "no shards
  written", "last checkpoint: ckpt-40"), called again whenever that changes; the last call
  wins. A program that registered nothing gets "output may be incomplete". Cleaning up
  (temporary files, worker processes) is the program's own `finally` / `except` work, done
  before the interrupt reaches `run`.

`run()` calls `quiet_startup()` first, so a program must not import TensorFlow at module
level (none does: that also keeps `--help` fast). Importing this module changes nothing.

Example (a program):
```python
from spanbert_tf import cli

def main(argv):
    ...

def run():
    cli.run(main, "my_program")
```
"""

import json
import logging
import os
import signal
import sys
import traceback
import warnings

from absl import app, flags
from absl import logging as absl_logging

from spanbert_tf.errors import InputError, TrainingInterrupted
from spanbert_tf.quiet import silence_tensorflow_import

# Raised for bad input by the library; anything else is a bug and keeps its traceback.
USER_ERRORS = (InputError,)
# Exit status of a bug (EX_SOFTWARE of sysexits.h), so that scripts can tell it from bad input.
BUG_EXIT_CODE = 70
BUG_REPORT = ("this is a bug in spanbert-tf, not a problem with your input: please report it "
              "with the traceback above")


def is_system_error(error):
    """An OSError raised by the operating system on a path (no space left, permission denied,
    a missing file the program was told to read): the user's machine or input, not a bug."""
    return isinstance(error, OSError) and error.errno is not None

EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130: what a shell reports for a Ctrl-C'd program
_NOTHING_REPORTED_KEPT = "output may be incomplete"
_kept = {"message": None}


def report_kept(message):
    """Says what an interrupt at this point keeps (one short phrase, no newline), for the
    `<program>: interrupted (<message>)` line; None forgets the earlier message."""
    _kept["message"] = None if message is None else " ".join(str(message).split())


def interrupted_line(program):
    """`<program>: interrupted (<what the program reported kept>)`."""
    return f"{program}: interrupted ({_kept['message'] or _NOTHING_REPORTED_KEPT})"


def verbosity_requested(argv=None):
    """The --verbosity/-v value on the command line (absl's flag), or None."""
    argv = sys.argv if argv is None else argv
    for i, arg in enumerate(argv[1:], start=1):
        for name in ("--verbosity", "-v"):
            value = None
            if arg.startswith(name + "="):
                value = arg.split("=", 1)[1]
            elif arg == name and i + 1 < len(argv):
                value = argv[i + 1]
            if value is not None:
                try:
                    return int(value)
                except ValueError:
                    return None
    return None


def is_verbose(argv=None):
    value = verbosity_requested(argv)
    return value is not None and value >= 0


def quiet_startup(argv=None):
    """Silences TensorFlow's C++ logging (also in child processes) unless --verbosity>=0."""
    if is_verbose(argv):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return
    # "2" is spanbert_tf's library default; a program goes one step further (errors too:
    # the cuInit "CUDA error" on machines without a GPU is logged as an error).
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2") == "2":
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")  # data workers inherit it
    warnings.filterwarnings("ignore")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # before TensorFlow loads too
    silence_tensorflow_import()


# --help groups a program's flags by purpose (listed in this order); a flag goes to the first
# group of flag_group's order whose keys it contains.
HELP_GROUPS = (
    ("input", ("input", "_file", "data_dir", "tfds", "vocab", "do_lower_case", "text_key",
               "task_name", "version", "negative_label", "train_first_answer",
               "version_2_with_negative", "long_lines", "na_prob")),
    ("masking", ("mask", "geometric_p", "span_length", "replacement", "pair_targets",
                 "random_token", "random_prob", "max_predictions", "dupe_factor")),
    ("model", ("config", "checkpoint", "init_weights", "max_seq_length", "seq_length", "doc_stride",
               "max_query_length", "max_answer_length", "n_best", "sbo_loss", "models",
               "format")),
    ("training", ("batch", "learning_rate", "num_train", "warmup", "weight_decay", "optimizer",
                  "clip_norm", "grad_accum", "steps_per_loop", "precision", "jit", "seed",
                  "epochs", "do_train", "do_eval", "do_predict", "force", "skip_corrupt",
                  "shuffle")),
    ("devices", ("strategy", "tpu", "gpus", "cpu_devices", "num_workers", "backend", "runner",
                 "beam_")),
    ("output", ("output", "model_dir", "export_dir", "out_file", "save_", "keep_", "log_every",
                "overwrite", "progress", "num_shards", "compression", "stale_temp")),
)


def flag_group(name):
    rules = dict(HELP_GROUPS)
    for group in ("output", "input", "masking", "model", "training", "devices"):
        keys = rules[group]
        if any(k in name for k in keys):
            return group
    return "other"


def _program_flags():
    """The flags the program defined (not absl's, TensorFlow's or Python's own)."""
    found = {}
    for module, module_flags in flags.FLAGS.flags_by_module_dict().items():
        if module.startswith(("absl", "tensorflow", "keras")) or "site-packages" in module:
            continue
        for flag in module_flags:
            found[flag.name] = flag
    return found


def help_text(program, doc=""):
    """`--help`: the program's docstring, then its flags grouped by purpose."""
    lines = [doc.strip(), ""] if doc and doc.strip() else []
    lines.append(f"usage: {program} [--flag=value ...]   (--verbosity=0 shows TensorFlow's logs)")
    groups = {}
    for name, flag in sorted(_program_flags().items()):
        groups.setdefault(flag_group(name), []).append(flag)
    for group in [g for g, _ in HELP_GROUPS] + ["other"]:
        if group not in groups:
            continue
        lines.append(f"\n{group}:")
        for flag in groups[group]:
            default = "" if flag.default is None else f" (default: {flag.default_as_str})"
            lines.append(f"  --{flag.name}{default}")
            lines.append(f"      {flag.help}")
    return "\n".join(lines)


def print_summary(program, lines, result=None):
    """The end of every program: `<program>: done`, indented lines (what was written where,
    the key figures), then `result` as JSON on the last line when the program has results."""
    print(f"{program}: done")
    for line in lines:
        print(f"  {line}")
    if result is not None:
        print(json.dumps(result, default=str), flush=True)


def error_line(program, error):
    """`<program>: error: <first line of the message>`."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, KeyError) and message.startswith("'") and message.endswith("'"):
        message = message[1:-1]
    return f"{program}: error: {message}"


def run(main, program):
    """`absl.app.run(main)` with the shared start-up and error handling."""
    quiet_startup()

    def parse_flags(argv):
        if any(a in ("--help", "-h", "--helpshort", "-?") for a in argv[1:]):
            doc = getattr(sys.modules.get(main.__module__), "__doc__", "") or ""
            print(help_text(program, doc))
            sys.exit(0)
        try:
            return flags.FLAGS(argv)
        except flags.Error as e:
            print(f"{program}: error: {e} (see --help)", file=sys.stderr)
            sys.exit(1)

    def wrapped(argv):
        if len(argv) > 1:
            print(f"{program}: error: unexpected arguments {argv[1:]}", file=sys.stderr)
            sys.exit(2)
        if not is_verbose(argv=[program, *sys.argv[1:]]):
            absl_logging.set_verbosity(absl_logging.ERROR)
        try:
            return main(argv)
        except TrainingInterrupted as e:  # the checkpoint is saved: say so, die of the signal
            print(f"{program}: interrupted ({e})", file=sys.stderr, flush=True)
            sys.exit(e.exit_code)
        except USER_ERRORS as e:
            print(error_line(program, e), file=sys.stderr)
            sys.exit(1)
        except OSError as e:
            if not is_system_error(e):
                raise
            print(error_line(program, e), file=sys.stderr)
            sys.exit(1)

    def run_main(argv):
        try:
            return wrapped(argv)
        except Exception:  # noqa: BLE001 - a bug: shown whole, and said so
            traceback.print_exc()
            print(f"{program}: error: {BUG_REPORT}", file=sys.stderr)
            sys.exit(BUG_EXIT_CODE)

    try:
        app.run(run_main, flags_parser=parse_flags)
    except KeyboardInterrupt:
        # A second Ctrl-C while the interpreter shuts down (joining threads) stays quiet too.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.stdout.flush()
        print(interrupted_line(program), file=sys.stderr, flush=True)
        sys.exit(EXIT_INTERRUPTED)


# The masking flags of create_pretraining_data.py, run_pretraining.py (dynamic masking) and
# materialize_masks.py: defined once, so the three programs cannot drift apart.
MASKING_SCHEMES = ("span", "whole_word", "token")


def define_masking_flags(defaults, schemes=MASKING_SCHEMES, masking_help=None,
                         random_token_help=None):
    """Defines --masking and the span-masking flags (§3.1) with `defaults`' values.

    `defaults`: any object with the flags' names as attributes (a settings dataclass).
    `schemes`: the --masking choices (create_pretraining_data.py adds "none").
    """
    flags.DEFINE_enum("masking", defaults.masking, list(schemes), masking_help or
                      "span: SpanBERT; whole_word / token: the paper's BERT ablations.")
    flags.DEFINE_float("masked_lm_prob", defaults.masked_lm_prob,
                       "Fraction of a block's wordpieces to mask (ceil).")
    flags.DEFINE_integer("max_predictions_per_seq", defaults.max_predictions_per_seq,
                         "P: most masked wordpieces per instance.")
    flags.DEFINE_float("geometric_p", defaults.geometric_p,
                       "p of the span-length geometric law.")
    flags.DEFINE_integer("max_span_length", defaults.max_span_length, "Longest span, in words.")
    flags.DEFINE_enum("replacement", defaults.replacement, ["span", "token"],
                      "Decide [MASK]/random/unchanged once per span or per wordpiece.")
    flags.DEFINE_integer("max_pair_targets", defaults.max_pair_targets,
                         "SBO targets per span: its first N wordpieces.")
    flags.DEFINE_float("mask_prob", defaults.mask_prob,
                       "Share of masked tokens replaced by [MASK].")
    flags.DEFINE_float("random_prob", defaults.random_prob,
                       "Share replaced by a random token (the rest stays unchanged).")
    flags.DEFINE_enum("random_token_source", defaults.random_token_source,
                      ["uniform", "unigram"], random_token_help or
                      "Random replacement tokens: uniform over the non-special vocabulary, or "
                      "by the corpus counts in metadata.json (records written with "
                      "--random_token_source=unigram).")
