"""Tests of spanbert_tf/data/input/input_pipeline.py on shards written here with tf.train.Example."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from spanbert_tf.data import features
from spanbert_tf.data.input import input_pipeline
from spanbert_tf.data.input.input_pipeline import InputError

L, P = 16, 4


def _example(i):
    feats = {}
    for name, (dtype, length) in features.feature_shapes(L, P).items():
        values = (np.arange(length) + 1000 * i) % 997  # example i is recognisable by value
        if dtype == "float32":
            feats[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values / 997.0))
        else:
            feats[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    feats["input_ids"] = tf.train.Feature(
        int64_list=tf.train.Int64List(value=[i] + [5] * (L - 1)))
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def write_shards(out_dir, num_shards=4, per_shard=10, compression="none", **meta_overrides):
    os.makedirs(out_dir, exist_ok=True)
    names = []
    options = tf.io.TFRecordOptions(compression_type="GZIP" if compression == "GZIP" else "")
    for s in range(num_shards):
        name = f"pretrain-{s:05d}-of-{num_shards:05d}.tfrecord" + (
            ".gz" if compression == "GZIP" else "")
        with tf.io.TFRecordWriter(os.path.join(out_dir, name), options) as w:
            for j in range(per_shard):
                w.write(_example(s * per_shard + j))
        names.append(name)
    meta = {
        "max_seq_length": L, "max_predictions_per_seq": P,
        "vocab": {"path": "/nonexistent/vocab.txt", "sha256": "abc", "size": 28996,
                  "do_lower_case": False},
        "settings": {"max_pair_targets": 15},
        "feature_spec": features.feature_spec_json(L, P),
        "compression": compression, "shards": names,
    }
    meta.update(meta_overrides)
    with open(os.path.join(out_dir, "metadata.json"), "w") as f:
        json.dump(meta, f)
    return out_dir


def _ids(dataset, n):
    return [int(b["input_ids"][k, 0]) for b in dataset.take(n) for k in range(b["input_ids"].shape[0])]


def test_parses_batches_with_int32_and_static_shapes(tmp_path):
    files, meta = input_pipeline.find_pretraining_files(write_shards(str(tmp_path)))
    assert len(files) == 4 and meta["max_seq_length"] == L
    fn = input_pipeline.make_pretraining_dataset_fn(files, meta, global_batch_size=6, seed=1)
    ds = fn(tf.distribute.InputContext(num_replicas_in_sync=2))
    spec = ds.element_spec
    assert spec["input_ids"].shape.as_list() == [3, L]  # per replica, static
    assert spec["masked_lm_positions"].shape.as_list() == [3, P]
    for name in features.FEATURE_NAMES:
        want = tf.float32 if name in features.FLOAT_FEATURES else tf.int32
        assert spec[name].dtype == want, name
    batch = next(iter(ds))
    np.testing.assert_allclose(batch["masked_lm_weights"][0].numpy(),
                               ((np.arange(P) + 1000 * int(batch["input_ids"][0, 0])) % 997) / 997.0,
                               rtol=1e-6)


def test_training_order_is_seeded_and_repeats(tmp_path):
    files, meta = input_pipeline.find_pretraining_files(write_shards(str(tmp_path)))
    a = _ids(input_pipeline.make_pretraining_dataset_fn(files, meta, 8, seed=3)(), 10)
    b = _ids(input_pipeline.make_pretraining_dataset_fn(files, meta, 8, seed=3)(), 10)
    c = _ids(input_pipeline.make_pretraining_dataset_fn(files, meta, 8, seed=4)(), 10)
    assert a == b and a != c
    # 80 draws from an endless shuffled stream of 40 examples (epochs mix in the buffer).
    assert len(a) == 80 and set(a) <= set(range(40)) and len(set(a)) >= 30
    assert a[:40] != sorted(a[:40])


def test_training_order_ignores_a_global_seed_even_zero(tmp_path):
    # The order is a function of (seed, epoch) only; tf.random.set_seed(0) used to crash the
    # pipeline (Dataset.shuffle compared the per-epoch tensor seed with 0 in Python).
    files, meta = input_pipeline.find_pretraining_files(write_shards(str(tmp_path)))
    orders = []
    for global_seed in (None, 0, 5):
        if global_seed is not None:
            tf.random.set_seed(global_seed)
        orders.append(_ids(input_pipeline.make_pretraining_dataset_fn(files, meta, 8, seed=3)(), 6))
    assert orders[0] == orders[1] == orders[2]


def test_files_are_sharded_per_worker(tmp_path):
    files, meta = input_pipeline.find_pretraining_files(write_shards(str(tmp_path)))
    seen = []
    for worker in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker,
                                         num_replicas_in_sync=2)
        ds = input_pipeline.pretraining_dataset(files, L, P, 5, input_context=ctx,
                                                is_training=False)
        ids = _ids(ds, 100)
        assert len(ids) == 20
        # File-level: each worker reads whole shards (10 consecutive ids each).
        assert {i // 10 for i in ids} in ({0, 2}, {1, 3})
        seen.append(set(ids))
    assert not seen[0] & seen[1] and seen[0] | seen[1] == set(range(40))


def test_fewer_files_than_workers_shards_records(tmp_path):
    files, meta = input_pipeline.find_pretraining_files(write_shards(str(tmp_path), num_shards=1))
    got = []
    for worker in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker)
        got.append(set(_ids(input_pipeline.pretraining_dataset(
            files, L, P, 5, input_context=ctx, is_training=False), 10)))
    assert not got[0] & got[1] and got[0] | got[1] == set(range(10))


def test_eval_keeps_last_partial_batch_and_gzip(tmp_path):
    files, meta = input_pipeline.find_pretraining_files(
        write_shards(str(tmp_path), num_shards=2, per_shard=7, compression="GZIP"))
    fn = input_pipeline.make_pretraining_dataset_fn(files, meta, 4, is_training=False)
    assert sorted(_ids(fn(), 100)) == list(range(14))


def test_globs_and_multiple_dirs(tmp_path):
    write_shards(str(tmp_path / "a"), num_shards=2)
    write_shards(str(tmp_path / "b"), num_shards=3)
    files, _ = input_pipeline.find_pretraining_files(
        f"{tmp_path}/a/*.tfrecord,{tmp_path / 'b'}")
    assert len(files) == 5
    write_shards(str(tmp_path / "c"), num_shards=1, max_predictions_per_seq=P + 1)
    with pytest.raises(InputError, match="disagree on max_predictions_per_seq"):
        input_pipeline.find_pretraining_files([str(tmp_path / "a"), str(tmp_path / "c")])


def test_missing_inputs_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="no input files match"):
        input_pipeline.find_pretraining_files(str(tmp_path / "nothing*.tfrecord"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="has no metadata.json"):
        input_pipeline.find_pretraining_files(str(tmp_path / "empty"))
    d = write_shards(str(tmp_path / "d"), num_shards=2)
    os.remove(os.path.join(d, "pretrain-00001-of-00002.tfrecord"))
    with pytest.raises(InputError, match="do not exist.*pretrain-00001-of-00002"):
        input_pipeline.find_pretraining_files(d)


def test_metadata_mismatch_errors_name_the_file(tmp_path):
    files, meta = input_pipeline.find_pretraining_files(write_shards(str(tmp_path)))
    input_pipeline.check_metadata(meta, vocab_size=28996, max_position_embeddings=512,
                                  max_pair_targets=15)
    with pytest.raises(InputError, match=r"metadata\.json.*vocab size is 28996 in the data "
                                         r"but the model has 30522"):
        input_pipeline.check_metadata(meta, vocab_size=30522)
    with pytest.raises(InputError, match="max_seq_length 16 exceeds.*max_position_embeddings 8"):
        input_pipeline.check_metadata(meta, max_position_embeddings=8)
    with pytest.raises(InputError, match="max_pair_targets is 15 in the data"):
        input_pipeline.check_metadata(meta, max_pair_targets=10)
    with pytest.raises(InputError, match="max_seq_length is 16 in the data but 128"):
        input_pipeline.check_metadata(meta, max_seq_length=128)
    bad = dict(meta, feature_spec=features.feature_spec_json(L + 1, P))
    with pytest.raises(InputError, match="feature_spec differs"):
        input_pipeline.check_metadata(bad)
