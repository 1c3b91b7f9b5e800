"""How well a vocabulary covers text: unknown-word rate and wordpieces per word.

A word is a token of the basic tokenizer (BERT's word split); it is unknown when WordPiece
cannot cover it (it becomes `[UNK]`). Both figures are measured on the held-out lines of
the corpus with `BertWordpieceTokenizer`, the tokenizer the data pipeline uses.

Example:
```python
stats = vocab_coverage(["corpus.txt"], "vocab.txt", do_lower_case=False, held_out_every=100)
stats["unknown_word_rate"], stats["wordpieces_per_word"]
```
"""

import numpy as np

from spanbert_tf.data.vocab.word_counts import iter_line_batches
from spanbert_tf.tokenization import BertWordpieceTokenizer


def vocab_coverage(files, vocab_file, do_lower_case, held_out_every, max_lines=None):
    """{"lines", "words", "unknown_words", "unknown_word_rate", "wordpieces",
    "wordpieces_per_word", "vocab_file", "vocab_size", "do_lower_case"} on the held-out lines."""
    tokenizer = BertWordpieceTokenizer(vocab_file, do_lower_case)
    tf_tokenizer = tokenizer.tf_tokenizer()
    lines = words = unknown = pieces = 0
    for batch in iter_line_batches(files, held_out_every, True):
        if max_lines is not None:
            batch = batch[:max(0, max_lines - lines)]
            if not batch:
                break
        ids = tf_tokenizer.tokenize(batch)            # [lines, words, wordpieces]
        per_word = ids.merge_dims(0, 1)                # [words, wordpieces]
        lengths = per_word.row_lengths().numpy()
        is_unk = (per_word.flat_values.numpy() == tokenizer.unk_id)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        unk_words = np.add.reduceat(is_unk, starts) if len(lengths) else np.zeros(0)
        lines += len(batch)
        words += len(lengths)
        unknown += int(np.count_nonzero(unk_words))
        pieces += int(lengths.sum())
    return {
        "vocab_file": str(vocab_file),
        "vocab_size": tokenizer.vocab_size,
        "do_lower_case": bool(do_lower_case),
        "lines": lines,
        "words": words,
        "unknown_words": unknown,
        "unknown_word_rate": unknown / words if words else 0.0,
        "wordpieces": pieces,
        "wordpieces_per_word": pieces / words if words else 0.0,
    }


def format_coverage_table(rows):
    """A plain-text table of `vocab_coverage` results, one row each."""
    header = f"{'vocabulary':<40} {'size':>7} {'lower':>5} {'words':>8} {'unk rate':>9} {'pieces/word':>11}"
    lines = [header, "-" * len(header)]
    for name, r in rows:
        lines.append(f"{name[-40:]:<40} {r['vocab_size']:>7} {str(r['do_lower_case'])[0]:>5} "
                     f"{r['words']:>8} {100 * r['unknown_word_rate']:>8.3f}% "
                     f"{r['wordpieces_per_word']:>11.3f}")
    return "\n".join(lines)
