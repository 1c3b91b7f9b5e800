"""Streaming word counts of text files, split into words exactly as our tokenizer splits them.

The corpus is read line by line in batches; each batch goes through the basic tokenizer of
`spanbert_tf.tokenization` (BERT's rules: text cleaning, CJK ideographs as words, punctuation
as words, lower-casing + accent stripping with `do_lower_case`), so the learner sees the very
words the tokenizer will later cut into wordpieces. Memory does not grow with the corpus:
a batch of lines at a time, and a word table of at most `max_unique_words` entries (when it
fills, the rarest half is dropped, counted and reported: a bounded, deterministic pruning).

Every `held_out_every`-th non-blank line (1-based line numbers divisible by it) is held out
of the counts for the coverage report (`spanbert_tf.data.vocab.coverage`).

Example:
```python
counts = count_words(["corpus.txt"], do_lower_case=False, held_out_every=100)
counts.words.most_common(3), counts.lines, counts.pruned_words
```
"""

import collections
import dataclasses
import glob
import gzip
import os

import tqdm

from spanbert_tf.errors import InputError, MissingFileError
from spanbert_tf.tokenization import basic_tokenizer_tf

BATCH_LINES = 2048


@dataclasses.dataclass
class WordCounts:
    """What the counting pass saw."""

    words: collections.Counter
    lines: int = 0
    held_out_lines: int = 0
    tokens: int = 0
    bytes: int = 0
    pruned_words: int = 0
    prunings: int = 0


def expand_input_files(patterns):
    """Comma-separated files or globs → sorted existing paths (an error naming any miss)."""
    if isinstance(patterns, str):
        patterns = [p for p in patterns.split(",") if p.strip()]
    files = []
    for pattern in patterns:
        found = sorted(glob.glob(pattern.strip()))
        if not found:
            raise MissingFileError(f"--input_file {pattern!r}: no such file")
        files += found
    if not files:
        raise InputError("--input_file: no input files given")
    return files


def _open_binary(path):
    return gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")


def iter_line_batches(files, held_out_every, want_held_out, progress=None):
    """Yields lists of non-blank lines: the training lines (want_held_out=False) or the
    held-out ones. Advances `progress` (a tqdm bar) by the bytes read."""
    number, batch = 0, []
    for path in files:
        with _open_binary(path) as f:
            for line_no, raw in enumerate(f, 1):
                if progress is not None:
                    progress.update(len(raw))
                try:
                    line = raw.decode("utf-8").strip()
                except UnicodeDecodeError as e:
                    raise InputError(f"{path}: line {line_no} is not UTF-8 ({e.reason} at "
                                     f"byte {e.start})") from None
                if not line:
                    continue
                number += 1
                held_out = bool(held_out_every) and number % held_out_every == 0
                if held_out == want_held_out:
                    batch.append(line)
                    if len(batch) >= BATCH_LINES:
                        yield batch
                        batch = []
    if batch:
        yield batch


def _prune(counter, keep):
    """Keeps the `keep` most frequent words (ties: alphabetical), returns how many went."""
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    dropped = len(ranked) - keep
    counter.clear()
    counter.update(dict(ranked[:keep]))
    return dropped


def count_words(files, do_lower_case=False, held_out_every=100, max_unique_words=2_000_000,
                show_progress=True):
    """One streaming pass: word counts of the training lines (held-out lines skipped)."""
    import tensorflow as tf

    if max_unique_words < 2:
        raise InputError(f"--max_unique_words must be >= 2, got {max_unique_words}")
    tokenizer = basic_tokenizer_tf(do_lower_case)
    split = tf.function(lambda t: tokenizer.tokenize(t).flat_values,
                        input_signature=[tf.TensorSpec([None], tf.string)])
    total = sum(os.path.getsize(p) for p in files)
    result = WordCounts(collections.Counter())
    with tqdm.tqdm(total=total, unit="B", unit_scale=True, desc="counting words",
                   disable=not show_progress) as bar:
        for batch in iter_line_batches(files, held_out_every, False, bar):
            words = split(tf.constant(batch)).numpy()
            result.words.update(words.tolist())
            result.lines += len(batch)
            result.tokens += int(words.size)
            if len(result.words) > max_unique_words:
                result.pruned_words += _prune(result.words, max_unique_words // 2)
                result.prunings += 1
    result.bytes = total
    result.words = collections.Counter(
        {w.decode("utf-8"): c for w, c in result.words.items()})
    return result
