r"""Fine-tunes SpanBERT on SQuAD 1.1 / 2.0 (or MRQA) and writes official-format predictions.

    python run_squad.py --init_checkpoint=MODEL_DIR --output_dir=DIR \
        [--do_train --train_file=train-v1.1.json] [--do_predict --predict_file=dev-v1.1.json] \
        [--version_2_with_negative] [--export_dir=DIR/saved_model]

MODEL_DIR is a model dir (ours or converted): its config.json, vocab.txt and
do_lower_case are used. DIR becomes a model dir of the fine-tuned model. Every
flag is documented in the README section "SQuAD".
"""

from absl import flags

from spanbert_tf import cli  # the shared front end (quiet start-up, one-line errors)
from spanbert_tf.tasks.squad.run import SquadSettings, next_command, run_squad
from spanbert_tf.training import finetune

FLAGS = flags.FLAGS
flags.DEFINE_string("init_checkpoint", None,
                    "Model dir (or checkpoint prefix) to start from; with --do_predict alone, "
                    "a fine-tuned SQuAD model dir, whose training settings (window, decoding, "
                    "version) are the defaults of the flags not given.")
flags.DEFINE_string("output_dir", None, "Output model dir: checkpoints and prediction files.")
flags.DEFINE_bool("do_train", False, "Fine-tune on --train_file (or --tfds_name's train split).")
flags.DEFINE_string("train_file", None,
                    "SQuAD-layout JSON, or MRQA .jsonl/.jsonl.gz, for training.")
flags.DEFINE_bool("do_predict", False, "Predict on --predict_file (or TFDS validation).")
flags.DEFINE_string("predict_file", None, "SQuAD-layout JSON, or MRQA .jsonl/.jsonl.gz.")
flags.DEFINE_string("tfds_name", None,
                    "Read TFDS squad/v1.1 or squad/v2.0 from --tfds_data_dir instead of files "
                    "(train split for training, validation for prediction).")
flags.DEFINE_string("tfds_data_dir", None, "TFDS data dir holding the prepared dataset.")
flags.DEFINE_bool("version_2_with_negative", False,
                  "SQuAD 2.0: unanswerable questions, null scores and null_odds.json.")
flags.DEFINE_bool("train_first_answer", False,
                  "Train on the first answer of questions with several (dev-style files); "
                  "the official code requires exactly one.")
flags.DEFINE_integer("max_seq_length", 384, "Window length in wordpieces (paper: 512).")
flags.DEFINE_integer("doc_stride", 128, "Wordpieces between the starts of adjacent windows.")
flags.DEFINE_integer("max_query_length", 64, "Questions are cut to this many wordpieces.")
flags.DEFINE_integer("train_batch_size", 32, "Global training batch size (windows).")
flags.DEFINE_integer("predict_batch_size", 32, "Prediction batch size (windows).")
flags.DEFINE_float("num_train_epochs", 4.0, "Epochs over the training windows.")
flags.DEFINE_integer("max_train_steps", None,
                     "Stop after this many steps (the schedule still spans all epochs); "
                     "for smoke tests.")
flags.DEFINE_float("learning_rate", 2e-5, "Peak AdamW learning rate.")
flags.DEFINE_float("warmup_proportion", 0.1, "Fraction of the steps with linear warmup.")
flags.DEFINE_float("weight_decay", 0.01, "AdamW weight decay (not on LayerNorm/bias).")
flags.DEFINE_integer("n_best_size", 20, "Start/end candidates per window and n-best size.")
flags.DEFINE_integer("max_answer_length", 30, "Longest answer in wordpieces.")
flags.DEFINE_float("null_score_diff_threshold", 0.0,
                   "v2.0: answer \"\" when null score - best span score exceeds this.")
flags.DEFINE_enum("strategy", "default",
                  ["default", "one_device", "mirrored", "multi_worker_mirrored", "tpu"],
                  "tf.distribute strategy.")
flags.DEFINE_integer("num_gpus", None, "GPUs for one_device/mirrored (default: all).")
flags.DEFINE_string("tpu", None, "TPU name / grpc address / 'local' for --strategy=tpu.")
flags.DEFINE_enum("mixed_precision", "float32", ["float32", "mixed_float16", "mixed_bfloat16"],
                  "Keras dtype policy for training.")
flags.DEFINE_integer("steps_per_loop", 50, "Training steps per tf.function call.")
flags.DEFINE_integer("log_every", 50, "Write train_log.jsonl every N steps.")
flags.DEFINE_integer("save_checkpoints_steps", None, "Checkpoint every N steps (default: end).")
flags.DEFINE_integer("seed", 42, "Seed for initialisation, dropout and shuffling.")
flags.DEFINE_string("export_dir", None,
                    "Also export the QA SavedModel (raw question/context strings in) here.")
flags.DEFINE_bool("progress", True, "Show progress bars.")


def main(argv):
    del argv
    names = [n for n in SquadSettings.__dataclass_fields__ if n not in ("show_progress",
                                                                         "explicit")]
    settings = SquadSettings(**{name: getattr(FLAGS, name) for name in names},
                             show_progress=FLAGS.progress,
                             explicit=frozenset(n for n in names if FLAGS[n].present))
    summary = run_squad(settings)
    lines = []
    train = summary.get("train") or {}
    if train:
        lines.append(f"trained   step {train.get('step')}, loss {train.get('loss', float('nan')):.4f}")
    predict = summary.get("predict") or {}
    if predict:
        lines.append(f"predicted {predict['num_questions']} questions ({predict['num_windows']} "
                     f"windows) -> {', '.join(sorted(predict['files'].values()))}")
        metrics, baseline = predict.get("metrics"), predict.get("baseline")
        if metrics and baseline:
            exact = "exact" if "exact" in metrics else "exact_match"
            lines.append(f"scores    exact {metrics[exact]:.2f}, f1 {metrics['f1']:.2f} "
                         f"(answering nothing: exact {baseline[exact]:.2f}, "
                         f"f1 {baseline['f1']:.2f})")
    lines.append(f"model dir {settings.output_dir}")
    lines += finetune.closing_lines(settings.output_dir if settings.do_train else None,
                                    next_command(settings))
    cli.print_summary("run_squad.py", lines, summary)


def run():
    cli.run(main, "run_squad.py")


if __name__ == "__main__":
    run()
