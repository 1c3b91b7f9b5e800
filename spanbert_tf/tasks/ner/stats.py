"""Counts of a named-entity corpus, as the span model sees it.

    python -m spanbert_tf.tasks.ner.stats --data=../shared/data/ner/litbank/tsv \
        [--split_file=.../splits/dev.txt] [--tag_scheme=bio] [--vocab_file=...] \
        [--max_span_width=8]

Prints one JSON object: documents, sentences, words, entities, entities per type and per
nesting depth (1 = no entity inside it, 2 = holds a depth-1 entity, ...), the entity
widths in wordpieces (mean, max, and how many fit 1, 2-3, 4-7, 8-15, 16+ wordpieces),
and the entities the span model cannot propose: wider than `max_span_width` words.
"""

import argparse
import collections
import json
import os

import numpy as np

from spanbert_tf.tasks.ner import formats, schemes
from spanbert_tf.tokenization import BertWordpieceTokenizer

MAX_SPAN_WIDTH = 8
WIDTH_BUCKETS = ((1, 1), (2, 3), (4, 7), (8, 15), (16, None))


def _bucket(width):
    for low, high in WIDTH_BUCKETS:
        if high is None or width <= high:
            return f"{low}+" if high is None else (f"{low}" if low == high else f"{low}-{high}")
    return None


def corpus_stats(documents, tokenizer, max_span_width=MAX_SPAN_WIDTH):
    """Counts over `NerDocument`s (see the module docstring)."""
    counts = collections.Counter()
    per_type, per_depth, buckets = collections.Counter(), collections.Counter(), {}
    widths = []
    for doc in documents:
        counts["documents"] += 1
        counts["sentences"] += len(doc.sentences)
        counts["words"] += doc.num_words
        words = [w for sentence in doc.sentences for w in sentence]
        _, splits = tokenizer.tokenize_to_ids_flat(words)
        pieces = np.maximum(np.diff(splits), 1)      # a word with no piece is one [UNK]
        first = 0
        for sentence, found in zip(doc.sentences, doc.entities):
            offsets = np.concatenate([[0], np.cumsum(pieces[first:first + len(sentence)])])
            first += len(sentence)
            for depth, layer in enumerate(schemes.nesting_layers(found), 1):
                per_depth[str(depth)] += len(layer)
            for start, end, kind in found:
                counts["entities"] += 1
                per_type[kind] += 1
                width = int(offsets[end] - offsets[start])
                widths.append(width)
                key = _bucket(width)
                buckets[key] = buckets.get(key, 0) + 1
                counts[f"entities_wider_than_{max_span_width}_words"] += (
                    end - start > max_span_width)
    out = {k: int(v) for k, v in counts.items()}
    out.setdefault("entities", 0)
    out.setdefault(f"entities_wider_than_{max_span_width}_words", 0)
    out["entities_per_type"] = dict(sorted(per_type.items()))
    out["entities_per_depth"] = dict(sorted(per_depth.items(), key=lambda kv: int(kv[0])))
    out["wordpiece_width_mean"] = round(float(np.mean(widths)), 3) if widths else 0.0
    out["wordpiece_width_max"] = int(max(widths, default=0))
    out["wordpiece_widths"] = {_bucket(low): buckets.get(_bucket(low), 0)
                               for low, _ in WIDTH_BUCKETS}
    out["max_span_width"] = max_span_width
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="NER file (.tsv/.conll/.jsonl) or folder")
    parser.add_argument("--split_file", default=None, help="document list for a folder")
    parser.add_argument("--tag_scheme", default="bio", choices=schemes.SCHEMES)
    parser.add_argument("--vocab_file", default=os.path.join(
        os.path.dirname(__file__), "..", "..", "resources", "bert-base-cased-vocab.txt"))
    parser.add_argument("--do_lower_case", action="store_true")
    parser.add_argument("--max_span_width", type=int, default=MAX_SPAN_WIDTH)
    args = parser.parse_args(argv)

    tokenizer = BertWordpieceTokenizer(args.vocab_file, args.do_lower_case)
    documents = formats.read_ner_files(args.data, args.split_file, args.tag_scheme)
    print(json.dumps(corpus_stats(documents, tokenizer, args.max_span_width)))


if __name__ == "__main__":
    main()
