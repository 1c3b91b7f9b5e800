"""Packing (§3.3): blocks of consecutive lines, long lines split at word starts."""

import numpy as np
import pytest

from spanbert_tf.data.writing.packing import pack_lines, split_at_word_starts


def _splits(lengths):
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def test_greedy_packing_of_lines():
    ws = np.ones(100, bool)
    blocks, counts = pack_lines(_splits([3, 4, 2, 6, 1]), ws, max_tokens=7)
    assert blocks == [(0, 7), (7, 9), (9, 16)]
    assert counts["long_lines_split"] == counts["long_lines_dropped"] == 0


def test_exact_fit_and_empty_lines():
    ws = np.ones(100, bool)
    blocks, counts = pack_lines(_splits([0, 4, 0, 3, 0]), ws, max_tokens=7)
    assert blocks == [(0, 7)]
    assert counts["empty_lines"] == 3
    assert pack_lines(_splits([]), ws, 5) == ([], {
        "long_lines_split": 0, "long_lines_dropped": 0, "dropped_tokens": 0,
        "empty_lines": 0})


def test_long_line_split_at_word_starts():
    # Line of 12 pieces; word starts at 0, 3, 5, 9 (others are "##" pieces).
    ws = np.zeros(12, bool)
    ws[[0, 3, 5, 9]] = True
    assert split_at_word_starts(0, 12, ws, 6) == [(0, 5), (5, 9), (9, 12)]
    blocks, counts = pack_lines(_splits([12]), ws, 6)
    assert blocks == [(0, 5), (5, 9), (9, 12)]
    assert counts["long_lines_split"] == 1


def test_last_chunk_of_a_split_line_is_packed_with_the_next_line():
    ws = np.ones(20, bool)
    blocks, _ = pack_lines(_splits([2, 9, 2]), ws, 4)
    # [2] | 9 → chunks 4,4,1 | the chunk of 1 + the next line of 2.
    assert blocks == [(0, 2), (2, 6), (6, 10), (10, 13)]


def test_word_longer_than_a_block_is_cut():
    ws = np.zeros(10, bool)
    ws[0] = True
    assert split_at_word_starts(0, 10, ws, 4) == [(0, 4), (4, 8), (8, 10)]


def test_drop_mode_drops_long_lines_and_never_bridges_them():
    ws = np.ones(30, bool)
    blocks, counts = pack_lines(_splits([2, 9, 2]), ws, 6, long_lines="drop")
    assert blocks == [(0, 2), (11, 13)]
    assert counts["long_lines_dropped"] == 1 and counts["dropped_tokens"] == 9


def test_bad_arguments():
    with pytest.raises(ValueError, match="long_lines"):
        pack_lines(_splits([1]), np.ones(1, bool), 4, long_lines="keep")
    with pytest.raises(ValueError, match="max_tokens"):
        pack_lines(_splits([1]), np.ones(1, bool), 0)


@pytest.mark.parametrize("mode", ["split", "drop"])
def test_random_documents_properties(mode):
    rng = np.random.default_rng(0)
    for _ in range(200):
        max_tokens = int(rng.integers(1, 20))
        lengths = rng.integers(0, 3 * max_tokens, size=rng.integers(0, 15))
        splits = _splits(lengths)
        ws = rng.random(int(splits[-1])) < 0.6
        blocks, counts = pack_lines(splits, ws, max_tokens, long_lines=mode)
        covered = np.zeros(int(splits[-1]), int)
        prev_end = 0
        for s, e in blocks:
            assert 0 < e - s <= max_tokens
            assert s >= prev_end  # in order, no overlap
            prev_end = e
            covered[s:e] += 1
        long = lengths > max_tokens
        if mode == "split":
            assert covered.sum() == splits[-1]  # every piece in exactly one block
            assert counts["long_lines_split"] == long.sum()
            # Every block starts at a line start or at a word start.
            line_starts = set(splits.tolist())
            for s, _ in blocks:
                assert s in line_starts or ws[s] or _forced_cut(s, ws, splits, max_tokens)
        else:
            assert covered.sum() == lengths[~long].sum()
            assert counts["dropped_tokens"] == lengths[long].sum()
            for start, end in zip(splits[:-1], splits[1:]):
                if end - start > max_tokens:
                    assert covered[start:end].sum() == 0
                    assert all(not (s < start < e) and not (s < end < e) for s, e in blocks)
            # Blocks only hold whole lines.
            bounds = set(splits.tolist())
            assert all(s in bounds and e in bounds for s, e in blocks)


def _forced_cut(pos, ws, splits, max_tokens):
    """True when `pos` is a hard cut inside a word longer than a block."""
    line = int(np.searchsorted(splits, pos, side="right")) - 1
    start = int(splits[line])
    prev_ws = [i for i in range(start, pos) if ws[i] or i == start]
    return pos - prev_ws[-1] >= max_tokens if prev_ws else True
