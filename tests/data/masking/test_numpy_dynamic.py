"""numpy_dynamic.py: the numpy dynamic masker gives the tf.data pipeline's masks (same seed,
epoch, example_id) on real unmasked records, without TensorFlow."""

import numpy as np
import pytest
import tensorflow as tf

from spanbert_tf.data.blocks.block_files import find_block_files, open_block_shards
from spanbert_tf.data.input import input_pipeline
from spanbert_tf.data.masking.dynamic_masking import masker_for_records
from spanbert_tf.data.masking.masking_types import MaskingConfig
from spanbert_tf.data.masking.numpy_dynamic import (NumpyDynamicMasker,
                                                    reference_masker_for_records)
from spanbert_tf.errors import InputError


def _tf_masks(files, metadata, config, seed, epoch, random_token_source):
    masker = masker_for_records(metadata, config, metadata["vocab"]["path"],
                                random_token_source=random_token_source, jit_compile=False)
    ds = tf.data.TFRecordDataset(files).map(lambda r: (r, tf.constant(epoch, tf.int64)))
    ds = input_pipeline.mask_records(ds, masker, seed, 32, drop_remainder=False)
    batches = list(ds)
    spec = {"example_id": tf.io.FixedLenFeature([1], tf.int64)}
    ids = [int(tf.io.parse_single_example(r, spec)["example_id"][0])
           for r in tf.data.TFRecordDataset(files)]
    return ids, {k: np.concatenate([b[k].numpy() for b in batches]) for k in batches[0]}


@pytest.mark.parametrize("scheme,source,epoch", [("span", "unigram", 0),
                                                 ("whole_word", "uniform", 2)])
def test_numpy_masks_equal_the_tf_pipeline(unmasked_pair, scheme, source, epoch):
    tfrecords, blocks = unmasked_pair
    files, metadata = input_pipeline.find_pretraining_files(str(tfrecords))
    config = MaskingConfig(scheme=scheme, max_predictions_per_seq=10)
    ids, want = _tf_masks(files[:1], metadata, config, 99, epoch, source)
    block_files, block_meta = find_block_files(str(blocks))
    rows = np.concatenate([np.asarray(s) for s in open_block_shards(block_files, block_meta)])
    where = {e: i for i, e in enumerate(rows["example_id"].tolist())}
    rows = rows[[where[e] for e in ids]]
    masker = NumpyDynamicMasker(reference_masker_for_records(
        block_meta, config, block_meta["vocab"]["path"], random_token_source=source), 64)
    got = masker.mask_batch(rows["input_ids"], rows["length"], rows["example_id"], 99, epoch)
    assert len(ids) > 100 and got["masked_lm_weights"].sum() > 0
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    again = masker.mask_batch(rows["input_ids"], rows["length"], rows["example_id"], 99,
                              epoch + 1)
    assert not np.array_equal(again["masked_lm_positions"], got["masked_lm_positions"])


def test_records_that_cannot_be_masked_so_are_refused(unmasked_pair):
    _, blocks = unmasked_pair
    _, metadata = find_block_files(str(blocks))
    vocab = metadata["vocab"]["path"]
    with pytest.raises(InputError, match="metadata.json: special_token_ids \\[MASK\\] is 7"):
        reference_masker_for_records(dict(metadata, special_token_ids={"[MASK]": 7}),
                                     MaskingConfig(), vocab)
    with pytest.raises(InputError, match="metadata.json: the records are already masked"):
        reference_masker_for_records(dict(metadata, records="masked"), MaskingConfig(), vocab)
