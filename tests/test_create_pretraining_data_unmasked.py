"""create_pretraining_data --masking=none: unmasked blocks, written once, for dynamic masking."""

import json
import os

import numpy as np
import tensorflow as tf

from spanbert_tf.data import features
from spanbert_tf.data.writing import pipeline

L = 64


def _read(output_dir, spec):
    meta = json.load(open(os.path.join(output_dir, "metadata.json")))
    out = []
    for name in meta["shards"]:
        for record in tf.data.TFRecordDataset(os.path.join(output_dir, name)):
            out.append({k: v.numpy() for k, v in tf.io.parse_single_example(record, spec).items()})
    return meta, out


def test_unmasked_records_hold_the_blocks_of_the_masked_path_once(tmp_path, shared_data):
    corpus = str(shared_data / "corpus" / "bert_sample_text.txt")
    common = dict(input_file=corpus, max_seq_length=L, max_predictions_per_seq=10,
                  num_shards=2, num_workers=1, progress=False, random_token_source="unigram")
    stats = pipeline.create_pretraining_data(pipeline.PretrainingDataConfig(
        output_dir=str(tmp_path / "none"), masking="none", dupe_factor=5, **common))
    pipeline.create_pretraining_data(pipeline.PretrainingDataConfig(
        output_dir=str(tmp_path / "span"), dupe_factor=1, **common))
    meta, unmasked = _read(tmp_path / "none", features.unmasked_feature_spec(L))
    _, masked = _read(tmp_path / "span", features.pretraining_feature_spec(L, 10))

    assert meta["records"] == "unmasked" and stats["records"] == "unmasked"
    assert meta["feature_spec"] == features.unmasked_feature_spec_json(L)
    assert meta["settings"]["dupe_factor"] == 1  # written once whatever --dupe_factor says
    assert meta["special_token_ids"]["[MASK]"] == 103
    assert len(meta["vocab"]["sha256"]) == 64
    counts = np.array(meta["unigram_counts"])
    assert counts.shape == (28996,) and counts.sum() == stats["tokens"]
    assert stats["masked_tokens"] == 0 and stats["instances"] == len(unmasked) == len(masked)
    ids = [int(e["example_id"][0]) for e in unmasked]
    assert len(set(ids)) == len(ids)
    # Same blocks, same order: the masked records with their masks undone.
    for u, m in zip(unmasked, masked):
        original = m["input_ids"].copy()
        k = int(m["masked_lm_weights"].sum())
        original[m["masked_lm_positions"][:k]] = m["masked_lm_ids"][:k]
        np.testing.assert_array_equal(u["input_ids"], original)
        np.testing.assert_array_equal(u["input_mask"], m["input_mask"])
        assert not u["segment_ids"].any()
    # Deterministic: a second run writes byte-identical shards.
    pipeline.create_pretraining_data(pipeline.PretrainingDataConfig(
        output_dir=str(tmp_path / "again"), masking="none", **common))
    for name in meta["shards"]:
        assert (tmp_path / "none" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
