r"""Scores SQuAD predictions with the official v1.1 / v2.0 definitions.

    python evaluate_squad.py --data_file=dev-v2.0.json --pred_file=out/predictions.json \
        [--na_prob_file=out/null_odds.json] [--na_prob_thresh=1.0] [--version=2.0]

The version comes from the data file's `version` field unless `--version` is given.
The result (the official scripts' keys and values) is printed as one JSON line, last.
"""


from absl import flags

from spanbert_tf import cli  # the shared front end (quiet start-up, one-line errors)
from spanbert_tf.tasks.squad import metrics as squad_metrics
from spanbert_tf.tasks.squad.predict import write_json_atomic

FLAGS = flags.FLAGS
flags.DEFINE_string("data_file", None, "SQuAD-layout JSON with the gold answers.")
flags.DEFINE_string("pred_file", None, "predictions.json: {question id: answer text}.")
flags.DEFINE_string("na_prob_file", None,
                    "v2.0 only: {question id: no-answer score} (e.g. null_odds.json); enables "
                    "best_exact/best_f1 and their thresholds.")
flags.DEFINE_float("na_prob_thresh", 1.0,
                   "v2.0 only: predict no answer where the no-answer score exceeds this.")
flags.DEFINE_enum("version", None, ["1.1", "2.0"],
                  "Override the version read from the data file's `version` field.")
flags.DEFINE_string("out_file", None, "Also write the result JSON to this file (atomically).")
flags.mark_flags_as_required(["data_file", "pred_file"])


def main(argv):
    del argv
    result = squad_metrics.evaluate_files(
        FLAGS.data_file, FLAGS.pred_file, FLAGS.na_prob_file, FLAGS.version,
        FLAGS.na_prob_thresh)
    if FLAGS.out_file:
        write_json_atomic(FLAGS.out_file, result)
    baseline = squad_metrics.no_answer_baseline(
        squad_metrics.load_json_file(FLAGS.data_file, "data"), FLAGS.version)
    exact = "exact" if "exact" in result else "exact_match"
    lines = [f"scores    exact {result[exact]:.2f}, f1 {result['f1']:.2f} "
             f"({result.get('total', '?')} questions)",
             f"baseline  answering nothing: exact {baseline[exact]:.2f}, "
             f"f1 {baseline['f1']:.2f}"]
    if FLAGS.out_file:
        lines.append(f"written   {FLAGS.out_file}")
    cli.print_summary("evaluate_squad.py", lines, result)


def run():
    cli.run(main, "evaluate_squad.py")


if __name__ == "__main__":
    run()
