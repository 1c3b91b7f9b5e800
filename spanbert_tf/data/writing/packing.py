"""Single-sequence packing (SpanBERT §3.3): lines of ONE document → blocks.

Each instance is `[CLS] block [SEP]` with a block of at most `max_tokens`
(= max_seq_length - 2) wordpieces: consecutive lines of one document, added
greedily while they fit; a block never crosses a document boundary. A line
longer than `max_tokens` is, with `long_lines="split"` (default), cut into
chunks of at most `max_tokens` wordpieces at word starts (a piece not starting
with "##"; a single word longer than a block is cut where it must), the chunks
being packed like lines; with `long_lines="drop"` such a line is dropped, as in
the official SpanBERT code. Lines without wordpieces are ignored.

Blocks are returned as `(start, end)` ranges into the part's flat id array, so
no wordpiece is copied.

Example:
```python
flat, splits = tokenizer.tokenize_to_ids_flat(part.lines)
blocks, counts = pack_lines(splits, tokenizer.word_start_table[flat], 510)
instance = np.concatenate([[cls_id], flat[s:e], [sep_id]])  # for (s, e) in blocks
```
"""

import numpy as np

from spanbert_tf.errors import InputError

LONG_LINE_MODES = ("split", "drop")


def split_at_word_starts(start, end, is_word_start, max_tokens):
    """Cuts [start, end) into chunks of <= max_tokens, each ending before a word start.

    Args:
        start, end: the line's range in the flat arrays.
        is_word_start: bool array over the flat wordpieces.
        max_tokens: the block size.

    Returns:
        A list of (chunk_start, chunk_end); greedy from the left: each chunk is
        the longest one that ends at a word start (or at the line end).
    """
    chunks = []
    starts = np.flatnonzero(is_word_start[start:end]) + start
    s = start
    while end - s > max_tokens:
        limit = s + max_tokens
        # Largest word start e with s < e <= limit.
        k = int(np.searchsorted(starts, limit, side="right")) - 1
        e = int(starts[k]) if k >= 0 and starts[k] > s else limit
        chunks.append((s, e))
        s = e
    chunks.append((s, end))
    return chunks


def pack_lines(row_splits, is_word_start, max_tokens, long_lines="split"):
    """Greedy packing of one document part's lines into blocks.

    Args:
        row_splits: int array [num_lines + 1], line i = flat[row_splits[i]:row_splits[i+1]].
        is_word_start: bool array over the flat wordpieces.
        max_tokens: block size (max_seq_length - 2), >= 1.
        long_lines: "split" or "drop" (lines longer than a block).

    Returns:
        (blocks, counts): blocks a list of (start, end) ranges, in order;
        counts a dict with "long_lines_split", "long_lines_dropped",
        "dropped_tokens", "empty_lines".
    """
    if long_lines not in LONG_LINE_MODES:
        raise InputError(f"long_lines must be one of {LONG_LINE_MODES}, got {long_lines!r}")
    if max_tokens < 1:
        raise InputError(f"max_tokens must be >= 1, got {max_tokens}")
    counts = {"long_lines_split": 0, "long_lines_dropped": 0, "dropped_tokens": 0,
              "empty_lines": 0}
    blocks = []
    cur_start = cur_end = None
    bounds = np.asarray(row_splits).tolist()
    for start, end in zip(bounds[:-1], bounds[1:]):
        n = end - start
        if n == 0:
            counts["empty_lines"] += 1
            continue
        if n > max_tokens:
            if long_lines == "drop":
                counts["long_lines_dropped"] += 1
                counts["dropped_tokens"] += n
                # A block is contiguous: it cannot reach across the dropped line.
                if cur_start is not None:
                    blocks.append((cur_start, cur_end))
                    cur_start = None
                continue
            counts["long_lines_split"] += 1
            pieces = split_at_word_starts(start, end, is_word_start, max_tokens)
        else:
            pieces = ((start, end),)
        for s, e in pieces:
            if cur_start is not None and e - cur_start <= max_tokens:
                cur_end = e
                continue
            if cur_start is not None:
                blocks.append((cur_start, cur_end))
            cur_start, cur_end = s, e
    if cur_start is not None:
        blocks.append((cur_start, cur_end))
    return blocks, counts
