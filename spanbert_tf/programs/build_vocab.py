r"""Learns a BERT WordPiece vocabulary from your corpus and reports its coverage.

Streams the corpus once (memory does not grow with it), learns the wordpieces with
tensorflow-text's WordPiece learner, writes `--output_file` atomically and
`<output_file>.coverage.json`: unknown-word rate and wordpieces per word on held-out
lines, beside the same figures for the BERT cased vocabulary.

Example:
    python build_vocab.py --input_file=corpus/*.txt --output_file=runs/vocab/vocab.txt \
        --vocab_size=30000
    python build_vocab.py --input_file=zh.txt --output_file=zh-vocab.txt --vocab_size=21000 \
        --do_lower_case --reserved_tokens="[PAD],[UNK],[CLS],[SEP],[MASK],[unused1]"
"""

from absl import flags

from spanbert_tf import cli
from spanbert_tf.data.vocab.build import VocabConfig, build_vocab, format_summary

_D = VocabConfig()
FLAGS = flags.FLAGS

flags.DEFINE_string("input_file", None, "Comma-separated text files or globs (.gz read "
                    "transparently), one sentence/paragraph per line.")
flags.DEFINE_string("output_file", _D.output_file, "Where vocab.txt goes (written atomically).")
flags.DEFINE_integer("vocab_size", _D.vocab_size,
                     "Largest vocabulary size; the learner lands within 5% below it.")
flags.DEFINE_bool("do_lower_case", _D.do_lower_case,
                  "Lower-case and strip accents before learning (an uncased vocabulary: "
                  "pass --do_lower_case to create_pretraining_data.py too).")
flags.DEFINE_list("reserved_tokens", list(_D.reserved_tokens),
                  "Tokens placed first in the vocabulary, in this order; must include "
                  "[PAD] [UNK] [CLS] [SEP] [MASK].")
flags.DEFINE_integer("held_out_every", _D.held_out_every,
                     "Every N-th non-blank line is held out of learning and used for the "
                     "coverage report.")
flags.DEFINE_integer("max_unique_words", _D.max_unique_words,
                     "Bound of the word table: when full, the rarer half is dropped (reported).")
flags.DEFINE_string("compare_vocab_file", _D.compare_vocab_file,
                    "Reference vocabulary of the coverage report (default: BERT cased); "
                    "empty for none.")
flags.DEFINE_bool("compare_do_lower_case", _D.compare_do_lower_case,
                  "Lower-case for the reference vocabulary (an uncased reference).")
flags.DEFINE_string("report_file", None, "Coverage report (default <output_file>.coverage.json).")
flags.DEFINE_integer("max_held_out_lines", _D.max_held_out_lines,
                     "At most this many held-out lines are tokenized for the report.")
flags.DEFINE_bool("progress", _D.progress, "Show a progress bar.")


def main(argv):
    del argv
    config = VocabConfig(
        input_file=FLAGS.input_file, output_file=FLAGS.output_file, vocab_size=FLAGS.vocab_size,
        do_lower_case=FLAGS.do_lower_case, reserved_tokens=tuple(FLAGS.reserved_tokens),
        held_out_every=FLAGS.held_out_every, max_unique_words=FLAGS.max_unique_words,
        compare_vocab_file=FLAGS.compare_vocab_file or None,
        compare_do_lower_case=FLAGS.compare_do_lower_case, report_file=FLAGS.report_file,
        max_held_out_lines=FLAGS.max_held_out_lines, progress=FLAGS.progress)
    print(format_summary(build_vocab(config)))


def run():
    cli.run(main, "build_vocab.py")


if __name__ == "__main__":
    run()
