r"""Fine-tunes / evaluates SpanBERT on GLUE or TACRED (see the README "classification").

    python run_classifier.py --task_name=RTE --data_dir=glue/RTE \
        --init_checkpoint=runs/pretrain --output_dir=runs/rte --do_train --do_eval

`--data_dir` holds the official train.tsv / dev.tsv (MNLI: dev_matched.tsv /
dev_mismatched.tsv), or train.json / dev.json for `--task_name=tacred`. With
`--do_eval`, `output_dir/eval_results.json` and `dev_predictions.jsonl` are
written and the dev metrics are printed as one JSON line, last.
"""


from absl import flags

from spanbert_tf import cli  # the shared front end (quiet start-up, one-line errors)
from spanbert_tf.tasks.classification.run import (ClassificationSettings, next_command,
                                                  run_classifier)
from spanbert_tf.training import finetune

FLAGS = flags.FLAGS
flags.DEFINE_string("task_name", None,
                    "cola, sst-2, mrpc, sts-b, qqp, mnli (matched dev), mnli-mm (mismatched dev), "
                    "qnli, rte, wnli, or tacred (case-insensitive).")
flags.DEFINE_string("data_dir", None,
                    "Directory of the task's official train.tsv/dev.tsv (TACRED: train.json/"
                    "dev.json).")
flags.DEFINE_string("init_checkpoint", None,
                    "Model dir (ours or converted) whose encoder is fine-tuned: its config.json, "
                    "vocab.txt and do_lower_case are used. Without --do_train: a fine-tuned model "
                    "dir to evaluate when --output_dir holds none.")
flags.DEFINE_string("output_dir", None,
                    "Where the fine-tuned model dir (best checkpoint), train/ state, "
                    "eval_history.jsonl, eval_results.json and dev_predictions.jsonl go.")
flags.DEFINE_bool("do_train", False, "Fine-tune on train.")
flags.DEFINE_bool("do_eval", False, "Score the dev set (and pick the best epoch when training).")
flags.DEFINE_integer("max_seq_length", 128,
                     "Total wordpieces per example, special tokens included.")
flags.DEFINE_integer("train_batch_size", 32, "Global training batch size.")
flags.DEFINE_integer("eval_batch_size", 32, "Global evaluation batch size.")
flags.DEFINE_float("num_train_epochs", None, "Training epochs (default 10; CoLA 4).")
flags.DEFINE_float("learning_rate", 2e-5, "Peak learning rate (AdamW, linear decay).")
flags.DEFINE_float("warmup_proportion", 0.1, "Fraction of the steps with linear warmup.")
flags.DEFINE_enum("strategy", "default",
                  ["default", "one_device", "mirrored", "multi_worker_mirrored", "tpu"],
                  "tf.distribute strategy.")
flags.DEFINE_string("tpu", None, "For --strategy=tpu: TPU name, grpc://host:port or 'local'.")
flags.DEFINE_enum("mixed_precision", "float32", ["float32", "mixed_float16", "mixed_bfloat16"],
                  "Keras dtype policy for training and evaluation.")
flags.DEFINE_integer("seed", 42, "Seed of initialisation, dropout and shuffling.")
flags.DEFINE_string("tfds_data_dir", None,
                    "Read GLUE from TFDS glue/<task> prepared in this data dir (no download) "
                    "instead of --data_dir.")
flags.DEFINE_string("export_dir", None,
                    "Also export a TF Serving SavedModel (raw text in, label out) here.")
flags.DEFINE_string("negative_label", "no_relation",
                    "TACRED: the relation left out of precision/recall/F1 (SemEval: 'Other').")
flags.mark_flags_as_required(["task_name", "output_dir"])


def main(argv):
    del argv
    opts = ClassificationSettings(
        task_name=FLAGS.task_name, data_dir=FLAGS.data_dir,
        init_checkpoint=FLAGS.init_checkpoint, output_dir=FLAGS.output_dir,
        do_train=FLAGS.do_train, do_eval=FLAGS.do_eval, max_seq_length=FLAGS.max_seq_length,
        train_batch_size=FLAGS.train_batch_size, eval_batch_size=FLAGS.eval_batch_size,
        num_train_epochs=FLAGS.num_train_epochs, learning_rate=FLAGS.learning_rate,
        warmup_proportion=FLAGS.warmup_proportion, strategy=FLAGS.strategy, tpu=FLAGS.tpu,
        mixed_precision=FLAGS.mixed_precision, seed=FLAGS.seed,
        tfds_data_dir=FLAGS.tfds_data_dir, export_dir=FLAGS.export_dir,
        negative_label=FLAGS.negative_label)
    results = run_classifier(opts)
    lines = []
    if results:
        names = [k for k in results if k != "baseline"]
        lines.append("dev      " + ", ".join(f"{k} {results[k]:.4f}" for k in names))
        baseline = results.get("baseline")
        if baseline:
            lines.append(f"baseline always {baseline['always']!r}: " + ", ".join(
                f"{k} {baseline[k]:.4f}" for k in names))
    written = [what for flag, what in ((opts.do_train, "best checkpoint, config.json"),
                                        (opts.do_eval, "eval_results.json, dev_predictions.jsonl"))
               if flag]
    if written:
        lines.append(f"written  {opts.output_dir} ({'; '.join(written)})")
    if opts.export_dir:
        lines.append(f"export   {opts.export_dir}")
    lines += finetune.closing_lines(opts.output_dir if opts.do_train else None,
                                    next_command(opts))
    cli.print_summary("run_classifier.py", lines, results or None)


def run():
    cli.run(main, "run_classifier.py")


if __name__ == "__main__":
    run()
