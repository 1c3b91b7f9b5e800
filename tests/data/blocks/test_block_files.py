"""block_files.py: create_pretraining_data --output_format=npy writes the unmasked blocks of the
TFRecords as memory-mapped .npy shards; damaged or foreign dirs are refused naming the file."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from spanbert_tf.data import features
from spanbert_tf.data.blocks import block_files
from spanbert_tf.data.input import input_pipeline
from spanbert_tf.data.writing import pipeline
from spanbert_tf.errors import InputError


def test_blocks_hold_the_unmasked_records(unmasked_pair):
    tfrecords, blocks = unmasked_pair
    assert block_files.is_block_input(str(blocks)) and not block_files.is_block_input(
        str(tfrecords))
    files, metadata = block_files.find_block_files(str(blocks))
    assert metadata["output_format"] == "npy" and metadata["records"] == "unmasked"
    assert [os.path.basename(f) for f in files] == [block_files.shard_name(i, 3)
                                                    for i in range(3)]
    shards = block_files.open_block_shards(files, metadata)
    assert [len(s) for s in shards] == metadata["counts"]["instances_per_shard"]
    assert shards[0].dtype["input_ids"].base == np.uint16
    tf_files, tf_meta = input_pipeline.find_pretraining_files(str(tfrecords))
    spec = features.unmasked_feature_spec(64)
    for tf_file, shard in zip(tf_files, shards):  # the same shard assignment and order
        (parsed,) = tf.data.TFRecordDataset(tf_file).batch(10_000).map(
            lambda r: tf.io.parse_example(r, spec))
        assert len(parsed["example_id"]) == len(shard)
        np.testing.assert_array_equal(shard["example_id"], parsed["example_id"].numpy()[:, 0])
        np.testing.assert_array_equal(shard["input_ids"], parsed["input_ids"].numpy())
        np.testing.assert_array_equal(shard["length"], parsed["input_mask"].numpy().sum(1))
    assert metadata["counts"] == tf_meta["counts"]


def test_damaged_or_foreign_dirs_are_refused(unmasked_pair, tmp_path):
    tfrecords, blocks = unmasked_pair
    with pytest.raises(InputError, match="tfrecord/metadata.json: not written with "
                                         "--output_format=npy"):
        block_files.find_block_files(str(tfrecords))
    copy = tmp_path / "copy"
    shutil.copytree(blocks, copy)
    files, metadata = block_files.find_block_files(str(copy))
    with open(files[1], "r+b") as f:
        f.truncate(os.path.getsize(files[1]) - 10)
    with pytest.raises(InputError, match=r"blocks-00001-of-00003.npy: \d+ bytes, but "
                                         "metadata.json says"):
        block_files.open_block_shards(files, metadata)
    meta = json.loads((copy / "metadata.json").read_text())
    meta["shards"].append("blocks-00009-of-00010.npy")
    (copy / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="lists shard\\(s\\) that do not exist"):
        block_files.find_block_files(str(copy))


def test_npy_needs_unmasked_uncompressed_local_output(small_data_config):
    for bad in (dict(masking="span"), dict(masking="none", compression="GZIP")):
        with pytest.raises(InputError, match="--output_format=npy writes unmasked blocks"):
            small_data_config(output_format="npy", **bad).validate()
    with pytest.raises(InputError, match="--output_format must be one of"):
        small_data_config(output_format="parquet").validate()


def test_rewriting_a_dir_replaces_the_other_format(small_data_config, wikitext_corpus,
                                                   tmp_path):
    out = str(tmp_path / "out")
    pipeline.create_pretraining_data(small_data_config(
        input_file=wikitext_corpus, output_dir=out, masking="none", num_shards=2))
    stats = pipeline.create_pretraining_data(small_data_config(
        input_file=wikitext_corpus, output_dir=out, masking="none", output_format="npy",
        num_shards=2))
    assert sorted(os.listdir(out)) == ["blocks-00000-of-00002.npy", "blocks-00001-of-00002.npy",
                                       "metadata.json", "stats.json"]
    assert stats["removed_stale_shards"] == ["pretrain-00000-of-00002.tfrecord",
                                             "pretrain-00001-of-00002.tfrecord"]
