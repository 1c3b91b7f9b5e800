r"""Trains and runs coreference resolution (c2f-coref "independent") on a SpanBERT backbone.

    python run_coref.py --init_checkpoint=MODEL_DIR --output_dir=DIR --config=coref_spanbert_base \
        [--do_train --train_file=litbank/conll --train_split_file=litbank/splits/train.txt \
         --dev_file=litbank/conll --dev_split_file=litbank/splits/dev.txt --eval_every=500] \
        [--do_predict --predict_file=test.conll] [--output_singletons]

MODEL_DIR is a model dir (ours or converted); files are .conll / *_gold_conll, a
folder of them (with a split file), or official .jsonlines. DIR becomes a model dir
of the coreference model with predictions.conll, predictions.jsonlines and
eval_results.json. Every flag is documented in the README section "Coreference".
The last line printed is the result as JSON.
"""

from absl import flags

from spanbert_tf import cli  # the shared front end (quiet start-up, one-line errors)
from spanbert_tf.tasks.coref.metrics import METRICS
from spanbert_tf.tasks.coref.run import CorefSettings, next_command, run_coref
from spanbert_tf.training import finetune

FLAGS = flags.FLAGS
flags.DEFINE_string("init_checkpoint", None,
                    "Model dir to start from; with --do_predict alone, a coreference model dir.")
flags.DEFINE_string("output_dir", None, "Output model dir: checkpoints and prediction files.")
flags.DEFINE_string("config", "coref_spanbert_base",
                    "Coreference config: coref_tiny | coref_spanbert_base | "
                    "coref_spanbert_large | a JSON path (training only).")
flags.DEFINE_bool("do_train", False, "Train on --train_file.")
flags.DEFINE_string("train_file", None, "Training documents: .conll, folder or .jsonlines.")
flags.DEFINE_string("train_split_file", None, "Document names to read from a --train_file folder.")
flags.DEFINE_string("dev_file", None, "Dev documents, scored every --eval_every steps.")
flags.DEFINE_string("dev_split_file", None, "Document names to read from a --dev_file folder.")
flags.DEFINE_bool("do_predict", False, "Predict --predict_file.")
flags.DEFINE_string("predict_file", None, "Documents to predict: .conll, folder or .jsonlines.")
flags.DEFINE_string("predict_split_file", None,
                    "Document names to read from a --predict_file folder.")
flags.DEFINE_bool("output_singletons", False,
                  "Also output kept spans with a positive mention score and no antecedent.")
flags.DEFINE_integer("eval_every", None, "Score --dev_file every N steps (default: each epoch).")
flags.DEFINE_float("num_train_epochs", None, "Epochs (default: the config's num_epochs).")
flags.DEFINE_integer("max_train_steps", None,
                     "Stop after this many steps (the schedule still spans all epochs).")
flags.DEFINE_integer("log_every", 10, "Write train_log.jsonl (and checkpoint) every N steps.")
flags.DEFINE_integer("seed", 42, "Seed for initialisation, dropout, order and windows.")
flags.DEFINE_bool("progress", True, "Show progress bars.")


def main(argv):
    del argv  # cli.run refuses stray arguments

    names = [n for n in CorefSettings.__dataclass_fields__ if n != "show_progress"]
    settings = CorefSettings(**{n: getattr(FLAGS, n) for n in names},
                             show_progress=FLAGS.progress)
    results = run_coref(settings)
    lines = [f"output dir {settings.output_dir}"]
    if results.get("conll_f1") is not None:
        what = "predict" if settings.do_predict else "dev"
        lines.append(f"{what:<9} CoNLL F1 {results['conll_f1']:.2f}" + "".join(
            f", {m.upper()} {_f1(results[m]):.2f}" for m in METRICS if m in results))
    elif results.get("num_documents") is not None:
        lines.append(f"predicted {results['num_documents']} documents (no gold clusters)")
    lines += finetune.closing_lines(settings.output_dir if settings.do_train else None,
                                    next_command(settings))
    cli.print_summary("run_coref.py", lines, results)


def _f1(value):
    """A metric's F1: the value of a dev record, or the "f1" of a prediction's scores."""
    return value["f1"] if isinstance(value, dict) else value

def run():
    cli.run(main, "run_coref.py")


if __name__ == "__main__":
    run()
