"""Dynamic masking in the tf.data pipeline (input_pipeline + dynamic_masking) on unmasked
WikiText records written by the real create_pretraining_data --masking=none."""

import json

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from spanbert_tf.data.input import input_pipeline
from spanbert_tf.data.writing import pipeline
from spanbert_tf.data.masking.dynamic_masking import masker_for_records
from spanbert_tf.data.writing.instances import random_token_candidates
from spanbert_tf.data.masking.masker import Masker
from spanbert_tf.data.masking.masking_types import MaskingConfig
from spanbert_tf.tokenization import BertWordpieceTokenizer

L, P = 128, 20
PY_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}


@pytest.fixture(scope="module")
def records(tmp_path_factory, wikitext_corpus):
    out = tmp_path_factory.mktemp("unmasked") / "records"
    pipeline.create_pretraining_data(pipeline.PretrainingDataConfig(
        input_file=wikitext_corpus, output_dir=str(out), masking="none", max_seq_length=L,
        num_shards=4, num_workers=1, progress=False, random_token_source="unigram"))
    return out


@pytest.fixture(scope="module")
def tokenizer(cased_vocab):
    return BertWordpieceTokenizer(cased_vocab)


def dataset_fn(records, cased_vocab, config=None, batch=32, source="uniform", **kw):
    files, meta = input_pipeline.find_pretraining_files(str(records))
    masker = masker_for_records(meta, config or MaskingConfig(max_predictions_per_seq=P),
                                cased_vocab, random_token_source=source)
    return input_pipeline.make_pretraining_dataset_fn(files, meta, batch, masker=masker,
                                                      **kw)


def graph_ops(ds):
    graph = tf.compat.v1.GraphDef()
    graph.ParseFromString(ds._as_serialized_graph().numpy())
    return ({n.op for n in graph.node}
            | {n.op for f in graph.library.function for n in f.node_def})


def test_dataset_graph_is_pure_tensorflow(records, cased_vocab):
    ds = dataset_fn(records, cased_vocab, seed=1, source="unigram")()
    ops = graph_ops(ds)
    assert not ops & PY_OPS
    assert {"StatelessWhile", "StatelessRandomUniformFullIntV2", "ParseExampleV2"} <= ops
    batch = next(iter(ds))
    assert batch["input_ids"].shape == (32, L) and batch["masked_lm_positions"].shape == (32, P)
    assert batch["input_ids"].dtype == tf.int32 and batch["sbo_weights"].dtype == tf.float32


def _examples(ds, num_batches):
    """Batches → list of per-example dicts of numpy arrays."""
    out = []
    for b in ds.take(num_batches):
        b = {k: v.numpy() for k, v in b.items()}
        out += [{k: v[i] for k, v in b.items()} for i in range(b["input_ids"].shape[0])]
    return out


def _original(ex):
    ids = ex["input_ids"].copy()
    k = int(ex["masked_lm_weights"].sum())
    ids[ex["masked_lm_positions"][:k]] = ex["masked_lm_ids"][:k]
    return ids.tobytes()


def test_mask_depends_on_seed_epoch_and_example_not_on_order_or_batching(records, cased_vocab):
    a = _examples(dataset_fn(records, cased_vocab, seed=5, batch=32)(), 8)
    # Epoch 0 again, unshuffled, in other batches: the same masks.
    b = _examples(dataset_fn(records, cased_vocab, seed=5, batch=100, is_training=False)(),
                  100)
    by_block = {_original(ex): ex for ex in b}
    common = [ex for ex in a if _original(ex) in by_block]
    assert len(common) == len(a) == 256
    for ex in common:
        for name, value in by_block[_original(ex)].items():
            np.testing.assert_array_equal(ex[name], value, err_msg=name)
    # Another epoch of the same block: another mask (same budget).
    fn = dataset_fn(records, cased_vocab, seed=5, batch=32)
    fn.resume_at_step(input_pipeline.records_per_pipeline(
        fn.files, fn.metadata, tf.distribute.InputContext()) // 32 + 1)
    later = _examples(fn(), 8)
    again = [ex for ex in later if _original(ex) in by_block]
    assert len(again) == len(later)
    assert all(ex["masked_lm_weights"].sum() == by_block[_original(ex)]["masked_lm_weights"].sum()
               for ex in again)
    differ = sum(not np.array_equal(ex["masked_lm_positions"],
                                    by_block[_original(ex)]["masked_lm_positions"])
                 for ex in again)
    assert differ > 0.9 * len(again)


def _statistics(examples, table, mask_id):
    """Masked fraction, merged-span lengths (words, pieces), replacement kinds per
    wordpiece and per merged span (the unit of span-level replacement), SBO share."""
    words, pieces, kinds, masked, tokens, sbo = [], [], np.zeros(3, int), 0, 0, 0
    span_kinds = np.zeros(3, int)
    for ex in examples:
        k = int(ex["masked_lm_weights"].sum())
        pos, orig = ex["masked_lm_positions"][:k], ex["masked_lm_ids"][:k]
        size = int(ex["input_mask"].sum())
        tokens += size - 2
        masked += k
        sbo += int(ex["sbo_weights"].sum())
        now = ex["input_ids"][pos]
        kind = np.where(now == mask_id, 0, np.where(now == orig, 2, 1))
        kinds += np.bincount(kind, minlength=3)
        ids = ex["input_ids"].copy()
        ids[pos] = orig
        ws = table[ids]
        ws[1] = True
        breaks = np.flatnonzero(np.diff(pos) != 1) + 1
        for run in np.split(pos, breaks):
            if run.size:
                span_kinds[kind[np.searchsorted(pos, run[0])]] += 1
                pieces.append(run.size)
                words.append(int(ws[run].sum()))
    return dict(words=np.array(words), pieces=np.array(pieces), kinds=kinds,
                span_kinds=span_kinds,
                masked_fraction=masked / tokens, sbo_fraction=sbo / masked, masked=masked)


def _chi2_two_sample(a, b, top):
    ca = np.bincount(np.minimum(a, top), minlength=top + 1)[1:]
    cb = np.bincount(np.minimum(b, top), minlength=top + 1)[1:]
    return stats.chi2_contingency(np.stack([ca, cb]))[1]


def test_statistics_over_epochs_match_the_offline_masker(records, cased_vocab, tokenizer):
    """3 epochs of dynamic masks vs 3 offline masks (numpy Masker, seeded rngs) of the
    same blocks: same masked count, same span-length laws, 80/10/10, SBO share."""
    files, meta = input_pipeline.find_pretraining_files(str(records))
    n_blocks = meta["counts"]["instances"]
    fn = dataset_fn(records, cased_vocab, batch=64, seed=9, source="unigram")
    dynamic = _examples(fn(), 3 * n_blocks // 64)
    blocks = {}
    for ex in dynamic:
        ids = np.frombuffer(_original(ex), np.int32)
        blocks.setdefault(ids.tobytes(), ids[:int(ex["input_mask"].sum())])
    blocks = list(blocks.values())
    assert len(blocks) > 0.95 * n_blocks
    counts = np.array(meta["unigram_counts"], np.float64)
    cands = random_token_candidates(tokenizer)
    masker = Masker(MaskingConfig(max_predictions_per_seq=P), tokenizer.mask_id,
                    tokenizer.word_start_table, cands, counts[cands])
    offline = []
    for dupe in range(3):
        batch = masker.mask_many([(blocks, np.random.default_rng([1, dupe]))])
        for i in range(len(batch)):
            inst = batch.instance(i)
            k = inst.masked_positions.size
            ex = {"input_ids": np.pad(inst.input_ids, (0, L - inst.input_ids.size)),
                  "input_mask": (np.arange(L) < inst.input_ids.size).astype(np.int32),
                  "masked_lm_positions": np.pad(inst.masked_positions, (0, P - k)),
                  "masked_lm_ids": np.pad(inst.masked_ids, (0, P - k)),
                  "masked_lm_weights": (np.arange(P) < k).astype(np.float32),
                  "sbo_weights": np.pad(inst.sbo_weights, (0, P - k))}
            offline.append(ex)
    d = _statistics(dynamic, tokenizer.word_start_table, tokenizer.mask_id)
    o = _statistics(offline, tokenizer.word_start_table, tokenizer.mask_id)
    assert abs(d["masked_fraction"] - o["masked_fraction"]) < 0.002  # both exact budgets
    assert _chi2_two_sample(d["words"], o["words"], 10) > 1e-3
    assert _chi2_two_sample(d["pieces"], o["pieces"], 15) > 1e-3
    assert stats.chi2_contingency(np.stack([d["span_kinds"], o["span_kinds"]]))[1] > 1e-3
    np.testing.assert_allclose(d["kinds"] / d["masked"], o["kinds"] / o["masked"], atol=0.02)
    np.testing.assert_allclose(d["span_kinds"] / d["span_kinds"].sum(), [0.8, 0.1, 0.1],
                               atol=0.015)
    assert abs(d["sbo_fraction"] - o["sbo_fraction"]) < 0.02


def test_resume_continues_the_stream_across_an_epoch(records, cased_vocab):
    fn = dataset_fn(records, cased_vocab, batch=16, seed=3, grad_accum_steps=2)
    per_epoch = input_pipeline.records_per_pipeline(fn.files, fn.metadata,
                                                    tf.distribute.InputContext())
    step = per_epoch // 32 - 1  # the resumed stream starts just before an epoch boundary
    whole = _examples(fn(), 2 * (step + 3))[2 * step * 16:]
    fn.resume_at_step(step)
    resumed = _examples(fn(), 6)
    assert len(resumed) == len(whole) == 96
    for a, b in zip(resumed, whole):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_static_records_resume_too(tmp_path, wikitext_corpus):
    out = tmp_path / "masked"
    pipeline.create_pretraining_data(pipeline.PretrainingDataConfig(
        input_file=wikitext_corpus, output_dir=str(out), max_seq_length=64,
        max_predictions_per_seq=10, dupe_factor=1, num_shards=2, num_workers=1,
        progress=False))
    files, meta = input_pipeline.find_pretraining_files(str(out))
    fn = input_pipeline.make_pretraining_dataset_fn(files, meta, 64, seed=4,
                                                    shuffle_buffer=500)
    assert not graph_ops(fn()) & PY_OPS
    per_epoch = meta["counts"]["instances"]
    step = per_epoch // 64 + 3  # inside the second epoch
    whole = _examples(fn(), step + 2)[step * 64:]
    fn.resume_at_step(step)
    resumed = _examples(fn(), 2)
    for a, b in zip(resumed, whole):
        np.testing.assert_array_equal(a["input_ids"], b["input_ids"])
        np.testing.assert_array_equal(a["masked_lm_positions"], b["masked_lm_positions"])


def test_unigram_without_counts_is_an_error_naming_the_file(records, cased_vocab, tmp_path):
    meta = json.loads((records / "metadata.json").read_text())
    del meta["unigram_counts"]
    meta["metadata_path"] = "x/metadata.json"
    with pytest.raises(ValueError, match="x/metadata.json has no unigram_counts"):
        masker_for_records(meta, MaskingConfig(), cased_vocab, random_token_source="unigram")
    meta["records"] = "masked"
    with pytest.raises(ValueError, match="x/metadata.json: the records are already masked"):
        masker_for_records(meta, MaskingConfig(), cased_vocab)


def test_masks_do_not_depend_on_the_number_of_input_pipelines(records, cased_vocab):
    one = _examples(dataset_fn(records, cased_vocab, seed=5, batch=100, is_training=False)(),
                    100)
    by_block = {_original(ex): ex for ex in one}
    fn = dataset_fn(records, cased_vocab, seed=5, batch=32)
    for worker in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker,
                                             num_replicas_in_sync=2)
        examples = _examples(fn(context), 3)  # per-replica batches of 16, epoch 0
        assert len(examples) == 48
        for ex in examples:
            np.testing.assert_array_equal(ex["input_ids"], by_block[_original(ex)]["input_ids"])
            np.testing.assert_array_equal(ex["masked_lm_positions"],
                                          by_block[_original(ex)]["masked_lm_positions"])
