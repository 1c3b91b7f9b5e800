r"""Scores coreference predictions with the CoNLL-2012 reference scorer's definitions.

    python evaluate_coref.py --gold_file=dev.english.v4_gold_conll --pred_file=out/predictions.conll
    python evaluate_coref.py --gold_file=litbank/conll --split_file=litbank/splits/dev.txt \
        --pred_file=out/predictions.jsonlines

Files are CoNLL-2012 (`.conll`, `*_gold_conll`, or a folder of them, `--split_file`
naming the documents) or `.jsonlines`: official examples (clusters mapped to words
through `subtoken_map`) or, in records without `subtoken_map`, word-span clusters
(`[start, end, ...]`, e.g. with the mention text). Prints MUC, B3, CEAF-m, CEAF-e, LEA and mention identification
(recall, precision, F1 in percent), the CoNLL average F1, then the result as one
JSON line, last.
"""

import json

from absl import flags

from spanbert_tf import cli  # the shared front end (quiet start-up, one-line errors)
from spanbert_tf import io_utils
from spanbert_tf.tasks.coref import metrics

FLAGS = flags.FLAGS
flags.DEFINE_string("gold_file", None, "Gold (key) file or folder: .conll / .jsonlines.")
flags.DEFINE_string("pred_file", None, "Predicted (response) file or folder: .conll / .jsonlines.")
flags.DEFINE_string("split_file", None,
                    "For folders: a list of document file names (without .conll) to read.")
flags.DEFINE_integer("max_repeated_mentions", 10,
                     "Refuse to score past this many repeated response mentions, as the "
                     "reference scorer; -1: no limit.")
flags.DEFINE_string("out_file", None, "Also write the result JSON to this file (atomically).")
flags.mark_flags_as_required(["gold_file", "pred_file"])


def main(argv):
    del argv  # cli.run refuses stray arguments
    limit = None if FLAGS.max_repeated_mentions < 0 else FLAGS.max_repeated_mentions
    result = metrics.evaluate_files(FLAGS.gold_file, FLAGS.pred_file, FLAGS.split_file, limit)
    if FLAGS.out_file:
        io_utils.write_json_atomic(FLAGS.out_file, result)
    print(metrics.format_table(result))
    print(json.dumps(result), flush=True)  # the results, on the last line


def run():
    cli.run(main, "evaluate_coref.py")


if __name__ == "__main__":
    run()
