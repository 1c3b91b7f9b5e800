"""`create_pretraining_data`: input → wordpieces → blocks → masked TFRecord shards.

The main process streams the input (`documents.py`), groups document parts into
work units of about `WORK_UNIT_BYTES` and hands them to `num_workers` processes (or runs
them in-process with one worker); a bounded window of work units in flight keeps
memory flat. Results come back in work-unit order and are appended to the shards, so
the same seed and settings give byte-identical shards whatever `num_workers` is.
With `random_token_source="unigram"` a first pass counts the corpus wordpieces.

Example:
```python
from spanbert_tf.data.writing.pipeline import PretrainingDataConfig, create_pretraining_data
summary = create_pretraining_data(PretrainingDataConfig(
    input_file="corpus.txt", output_dir="tfrecords", max_seq_length=128))
```
"""

import collections
import contextlib
import dataclasses
import math
import multiprocessing
import os
import signal
import sys
import time

from concurrent import futures
from multiprocessing import forkserver

import numpy as np
from tqdm import tqdm

from spanbert_tf.data.blocks import block_files
from spanbert_tf.data.writing import documents, instances, report, stale_temp, writer
from spanbert_tf.data.masking.masker import MaskingConfig
from spanbert_tf.errors import InputError
from spanbert_tf.io_utils import sha256_file, write_json_atomic
from spanbert_tf.tokenization import BertWordpieceTokenizer

RESOURCES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "resources")
DEFAULT_INPUT = os.path.join(RESOURCES, "wikitext-2-raw-test.txt")
DEFAULT_VOCAB = os.path.join(RESOURCES, "bert-base-cased-vocab.txt")
WORK_UNIT_BYTES = 1 << 18
RANDOM_TOKEN_SOURCES = ("uniform", "unigram")


# The masking defaults are MaskingConfig's (§3.1), written once.
_MASKING_DEFAULTS = MaskingConfig()


@dataclasses.dataclass
class PretrainingDataConfig:
    """Every setting of `create_pretraining_data` (the program's flags)."""

    input_file: str = DEFAULT_INPUT
    input_format: str = "text"            # text | jsonl
    text_key: str = "text"
    tfds_name: str = ""
    tfds_split: str = "train"
    tfds_text_key: str = "text"
    tfds_data_dir: str = ""
    vocab_file: str = DEFAULT_VOCAB
    do_lower_case: bool = False
    output_dir: str = "tfrecords"
    num_shards: int = 10
    compression: str = "none"             # none | GZIP
    output_format: str = "tfrecord"       # tfrecord | npy (unmasked blocks, no TF to read)
    max_seq_length: int = 512
    max_predictions_per_seq: int = _MASKING_DEFAULTS.max_predictions_per_seq
    dupe_factor: int = 10
    random_seed: int = 12345
    masking: str = _MASKING_DEFAULTS.scheme  # span | whole_word | token | none (unmasked)
    masked_lm_prob: float = _MASKING_DEFAULTS.masked_lm_prob
    geometric_p: float = _MASKING_DEFAULTS.geometric_p
    max_span_length: int = _MASKING_DEFAULTS.max_span_length
    replacement: str = _MASKING_DEFAULTS.replacement  # span | token
    max_pair_targets: int = _MASKING_DEFAULTS.max_pair_targets
    mask_prob: float = _MASKING_DEFAULTS.mask_prob
    random_prob: float = _MASKING_DEFAULTS.random_prob
    random_token_source: str = "uniform"  # uniform | unigram
    long_lines: str = "split"             # split | drop
    num_workers: int = 0                  # 0 = all cores
    progress: bool = True
    remove_stale_temp: bool = False       # delete ended runs' temporary files (stale_temp.py)

    def validate(self):
        def check(ok, message):
            if not ok:
                raise InputError(message)

        check(self.max_seq_length >= 3, f"--max_seq_length must be >= 3, got {self.max_seq_length}")
        check(self.dupe_factor >= 1, f"--dupe_factor must be >= 1, got {self.dupe_factor}")
        check(self.num_shards >= 1, f"--num_shards must be >= 1, got {self.num_shards}")
        check(self.num_workers >= 0, f"--num_workers must be >= 0, got {self.num_workers}")
        check(self.compression in writer.COMPRESSIONS,
              f"--compression must be one of {writer.COMPRESSIONS}, got {self.compression!r}")
        check(self.random_token_source in RANDOM_TOKEN_SOURCES,
              f"--random_token_source must be one of {RANDOM_TOKEN_SOURCES}, "
              f"got {self.random_token_source!r}")
        check(self.long_lines in ("split", "drop"),
              f"--long_lines must be split or drop, got {self.long_lines!r}")
        check(self.input_format in ("text", "jsonl"),
              f"--input_format must be text or jsonl, got {self.input_format!r}")
        check(self.random_seed >= 0, f"--random_seed must be >= 0, got {self.random_seed}")
        check(self.output_format in block_files.OUTPUT_FORMATS,
              f"--output_format must be one of {block_files.OUTPUT_FORMATS}, "
              f"got {self.output_format!r}")
        if self.output_format == block_files.BLOCK_FORMAT:
            check(self.masking == "none" and self.compression == "none",
                  f"--output_format={self.output_format} writes unmasked blocks (masked while "
                  "training): give --masking=none and --compression=none")
        if self.masking != "none":
            self.masking_config().validate()
        self._check_masking_rate()
        if os.path.exists(self.output_dir) and not os.path.isdir(self.output_dir):
            raise InputError(f"output_dir exists and is not a directory: {self.output_dir}")

    def _check_masking_rate(self):
        """Rejects a block length at which ceil(masked_lm_prob * n) cannot approach the rate.

        A block holds n = max_seq_length - 2 wordpieces and ceil(p * n) of them are masked:
        at --max_seq_length=5 that is 1 of 3 (33%) for p = 0.15. Lengths whose rate exceeds
        1.5 p are refused; n >= 2 / p always meets it (ceil(p n) / n <= p + 1 / n).
        """
        p, n = self.masked_lm_prob, self.max_seq_length - 2
        budget = min(math.ceil(p * n), self.max_predictions_per_seq)
        if budget / n > 1.5 * p:
            raise InputError(
                f"--max_seq_length={self.max_seq_length} is too short for "
                f"--masked_lm_prob={p}: a block of {n} wordpieces gets {budget} masked "
                f"({budget / n:.0%}, not {p:.0%}); use --max_seq_length >= "
                f"{2 + math.ceil(2 / p)} or a larger --masked_lm_prob")

    def masking_config(self):
        return MaskingConfig.from_flags(self)

    def resolved_num_workers(self):
        if self.num_workers:
            return self.num_workers
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:
            return max(1, os.cpu_count() or 1)


def _iter_work_units(config, input_stats):
    """Work units (lists of (doc, part, global_part, lines)) and their input bytes."""
    if config.tfds_name:
        paths, tfds = [], dict(name=config.tfds_name, split=config.tfds_split,
                               text_key=config.tfds_text_key,
                               data_dir=config.tfds_data_dir or None)
    else:
        paths, tfds = documents.resolve_input_files(config.input_file), None
    work_unit, size, global_part = [], 0, 0
    for part in documents.iter_document_parts(paths, input_stats, config.input_format,
                                              config.text_key, tfds):
        work_unit.append((part.doc_index, part.part_index, global_part, part.lines))
        global_part += 1
        size += part.num_bytes
        if size >= WORK_UNIT_BYTES:
            yield work_unit, size
            work_unit, size = [], 0
    if work_unit:
        yield work_unit, size


def _pool_context():
    """forkserver with TensorFlow preloaded (`worker_preload.py`), else spawn.

    Workers forked from one server that imported TensorFlow before running any op
    start in milliseconds and share its pages: the CPU of N workers is about that of
    one process, not N TensorFlow start-ups more. Never fork this process itself: it
    may run TensorFlow already.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["spanbert_tf.data.writing.worker_preload"])
    return ctx


@contextlib.contextmanager
def _workers(num_workers, settings):
    """An executor of initialised worker processes, or None (work in this process).

    A `concurrent.futures` executor, not a `multiprocessing.Pool`: the Pool's worker
    handler thread polls the result pipe too, so it spins while large results are
    being read, costing the main process about as much CPU as the reading itself.
    """
    if num_workers <= 1:
        instances.init_worker(settings)
        yield None
        return
    ctx = _pool_context()
    pool = futures.ProcessPoolExecutor(num_workers, mp_context=ctx,
                                       initializer=instances.init_pool_worker,
                                       initargs=(dict(settings, lean_tf_import=True),))
    pool.units_in_flight = 2 * num_workers + 1  # bounds memory; keeps workers busy
    try:
        yield pool
    except BaseException:
        # An error or Ctrl-C: the work units' results are not wanted. The workers are ended
        # (SIGTERM) rather than waited for: an interrupt that hit the executor's own
        # bookkeeping can leave a worker waiting for work forever (and the forkserver, and
        # this process, for it).
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        _stop_forkserver(ctx, terminate=True)  # also a worker it forked as the interrupt hit
        raise
    else:
        pool.shutdown(wait=True)
        _stop_forkserver(ctx)


def _stop_forkserver(ctx, terminate=False):
    """Ends (and reaps) the forkserver: it holds a TensorFlow import's memory otherwise.
    `terminate`: SIGTERM it first (after an error or interrupt; it does not wait then)."""
    if ctx.get_start_method() == "forkserver":
        pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
        if terminate and pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        stop = getattr(forkserver._forkserver, "_stop", None)  # CPython's, since 3.8
        if stop is not None:
            stop()


@contextlib.contextmanager
def _removing_if_empty(output_dir, created):
    """On an error or interrupt, removes `output_dir` again if this run created it and it
    is still empty: a failed run leaves the file system as it found it."""
    try:
        yield
    except BaseException:
        if created and os.path.isdir(output_dir) and not os.listdir(output_dir):
            os.rmdir(output_dir)
        raise


@contextlib.contextmanager
def _hashing(pool):
    """The `map` that hashes the shards for metadata.json while this process syncs them to
    disk: the workers', or (one worker) a thread's: hashlib and file reads release the GIL."""
    if pool is not None:
        yield pool.map
        return
    with futures.ThreadPoolExecutor(1) as thread:
        yield thread.map


def _run_ordered(work_units, fn, pool, args=(), window=None):
    """Yields (unit_bytes, fn(work_unit, *args)) in work-unit order; bounded work_units in flight."""
    if pool is None:
        for work_unit, size in work_units:
            yield size, fn(work_unit, *args)
        return
    window = window or pool.units_in_flight
    pending = collections.deque()
    for work_unit, size in work_units:
        pending.append((size, pool.submit(fn, work_unit, *args)))
        if len(pending) >= window:
            size, result = pending.popleft()
            yield size, result.result()
    while pending:
        size, result = pending.popleft()
        yield size, result.result()


def _progress(config, desc):
    total = None
    if not config.tfds_name and config.input_format == "text":
        try:
            paths = documents.resolve_input_files(config.input_file)
            if not any(p.endswith(".gz") for p in paths):
                total = sum(os.path.getsize(p) for p in paths)
        except (documents.InputError, OSError):
            total = None
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, file=sys.stderr,
                disable=not config.progress, mininterval=0.5, leave=False)


def _settings(config, random_token_probs=None, lean_tf_import=False):
    masking = (None if config.masking == "none"
               else dataclasses.asdict(config.masking_config()))
    return dict(lean_tf_import=lean_tf_import, vocab_file=config.vocab_file,
                do_lower_case=config.do_lower_case,
                masking=masking, max_seq_length=config.max_seq_length,
                max_predictions_per_seq=config.max_predictions_per_seq,
                dupe_factor=config.dupe_factor, num_shards=config.num_shards,
                random_seed=config.random_seed, long_lines=config.long_lines,
                random_token_probs=random_token_probs, output_format=config.output_format)


def _shard_writer(config, tokenizer, hash_map):
    """The TFRecord `ShardWriter`, or `BlockShardWriter` for `--output_format=npy`."""
    if config.output_format == block_files.BLOCK_FORMAT:
        return block_files.BlockShardWriter(
            config.output_dir, config.num_shards,
            block_files.row_dtype(config.max_seq_length, tokenizer.vocab_size), hash_map)
    return writer.ShardWriter(config.output_dir, config.num_shards, config.compression,
                              hash_map=hash_map)


def _count_unigrams(config, pool, tokenizer):
    """First pass: corpus wordpiece counts → weights over the random-token candidates."""
    counts = np.zeros(tokenizer.vocab_size, np.int64)
    with _progress(config, "counting wordpieces") as bar:
        for size, result in _run_ordered(_iter_work_units(config, documents.InputStats()),
                                         instances.count_work_unit, pool):
            counts += result
            bar.update(size)
    candidates = instances.random_token_candidates(tokenizer)
    weights = counts[candidates].astype(np.float64)
    return (weights if weights.sum() > 0 else None), counts


def create_pretraining_data(config, dedicated_process=False):
    """Runs the whole pipeline; returns the stats dict (also in stats.json).

    Args:
        config: a `PretrainingDataConfig`.
        dedicated_process: True when this process runs nothing else (the
            program): TensorFlow is then imported without Keras
            (`lean_tf.import_tensorflow_lean`).

    Raises `documents.InputError` / `FileNotFoundError` / `ValueError` with a
    message naming the bad path or setting.
    """
    start = time.time()
    config.validate()
    if config.masking == "none":  # unmasked blocks are written once, masked in training
        config = dataclasses.replace(config, dupe_factor=1)
    if not config.tfds_name:
        documents.resolve_input_files(config.input_file)  # fail early, naming the path
    tokenizer = BertWordpieceTokenizer(config.vocab_file, config.do_lower_case)
    num_workers = config.resolved_num_workers()

    settings = _settings(config, None, dedicated_process)
    stale = stale_temp.check_output_dir(config.output_dir, config.remove_stale_temp)
    input_stats = documents.InputStats()
    totals = instances._new_stats(settings)
    created_dir = not os.path.isdir(config.output_dir)
    with _workers(num_workers, settings) as pool, _removing_if_empty(
            config.output_dir, created_dir):
        probs, unigram_counts = None, None
        if config.random_token_source == "unigram":
            probs, unigram_counts = _count_unigrams(config, pool, tokenizer)
        with _hashing(pool) as hash_map, _shard_writer(
                config, tokenizer, hash_map) as shard_writer, _progress(
                    config, "creating pretraining data") as bar:
            for size, result in _run_ordered(_iter_work_units(config, input_stats),
                                             instances.process_work_unit, pool, (probs,)):
                for shard in sorted(result["shards"]):
                    framed, count = result["shards"][shard]
                    shard_writer.write(shard, framed, count)
                instances.merge_stats(totals, result["stats"])
                bar.update(size)
                bar.set_postfix(instances=totals["instances"], refresh=False)
            if not totals["instances"]:  # the writer removes its temporary files
                raise InputError(report.nothing_to_write(input_stats, totals))
        shard_files = report.shard_file_entries(shard_writer.paths, shard_writer.records,
                                                shard_writer.sha256)
    wall = time.time() - start

    stats = report.build_stats(totals, input_stats, shard_writer, config, wall,
                               num_workers, unigram_counts, stale)
    metadata = report.build_metadata(config, tokenizer, shard_writer, stats,
                                     sha256_file(config.vocab_file), unigram_counts,
                                     shard_files=shard_files)
    write_json_atomic(os.path.join(config.output_dir, "stats.json"), stats)
    write_json_atomic(os.path.join(config.output_dir, "metadata.json"), metadata)
    return stats

