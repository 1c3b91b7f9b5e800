"""The TF-free block format: unmasked `[CLS] block [SEP]` rows in memory-mapped `.npy` shards.

`create_pretraining_data.py --masking=none --output_format=npy` writes, per shard,
`blocks-SSSSS-of-NNNNN.npy`: ONE numpy array of records (`row_dtype`):

| field        | dtype                       | meaning                                  |
|--------------|-----------------------------|------------------------------------------|
| `input_ids`  | uint16 [L] (int32 if the    | the block's wordpieces, then 0 ([PAD])   |
|              | vocabulary exceeds 65,536)  |                                          |
| `length`     | int32                       | real tokens ([CLS] block [SEP])          |
| `example_id` | int64                       | as in the unmasked TFRecords (the key of |
|              |                             | the dynamic mask: seed, epoch, id)       |

and `metadata.json` says `"output_format": "npy"` (readers need no flag), with the unmasked
feature spec, shard names, per-shard counts, sizes and sha256 like the TFRecord dirs. The
format was chosen over ArrayRecord by `bench/block_formats.py` (docs/performance.md): a batch
at shuffled indices is one fancy index into the memory map, tens of times faster than
per-record reads, and needs no package beyond numpy.

`BlockShardWriter` is `writing.writer.ShardWriter` for this format (same interface: the
pipeline appends each work unit's rows; all shards are renamed into place at the end).
`find_block_files` / `open_block_shards` read them without TensorFlow.

Example:
```python
files, metadata = find_block_files("runs/blocks")
shards = open_block_shards(files, metadata)      # [np.memmap of row_dtype]
shards[0]["input_ids"][:4]
```
"""

import json
import os
import shutil

import numpy as np

from spanbert_tf.data.input.records_metadata import METADATA_FILE, vocab_of
from spanbert_tf.errors import InputError
from spanbert_tf.io_utils import sha256_file

BLOCK_FORMAT = "npy"
OUTPUT_FORMATS = ("tfrecord", BLOCK_FORMAT)
# What describes the shards of an output dir (as writer.DESCRIPTION_FILES).
DESCRIPTION_FILES = ("metadata.json", "stats.json", "stats.png")


def row_dtype(max_seq_length, vocab_size):
    """The structured dtype of one block row."""
    ids = "<u2" if vocab_size <= 1 << 16 else "<i4"
    return np.dtype([("input_ids", ids, (int(max_seq_length),)), ("length", "<i4"),
                     ("example_id", "<i8")])


def block_rows(blocks, example_ids, max_seq_length, vocab_size):
    """`[CLS] block [SEP]` arrays + their example ids → a `row_dtype` array."""
    rows = np.zeros(len(blocks), row_dtype(max_seq_length, vocab_size))
    for i, block in enumerate(blocks):
        if len(block) > max_seq_length:
            raise InputError(f"an instance exceeds max_seq_length {max_seq_length}")
        rows["input_ids"][i, :len(block)] = block
        rows["length"][i] = len(block)
    rows["example_id"] = np.asarray(example_ids, np.int64)
    return rows


def shard_name(index, num_shards):
    return f"blocks-{index:05d}-of-{num_shards:05d}.npy"


def _is_shard_name(name):
    return ((name.startswith("blocks-") and name.endswith(".npy"))
            or (name.startswith("pretrain-") and ".tfrecord" in name)) and "-of-" in name


class BlockShardWriter:
    """Writes row bytes into `.npy` block shards; renames them all on success.

    Rows are appended to `.blocks-SSSSS-of-NNNNN.npy.rows-PID` files; at the end each shard
    gets its `.npy` header (the row count is known then) under a temporary name, then all are
    renamed after an earlier run's `DESCRIPTION_FILES` are removed (as `ShardWriter`). Older
    shards of another run (`blocks-*-of-*`, `pretrain-*-of-*`) are removed after the rename.
    """

    def __init__(self, output_dir, num_shards, dtype, hash_map=None):
        if num_shards < 1:
            raise InputError(f"num_shards must be >= 1, got {num_shards}")
        self.output_dir, self.num_shards, self.dtype = output_dir, num_shards, np.dtype(dtype)
        self.names = [shard_name(i, num_shards) for i in range(num_shards)]
        self.paths = [os.path.join(output_dir, n) for n in self.names]
        self._rows = [os.path.join(output_dir, f".{n}.rows-{os.getpid()}") for n in self.names]
        self._tmp = [os.path.join(output_dir, f".{n}.tmp-{os.getpid()}") for n in self.names]
        self.records = [0] * num_shards
        self.bytes_written, self.removed_stale, self.sha256 = 0, [], None
        self._files, self._hash_map, self._closed = [], hash_map, False

    def __enter__(self):
        os.makedirs(self.output_dir, exist_ok=True)
        self._files = [open(p, "wb") for p in self._rows]
        return self

    def write(self, shard, rows, num_records=0):
        """Appends `rows` (bytes of `dtype` rows) to a shard."""
        if len(rows) != num_records * self.dtype.itemsize:
            raise InputError(f"{len(rows)} bytes are not {num_records} rows of "
                             f"{self.dtype.itemsize} bytes")
        self._files[shard].write(rows)
        self.records[shard] += num_records
        self.bytes_written += len(rows)

    def _finish(self):
        for f in self._files:
            f.close()
        for rows, tmp, count in zip(self._rows, self._tmp, self.records):
            with open(tmp, "wb") as out, open(rows, "rb") as src:
                header = {"descr": np.lib.format.dtype_to_descr(self.dtype),
                          "fortran_order": False, "shape": (count,)}
                np.lib.format.write_array_header_2_0(out, header)
                shutil.copyfileobj(src, out, 1 << 22)
                out.flush()
                os.fsync(out.fileno())
            os.remove(rows)
        digests = self._hash_map(sha256_file, self._tmp) if self._hash_map else None
        self.sha256 = list(digests) if digests is not None else None
        for name in DESCRIPTION_FILES:
            if os.path.exists(os.path.join(self.output_dir, name)):
                os.remove(os.path.join(self.output_dir, name))
        for tmp, path in zip(self._tmp, self.paths):
            os.replace(tmp, path)
        keep = set(self.names)
        for name in sorted(os.listdir(self.output_dir)):
            if _is_shard_name(name) and name not in keep:
                os.remove(os.path.join(self.output_dir, name))
                self.removed_stale.append(name)

    def abort(self):
        for f in self._files:
            if not f.closed:
                f.close()
        for path in self._rows + self._tmp:
            if os.path.exists(path):
                os.remove(path)
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


def _read_metadata(directory):
    path = os.path.join(directory, METADATA_FILE)
    if not os.path.isfile(path):
        raise InputError(f"{directory} has no {METADATA_FILE}: is it an output dir of "
                         "create_pretraining_data.py?")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: invalid JSON ({e})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    data["metadata_path"] = path
    return data


def _dirs(input_files):
    patterns = input_files.split(",") if isinstance(input_files, str) else list(input_files)
    return [os.path.expanduser(p.strip()) for p in patterns if p.strip()]


def is_block_input(input_files):
    """Whether `input_files` names output dirs of `--output_format=npy` (their metadata.json
    says so); TFRecord dirs, globs and missing paths are not."""
    dirs = _dirs(input_files)
    if not dirs or not all(os.path.isfile(os.path.join(d, METADATA_FILE)) for d in dirs):
        return False
    try:
        return all(_read_metadata(d).get("output_format") == BLOCK_FORMAT for d in dirs)
    except InputError:
        return False


def find_block_files(input_files):
    """(shard paths, metadata of the first dir) of comma-separated block dirs; the dirs must
    agree on L, P, the vocabulary and the row format."""
    dirs = _dirs(input_files)
    if not dirs:
        raise InputError("no input files given")
    files, first = [], None
    for directory in sorted(set(dirs)):
        meta = _read_metadata(directory)
        source = meta["metadata_path"]
        if meta.get("output_format") != BLOCK_FORMAT:
            raise InputError(f"{source}: not written with --output_format={BLOCK_FORMAT}")
        for key in ("max_seq_length", "max_predictions_per_seq"):
            if not isinstance(meta.get(key), int):
                raise InputError(f"{source}: missing or non-integer '{key}'")
        shards = meta.get("shards")
        if not isinstance(shards, list) or not shards:
            raise InputError(f"{source}: 'shards' must be a non-empty list of file names")
        paths = [os.path.join(directory, name) for name in shards]
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            raise InputError(f"{source} lists shard(s) that do not exist: {missing[:3]}")
        files += paths
        if first is None:
            first = meta
            continue
        for key in ("max_seq_length", "max_predictions_per_seq", "block_row_dtype"):
            if meta.get(key) != first.get(key):
                raise InputError(f"input files disagree on {key}: {first.get(key)} in "
                                 f"{first['metadata_path']}, {meta.get(key)} in {source}")
        if vocab_of(meta).get("sha256") != vocab_of(first).get("sha256"):
            raise InputError(f"input files disagree on vocab.sha256: {first['metadata_path']} "
                             f"and {source}")
    return files, first


def open_block_shards(files, metadata):
    """Memory maps of the shards, checked against metadata.json (row format, bytes, rows).

    Raises `InputError` naming the shard that is truncated or not of this format.
    """
    vocab_size = vocab_of(metadata).get("size") or (1 << 16)
    dtype = row_dtype(metadata["max_seq_length"], vocab_size)
    entries = {}
    for directory in sorted({os.path.dirname(f) for f in files}):
        meta = (metadata if os.path.dirname(metadata["metadata_path"]) == directory
                else _read_metadata(directory))
        for entry in meta.get("shard_files") or []:
            entries[os.path.join(directory, entry["name"])] = entry
    shards = []
    for path in files:
        entry = entries.get(path)
        size = os.path.getsize(path)
        if entry is not None and entry.get("bytes") not in (None, size):
            raise InputError(f"{path}: {size} bytes, but metadata.json says {entry['bytes']} "
                             "(truncated or rewritten?): recreate the data")
        try:
            array = np.load(path, mmap_mode="r")
        except (ValueError, OSError, EOFError) as e:
            raise InputError(f"{path}: not a readable .npy block shard ({e})") from None
        if array.dtype != dtype or array.ndim != 1:
            raise InputError(f"{path}: rows of {array.dtype} {array.shape}, expected {dtype} "
                             f"(L={metadata['max_seq_length']})")
        if entry is not None and entry.get("records") not in (None, len(array)):
            raise InputError(f"{path}: {len(array)} rows, but metadata.json says "
                             f"{entry['records']}")
        shards.append(array)
    return shards
