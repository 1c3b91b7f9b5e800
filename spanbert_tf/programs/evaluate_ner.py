r"""Scores named-entity predictions: exact-match precision, recall and F1 per type and micro.

    python evaluate_ner.py --gold_file=litbank/tsv --split_file=litbank/splits/test.txt \
        --pred_file=runs/ner/predictions
    python evaluate_ner.py --gold_file=test.conll --pred_file=runs/ner/predictions.conll

Files are layered TSV (`.tsv`), CoNLL-2003 columns (`.conll`, `.txt`, `.bio`, `.iob`;
`--tag_scheme` bio | iob1 | iobes) or JSON lines (`.jsonl`), or folders of them; gold and
predictions are matched by document id. A predicted entity is correct when its start, end
and type equal a gold entity's (nested entities count one each). Prints the per-type
table, then the micro scores as JSON on the last line: {"precision", "recall", "f1"} in %.
"""

import json

from absl import flags

from spanbert_tf import cli  # the shared front end (quiet start-up, one-line errors)
from spanbert_tf import io_utils
from spanbert_tf.tasks.ner import metrics
from spanbert_tf.tasks.ner.schemes import SCHEMES

FLAGS = flags.FLAGS
flags.DEFINE_string("gold_file", None, "Gold file or folder: .tsv / .conll / .jsonl.")
flags.DEFINE_string("pred_file", None, "Predicted file or folder: .tsv / .conll / .jsonl.")
flags.DEFINE_string("split_file", None,
                    "For a gold folder: the document file names (without suffix) to read.")
flags.DEFINE_enum("tag_scheme", "bio", list(SCHEMES), "Tag scheme of CoNLL / TSV columns.")
flags.DEFINE_string("out_file", None, "Also write all the scores as JSON (atomically).")
flags.mark_flags_as_required(["gold_file", "pred_file"])


def main(argv):
    del argv  # cli.run refuses stray arguments
    scores = metrics.evaluate_files(FLAGS.gold_file, FLAGS.pred_file, FLAGS.split_file,
                                    FLAGS.tag_scheme)
    if FLAGS.out_file:
        io_utils.write_json_atomic(FLAGS.out_file, scores)
    print(metrics.format_table(scores))
    print(json.dumps(metrics.micro(scores)), flush=True)  # the micro scores, on the last line


def run():
    cli.run(main, "evaluate_ner.py")


if __name__ == "__main__":
    run()
