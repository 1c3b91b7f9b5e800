"""Tests of spanbert_tf.data.masking.dynamic_masking: the TF masker equals the numpy masker fed
the same draws, on real BERT-cased wordpieces of WikiText blocks of every length."""

import hashlib

import numpy as np
import pytest
import tensorflow as tf

from spanbert_tf.data.masking import masking_draws
from spanbert_tf.data.masking.dynamic_masking import DynamicMasker
from spanbert_tf.data.writing.instances import random_token_candidates
from spanbert_tf.data.masking.masker import Masker, MaskingConfig
from spanbert_tf.tokenization import BertWordpieceTokenizer

L = 512


@pytest.fixture(scope="module")
def tokenizer(cased_vocab):
    return BertWordpieceTokenizer(cased_vocab)


@pytest.fixture(scope="module")
def pieces(tokenizer, wikitext_corpus):
    with open(wikitext_corpus, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    flat, _ = tokenizer.tokenize_to_ids_flat(lines)
    assert flat.size > 200_000
    return flat


def real_blocks(tokenizer, pieces, count, max_len, seed):
    """`count` [CLS] block [SEP] instances of every length 0..max_len-2, cut at word starts."""
    rng = np.random.default_rng(seed)
    starts = np.flatnonzero(tokenizer.word_start_table[pieces])
    blocks = []
    for i in range(count):
        n = i % (max_len - 1)
        s = int(rng.choice(starts[starts < pieces.size - n]))
        blocks.append(np.concatenate([[tokenizer.cls_id], pieces[s:s + n],
                                      [tokenizer.sep_id]]).astype(np.int32))
    return blocks


def padded(blocks, length):
    ids = np.zeros((len(blocks), length), np.int32)
    mask = np.zeros_like(ids)
    for i, b in enumerate(blocks):
        ids[i, :b.size] = b
        mask[i, :b.size] = 1
    return ids, mask


def make_masker(tokenizer, config, length, unigram=False, jit_compile=False):
    cands = random_token_candidates(tokenizer)
    probs = np.arange(1, cands.size + 1, dtype=np.float64) if unigram else None
    return DynamicMasker(config, length, tokenizer.mask_id, tokenizer.word_start_table,
                         cands, probs, jit_compile=jit_compile)


def run_apply(masker, blocks, draws, batch=256):
    apply = tf.function(masker.apply)
    out = {}
    for i in range(0, len(blocks), batch):
        ids, mask = padded(blocks[i:i + batch], masker.max_seq_length)
        d = {k: tf.constant(np.stack([x[k] for x in draws[i:i + batch]]))
             for k in masking_draws.DRAW_FIELDS}
        for name, value in apply(tf.constant(ids), tf.constant(mask), d).items():
            out.setdefault(name, []).append(value.numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def reference_features(ref, max_seq_length, max_predictions):
    """The MaskedBatch of the numpy masker as padded [N, L] / [N, P] feature arrays."""
    n = len(ref)
    rows = np.arange(max_predictions)[None, :] < ref.num_masked[:, None]
    out = {"input_ids": np.zeros((n, max_seq_length), np.int64)}
    out["input_ids"][np.arange(max_seq_length)[None, :] < ref.input_lengths[:, None]] = \
        ref.input_ids
    for name, attr in (("masked_lm_positions", "masked_positions"),
                       ("masked_lm_ids", "masked_ids"),
                       ("span_left_positions", "span_left_positions"),
                       ("span_right_positions", "span_right_positions"),
                       ("span_relative_positions", "span_relative_positions"),
                       ("sbo_weights", "sbo_weights")):
        out[name] = np.zeros((n, max_predictions), getattr(ref, attr).dtype)
        out[name][rows] = getattr(ref, attr)
    out["masked_lm_weights"] = rows.astype(np.float32)
    return out


def assert_same(out, ref, max_seq_length, max_predictions):
    want = reference_features(ref, max_seq_length, max_predictions)
    for name, value in want.items():
        assert out[name].shape == value.shape, name
        bad = np.flatnonzero((out[name] != value).any(axis=1))
        assert bad.size == 0, f"{name} differs in {bad.size} block(s), first {bad[:5]}"


@pytest.mark.parametrize("scheme,replacement,unigram", [
    ("span", "span", False), ("span", "token", True), ("whole_word", "span", True),
    ("whole_word", "token", False), ("token", "span", False), ("token", "token", True)])
def test_tf_masker_equals_numpy_masker_on_the_same_draws(tokenizer, pieces, scheme,
                                                         replacement, unigram):
    config = MaskingConfig(scheme=scheme, replacement=replacement)
    masker = make_masker(tokenizer, config, L, unigram)
    blocks = real_blocks(tokenizer, pieces, 1022, L, seed=len(scheme) + len(replacement))
    rng = np.random.default_rng(7)
    draws = [masker.layout.random(rng) for _ in blocks]
    ref = masking_draws.mask_with_draws(masker.reference, blocks, draws)
    assert ref.num_masked.sum() > 30_000
    assert_same(run_apply(masker, blocks, draws), ref, L, 80)


def test_nearly_full_masking_uses_the_sweep_past_the_drawn_anchors(tokenizer, pieces):
    """masked_lm_prob=1: more span draws than drawn, the deterministic sweep ends it."""
    config = MaskingConfig(masked_lm_prob=1.0, max_predictions_per_seq=62)
    masker = make_masker(tokenizer, config, 64)
    blocks = real_blocks(tokenizer, pieces, 189, 64, seed=3)
    rng = np.random.default_rng(11)
    draws = [masker.layout.random(rng) for _ in blocks]
    ref = masking_draws.mask_with_draws(masker.reference, blocks, draws)
    np.testing.assert_array_equal(ref.num_masked, [b.size - 2 for b in blocks])
    assert_same(run_apply(masker, blocks, draws), ref, 64, 62)


@pytest.mark.parametrize("config,length,count,replacement_unigram", [
    (MaskingConfig(replacement="token"), L, 520, True),
    (MaskingConfig(masked_lm_prob=1.0, max_predictions_per_seq=62), 64, 189, False)])
def test_xla_compiled_masker_equals_numpy_masker(tokenizer, pieces, config, length, count,
                                                 replacement_unigram):
    """jit_compile=True (the pipeline's masker): the same outputs, batches of 256 and
    of a size that is no multiple of the compiled block of rows; the sweep too."""
    masker = make_masker(tokenizer, config, length, replacement_unigram, jit_compile=True)
    assert masker.jit_compile
    blocks = real_blocks(tokenizer, pieces, count, length, seed=count)
    rng = np.random.default_rng(13)
    draws = [masker.layout.random(rng) for _ in blocks]
    ref = masking_draws.mask_with_draws(masker.reference, blocks, draws)
    out = run_apply(masker, blocks, draws)
    assert out["input_ids"].shape == (count, length)
    assert_same(out, ref, length, config.max_predictions_per_seq)


def test_xla_is_only_used_for_the_span_scheme(tokenizer):
    for scheme in ("whole_word", "token"):
        masker = make_masker(tokenizer, MaskingConfig(scheme=scheme), L, jit_compile=True)
        assert not masker.jit_compile


def test_maskers_of_the_same_settings_share_one_compiled_function(tokenizer):
    """One XLA compilation per process and settings (a new masker per dataset is common)."""
    a, b = (make_masker(tokenizer, MaskingConfig(), L, jit_compile=True) for _ in range(2))
    assert a._compiled is b._compiled
    for other in (make_masker(tokenizer, MaskingConfig(geometric_p=0.3), L, jit_compile=True),
                  make_masker(tokenizer, MaskingConfig(), L, unigram=True, jit_compile=True),
                  make_masker(tokenizer, MaskingConfig(), 128, jit_compile=True)):
        assert other._compiled is not a._compiled


@pytest.mark.parametrize("scheme", ["span", "whole_word", "token"])
def test_budget_is_exact_integer_ceil(tokenizer, pieces, scheme):
    masker = make_masker(tokenizer, MaskingConfig(scheme=scheme), L)
    sizes = [100, 180, 200, 220, 300, 500, 510]
    blocks = [np.concatenate([[tokenizer.cls_id], pieces[1000 * i:1000 * i + n],
                              [tokenizer.sep_id]]) for i, n in enumerate(sizes)]
    rng = np.random.default_rng(5)
    draws = [masker.layout.random(rng) for _ in blocks]
    out = run_apply(masker, blocks, draws)
    got = out["masked_lm_weights"].sum(axis=1).astype(int)
    want = [min(-(-15 * n // 100), 80) for n in sizes]  # ceil(0.15 n) in integers
    if scheme == "whole_word":  # a word that would overflow is skipped: at most the budget
        assert all(g <= w for g, w in zip(got, want)) and sum(got) >= sum(want) - len(sizes)
    else:
        assert got.tolist() == want


def test_draws_are_a_function_of_seed_epoch_and_example_id(tokenizer):
    masker = make_masker(tokenizer, MaskingConfig(), L)
    a = masker.draw(1, 0, tf.constant(5, tf.int64))
    b = masker.draw(1, 0, tf.constant(5, tf.int64))
    sizes = masker.layout.sizes()
    for name in masking_draws.DRAW_FIELDS:
        assert a[name].shape == (sizes[name],)
        np.testing.assert_array_equal(a[name], b[name])
    for other in (masker.draw(1, 1, 5), masker.draw(2, 0, 5), masker.draw(1, 0, 6)):
        assert not np.array_equal(a["span_anchor"], other["span_anchor"])
    values = np.concatenate([a[n].numpy() for n in masking_draws.DRAW_FIELDS])
    assert values.min() >= 0 and values.max() < masking_draws.DRAW_RANGE


# Digest of the offline masker's outputs computed with masking.py BEFORE it was split
# into "draw" and "apply" (commit 5d8a186): the refactor must not change any mask.
RNG_PATH_DIGEST = "af076682f480b705edf028e6bf82e1a1091718945c21e1adc9979e31168a7ea3"


def test_numpy_rng_path_is_unchanged_by_the_draw_refactor(tokenizer, pieces):
    h = hashlib.sha256()
    cands = random_token_candidates(tokenizer)
    rng = np.random.default_rng(0)
    blocks = []
    for _ in range(60):
        n = int(rng.integers(0, 511))
        s = int(rng.integers(0, pieces.size - n))
        blocks.append(np.concatenate([[tokenizer.cls_id], pieces[s:s + n],
                                      [tokenizer.sep_id]]).astype(np.int32))
    for scheme in ("span", "whole_word", "token"):
        for replacement, probs in (("span", None), ("token", np.arange(1.0, cands.size + 1))):
            masker = Masker(MaskingConfig(scheme=scheme, replacement=replacement),
                            tokenizer.mask_id, tokenizer.word_start_table, cands, probs)
            batch = masker.mask_many([(blocks[g::3], np.random.default_rng([g, 9]))
                                      for g in range(3)])
            for name in ("input_ids", "masked_positions", "span_left_positions",
                         "span_right_positions", "span_relative_positions",
                         "span_lengths_words", "replacement_counts"):
                h.update(np.ascontiguousarray(getattr(batch, name), np.int64).tobytes())
    assert h.hexdigest() == RNG_PATH_DIGEST
