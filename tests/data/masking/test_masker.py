"""Tests of spanbert_tf.data.masking.masker on real BERT-cased wordpieces of WikiText."""

import math

import numpy as np
import pytest
from scipy import stats

from spanbert_tf.data.masking.masker import MaskedInstance, Masker, MaskingConfig

NUM_SPECIAL = 999  # bert-base-cased: [PAD], [unused*], [UNK], [CLS], [SEP], [MASK]


@pytest.fixture(scope="module")
def vocab(cased_vocab):
    with open(cased_vocab, encoding="utf-8") as f:
        tokens = [line.rstrip("\n") for line in f]
    table = np.array([not t.startswith("##") for t in tokens])
    return {
        "file": cased_vocab,
        "tokens": tokens,
        "table": table,
        "cls": tokens.index("[CLS]"),
        "sep": tokens.index("[SEP]"),
        "mask": tokens.index("[MASK]"),
        "candidates": np.arange(NUM_SPECIAL, len(tokens)),
    }


@pytest.fixture(scope="module")
def pieces(vocab, wikitext_corpus):
    """All wordpiece ids of the WikiText test corpus, as one array."""
    from tokenizers import BertWordPieceTokenizer

    tokenizer = BertWordPieceTokenizer(vocab["file"], lowercase=False)
    with open(wikitext_corpus, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    encodings = tokenizer.encode_batch(lines, add_special_tokens=False)
    ids = np.concatenate([np.array(e.ids, np.int32) for e in encodings])
    assert ids.size > 200_000
    return ids


def make_blocks(vocab, pieces, count, lengths, seed):
    """`count` [CLS] block [SEP] instances cut from the corpus at word starts."""
    rng = np.random.default_rng(seed)
    starts = np.flatnonzero(vocab["table"][pieces])
    blocks = []
    for _ in range(count):
        length = int(rng.choice(lengths))
        s = int(rng.choice(starts[starts < pieces.size - length]))
        block = pieces[s : s + length]
        blocks.append(np.concatenate([[vocab["cls"]], block, [vocab["sep"]]]).astype(np.int32))
    return blocks


def make_masker(vocab, **kwargs):
    probs = kwargs.pop("random_token_probs", None)
    cands = kwargs.pop("random_token_ids", vocab["candidates"])
    return Masker(MaskingConfig(**kwargs), vocab["mask"], vocab["table"], cands, probs)


def word_starts(vocab, ids):
    """Full-coordinate word-start flags; the block's first piece starts a word."""
    ws = vocab["table"][ids].copy()
    ws[1] = True
    return ws


def runs(positions):
    """Maximal runs of consecutive positions as (first, last) pairs."""
    out = []
    for p in positions.tolist():
        if out and out[-1][1] + 1 == p:
            out[-1][1] = p
        else:
            out.append([p, p])
    return [tuple(r) for r in out]


def merge(spans):
    """Reference merge of overlapping or adjacent (first, last) intervals."""
    merged = []
    for s, e in sorted(spans):
        if merged and merged[-1][1] + 1 >= s:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [tuple(r) for r in merged]


def truncated_geometric(p, max_len):
    pmf = p * (1 - p) ** np.arange(max_len)
    return pmf / pmf.sum()


# --------------------------------------------------------------------------- budget


@pytest.mark.parametrize("scheme", ["span", "token"])
@pytest.mark.parametrize("prob,cap", [(0.15, 80), (0.15, 20), (0.5, 80), (1.0, 512)])
def test_budget_is_exact(vocab, pieces, scheme, prob, cap):
    # The official loop masks until len(mask) == ceil(ratio * n) and stops at
    # the piece that reaches it, so the budget is met exactly for every block.
    masker = make_masker(vocab, scheme=scheme, masked_lm_prob=prob, max_predictions_per_seq=cap)
    rng = np.random.default_rng(1)
    for ids in make_blocks(vocab, pieces, 300, np.arange(1, 511), seed=2):
        inst = masker.mask(ids, rng)
        n = ids.size - 2
        expected = min(math.ceil(n * prob), cap)
        assert inst.masked_positions.size == expected
        assert len(np.unique(inst.masked_positions)) == expected
        assert np.all(np.diff(inst.masked_positions) > 0)
        assert sum(inst.span_lengths_pieces) == expected
        assert sum(inst.replacement_counts.values()) == expected


def test_empty_and_tiny_blocks(vocab):
    masker = make_masker(vocab)
    rng = np.random.default_rng(0)
    empty = masker.mask(np.array([vocab["cls"], vocab["sep"]], np.int32), rng)
    assert empty.masked_positions.size == 0 and empty.input_ids.tolist() == [
        vocab["cls"],
        vocab["sep"],
    ]
    one = masker.mask(np.array([vocab["cls"], 1000, vocab["sep"]], np.int32), rng)
    assert one.masked_positions.tolist() == [1] and one.masked_ids.tolist() == [1000]
    assert one.sbo_weights.tolist() == [0.0]  # neighbours are [CLS] and [SEP]


def test_whole_block_is_one_span_without_sbo(vocab, pieces):
    masker = make_masker(vocab, masked_lm_prob=1.0, max_predictions_per_seq=512)
    ids = make_blocks(vocab, pieces, 1, [100], seed=3)[0]
    inst = masker.mask(ids, np.random.default_rng(0))
    assert inst.masked_positions.tolist() == list(range(1, 101))
    assert inst.span_lengths_pieces == [100]
    assert inst.span_lengths_words == [int(word_starts(vocab, ids)[1:-1].sum())]
    assert not inst.sbo_weights.any()


# ------------------------------------------------------------------ span structure


def test_spans_follow_the_official_algorithm(vocab, pieces):
    """Every accepted span starts at an unmasked word start and covers
    min(drawn, words left) whole words; the last one stops exactly at the
    piece that spends the budget (possibly inside a word); the union of the
    spans is the mask and merging overlapping/adjacent spans gives the runs."""
    masker = make_masker(vocab)
    rng = np.random.default_rng(5)
    adjacent = overlapping = mid_word_end = 0
    for ids in make_blocks(vocab, pieces, 400, [510, 300, 64, 12], seed=6):
        inst = masker.mask(ids, rng)
        ws = word_starts(vocab, ids)
        ws[-1] = True  # [SEP] ends the last word
        budget = min(math.ceil(0.15 * (ids.size - 2)), 80)
        assert len(inst.drawn_span_words) == len(inst.unmerged_spans) >= 1
        masked = set()
        for i, ((s, e), drawn) in enumerate(zip(inst.unmerged_spans, inst.drawn_span_words)):
            assert 1 <= s <= e <= ids.size - 2
            assert ws[s] and s not in masked  # anchor's word start, not yet masked
            words_left = int(ws[s : ids.size - 1].sum())
            full_end = np.flatnonzero(ws[s + 1 :])[min(drawn, words_left) - 1] + s + 1
            if i < len(inst.unmerged_spans) - 1:
                assert e == full_end - 1  # whole words
                assert len(masked | set(range(s, e + 1))) < budget
            else:  # the budget-spending span
                assert e <= full_end - 1
                assert e not in masked
                assert len(masked | set(range(s, e + 1))) == budget
                mid_word_end += not ws[e + 1]
            for s2, e2 in inst.unmerged_spans[:i]:
                overlapping += s <= e2 and s2 <= e
                adjacent += e2 + 1 == s or e + 1 == s2
            masked |= set(range(s, e + 1))
        assert sorted(masked) == inst.masked_positions.tolist()
        merged = merge(inst.unmerged_spans)
        assert merged == runs(inst.masked_positions)
        assert inst.span_lengths_pieces == [e - s + 1 for s, e in merged]
        assert inst.span_lengths_words == [int(ws[s : e + 1].sum()) for s, e in merged]
    # The draws exercised merging of both kinds and the mid-word budget stop.
    assert adjacent > 50 and overlapping > 50 and mid_word_end > 10


def test_span_length_distribution_chi_square(vocab, pieces):
    masker = make_masker(vocab)
    rng = np.random.default_rng(11)
    lengths = []
    for ids in make_blocks(vocab, pieces, 1200, [510], seed=12):
        lengths += masker.mask(ids, rng).drawn_span_words
    counts = np.bincount(lengths, minlength=11)[1:]
    assert counts.size == 10 and counts.sum() == len(lengths) > 15_000
    pmf = truncated_geometric(0.2, 10)
    result = stats.chisquare(counts, pmf * counts.sum())
    assert result.pvalue > 1e-3, (counts, result)
    assert abs(np.mean(lengths) - np.dot(np.arange(1, 11), pmf)) < 0.05
    assert abs(np.dot(np.arange(1, 11), pmf) - 3.8) < 0.01  # the paper's mean


def test_other_span_length_settings(vocab, pieces):
    rng = np.random.default_rng(13)
    blocks = make_blocks(vocab, pieces, 300, [510], seed=14)
    single = make_masker(vocab, geometric_p=1.0)
    assert {k for b in blocks[:50] for k in single.mask(b, rng).drawn_span_words} == {1}
    masker = make_masker(vocab, geometric_p=0.5, max_span_length=3)
    lengths = [k for b in blocks for k in masker.mask(b, rng).drawn_span_words]
    counts = np.bincount(lengths, minlength=4)[1:]
    pmf = truncated_geometric(0.5, 3)
    assert stats.chisquare(counts, pmf * counts.sum()).pvalue > 1e-3


# -------------------------------------------------------------------- replacement


def classify_runs(inst, mask_id):
    kinds = []
    for s, e in runs(inst.masked_positions):
        sel = (inst.masked_positions >= s) & (inst.masked_positions <= e)
        new, old = inst.input_ids[inst.masked_positions[sel]], inst.masked_ids[sel]
        if np.all(new == mask_id):
            kinds.append("mask")
        elif np.all(new == old):
            kinds.append("unchanged")
        else:
            kinds.append("random" if not np.any(new == mask_id) else "mixed")
    return kinds


def check_counts(inst, mask_id):
    new = inst.input_ids[inst.masked_positions]
    rc = inst.replacement_counts
    assert rc["mask"] == int(np.sum(new == mask_id))
    # A random token may equal the original by chance, so only bound these.
    assert rc["unchanged"] <= int(np.sum(new == inst.masked_ids))
    assert rc["random"] >= int(np.sum((new != mask_id) & (new != inst.masked_ids)))


def test_span_level_replacement_80_10_10(vocab, pieces):
    masker = make_masker(vocab)
    rng = np.random.default_rng(21)
    kinds = []
    for ids in make_blocks(vocab, pieces, 1500, [510], seed=22):
        inst = masker.mask(ids, rng)
        check_counts(inst, vocab["mask"])
        kinds += classify_runs(inst, vocab["mask"])
        unmasked = np.setdiff1d(np.arange(ids.size), inst.masked_positions)
        assert np.array_equal(inst.input_ids[unmasked], ids[unmasked])
        assert np.array_equal(inst.masked_ids, ids[inst.masked_positions])
    kinds = np.array(kinds)
    assert kinds.size > 15_000 and not np.any(kinds == "mixed")
    assert abs(np.mean(kinds == "mask") - 0.8) < 0.015
    assert abs(np.mean(kinds == "random") - 0.1) < 0.012
    assert abs(np.mean(kinds == "unchanged") - 0.1) < 0.012


def test_token_level_replacement_80_10_10(vocab, pieces):
    masker = make_masker(vocab, replacement="token")
    rng = np.random.default_rng(23)
    totals = np.zeros(3)
    mixed = 0
    for ids in make_blocks(vocab, pieces, 400, [510], seed=24):
        inst = masker.mask(ids, rng)
        check_counts(inst, vocab["mask"])
        rc = inst.replacement_counts
        totals += [rc["mask"], rc["random"], rc["unchanged"]]
        mixed += classify_runs(inst, vocab["mask"]).count("mixed")
    frac = totals / totals.sum()
    assert totals.sum() > 30_000
    assert abs(frac[0] - 0.8) < 0.012 and abs(frac[1] - 0.1) < 0.008
    assert abs(frac[2] - 0.1) < 0.008
    assert mixed > 100  # decisions are per piece, not per span


@pytest.mark.parametrize("probs", [None, [0.4, 0.3, 0.2, 0.1]])
def test_random_tokens_follow_the_given_distribution(vocab, pieces, probs):
    cands = np.array([1000, 2000, 3000, 4000])
    masker = make_masker(vocab, mask_prob=0.0, random_prob=1.0, random_token_ids=cands,
                         random_token_probs=probs)
    rng = np.random.default_rng(25)
    drawn = []
    for ids in make_blocks(vocab, pieces, 100, [510], seed=26):
        inst = masker.mask(ids, rng)
        assert inst.replacement_counts["random"] == inst.masked_positions.size
        drawn.append(inst.input_ids[inst.masked_positions])
    drawn = np.concatenate(drawn)
    assert set(drawn.tolist()) == set(cands.tolist())
    counts = np.array([(drawn == c).sum() for c in cands])
    expected = np.full(4, 0.25) if probs is None else np.array(probs)
    assert stats.chisquare(counts, expected * counts.sum()).pvalue > 1e-3


# ---------------------------------------------------------------------------- SBO


def expected_sbo(positions, size, max_pair_targets):
    left, right, rel, weight = [], [], [], []
    for s, e in runs(positions):
        ok = s - 1 >= 1 and e + 1 <= size - 2  # both neighbours are block tokens
        for offset in range(e - s + 1):
            target = ok and offset < max_pair_targets
            left.append(s - 1 if target else 0)
            right.append(e + 1 if target else 0)
            rel.append(offset if target else 0)
            weight.append(1.0 if target else 0.0)
    return left, right, rel, weight


@pytest.mark.parametrize("scheme", ["span", "whole_word", "token"])
@pytest.mark.parametrize("max_pair_targets", [15, 3])
def test_sbo_targets_exact(vocab, pieces, scheme, max_pair_targets):
    masker = make_masker(vocab, scheme=scheme, max_pair_targets=max_pair_targets,
                         masked_lm_prob=0.3)
    rng = np.random.default_rng(31)
    cut = edge = 0
    for ids in make_blocks(vocab, pieces, 150, [510, 40, 8], seed=32):
        inst = masker.mask(ids, rng)
        left, right, rel, weight = expected_sbo(inst.masked_positions, ids.size, max_pair_targets)
        assert inst.span_left_positions.tolist() == left
        assert inst.span_right_positions.tolist() == right
        assert inst.span_relative_positions.tolist() == rel
        assert inst.sbo_weights.tolist() == weight
        assert inst.sbo_weights.dtype == np.float32
        cut += sum(1 for r in inst.span_relative_positions.tolist() if r == max_pair_targets - 1)
        edge += inst.masked_positions[0] == 1 or inst.masked_positions[-1] == ids.size - 2
    assert edge > 10 and (max_pair_targets == 15 or cut > 10)


# --------------------------------------------------------------- schemes, specials


@pytest.mark.parametrize("scheme", ["span", "whole_word", "token"])
def test_special_tokens_never_masked(vocab, pieces, scheme):
    masker = make_masker(vocab, scheme=scheme, masked_lm_prob=1.0, max_predictions_per_seq=600)
    rng = np.random.default_rng(41)
    for ids in make_blocks(vocab, pieces, 60, [510, 5, 1], seed=42):
        inst = masker.mask(ids, rng)
        assert inst.masked_positions.size == ids.size - 2  # everything else
        assert inst.masked_positions.min() == 1 and inst.masked_positions.max() == ids.size - 2
        assert inst.input_ids[0] == vocab["cls"] and inst.input_ids[-1] == vocab["sep"]
        for name in ("input_ids", "masked_positions", "masked_ids", "span_left_positions",
                     "span_right_positions", "span_relative_positions"):
            assert getattr(inst, name).dtype == np.int32, name
        assert inst.sbo_weights.dtype == np.float32


def test_whole_word_scheme(vocab, pieces):
    masker = make_masker(vocab, scheme="whole_word")
    rng = np.random.default_rng(51)
    short = 0
    for ids in make_blocks(vocab, pieces, 300, [510, 100, 20], seed=52):
        inst = masker.mask(ids, rng)
        ws = word_starts(vocab, ids)
        ws[-1] = True
        bounds = np.flatnonzero(ws[1:]) + 1
        words = [(s, e - 1) for s, e in zip(bounds[:-1], bounds[1:])]
        masked = set(inst.masked_positions.tolist())
        chosen = [w for w in words if w[0] in masked]
        for s, e in chosen:  # whole words only
            assert set(range(s, e + 1)) <= masked
        assert sum(e - s + 1 for s, e in chosen) == len(masked)
        budget = min(math.ceil(0.15 * (ids.size - 2)), 80)
        assert len(masked) <= budget
        if len(masked) < budget:  # greedy: no unchosen word would still fit
            short += 1
            assert all(e - s + 1 > budget - len(masked) for s, e in words if (s, e) not in chosen)
        assert inst.span_lengths_words == [int(ws[s : e + 1].sum()) for s, e in
                                           runs(inst.masked_positions)]
    assert short < 30


def test_token_scheme_is_independent_wordpieces(vocab, pieces):
    masker = make_masker(vocab, scheme="token")
    rng = np.random.default_rng(61)
    hits = np.zeros(512)
    mid_word = 0
    for ids in make_blocks(vocab, pieces, 2000, [510], seed=62):
        inst = masker.mask(ids, rng)
        hits[inst.masked_positions] += 1
        ws = word_starts(vocab, ids)
        mid_word += int(np.sum(~ws[inst.masked_positions]))
        rs = runs(inst.masked_positions)
        assert inst.span_lengths_words == [
            int(ws[s : e + 1].sum()) + (not ws[s]) for s, e in rs
        ]
    assert hits[0] == hits[511] == 0
    # Uniform over the 510 block positions: 2000 * 77 / 510 ≈ 302 each.
    assert stats.chisquare(hits[1:511]).pvalue > 1e-3
    assert mid_word > 10_000  # pieces are masked regardless of word boundaries


# --------------------------------------------------------------- determinism, API


@pytest.mark.parametrize("scheme", ["span", "whole_word", "token"])
def test_deterministic_given_seed(vocab, pieces, scheme):
    masker = make_masker(vocab, scheme=scheme)
    blocks = make_blocks(vocab, pieces, 20, [510, 50], seed=71)
    first = [masker.mask(b, np.random.default_rng(7)) for b in blocks]
    again = [masker.mask(b, np.random.default_rng(7)) for b in blocks]
    other = [masker.mask(b, np.random.default_rng(8)) for b in blocks]
    for a, b in zip(first, again):
        assert isinstance(a, MaskedInstance)
        for name in ("input_ids", "masked_positions", "masked_ids", "span_left_positions",
                     "span_right_positions", "span_relative_positions", "sbo_weights"):
            assert np.array_equal(getattr(a, name), getattr(b, name))
        assert a.replacement_counts == b.replacement_counts
        assert a.span_lengths_words == b.span_lengths_words
    assert any(not np.array_equal(a.masked_positions, o.masked_positions)
               for a, o in zip(first, other))


def test_input_is_not_modified(vocab, pieces):
    ids = make_blocks(vocab, pieces, 1, [510], seed=81)[0]
    before = ids.copy()
    inst = make_masker(vocab).mask(ids, np.random.default_rng(0))
    assert np.array_equal(ids, before) and not np.array_equal(inst.input_ids, ids)
    inst64 = make_masker(vocab).mask(ids.astype(np.int64), np.random.default_rng(0))
    assert np.array_equal(inst64.input_ids, inst.input_ids)


@pytest.mark.parametrize(
    "field,value",
    [
        ("geometric_p", 0.0), ("geometric_p", -0.2), ("geometric_p", 1.5),
        ("geometric_p", float("nan")), ("max_span_length", 0), ("max_span_length", 2.5),
        ("scheme", "bogus"), ("replacement", "word_piece"), ("masked_lm_prob", 0.0),
        ("masked_lm_prob", 1.2), ("max_predictions_per_seq", 0), ("max_pair_targets", 0),
        ("mask_prob", -0.1), ("random_prob", 0.5),
    ],
)
def test_bad_config_raises_value_error(field, value):
    # Messages name the create_pretraining_data.py flag, not the dataclass field.
    flag = {"scheme": "masking"}.get(field, field)
    with pytest.raises(ValueError, match=f"--{flag}") as raised:
        MaskingConfig(**{field: value})
    assert "MaskingConfig" not in str(raised.value)


def test_bad_masker_arguments(vocab):
    table, mask_id, cands = vocab["table"], vocab["mask"], vocab["candidates"]
    config = MaskingConfig()
    with pytest.raises(ValueError, match="word_start_table"):
        Masker(config, mask_id, table.astype(np.int32), cands)
    with pytest.raises(ValueError, match="mask_id"):
        Masker(config, table.size, table, cands)
    with pytest.raises(ValueError, match="random_token_ids"):
        Masker(config, mask_id, table, np.array([], np.int32))
    with pytest.raises(ValueError, match="random_token_probs"):
        Masker(config, mask_id, table, cands, np.ones(3))
    with pytest.raises(ValueError, match="random_token_probs"):
        Masker(config, mask_id, table, cands[:2], [1.0, -1.0])
    config.geometric_p = 2.0  # mutated after construction
    with pytest.raises(ValueError, match="geometric_p"):
        Masker(config, mask_id, table, cands)
    masker = Masker(MaskingConfig(), mask_id, table, cands)
    rng = np.random.default_rng(0)
    for bad in (np.zeros((2, 5), np.int32), np.array([101], np.int32),
                np.array([101.0, 5.0, 102.0]), np.array([101, table.size, 102]),
                np.array([101, -1, 102])):
        with pytest.raises(ValueError, match="input_ids"):
            masker.mask(bad, rng)
    with pytest.raises(ValueError, match="rng"):
        masker.mask(np.array([101, 1000, 102]), 0)


def test_masking_config_from_the_programs_settings():
    from spanbert_tf.data.writing.pipeline import PretrainingDataConfig
    from spanbert_tf.tasks.pretraining.run import PretrainingSettings

    data = PretrainingDataConfig(masking="whole_word", geometric_p=0.3, max_pair_targets=7)
    assert data.masking_config() == MaskingConfig(scheme="whole_word", geometric_p=0.3,
                                                  max_pair_targets=7)
    train = PretrainingSettings(masking="token", replacement="token", random_prob=0.2)
    assert train.masking_config() == MaskingConfig(scheme="token", replacement="token",
                                                   random_prob=0.2)
    with pytest.raises(ValueError, match="--masked_lm_prob"):
        PretrainingSettings(masked_lm_prob=1.5).masking_config()
