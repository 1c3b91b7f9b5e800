"""Counts of a coreference corpus before and after the minimize step.

    python -m spanbert_tf.tasks.coref.stats --conll=../shared/data/coref/litbank/conll \
        [--split_file=.../splits/dev.txt] [--vocab_file=...] [--max_segment_len=384]

Prints one JSON object: documents, words, sentences, mentions, entities, singleton
entities, wordpieces (with [CLS]/[SEP]), segments, and the gold mentions a c2f-coref
model cannot propose as candidates: wider than `max_span_width` (30) wordpieces,
spanning two sentences, or spanning a segment boundary.
"""

import argparse
import collections
import json
import os

import numpy as np

from spanbert_tf.tasks.coref import conll, segments
from spanbert_tf.tokenization import BertWordpieceTokenizer

MAX_SPAN_WIDTH = 30


def corpus_stats(documents, tokenizer, max_segment_len, max_span_width=MAX_SPAN_WIDTH):
    """Counts over `ConllDocument`s (see the module docstring)."""
    counts = collections.Counter()
    for document in documents:
        counts["documents"] += 1
        counts["words"] += document.num_words
        counts["sentences"] += len(document.sentences)
        counts["mentions"] += sum(len(c) for c in document.clusters)
        counts["entities"] += len(document.clusters)
        counts["singleton_entities"] += sum(1 for c in document.clusters if len(c) == 1)
        m = segments.minimize(document, tokenizer, max_segment_len)
        counts["wordpieces"] += m.num_subtokens
        counts["segments"] += len(m.sentences)
        counts["unk_words"] += m.num_unk_words
        sentence_map = np.asarray(m.sentence_map)
        segment_of = np.repeat(np.arange(len(m.sentences)), [len(s) for s in m.sentences])
        for cluster in m.clusters:
            for start, end in cluster:
                counts[f"mentions_wider_than_{max_span_width}"] += end - start + 1 > max_span_width
                counts["mentions_across_sentences"] += sentence_map[start] != sentence_map[end]
                counts["mentions_across_segments"] += segment_of[start] != segment_of[end]
    counts["max_segment_len"] = max_segment_len
    return {k: int(v) for k, v in counts.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conll", required=True, help=".conll file or folder")
    parser.add_argument("--split_file", default=None, help="document list for a folder")
    parser.add_argument("--vocab_file", default=os.path.join(
        os.path.dirname(__file__), "..", "..", "resources", "bert-base-cased-vocab.txt"))
    parser.add_argument("--do_lower_case", action="store_true")
    parser.add_argument("--max_segment_len", type=int, default=384)
    args = parser.parse_args(argv)

    tokenizer = BertWordpieceTokenizer(args.vocab_file, args.do_lower_case)
    documents = conll.read_conll_files(args.conll, args.split_file)
    print(json.dumps(corpus_stats(documents, tokenizer, args.max_segment_len)))


if __name__ == "__main__":
    main()
