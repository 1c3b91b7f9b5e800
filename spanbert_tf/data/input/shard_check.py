"""Checks pretraining TFRecord shards against what metadata.json recorded.

`create_pretraining_data.py` records every shard's size, sha256 and record count in
metadata.json (`shard_files`). Before training, `check_shards` compares the sizes
(cheap: one stat per shard) and, with `verify_checksums=True`, the sha256 too. A
shard that does not match is an `InputError` naming the shard and what to do,
unless the caller asked to skip corrupt records: then the mismatching shards are
read once to count how many records survive, and the dropped count is reported.

`check_record_count` refuses data that holds no record (training would wait forever for
the first batch) and `data_passes_note` says when a run reads its data many times over.

A shard corrupted in place (same size) is found while training: `find_corrupt_shard`
reads the shards one by one to name the one TensorFlow's `DataLossError` came from.

Example:
```python
report = check_shards(files, metadata_by_dir, skip_corrupt_records=False)
report["dropped_records"]   # 0 unless skipping
```
"""

import os
import re

import tensorflow as tf

from spanbert_tf.data.input import input_pipeline
from spanbert_tf.errors import InputError
from spanbert_tf.io_utils import sha256_file

WHAT_TO_DO = ("recreate the data with create_pretraining_data.py, or rerun with "
              "--skip_corrupt_records to drop and count the unreadable records")


_CORRUPT_AT = re.compile(r"corrupted record at (\d+)")


def data_loss_detail(error):
    """TensorFlow's DataLossError message without its op internals ("{{function_node
    __wrapped__IteratorGetNext...}}", "[Op:...]"): "corrupt record at byte offset N"."""
    message = (getattr(error, "message", None) or str(error)).strip()
    found = _CORRUPT_AT.search(message)
    if found:
        return f"corrupt record at byte offset {found.group(1)}"
    message = re.sub(r"\{\{[^}]*\}\}|\[Op:[^\]]*\]|\bname:\s*$", "", message.splitlines()[-1])
    return " ".join(message.split()) or type(error).__name__


def count_readable_records(path, compression=""):
    """(records read before the first error, the error in one line, or None)."""
    count = 0
    try:
        for _ in tf.data.TFRecordDataset(path, compression_type=compression):
            count += 1
    except tf.errors.DataLossError as e:
        return count, data_loss_detail(e)
    return count, None


def find_corrupt_shard(files, compression=""):
    """(path, error) of the first shard that cannot be read to its end; None if all can."""
    for path in sorted(files):
        _, error = count_readable_records(path, compression)
        if error is not None:
            return path, error
    return None


def corrupt_shard_error(path, detail):
    return InputError(f"{path}: corrupt or truncated TFRecord shard ({detail}); {WHAT_TO_DO}")


def check_shards(files, metadata_by_dir, skip_corrupt_records=False, verify_checksums=False,
                 compression=""):
    """Compares each shard with its metadata.json entry.

    Args:
        files: shard paths.
        metadata_by_dir: {directory: metadata dict} of the directories of `files`.
        skip_corrupt_records: count and keep going instead of raising; also verifies
            checksums (a shard corrupted in place has its size unchanged).
    Returns {"corrupt_shards": [...], "dropped_records": n, "checked": n}.
    """
    verify_checksums = verify_checksums or skip_corrupt_records
    report = {"corrupt_shards": [], "dropped_records": 0, "checked": 0}
    for path in sorted(files):
        meta = metadata_by_dir.get(os.path.dirname(os.path.abspath(path))) or {}
        entries = {e.get("name"): e for e in meta.get("shard_files") or []
                   if isinstance(e, dict)}
        entry = entries.get(os.path.basename(path))
        if entry is None or "://" in path:
            continue  # data written before shard_files existed, or a remote file system
        report["checked"] += 1
        size = os.path.getsize(path)
        problem = None
        if size != entry.get("bytes"):
            problem = (f"{size:,} bytes on disk, metadata.json records "
                       f"{entry.get('bytes'):,} bytes" if isinstance(entry.get("bytes"), int)
                       else f"{size:,} bytes on disk, metadata.json records {entry.get('bytes')}")
        elif verify_checksums and entry.get("sha256") and sha256_file(path) != entry["sha256"]:
            problem = "sha256 differs from metadata.json"
        if problem is None:
            continue
        if not skip_corrupt_records:
            raise corrupt_shard_error(path, problem)
        readable, _ = count_readable_records(path, compression)
        dropped = max(0, int(entry.get("records", readable)) - readable)
        report["corrupt_shards"].append({"path": path, "problem": problem,
                                         "readable_records": readable,
                                         "dropped_records": dropped})
        report["dropped_records"] += dropped
    return report


def check_record_count(files, metadata, shard_report):
    """The records training will read (None when metadata.json does not count them all);
    0 is an `InputError` naming the dirs: the endless stream of empty epochs would hang."""
    records = input_pipeline.count_records(files, metadata, count_uncounted=False)
    if records is None:
        return None
    dropped = shard_report["dropped_records"]
    if records == 0:
        raise InputError(input_pipeline.empty_input_message(files))
    if records - dropped <= 0:
        raise InputError(input_pipeline.empty_input_message(
            files, records=f"{records} records, all dropped as corrupt "
            "(--skip_corrupt_records)"))
    return records - dropped


# More passes over the data than this get a note before training: BERT-style pretraining
# reads its corpus ~40 times, but a run that reads a handful of instances again and again
# (a smoke-test corpus, a wrong --input_files) learns them by heart rather than the language.
MANY_PASSES = 10


def data_passes_note(instances, num_train_steps, global_batch, dynamic=False,
                     program="run_pretraining"):
    """One line when `num_train_steps x global_batch` reads the `instances` more than
    `MANY_PASSES` times, else None (None too when the count is unknown)."""
    if not instances:
        return None
    passes = num_train_steps * global_batch / instances
    if passes <= MANY_PASSES:
        return None
    masks = "; dynamic masking draws new masks each pass" if dynamic else ""
    return (f"{program}: note: the data holds {instances} instances; {num_train_steps} steps "
            f"x batch {global_batch} read them ~{passes:.0f} times (more than {MANY_PASSES} "
            f"passes: the model may memorise them rather than learn{masks}; more data or fewer "
            "--num_train_steps)")
