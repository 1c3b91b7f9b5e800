"""block_loader.py: the order is a function of (seed, epoch); hosts get disjoint rows; a resume
starts at the exact batch; worker processes give the same batches; masks follow the epoch."""

import numpy as np
import pytest

from spanbert_tf.data.blocks.block_files import find_block_files
from spanbert_tf.data.blocks.block_loader import BlockBatches, BlockOrder
from spanbert_tf.data.masking.masking_types import MaskingConfig
from spanbert_tf.data.masking.numpy_dynamic import (NumpyDynamicMasker,
                                                    reference_masker_for_records)
from spanbert_tf.errors import InputError


@pytest.fixture(scope="module")
def blocks(unmasked_pair):
    files, metadata = find_block_files(str(unmasked_pair[1]))
    masker = NumpyDynamicMasker(reference_masker_for_records(
        metadata, MaskingConfig(max_predictions_per_seq=10), metadata["vocab"]["path"]), 64)
    return files, metadata, masker


def test_order_visits_every_row_once_per_epoch_and_shards_hosts():
    order = BlockOrder([7, 5, 9], seed=3, batch_size=4)
    rows = np.concatenate([order.batch(i)[0] for i in range(21 // 4 * 2)])
    epochs = np.concatenate([order.batch(i)[1] for i in range(21 // 4 * 2)])
    assert sorted(rows[epochs == 0]) == list(range(21))          # epoch 0 whole
    assert not np.array_equal(rows[:21], rows[21:42])             # a new order in epoch 1
    hosts = [BlockOrder([7, 5, 9], seed=3, batch_size=2, num_hosts=3, host_index=h)
             for h in range(3)]
    seen = [np.concatenate([o.batch(i)[0] for i in range(3)]) for o in hosts]  # 6 rows each
    assert sorted(np.concatenate(seen)) == sorted(set(np.concatenate(seen)))    # disjoint
    assert sorted(np.concatenate(seen)) == sorted(rows[:21][:18])  # the first 18 of the order
    with pytest.raises(InputError, match="nothing to train on for 30 host"):
        BlockOrder([7, 5, 9], 3, 1, num_hosts=30)


def test_batches_resume_exactly_and_equal_across_workers(blocks):
    files, metadata, masker = blocks
    batches = BlockBatches(files, metadata, masker, 32, seed=5)
    per_epoch = batches.rows_per_epoch
    whole = [b for _, b in zip(range(per_epoch // 32 + 3), batches.iterate())]
    batches.resume_at_step(len(whole) - 3)
    resumed = [b for _, b in zip(range(3), batches.iterate())]   # crosses into epoch 1
    workers = BlockBatches(files, metadata, masker, 32, seed=5, num_workers=2)
    workers.resume_at_step(len(whole) - 3)
    it = workers()
    from_workers = [next(it)[0] for _ in range(3)]
    it.close()
    for a, b, c in zip(whole[-3:], resumed, from_workers):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
            np.testing.assert_array_equal(a[name], c[name], err_msg=name)
    # A row's mask depends on its epoch: rows met again in epoch 1 are masked anew.
    first = np.concatenate([b["masked_lm_positions"] for b in whole[:per_epoch // 32]])
    assert first.shape[0] == per_epoch // 32 * 32 and whole[0]["input_ids"].dtype == np.int32
