r"""Scores SQuAD predictions with the official v1.1 / v2.0 definitions, MRQA predictions
with the official MRQA 2019 shared-task definitions.

    python evaluate_squad.py --data_file=dev-v2.0.json --pred_file=out/predictions.json \
        [--na_prob_file=out/null_odds.json] [--na_prob_thresh=1.0] [--version=2.0] \
        [--nbest_file=out/nbest_predictions.json]
    python evaluate_squad.py --format=mrqa --data_file=dev/SQuAD.jsonl.gz \
        --pred_file=out/predictions.json [--skip_no_answer]

The version comes from the data file's `version` field unless `--version` is given.
The summary puts the scores next to the no-answer baseline (answering nothing), with the
answerable (HasAns) and unanswerable (NoAns) questions apart. On SQuAD 2.0, `--nbest_file`
adds the scores of the model made to answer (its best non-empty span everywhere): on the
answerable questions they show what it learned about spans whatever its no-answer
threshold; with `--na_prob_file` also `best_f1`, the best score over every threshold,
picked on this data (optimistic).
With `--format=mrqa` (the default for a `.jsonl` / `.jsonl.gz` data file) the gold answers
are the MRQA file's `answers` and the result is what `mrqa_official_eval.py` prints.
The result (the official scripts' keys and values) is printed as one JSON line, last.
"""


from absl import flags

from spanbert_tf import cli  # the shared front end (quiet start-up, one-line errors)
from spanbert_tf.tasks.squad import metrics as squad_metrics
from spanbert_tf.tasks.squad import mrqa
from spanbert_tf.tasks.squad import predict as squad_predict
from spanbert_tf.tasks.squad.predict import write_json_atomic

FLAGS = flags.FLAGS
flags.DEFINE_string("data_file", None,
                    "SQuAD-layout JSON, or an MRQA .jsonl/.jsonl.gz file, with the gold answers.")
flags.DEFINE_enum("format", None, ["squad", "mrqa"],
                  "Data file format (default: mrqa for a .jsonl/.jsonl.gz file, else squad).")
flags.DEFINE_bool("skip_no_answer", False,
                  "mrqa only: leave questions without a prediction out of the total (official "
                  "--skip-no-answer); by default they score 0.")
flags.DEFINE_string("pred_file", None, "predictions.json: {question id: answer text}.")
flags.DEFINE_string("na_prob_file", None,
                    "v2.0 only: {question id: no-answer score} (e.g. null_odds.json); enables "
                    "best_exact/best_f1 and their thresholds.")
flags.DEFINE_float("na_prob_thresh", 1.0,
                   "v2.0 only: predict no answer where the no-answer score exceeds this.")
flags.DEFINE_enum("version", None, ["1.1", "2.0"],
                  "Override the version read from the data file's `version` field.")
flags.DEFINE_string("nbest_file", None,
                    "v2.0 only: nbest_predictions.json of run_squad.py; adds the scores of the "
                    "best non-empty span per question (the model made to answer).")
flags.DEFINE_string("out_file", None, "Also write the result JSON to this file (atomically).")
flags.mark_flags_as_required(["data_file", "pred_file"])


def _scores(result, prefix=""):
    exact = "exact" if f"{prefix}exact" in result else "exact_match"
    return f"exact {result[prefix + exact]:.2f}, f1 {result[prefix + 'f1']:.2f}"


def _main_mrqa():
    squad_only = [f"--{name}" for name in ("na_prob_file", "version", "nbest_file")
                  if FLAGS[name].present]
    if squad_only:
        raise squad_metrics.SquadEvalError(f"{', '.join(squad_only)}: SQuAD only (the MRQA "
                                           "evaluation has no no-answer scores)")
    answers, header = mrqa.read_gold_answers(FLAGS.data_file)
    predictions = squad_metrics.load_predictions(FLAGS.pred_file)
    result = mrqa.evaluate(answers, predictions, FLAGS.skip_no_answer, source=FLAGS.data_file)
    missing = sum(qid not in predictions for qid in answers)
    counted = len(answers) - (missing if FLAGS.skip_no_answer else 0)
    name = f"{header.get('dataset', '?')} {header.get('split', header.get('mrqa_split', ''))}"
    lines = [f"data      MRQA {name.strip()}: {len(answers)} questions",
             f"scores    {_scores(result)} ({counted} questions"
             + (f"; {missing} without a prediction "
                + ("left out)" if FLAGS.skip_no_answer else "scored 0)") if missing else ")"),
             f"baseline  answering nothing: {_scores(mrqa.no_answer_baseline(answers))}"]
    if FLAGS.out_file:
        write_json_atomic(FLAGS.out_file, result)
        lines.append(f"written   {FLAGS.out_file}")
    cli.print_summary("evaluate_squad.py", lines, result)


def main(argv):
    del argv
    fmt = FLAGS.format or ("mrqa" if mrqa.is_mrqa_path(FLAGS.data_file) else "squad")
    if fmt == "mrqa":
        return _main_mrqa()
    if FLAGS.skip_no_answer:
        raise squad_metrics.SquadEvalError("--skip_no_answer: MRQA only (--format=mrqa)")
    result = squad_metrics.evaluate_files(
        FLAGS.data_file, FLAGS.pred_file, FLAGS.na_prob_file, FLAGS.version,
        FLAGS.na_prob_thresh)
    dataset = squad_metrics.load_json_file(FLAGS.data_file, "data")
    baseline = squad_metrics.no_answer_baseline(dataset, FLAGS.version)
    lines = [f"scores    {_scores(result)} ({result.get('total', '?')} questions"
             + (f"; no-answer threshold {FLAGS.na_prob_thresh:g})" if FLAGS.na_prob_file
                else ")")]
    if "HasAns_f1" in result:
        lines.append(f"          answerable {_scores(result, 'HasAns_')} "
                     f"({result['HasAns_total']} questions)")
    if "NoAns_f1" in result:
        lines.append(f"          unanswerable {_scores(result, 'NoAns_')} "
                     f"({result['NoAns_total']} questions)")
    lines.append(f"baseline  answering nothing: {_scores(baseline)}"
                 + (f"; answerable f1 {baseline['HasAns_f1']:.2f}" if "HasAns_f1" in baseline
                    else ""))
    if FLAGS.nbest_file:
        if "NoAns_f1" not in result and "HasAns_f1" not in result:
            raise squad_metrics.SquadEvalError("--nbest_file: only for SQuAD 2.0 data")
        nbest = squad_metrics.load_nbest_file(FLAGS.nbest_file)
        na_probs = (squad_metrics.load_predictions(FLAGS.na_prob_file, "na_probs")
                    if FLAGS.na_prob_file else None)
        forced = squad_metrics.made_to_answer_scores(
            dataset, squad_predict.best_non_null_predictions(nbest), na_probs)
        result["made_to_answer"] = forced
        lines.append(f"spans     made to answer (best non-empty span): answerable "
                     f"{_scores(forced, 'HasAns_')} (answering nothing: 0)")
        if "best_f1" in forced:
            lines.append(f"best      exact {forced['best_exact']:.2f} (no-answer threshold "
                         f"{forced['best_exact_thresh']:.2f}), f1 {forced['best_f1']:.2f} "
                         f"(threshold {forced['best_f1_thresh']:.2f}): picked on this data, "
                         "optimistic")
            tuned = forced["no_answer_threshold"]
            lines.append("tuning    on held-out tuning data, predict with "
                         f"--null_score_diff_threshold={'-inf' if tuned is None else tuned}"
                         + (" (no threshold beats answering nothing)" if tuned is None else ""))
    if FLAGS.out_file:
        write_json_atomic(FLAGS.out_file, result)
        lines.append(f"written   {FLAGS.out_file}")
    cli.print_summary("evaluate_squad.py", lines, result)


def run():
    cli.run(main, "evaluate_squad.py")


if __name__ == "__main__":
    run()
