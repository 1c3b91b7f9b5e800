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

import numpy as np
import tensorflow as tf

from spanbert_tf.data import features
from spanbert_tf.data.input.records_metadata import METADATA_FILE, vocab_of
from spanbert_tf.data.input.records_metadata import check_metadata, records_kind  # noqa: F401  (part of this API)
from spanbert_tf.errors import InputError

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
            ("vocab.sha256", vocab_of(first).get("sha256"), vocab_of(meta).get("sha256")),
            ("records (masked or unmasked)", records_kind(first), records_kind(meta)),
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


_DEFAULT_GRAPH_SEED = 87654321  # tensorflow/python/framework/random_seed.py DEFAULT_GRAPH_SEED


def _epoch_seed(seed, epoch, salt):
    """A per-epoch int64 seed (a tensor): the order of epoch e depends only on (seed, e)."""
    return (tf.cast(epoch, tf.int64) * 1_000_003 + seed) * 4 + salt


def _records(files, input_context, shard_records, is_training, seed, shuffle_buffer,
             compression, cycle_length, deterministic, start_epoch, skip_corrupt_records=False,
             records_per_epoch=None):
    """(serialized record, epoch) pairs: one epoch after another when training (refused with
    an `InputError` when `records_per_epoch` says this pipeline reads none)."""
    def read_shard(f):
        records = tf.data.TFRecordDataset(f, compression_type=compression,
                                          buffer_size=8 * 1024 * 1024)
        return records.ignore_errors() if skip_corrupt_records else records

    def epoch_records(epoch):
        if not tf.executing_eagerly():
            # A graph-level seed set by the user (tf.random.set_seed, keras.utils.set_random_seed)
            # would enter the shuffles' seed pair: the order would then depend on it, and a
            # global seed of 0 makes Dataset.shuffle compare our tensor seed with 0 in Python
            # (an OperatorNotAllowedInGraphError). Pin this function's graph seed to TF's
            # default (87654321, the value used when no global seed is set).
            tf.compat.v1.get_default_graph().seed = _DEFAULT_GRAPH_SEED
        ds = tf.data.Dataset.from_tensor_slices(files)
        if input_context is not None and input_context.num_input_pipelines > 1 \
                and not shard_records:
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        if is_training:
            ds = ds.shuffle(len(files), seed=_epoch_seed(seed, epoch, 1),
                            reshuffle_each_iteration=False)
        ds = ds.interleave(
            read_shard, cycle_length=max(1, min(cycle_length, len(files))), block_length=1,
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
        if shard_records:
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        if is_training and shuffle_buffer > 1:
            ds = ds.shuffle(shuffle_buffer, seed=_epoch_seed(seed, epoch, 2),
                            reshuffle_each_iteration=False)
        return ds.map(lambda r: (r, epoch))

    if not is_training:
        return epoch_records(tf.constant(0, tf.int64))
    if records_per_epoch == 0:
        # The epochs follow one another by flat_map over an endless range: with no record
        # each epoch is empty and the stream would look for the next one forever (a busy
        # loop in TensorFlow's threads that not even Ctrl-C ends). tf.data's repeat() stops
        # on an empty first pass, but the epochs here are seeded one by one.
        raise InputError(empty_input_message(files, input_context))
    if seed is None:  # unseeded: a new order each epoch, not resumable
        seed = int(np.random.SeedSequence().generate_state(1)[0] >> 2)
    return tf.data.Dataset.range(start_epoch, 1 << 62).flat_map(epoch_records)


def pretraining_dataset(files, max_seq_length, max_predictions_per_seq, batch_size,
                        input_context=None, is_training=True, seed=None,
                        shuffle_buffer=10000, compression="", cycle_length=8,
                        deterministic=True, masker=None, start_example=0,
                        records_per_epoch=None, mask_seed=None,
                        skip_corrupt_records=False):
    """The batched dataset of one input pipeline (one worker), per-replica batches.

    Files are sharded across workers (`input_context.input_pipeline_id`); with
    fewer files than workers, records are sharded instead. Training datasets
    run epoch after epoch; epoch e reads the files and shuffles the records in
    an order that depends only on (`seed`, e), so the stream is one fixed
    sequence: `start_example` skips its first examples (resume: see
    `PretrainingDatasetFn`), which starts at epoch
    `start_example // records_per_epoch`. Training drops the last partial
    batch (static shapes for TPU). `records_per_epoch` (this pipeline's records, see
    `records_per_pipeline`) of 0 is an `InputError`: an endless stream of empty epochs would
    spin forever.

    `masker`: a `dynamic_masking.DynamicMasker` for unmasked records (masked
    here: the mask of an example is a function of (`mask_seed`, default
    `seed`, its epoch, its `example_id`)); None for records masked offline.
    `skip_corrupt_records` drops records a shard cannot deliver (truncated, bad CRC)
    instead of failing with `DataLossError` (see `shard_check` for the counts).
    """
    files = sorted(files)
    shard_records = False
    if input_context is not None and input_context.num_input_pipelines > 1:
        if len(files) < input_context.num_input_pipelines:
            logging.warning(
                "%d input file(s) for %d workers: sharding records instead of files",
                len(files), input_context.num_input_pipelines,
            )
            shard_records = True
    start_epoch, skip = 0, int(start_example)
    if skip and records_per_epoch:
        start_epoch, skip = divmod(skip, int(records_per_epoch))
    ds = _records(files, input_context, shard_records, is_training,
                  None if seed is None else int(seed), shuffle_buffer, compression,
                  cycle_length, deterministic, start_epoch, skip_corrupt_records,
                  None if records_per_epoch is None else int(records_per_epoch))
    if skip:
        ds = ds.skip(skip)
    if masker is not None:
        if mask_seed is None:
            mask_seed = 0 if seed is None else int(seed)
        ds = mask_records(ds, masker, mask_seed, batch_size, is_training, deterministic)
    else:
        ds = ds.map(lambda record, epoch: record)
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


def mask_records(ds, masker, mask_seed, batch_size, drop_remainder=True,
                 deterministic=True):
    """(serialized unmasked record, epoch) pairs → masked `features.py` batches.

    Per example: parse and draw (stateless, keyed by mask_seed, epoch,
    example_id); per batch: `DynamicMasker.apply`. Training and
    `materialize_masks.py` both mask through here.
    """
    spec = features.unmasked_feature_spec(masker.max_seq_length)

    def parse_and_draw(record, epoch):
        example = tf.io.parse_single_example(record, spec)
        draws = masker.draw(mask_seed, epoch, example["example_id"][0])
        return dict(example, **{"draw_" + k: v for k, v in draws.items()})

    ds = ds.map(parse_and_draw, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=deterministic)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.map(lambda b: apply_dynamic_masking(masker, b),
                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)


def apply_dynamic_masking(masker, batch):
    """Parsed unmasked batch + its draws → the `features.py` features (int32/float32)."""
    draws = {k[len("draw_"):]: v for k, v in batch.items() if k.startswith("draw_")}
    out = masker.apply(batch["input_ids"], batch["input_mask"], draws)
    out["segment_ids"] = tf.cast(batch["segment_ids"], tf.int32)
    return {name: out[name] for name in features.FEATURE_NAMES}


class PretrainingDatasetFn:
    """`dataset_fn(input_context)` for `strategy.distribute_datasets_from_function`.

    `global_batch_size` is the batch of ONE forward pass over all replicas
    (with gradient accumulation: the micro-batch); each replica gets
    `global_batch_size / num_replicas` examples. With a `seed`, the example
    stream is a fixed sequence and `resume_at_step(step)` (called by the
    Trainer after restoring a checkpoint) makes the next dataset start where
    step `step` left it: each step consumes `grad_accum_steps` batches per
    replica, so the pipeline skips `step x grad_accum_steps x local replicas x
    per-replica batch` examples (skipping reads, but does not parse or mask,
    the records before that point; whole epochs are skipped by arithmetic).
    """

    def __init__(self, files, metadata, global_batch_size, is_training=True, seed=None,
                 shuffle_buffer=10000, masker=None, grad_accum_steps=1, skip_corrupt_records=False):
        self.files = sorted(files)
        self.metadata = metadata
        self.global_batch_size = int(global_batch_size)
        self.is_training = is_training
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer
        self.masker = masker
        self.grad_accum_steps = int(grad_accum_steps)
        self.skip_corrupt_records = bool(skip_corrupt_records)
        self.start_step = 0
        self.compression = _compression(metadata, files)
        self._record_counts = {}  # (pipelines, pipeline id) -> records it reads per epoch

    def _records_per_pipeline(self, input_context, count_uncounted):
        """Records of this pipeline per epoch; None if unknown (when not `count_uncounted`,
        shards metadata.json does not count are not read: a fresh start needs the number
        only to refuse 0, a resume to skip whole epochs)."""
        key = (input_context.num_input_pipelines, input_context.input_pipeline_id)
        if self._record_counts.get(key) is None:
            self._record_counts[key] = records_per_pipeline(
                self.files, self.metadata, input_context, count_uncounted=count_uncounted)
        return self._record_counts[key]

    def resume_at_step(self, step):
        """The next datasets continue the stream after `step` optimizer steps."""
        if self.seed is None and step:
            logging.warning("unseeded input pipeline: the data restarts after a resume")
            return
        self.start_step = int(step)

    def __call__(self, input_context=None):
        if input_context is None:
            input_context = tf.distribute.InputContext()
        per_replica = input_context.get_per_replica_batch_size(self.global_batch_size)
        local_replicas = max(1, input_context.num_replicas_in_sync
                             // input_context.num_input_pipelines)
        start = self.start_step * self.grad_accum_steps * local_replicas * per_replica
        worker_seed = None if self.seed is None else self.seed + input_context.input_pipeline_id
        L = self.metadata["max_seq_length"]
        P = (self.masker.layout.predictions if self.masker is not None
             else self.metadata["max_predictions_per_seq"])
        return pretraining_dataset(
            self.files, L, P, per_replica, input_context=input_context,
            is_training=self.is_training, seed=worker_seed, shuffle_buffer=self.shuffle_buffer,
            compression=self.compression, masker=self.masker, start_example=start,
            mask_seed=self.seed,  # masks do not depend on the number of hosts
            records_per_epoch=(self._records_per_pipeline(input_context, bool(start))
                               if start or self.is_training else None),
            skip_corrupt_records=self.skip_corrupt_records,
        )


def count_records(files, metadata, count_uncounted=True):
    """All records of `files` (metadata.json counts; a shard it does not count is read, or
    the answer is None when not `count_uncounted`)."""
    return records_per_pipeline(files, metadata, tf.distribute.InputContext(),
                                count_uncounted=count_uncounted)


def empty_input_message(files, input_context=None, records="0 records"):
    """One line: the shards (their dirs) give this input pipeline no record to train on."""
    dirs = sorted({_dirname(f) for f in files})
    where = ", ".join(dirs[:3]) + (f" and {len(dirs) - 3} more" if len(dirs) > 3 else "")
    pipeline = ""
    if input_context is not None and input_context.num_input_pipelines > 1:
        pipeline = (f" for input pipeline {input_context.input_pipeline_id} of "
                    f"{input_context.num_input_pipelines}")
    return (f"{where}: the {len(files)} shard(s) hold {records}{pipeline} (metadata.json "
            "counts): nothing to train on; was the corpus empty or its documents too short? "
            "See stats.json there and recreate the data with create_pretraining_data.py")


def records_per_pipeline(files, metadata, input_context, count_uncounted=True):
    """Records one input pipeline reads per epoch (metadata counts, else counted by reading
    the shard; None instead when a shard is not counted and not `count_uncounted`)."""
    counts = {}
    for directory in sorted({_dirname(f) for f in files}):
        meta = (metadata if directory == _dirname(metadata.get("metadata_path", ""))
                else _read_json(os.path.join(directory, METADATA_FILE)))
        per_shard = (meta.get("counts") or {}).get("instances_per_shard")
        if isinstance(per_shard, list) and len(per_shard) == len(meta.get("shards", [])):
            for name, count in zip(meta["shards"], per_shard):
                counts[os.path.join(directory, name)] = int(count)
    files = sorted(files)
    if not count_uncounted and any(
            os.path.join(_dirname(f), os.path.basename(f)) not in counts for f in files):
        return None

    def count(f):
        if os.path.join(_dirname(f), os.path.basename(f)) in counts:
            return counts[os.path.join(_dirname(f), os.path.basename(f))]
        return int(tf.data.TFRecordDataset(f, _compression(metadata, [f])).reduce(
            tf.constant(0, tf.int64), lambda n, _: n + 1))

    k, i = input_context.num_input_pipelines, input_context.input_pipeline_id
    if k > 1 and len(files) >= k:
        return sum(count(f) for f in files[i::k])
    total = sum(count(f) for f in files)
    return (total - i + k - 1) // k


def make_pretraining_dataset_fn(files, metadata, global_batch_size, is_training=True,
                                seed=None, shuffle_buffer=10000, masker=None,
                                grad_accum_steps=1, skip_corrupt_records=False):
    """A `PretrainingDatasetFn` (see there): `dataset_fn(input_context)`."""
    return PretrainingDatasetFn(files, metadata, global_batch_size, is_training, seed,
                                shuffle_buffer, masker, grad_accum_steps, skip_corrupt_records)
