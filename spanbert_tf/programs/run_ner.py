r"""Trains and runs named-entity recognition (nested span classification or BIO tagging).

    python run_ner.py --init_checkpoint=MODEL_DIR --output_dir=DIR --config=ner_spanbert_base \
        --train_file=litbank/tsv --train_split_file=litbank/splits/train.txt \
        --eval_file=litbank/tsv --eval_split_file=litbank/splits/dev.txt \
        --predict_file=litbank/tsv --predict_split_file=litbank/splits/test.txt \
        [--model_type=span|token] [--max_train_steps=N] [--eval_every=N]

Trains when --train_file is given (scoring --eval_file every --eval_every steps, the best
checkpoint kept), predicts --predict_file when given (without --train_file: with the NER
model dir in --output_dir or --init_checkpoint). Files are layered TSV, CoNLL-2003
columns or JSON lines, or folders of them (docs/ner.md). DIR becomes a model dir with
the predictions in the predict file's format and eval_results.json. The last line
printed is the result as JSON.
"""

from absl import flags

from spanbert_tf import cli  # the shared front end (quiet start-up, one-line errors)
from spanbert_tf.tasks.ner.run import NerSettings, next_command, run_ner
from spanbert_tf.training import finetune

FLAGS = flags.FLAGS
flags.DEFINE_string("init_checkpoint", None,
                    "Model dir to start from; with --predict_file alone, an NER model dir.")
flags.DEFINE_string("output_dir", None, "Output model dir: checkpoints and predictions.")
flags.DEFINE_string("config", "ner_spanbert_base",
                    "NER config: ner_tiny | ner_spanbert_base | a JSON path (training only).")
flags.DEFINE_enum("model_type", None, ["span", "token"],
                  "span: nested span classification; token: flat BIO (default: the config's).")
flags.DEFINE_string("train_file", None, "Training data: .tsv / .conll / .jsonl or a folder.")
flags.DEFINE_string("train_split_file", None, "Document names to read from a --train_file folder.")
flags.DEFINE_string("eval_file", None, "Dev data, scored every --eval_every steps.")
flags.DEFINE_string("eval_split_file", None, "Document names to read from an --eval_file folder.")
flags.DEFINE_string("predict_file", None, "Data to predict: .tsv / .conll / .jsonl or a folder.")
flags.DEFINE_string("predict_split_file", None,
                    "Document names to read from a --predict_file folder.")
flags.DEFINE_enum("tag_scheme", "bio", ["bio", "iob1", "iobes"],
                  "Tag scheme of the CoNLL / TSV columns read and written.")
flags.DEFINE_integer("max_seq_length", None, "Window length in wordpieces (default: config).")
flags.DEFINE_integer("doc_stride", None,
                     "Wordpieces between the chunks of a sentence longer than a window.")
flags.DEFINE_integer("eval_every", None, "Score --eval_file every N steps (default: each epoch).")
flags.DEFINE_float("num_train_epochs", None, "Epochs (default: the config's num_epochs).")
flags.DEFINE_integer("max_train_steps", None,
                     "Stop after this many steps (the schedule still spans all epochs).")
flags.DEFINE_integer("log_every", 10, "Write train_log.jsonl (and checkpoint) every N steps.")
flags.DEFINE_integer("seed", 42, "Seed for initialisation, dropout and order.")
flags.DEFINE_bool("progress", True, "Show progress bars.")


def main(argv):
    del argv  # cli.run refuses stray arguments

    names = [n for n in NerSettings.__dataclass_fields__ if n != "show_progress"]
    settings = NerSettings(**{n: getattr(FLAGS, n) for n in names},
                           show_progress=FLAGS.progress)
    results = run_ner(settings)
    lines = [f"output dir {settings.output_dir}"]
    if results.get("f1") is not None:
        what = "predict" if settings.predict_file else "dev"
        lines.append(f"{what:<9} F1 {results['f1']:.2f}, P {results['precision']:.2f}, "
                     f"R {results['recall']:.2f}")
    if results.get("predictions"):
        lines.append(f"written   {results['predictions']}")
    lines += finetune.closing_lines(settings.output_dir if settings.train_file else None,
                                    next_command(settings, results.get("predictions")))
    summary = {k: v for k, v in results.items() if k != "per_type"}
    cli.print_summary("run_ner.py", lines, summary)


def run():
    cli.run(main, "run_ner.py")


if __name__ == "__main__":
    run()
