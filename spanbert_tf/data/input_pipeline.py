"""tf.data input pipeline for the pretraining TFRecords.

`create_pretraining_data.py` writes shards plus a `metadata.json` beside them
(sequence length L, predictions per sequence P, vocabulary path/sha256/size,
compression, shard list). `find_pretraining_files` resolves the user's
`--input_files` to shards + that metadata, `check_metadata` stops with a clear
message when the data does not fit the model, and `pretraining_dataset` is the
per-replica pipeline:

    shard files per worker (input_context) -> shuffle files -> repeat
    -> parallel interleave of TFRecord readers -> shuffle buffer
    -> batch (per replica, drop_remainder) -> vectorised parse -> int64->int32 -> prefetch

Example:
```python
files, metadata = find_pretraining_files("tfrecords/")
check_metadata(metadata, vocab_size=28996, max_position_embeddings=512)
dataset_fn = make_pretraining_dataset_fn(files, metadata, global_batch_size=256, seed=1)
dist_dataset = strategy.distribute_datasets_from_function(dataset_fn)
```
"""

import json
import logging
import os

import tensorflow as tf

from spanbert_tf.data import features
from spanbert_tf.errors import InputError

METADATA_FILE = "metadata.json"
# Files that are never shards, even when a glob matches them.
NOT_SHARDS = (METADATA_FILE, "stats.json")


def _read_json(path):
    try:
        with tf.io.gfile.GFile(path, "r") as f:
            data = json.loads(f.read())
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: invalid JSON ({e})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    return data


def _expand(pattern):
    pattern = os.path.expanduser(pattern.strip())
    if tf.io.gfile.isdir(pattern):
        meta_path = os.path.join(pattern, METADATA_FILE)
        if not tf.io.gfile.exists(meta_path):
            raise InputError(
                f"{pattern} has no {METADATA_FILE}: is it an output dir of create_pretraining_data.py?"
            )
        shards = _read_json(meta_path).get("shards")
        if not isinstance(shards, list) or not shards:
            raise InputError(f"{meta_path}: 'shards' must be a non-empty list of file names")
        files = [os.path.join(pattern, name) for name in shards]
        missing = [f for f in files if not tf.io.gfile.exists(f)]
        if missing:
            raise InputError(f"{meta_path} lists shard(s) that do not exist: {missing[:3]}")
        return files
    files = sorted(f for f in tf.io.gfile.glob(pattern) if os.path.basename(f) not in NOT_SHARDS)
    files = [f for f in files
             if not tf.io.gfile.isdir(f) and not os.path.basename(f).startswith(".")]
    if not files:
        raise InputError(f"no input files match {pattern!r}")
    return files


def find_pretraining_files(input_files):
    """Resolves `input_files` to (shard paths, metadata dict).

    Args:
        input_files: comma-separated directories (output dirs of
            create_pretraining_data.py: their metadata's shard list is used) or
            glob patterns of shards (their directory must hold metadata.json).
            A list of such strings is accepted too.

    Every directory involved must have the same L, P and vocabulary; the
    returned metadata is the first one with `"metadata_path"` added.
    """
    patterns = input_files.split(",") if isinstance(input_files, str) else list(input_files)
    patterns = [p for p in patterns if p.strip()]
    if not patterns:
        raise InputError("no input files given")
    files = []
    for pattern in patterns:
        files.extend(_expand(pattern))
    files = sorted(set(files))
    first, first_path = None, None
    for directory in sorted({_dirname(f) for f in files}):
        meta_path = os.path.join(directory, METADATA_FILE)
        if not tf.io.gfile.exists(meta_path):
            raise InputError(
                f"{meta_path} not found: every shard directory needs the metadata.json "
                "written by create_pretraining_data.py"
            )
        meta = _read_json(meta_path)
        for key in ("max_seq_length", "max_predictions_per_seq"):
            if not isinstance(meta.get(key), int):
                raise InputError(f"{meta_path}: missing or non-integer '{key}'")
        if first is None:
            first, first_path = meta, meta_path
            continue
        for key, a, b in (
            ("max_seq_length", first["max_seq_length"], meta["max_seq_length"]),
            ("max_predictions_per_seq", first["max_predictions_per_seq"],
             meta["max_predictions_per_seq"]),
            ("vocab.sha256", _vocab(first).get("sha256"), _vocab(meta).get("sha256")),
        ):
            if a != b:
                raise InputError(f"input files disagree on {key}: {a} in {first_path}, "
                                 f"{b} in {meta_path}")
    metadata = dict(first)
    metadata["metadata_path"] = first_path
    return files, metadata


def metadata_by_dir(files):
    """{directory: its metadata.json dict} for the directories of `files`."""
    return {directory: _read_json(os.path.join(directory, METADATA_FILE))
            for directory in sorted({_dirname(f) for f in files})}


def _dirname(path):
    if "://" in path:  # gs://bucket/dir/shard
        return path.rsplit("/", 1)[0]
    return os.path.dirname(os.path.abspath(path))


def _vocab(meta):
    vocab = meta.get("vocab")
    return vocab if isinstance(vocab, dict) else {}


def check_metadata(metadata, vocab_size=None, max_position_embeddings=None,
                   max_pair_targets=None, max_seq_length=None, max_predictions_per_seq=None):
    """Raises `InputError` naming metadata.json where the data does not fit the model.

    Checks the feature spec against `features.py`, the vocabulary size, that
    L <= max_position_embeddings, that SBO relative positions fit
    `max_pair_targets`, and L / P against expected values when given.
    """
    source = metadata.get("metadata_path", METADATA_FILE)
    L, P = metadata["max_seq_length"], metadata["max_predictions_per_seq"]
    spec = metadata.get("feature_spec")
    if spec is not None and spec != features.feature_spec_json(L, P):
        raise InputError(
            f"{source}: feature_spec differs from spanbert_tf.data.features for L={L}, P={P} "
            "(data written by another version? recreate it)"
        )
    problems = []
    if max_seq_length is not None and L != max_seq_length:
        problems.append(f"max_seq_length is {L} in the data but {max_seq_length} is expected")
    if max_predictions_per_seq is not None and P != max_predictions_per_seq:
        problems.append(
            f"max_predictions_per_seq is {P} in the data but {max_predictions_per_seq} is expected"
        )
    if max_position_embeddings is not None and L > max_position_embeddings:
        problems.append(
            f"max_seq_length {L} exceeds the model's max_position_embeddings "
            f"{max_position_embeddings}"
        )
    data_vocab = _vocab(metadata).get("size")
    if vocab_size is not None and data_vocab is not None and data_vocab != vocab_size:
        problems.append(f"vocab size is {data_vocab} in the data but the model has {vocab_size}")
    targets = (metadata.get("settings") or {}).get("max_pair_targets")
    if max_pair_targets is not None and targets is not None and targets > max_pair_targets:
        problems.append(
            f"SBO max_pair_targets is {targets} in the data but the model embeds only "
            f"{max_pair_targets} relative positions"
        )
    if problems:
        raise InputError(f"{source} does not match the model config: " + "; ".join(problems))


def compression_of(metadata, files):
    """The TFRecord compression ("", "GZIP" or "ZLIB") of `files` written with `metadata`."""
    return _compression(metadata, files)


def _compression(metadata, files):
    value = metadata.get("compression")
    if value in (None, "none", ""):
        return "GZIP" if all(f.endswith(".gz") for f in files) else ""
    if value not in ("GZIP", "ZLIB"):
        raise InputError(f"{metadata.get('metadata_path')}: unknown compression {value!r}")
    return value


def parse_pretraining_batch(serialized, max_seq_length, max_predictions_per_seq):
    """Parses a batch of serialized examples; int64 features become int32."""
    spec = features.pretraining_feature_spec(max_seq_length, max_predictions_per_seq)
    parsed = tf.io.parse_example(serialized, spec)
    return {
        name: tf.cast(value, tf.int32) if value.dtype == tf.int64 else value
        for name, value in parsed.items()
    }


def pretraining_dataset(files, max_seq_length, max_predictions_per_seq, batch_size,
                        input_context=None, is_training=True, seed=None,
                        shuffle_buffer=10000, compression="", cycle_length=8,
                        deterministic=True, skip_corrupt_records=False):
    """The batched dataset of one input pipeline (one worker), per-replica batches.

    Files are sharded across workers (`input_context.input_pipeline_id`); with
    fewer files than workers, records are sharded instead. Training datasets
    repeat forever, shuffle files and records (`seed` makes the order
    reproducible) and drop the last partial batch (static shapes for TPU).
    `skip_corrupt_records` drops records a shard cannot deliver (truncated, bad CRC)
    instead of failing with `DataLossError` (see `shard_check` for the counts).
    """
    files = sorted(files)
    ds = tf.data.Dataset.from_tensor_slices(files)
    shard_records = False
    if input_context is not None and input_context.num_input_pipelines > 1:
        if len(files) >= input_context.num_input_pipelines:
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        else:
            logging.warning(
                "%d input file(s) for %d workers: sharding records instead of files",
                len(files), input_context.num_input_pipelines,
            )
            shard_records = True
    if is_training:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True).repeat()
    def read_shard(f):
        records = tf.data.TFRecordDataset(f, compression_type=compression,
                                          buffer_size=8 * 1024 * 1024)
        return records.ignore_errors() if skip_corrupt_records else records

    ds = ds.interleave(
        read_shard,
        cycle_length=max(1, min(cycle_length, len(files))),
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    if shard_records:
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if is_training and shuffle_buffer > 1:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=is_training)
    ds = ds.map(
        lambda s: parse_pretraining_batch(s, max_seq_length, max_predictions_per_seq),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    options = tf.data.Options()
    options.deterministic = deterministic
    # Sharding is done above, by file: tell tf.distribute not to shard again.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def make_pretraining_dataset_fn(files, metadata, global_batch_size, is_training=True,
                                seed=None, shuffle_buffer=10000, skip_corrupt_records=False):
    """`dataset_fn(input_context)` for `strategy.distribute_datasets_from_function`.

    `global_batch_size` is the batch of ONE forward pass over all replicas
    (with gradient accumulation: the micro-batch); each replica gets
    `global_batch_size / num_replicas` examples.
    """
    L, P = metadata["max_seq_length"], metadata["max_predictions_per_seq"]
    compression = _compression(metadata, files)

    def dataset_fn(input_context=None):
        if input_context is None:
            input_context = tf.distribute.InputContext()
        per_replica = input_context.get_per_replica_batch_size(global_batch_size)
        worker_seed = None if seed is None else seed + input_context.input_pipeline_id
        return pretraining_dataset(
            files, L, P, per_replica, input_context=input_context, is_training=is_training,
            seed=worker_seed, shuffle_buffer=shuffle_buffer, compression=compression,
            skip_corrupt_records=skip_corrupt_records,
        )

    return dataset_fn
