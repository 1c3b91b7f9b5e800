"""Masked pretraining batches from `.npy` block shards, without TensorFlow.

`BlockBatches` is the TF-free twin of `input_pipeline.PretrainingDatasetFn` for the JAX and
PyTorch backends:

- one global order: the rows of all shards (sorted by name) are one sequence; epoch e visits
  them in the permutation `np.random.default_rng([seed, e])` (a function of seed and epoch
  only); epoch after epoch, as one endless stream (a batch may span two epochs);
- sharded per host: host h of H takes the stream positions h, h + H, ... (each epoch is cut
  to a multiple of H rows, so the hosts see disjoint rows); its batches hold
  `global_batch_size / H` rows;
- masked as the tf.data pipeline masks: each row by (seed, its epoch, its example_id)
  (`numpy_dynamic.NumpyDynamicMasker`, bit-identical to `DynamicMasker`), so the mask of an
  example does not depend on batching, hosts, workers or the resume point;
- resumable at the exact position: `resume_at_step(step)` starts the next iterator at
  batch `step` of this host's stream (whole epochs skipped by arithmetic);
- `num_workers` processes (spawned, so a JAX/torch parent is never forked) mask the
  batches; batch i is a pure function of i, results come back in order: the same batches
  for any worker count.

Example:
```python
files, metadata = find_block_files("runs/blocks")
batches = BlockBatches(files, metadata, masker, global_batch_size=256, seed=12345,
                       num_workers=4)
batches.resume_at_step(1000)
first = next(batches.iterate())   # {"input_ids": int32 [256, L], ...} the features.py batch
```
"""

import collections
import multiprocessing

import numpy as np

from spanbert_tf.data.blocks.block_files import open_block_shards
from spanbert_tf.errors import InputError

_WORKER = {}


class BlockOrder:
    """Which rows batch i of a host holds, and their epochs (no data read)."""

    def __init__(self, shard_sizes, seed, batch_size, num_hosts=1, host_index=0):
        if not 0 <= host_index < num_hosts:
            raise InputError(f"host_index {host_index} outside [0, {num_hosts})")
        self.total = int(sum(shard_sizes))
        self.per_host = self.total // num_hosts  # rows of one host per epoch
        if self.per_host < 1:
            raise InputError(f"the shards hold {self.total} rows: nothing to train on for "
                             f"{num_hosts} host(s)")
        self.seed, self.batch_size = int(seed), int(batch_size)
        self.num_hosts, self.host_index = int(num_hosts), int(host_index)
        self._cached = (None, None)

    def _permutation(self, epoch):
        if self._cached[0] != epoch:
            self._cached = (epoch, np.random.default_rng([self.seed, epoch]).permutation(
                self.total))
        return self._cached[1]

    def batch(self, index):
        """(global row indices [B], epochs [B]) of batch `index` of this host."""
        positions = np.arange(index * self.batch_size, (index + 1) * self.batch_size,
                              dtype=np.int64)
        epochs, within = np.divmod(positions, self.per_host)
        rows = np.empty_like(positions)
        for epoch in np.unique(epochs).tolist():
            chosen = epochs == epoch
            # Host h's i-th row of the epoch: position i * H + h of the permutation.
            rows[chosen] = self._permutation(epoch)[within[chosen] * self.num_hosts
                                                    + self.host_index]
        return rows, epochs


class _Reader:
    """The rows of all shards by global index (memory maps opened in this process)."""

    def __init__(self, files, metadata):
        self.shards = open_block_shards(files, metadata)
        sizes = np.array([len(s) for s in self.shards], np.int64)
        self.starts = np.cumsum(sizes) - sizes
        self.sizes = sizes

    def rows(self, indices):
        shard = np.searchsorted(self.starts, indices, side="right") - 1
        out = None
        for s in np.unique(shard).tolist():
            chosen = np.nonzero(shard == s)[0]
            local = indices[chosen] - self.starts[s]
            order = np.argsort(local, kind="stable")      # sorted reads of the memory map
            part = np.empty(len(local), self.shards[s].dtype)
            part[order] = self.shards[s][local[order]]
            if out is None:
                out = np.empty(len(indices), self.shards[s].dtype)
            out[chosen] = part
        return out


def _masked_batch(reader, order, masker, mask_seed, index):
    rows, epochs = order.batch(index)
    data = reader.rows(rows)
    return masker.mask_batch(data["input_ids"], data["length"], data["example_id"],
                             mask_seed, epochs)


def _init_worker(files, metadata, order, masker, mask_seed):
    _WORKER.update(reader=_Reader(files, metadata), order=order, masker=masker,
                   mask_seed=mask_seed)


def _worker_batch(index):
    w = _WORKER
    return _masked_batch(w["reader"], w["order"], w["masker"], w["mask_seed"], index)


class BlockBatches:
    """`batches.iterate()` → an endless iterator of masked batches of this host (see the module);
    `batches()` the same as `(batch,)` tuples for Keras `fit`.

    Args:
        files, metadata: from `block_files.find_block_files`.
        masker: a `numpy_dynamic.NumpyDynamicMasker`.
        global_batch_size: rows per step over all hosts.
        seed: order and masks (masks use `seed` whatever the host count, as on TF).
        num_hosts, host_index: this process's share (jax.process_count() / index()).
        num_workers: masking processes (0: in this process).
        prefetch: batches in flight per worker.
    """

    def __init__(self, files, metadata, masker, global_batch_size, seed=12345, num_hosts=1,
                 host_index=0, num_workers=0, prefetch=2):
        if global_batch_size % num_hosts:
            raise InputError(f"--train_batch_size {global_batch_size} is not divisible by the "
                             f"{num_hosts} host(s)")
        self.files, self.metadata, self.masker = list(files), metadata, masker
        self.seed = int(seed)
        self.batch_size = global_batch_size // num_hosts
        self.num_workers, self.prefetch = int(num_workers), max(1, int(prefetch))
        self.reader = _Reader(self.files, metadata)
        self.order = BlockOrder(self.reader.sizes, self.seed, self.batch_size, num_hosts,
                                host_index)
        self.start_step = 0

    @property
    def rows_per_epoch(self):
        return self.order.per_host

    def resume_at_step(self, step):
        """The next iterators start at batch `step` (what step `step` consumes next)."""
        self.start_step = int(step)

    def batch(self, index):
        """Batch `index` of this host's stream, masked here."""
        return _masked_batch(self.reader, self.order, self.masker, self.seed, index)

    def __call__(self):
        """An endless iterator of `(features,)`: what Keras `fit` takes from a generator."""
        return ((batch,) for batch in self.iterate())

    def iterate(self):
        """An endless iterator of feature dicts from `start_step` on."""
        start = self.start_step
        if self.num_workers <= 0:
            return (self.batch(i) for i in _count(start))
        return self._from_workers(start)

    def _from_workers(self, start):
        ctx = multiprocessing.get_context("spawn")
        pool = ctx.Pool(self.num_workers, _init_worker,
                        (self.files, self.metadata, self.order, self.masker, self.seed))
        try:
            pending = collections.deque()
            indices = _count(start)
            while True:
                while len(pending) < self.num_workers * self.prefetch:
                    pending.append(pool.apply_async(_worker_batch, (next(indices),)))
                yield pending.popleft().get()
        finally:
            pool.terminate()
            pool.join()


def _count(start):
    i = start
    while True:
        yield i
        i += 1
