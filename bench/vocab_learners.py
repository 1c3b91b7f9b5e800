"""Benchmark: the two library WordPiece learners, and build_vocab.py's streaming path.

On WikiText-2 (the raw test split, one paragraph a line) repeated `--repeat` times (x10 by
default) and once (x1), each in its own process (clean peak memory):

- `tf_text`: tensorflow-text's `bert_vocab_from_dataset` on a batched `TextLineDataset`
  (its `BasicTokenizer` word split);
- `keras_hub`: keras-hub's `compute_word_piece_vocabulary` on the same dataset
  (its `pretokenize` word split, `split_on_cjk`);
- `ours`: `spanbert_tf.data.vocab` (the streaming word count with our tokenizer's word
  split and a bounded word table, then tensorflow-text's `learn`: what build_vocab.py runs).

Each prints the seconds counting words, the seconds learning, the vocabulary size and the
peak resident memory (Linux `ru_maxrss`) of its process; then the ratios x10 / x1 (memory flat
in the corpus size means ~1.0) and the wordpieces per word of each vocabulary on held-out lines.

    python bench/vocab_learners.py                       # /work/shared/data/corpus, x10
    python bench/vocab_learners.py --repeat=2 --vocab_size=4000   # a quicker look

The last line is a JSON summary.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_CORPUS = os.path.join(REPO, "spanbert_tf", "resources", "wikitext-2-raw-test.txt")
SHARED_CORPUS = os.path.join(REPO, "..", "..", "shared", "data", "corpus", "wikitext-2-raw-test.txt")
RESERVED = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
METHODS = ("tf_text", "keras_hub", "ours")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=None, help="text file (default: WikiText-2 test)")
    parser.add_argument("--repeat", type=int, default=10, help="times the corpus is repeated")
    parser.add_argument("--vocab_size", type=int, default=8000)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--one", nargs=3, metavar=("METHOD", "FILE", "OUT"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dataset(path):
    import tensorflow as tf

    return (tf.data.TextLineDataset(path).filter(lambda s: tf.strings.length(s) > 0)
            .batch(1024).prefetch(2))


def run_one(method, path, out, vocab_size):
    """In a child process: learn one vocabulary, print one JSON line."""
    sys.path.insert(0, REPO)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

    start = time.perf_counter()
    if method == "tf_text":
        from tensorflow_text.python.ops import bert_tokenizer

        tokenizer = bert_tokenizer.BasicTokenizer(lower_case=False)
        counts = learner.count_words(_dataset(path).map(tokenizer.tokenize))
    elif method == "keras_hub":
        from keras_hub.src.tokenizers.word_piece_tokenizer import pretokenize

        counts = learner.count_words(_dataset(path).map(
            lambda t: pretokenize(t, False, False, True, True)))
    else:
        from spanbert_tf.data.vocab.word_counts import count_words

        counts = count_words([path], held_out_every=10 ** 9, show_progress=False).words
    counted = time.perf_counter()
    # Both library entry points end in this call (bert_vocab_from_dataset: learn(counts, ...);
    # compute_word_piece_vocabulary: learn(..., include_joiner_token=True, joiner="##")).
    vocab = learner.learn(counts if method != "ours" else sorted(counts.items()),
                          vocab_size, RESERVED, include_joiner_token=True, joiner="##")
    vocab = vocab[:vocab_size]
    learned = time.perf_counter()
    with open(out, "w", encoding="utf-8") as f:
        f.writelines(t + "\n" for t in vocab)
    print(json.dumps({"method": method, "count_s": counted - start, "learn_s": learned - counted,
                      "unique_words": len(counts), "vocab_size": len(vocab),
                      "peak_mib": _peak_mib()}))


def wordpieces_per_word(vocab_file, corpus):
    sys.path.insert(0, REPO)
    from spanbert_tf.data.vocab.coverage import vocab_coverage

    return vocab_coverage([corpus], vocab_file, False, held_out_every=100)


def main(argv=None):
    args = parse_args(argv)
    if args.one:
        return run_one(args.one[0], args.one[1], args.one[2], args.vocab_size)
    corpus = args.corpus or (SHARED_CORPUS if os.path.isfile(SHARED_CORPUS) else DEFAULT_CORPUS)
    tmp = tempfile.mkdtemp(prefix="vocab_bench_")
    big = os.path.join(tmp, f"corpus_x{args.repeat}.txt")
    with open(corpus, encoding="utf-8") as f:
        text = f.read()
    with open(big, "w", encoding="utf-8") as f:
        for _ in range(args.repeat):
            f.write(text if text.endswith("\n") else text + "\n")
    print(f"corpus {corpus}: {len(text.encode()) / 1e6:.2f} MB; x{args.repeat}: "
          f"{os.path.getsize(big) / 1e6:.2f} MB; vocab_size {args.vocab_size}", flush=True)
    results = {}
    for method in args.methods.split(","):
        for label, path in (("x1", corpus), (f"x{args.repeat}", big)):
            out = os.path.join(tmp, f"{method}-{label}.txt")
            proc = subprocess.run([sys.executable, __file__, f"--vocab_size={args.vocab_size}",
                                   "--one", method, path, out], capture_output=True, text=True)
            if proc.returncode:
                print(proc.stderr[-3000:])
                raise SystemExit(f"{method} {label} failed")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            r["vocab_file"] = out
            results[f"{method}/{label}"] = r
            print(f"{method:>9} {label:>4}: count {r['count_s']:7.1f} s  learn {r['learn_s']:7.1f} s"
                  f"  peak {r['peak_mib']:7.0f} MiB  {r['unique_words']} words -> "
                  f"{r['vocab_size']} wordpieces", flush=True)
    big_label = f"x{args.repeat}"
    for method in args.methods.split(","):
        a, b = results[f"{method}/x1"], results[f"{method}/{big_label}"]
        cov = wordpieces_per_word(b["vocab_file"], corpus)
        b["wordpieces_per_word_held_out"] = cov["wordpieces_per_word"]
        b["unknown_word_rate_held_out"] = cov["unknown_word_rate"]
        print(f"{method:>9}: {big_label}/x1 count time {b['count_s'] / a['count_s']:.2f}, "
              f"peak memory {b['peak_mib'] / a['peak_mib']:.2f}; wordpieces/word "
              f"{cov['wordpieces_per_word']:.3f} (our tokenizer, every 100th line)", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
