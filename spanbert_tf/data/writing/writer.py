"""Fast tf.train.Example serialization and atomic, sharded TFRecord output.

`serialize_examples` / `serialize_rows` (from `example_codec`) write the
tf.train.Example wire format of a whole batch with numpy (no Python protobuf
object per example); the bytes parse with `tf.io.parse_single_example` and the
`features.py` spec. `frame_records` adds
the TFRecord framing (length, masked CRC32C) with TensorFlow's own writer on an
in-memory file. `ShardWriter` writes `pretrain-SSSSS-of-NNNNN.tfrecord[.gz]`
atomically: every shard is written under a temporary name and renamed only
once all shards are complete, so a killed run leaves no file a reader would
take for a finished shard.

Example:
```python
records = serialize_examples(arrays)          # arrays: features.py names → np arrays
with ShardWriter("out", num_shards=4, compression="GZIP") as writer:
    writer.write(0, frame_records(records))
```
"""

import itertools
import os
import zlib

import numpy as np

from spanbert_tf.data.writing import example_codec
from spanbert_tf.errors import InputError
from spanbert_tf.io_utils import sha256_file

COMPRESSIONS = ("none", "GZIP")
# What describes the shards of an output dir (written after them by the callers).
# stats.png (drawn from stats.json after the run) describes them too: an older one goes with it.
DESCRIPTION_FILES = ("metadata.json", "stats.json", "stats.png")
_ram_counter = itertools.count()

# The serializers live in example_codec; re-exported here.
serialize_examples = example_codec.serialize_examples
serialize_rows = example_codec.serialize_rows


def serialize_example(arrays):
    """One example: dict name → 1-D array. Returns the serialized bytes."""
    return serialize_examples({k: np.asarray(v)[None] for k, v in arrays.items()})[0]


def frame_records(records):
    """TFRecord framing of serialized records (TensorFlow's writer, in memory)."""
    import tensorflow as tf

    if not records:
        return b""
    path = f"ram://spanbert_tf_frames/{os.getpid()}-{next(_ram_counter)}"
    with tf.io.TFRecordWriter(path) as w:
        for record in records:
            w.write(record)
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    tf.io.gfile.remove(path)
    return data


def shard_name(index, num_shards, compression="none"):
    suffix = ".tfrecord.gz" if compression == "GZIP" else ".tfrecord"
    return f"pretrain-{index:05d}-of-{num_shards:05d}{suffix}"


class ShardWriter:
    """Writes framed TFRecord bytes into shards; renames them all on success.

    Temporary files are `.pretrain-SSSSS-of-NNNNN.tfrecord[.gz].tmp-PID` in the
    output dir; on an exception they are removed, on success renamed to their
    final names, after removing an earlier run's `DESCRIPTION_FILES`: a run
    killed while renaming leaves shards no metadata.json vouches for (readers
    refuse the dir), never an older metadata.json over newer shards. Older `pretrain-*-of-*` shards of the output dir (e.g. from a
    run with another --num_shards) are removed after the rename.

    With `hash_map` (a `map`-like function: `Executor.map` of a worker pool, which
    submits at once), the shards' sha256 are computed while they are synced to disk
    and left in `sha256` (one hex digest per shard).
    """

    def __init__(self, output_dir, num_shards, compression="none", gzip_level=6,
                 hash_map=None):
        if compression not in COMPRESSIONS:
            raise InputError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
        if num_shards < 1:
            raise InputError(f"num_shards must be >= 1, got {num_shards}")
        self.output_dir = output_dir
        self.num_shards = num_shards
        self.compression = compression
        self.names = [shard_name(i, num_shards, compression) for i in range(num_shards)]
        self.paths = [os.path.join(output_dir, n) for n in self.names]
        self._tmp = [os.path.join(output_dir, f".{n}.tmp-{os.getpid()}") for n in self.names]
        self.records = [0] * num_shards
        self.bytes_written = 0
        self.removed_stale = []
        self._files = []
        self._zips = []
        self._gzip_level = gzip_level
        self._hash_map = hash_map
        self.sha256 = None
        self._closed = False

    def __enter__(self):
        os.makedirs(self.output_dir, exist_ok=True)
        self._files = [open(p, "wb") for p in self._tmp]
        if self.compression == "GZIP":
            self._zips = [zlib.compressobj(self._gzip_level, zlib.DEFLATED, 31)
                          for _ in self._tmp]
        return self

    def write(self, shard, framed, num_records=0):
        """Appends framed TFRecord bytes to a shard."""
        if self.compression == "GZIP":
            framed = self._zips[shard].compress(framed)
        self._files[shard].write(framed)
        self.records[shard] += num_records
        self.bytes_written += len(framed)

    def _finish(self):
        for i, f in enumerate(self._files):
            if self._zips:
                f.write(self._zips[i].flush())
            f.flush()
        digests = self._hash_map(sha256_file, self._tmp) if self._hash_map else None
        for f in self._files:
            os.fsync(f.fileno())
            f.close()
        if digests is not None:
            self.sha256 = list(digests)
        for name in DESCRIPTION_FILES:
            if os.path.exists(os.path.join(self.output_dir, name)):
                os.remove(os.path.join(self.output_dir, name))
        for tmp, path in zip(self._tmp, self.paths):
            os.replace(tmp, path)
        keep = set(self.names)
        for name in sorted(os.listdir(self.output_dir)):
            if name.startswith("pretrain-") and "-of-" in name and ".tfrecord" in name \
                    and name not in keep:
                os.remove(os.path.join(self.output_dir, name))
                self.removed_stale.append(name)

    def abort(self):
        for f in self._files:
            if not f.closed:
                f.close()
        for tmp in self._tmp:
            if os.path.exists(tmp):
                os.remove(tmp)
        self._closed = True

    def __exit__(self, exc_type, exc, tb):
        if self._closed:
            return False
        if exc_type is None:
            try:
                self._finish()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()
        self._closed = True
        return False
