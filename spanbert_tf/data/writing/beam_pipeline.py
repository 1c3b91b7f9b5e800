"""`create_pretraining_data` as an Apache Beam pipeline: the local run's shards, at scale.

The same stages as `pipeline.create_pretraining_data`, from the same functions:
read files into document parts (`documents.py`, one file per element), number
the parts globally (per-file counts -> prefix sums, a side input), tokenize,
pack, mask and serialize work units of parts (`instances.process_work_unit`, the
tokenizer built once per worker in `DoFn.setup`), then group the framed
records by shard, sort them by global part inside the shard and write each
shard under a temporary name; a last step renames them all and writes
`stats.json` and `metadata.json` (both in `beam_output.py`). The steps report
Beam counters and progress (`beam_reporting.py`). Every record is a function
of its keys (document, part, dupe pass), so the output is the local run's, byte for byte
(decompressed for GZIP), whatever runner or worker count; a retried step
rewrites the same temporary file.

Without a `--runner` in `beam_options` the pipeline runs here on the
FnApiRunner (never the Prism binary download of the default DirectRunner);
`--direct_num_workers=N` and `--direct_running_mode=multi_processing` apply.
Paths may be on any filesystem TensorFlow's `tf.io.gfile` reads (gs://, ...).

Example:
```python
from spanbert_tf.data.writing import beam_pipeline, beam_reporting, pipeline
config = pipeline.PretrainingDataConfig(output_dir="tfrecords", max_seq_length=128)
stats = beam_pipeline.create_pretraining_data_beam(
    config, ["--direct_num_workers=2", "--direct_running_mode=multi_processing"])
stats, result = beam_pipeline.run_pipeline(config)   # also the Beam PipelineResult
beam_reporting.counter_values(result)["instances"]    # == stats["instances"]
```
"""

import dataclasses
import functools
import hashlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
import typing
import uuid

import numpy as np
from google.protobuf import struct_pb2

from spanbert_tf import errors
from spanbert_tf.data.writing import (beam_output, beam_reporting, documents, instances, pipeline,
                                      stale_temp)
from spanbert_tf.errors import MissingFileError
from spanbert_tf.tokenization import BertWordpieceTokenizer

INSTALL_HINT = ("--runner=beam needs Apache Beam, an optional extra: "
                "pip install 'spanbert-tf[beam]' (or pip install -e '.[beam]')")
METRICS_NAMESPACE = beam_reporting.METRICS_NAMESPACE  # the steps' counters (Beam metrics)

_root_logger, _level = logging.getLogger(), logging.getLogger().level
_root_logger.setLevel(logging.ERROR)  # Beam warns at import about absent GCP client libraries
try:
    import apache_beam as beam
    from apache_beam.pvalue import AsList, AsSingleton, TaggedOutput
except ImportError:
    raise errors.InputError(INSTALL_HINT) from None
finally:
    _root_logger.setLevel(_level)


def pipeline_options(beam_options):
    """The list flag's entries ("--x=y" or "x=y") → (PipelineOptions, runner or None)."""
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    args = [a if a.startswith("--") else f"--{a}" for a in (beam_options or []) if a.strip()]
    options = PipelineOptions(args)
    if options.view_as(StandardOptions).runner:
        return options, None
    return options, _fn_api_runner(options)


def _fn_api_runner(options):
    """Beam's FnApiRunner (here, no Prism download); its worker processes log errors only."""
    from apache_beam.options.pipeline_options import WorkerOptions
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner

    level = options.view_as(WorkerOptions).default_sdk_harness_log_level or "ERROR"
    worker_options = struct_pb2.Struct()
    worker_options.update({"beam:option:default_sdk_harness_log_level:v1": level})
    return fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(retrieval_token="unused-retrieval-token",
                                             pipeline_options=worker_options)))


def _is_local(path):
    return "://" not in path


def _resolve_inputs(config):
    """The input files, local (sorted globs as locally) or remote (tf.io.gfile.glob)."""
    entries = [e.strip() for e in str(config.input_file).split(",") if e.strip()]
    if all(_is_local(e) for e in entries):
        return documents.resolve_input_files(config.input_file)
    import tensorflow as tf

    paths = []
    for entry in entries:
        matches = sorted(tf.io.gfile.glob(entry))
        if not matches:
            raise documents.InputError(f"input file pattern matches no file: {entry}")
        paths += [m for m in matches if m not in paths]
    return paths


class _ReadTasks(beam.DoFn):
    """A file (or the TFDS dataset) → (work units of its parts with per-file indices, their
    input bytes), and counts."""

    def __init__(self, config):
        super().__init__()
        self.config = config

    def process(self, element):
        file_index, source = element
        config, stats = self.config, documents.InputStats()
        builder = documents._PartBuilder(stats, documents.PART_BYTES, 0)
        if config.tfds_name:
            parts = documents.iter_tfds_parts(
                config.tfds_name, config.tfds_split, config.tfds_text_key,
                config.tfds_data_dir or None, stats, builder)
        elif config.input_format == "text":
            parts = documents.iter_text_file_parts(source, stats, builder)
        else:
            parts = documents.iter_jsonl_file_parts(source, stats, builder, config.text_key)
        work_unit, size, num_parts = [], 0, 0
        for part in parts:
            work_unit.append((part.doc_index, part.part_index, num_parts, part.lines))
            num_parts += 1
            size += part.num_bytes
            if size >= pipeline.WORK_UNIT_BYTES:
                yield file_index, work_unit, size
                work_unit, size = [], 0
        if work_unit:
            yield file_index, work_unit, size
        for reason, count in stats.skipped.items():
            beam_reporting.count(f"skipped_{reason}", count)
        for name in ("files_read", "bytes_read", "documents", "lines", "invalid_utf8_bytes"):
            beam_reporting.count(name, getattr(stats, name))
        yield TaggedOutput("counts", (file_index, stats, builder.doc_index,
                                                        num_parts))


def _offsets(counts):
    """Per-file (documents, parts) → {file: (first document, first global part)}."""
    offsets, docs, parts = {}, 0, 0
    for file_index, _, num_docs, num_parts in sorted(counts, key=lambda c: c[0]):
        offsets[file_index] = (docs, parts)
        docs, parts = docs + num_docs, parts + num_parts
    return offsets


def _globalize(element, offsets):
    file_index, work_unit, size = element
    docs, parts = offsets[file_index]
    return [(d + docs, p, g + parts, lines) for d, p, g, lines in work_unit], size


# `instances` keeps one tokenizer and masker per process: DoFns running on threads of one
# process (the FnApiRunner in memory or multi_threading) take turns at it.
_STATE_LOCK = threading.Lock()


class _WorkUnitFn(beam.DoFn):
    """Base of the DoFns running `instances` functions: the worker state built in setup."""

    def __init__(self, settings, vocab_bytes, progress):
        super().__init__()
        self.settings, self.vocab_bytes, self.progress = settings, vocab_bytes, progress

    def setup(self):
        # The vocabulary travels with the DoFn: a worker need not see the launcher's path.
        fd, vocab_file = tempfile.mkstemp(prefix="spanbert_tf_vocab_", suffix=".txt")
        with os.fdopen(fd, "wb") as f:
            f.write(self.vocab_bytes)
        with _STATE_LOCK:
            instances.init_worker(dict(self.settings, vocab_file=vocab_file))  # once per worker
        os.remove(vocab_file)


class _CountWorkUnit(_WorkUnitFn):
    def process(self, element):
        work_unit, size = element
        with _STATE_LOCK:
            counts = instances.count_work_unit(work_unit)
        yield counts
        self.progress.update(size)


class _ProcessWorkUnit(_WorkUnitFn):
    def process(self, element, probs):
        work_unit, size = element
        with _STATE_LOCK:
            result = instances.process_work_unit(work_unit, probs, by_part=True)
        for (shard, global_part), (framed, count) in result["shards"].items():
            yield shard, (global_part, framed, count)
        yield TaggedOutput("stats", result["stats"])
        stats = result["stats"]
        for name in ("instances", "blocks", "tokens", "masked_tokens", "long_lines_split",
                     "long_lines_dropped"):
            beam_reporting.count(name, stats[name])
        self.progress.update(size, int(stats["instances"]))


def _sum_arrays(arrays):
    total = None
    for a in arrays:
        total = a.copy() if total is None else total + a
    return total


def _merge_stats(parts, settings):
    total = instances._new_stats(settings)
    for part in parts:
        instances.merge_stats(total, part)
    return total


def _unigram_weights(counts, candidates):
    if counts is None:
        return None
    weights = counts[candidates].astype(np.float64)
    return weights if weights.sum() > 0 else None


def build_pipeline(root, config, settings, vocab_bytes, sources, token_info, candidates,
                   start, num_workers, runner_name="FnApiRunner", token=None,
                   stale_temp_files=None):
    """Adds the stages to the Beam pipeline `root`; returns the PCollection of the stats.

    `token` names the run's temporary files (`.<name>.tmp-beam-<token>`; default: this
    process's PID and a random part, which `stale_temp` reads back)."""
    progress = functools.partial(beam_reporting.StageProgress, enabled=config.progress)
    read = (root | "Inputs" >> beam.Create(list(enumerate(sources)))
            | "SpreadInputs" >> beam.Reshuffle()
            | "ReadParts" >> beam.ParDo(_ReadTasks(config)).with_outputs(
                "counts", main="work_units"))
    counts = read.counts | "AllCounts" >> beam.combiners.ToList()
    offsets = counts | "Offsets" >> beam.Map(_offsets)
    work_units = (read.work_units | "GlobalIndices" >> beam.Map(_globalize, AsSingleton(offsets))
             | "SpreadTasks" >> beam.Reshuffle())
    if config.random_token_source == "unigram":
        unigram = (work_units | "CountPieces" >> beam.ParDo(
                       _CountWorkUnit(settings, vocab_bytes, progress(beam_reporting.COUNTING)))
                   | "SumCounts" >> beam.CombineGlobally(_sum_arrays))
    else:
        unigram = root | "NoUnigram" >> beam.Create([None])
    probs = unigram | "Weights" >> beam.Map(_unigram_weights, candidates)
    processed = work_units | "MaskAndSerialize" >> beam.ParDo(
        _ProcessWorkUnit(settings, vocab_bytes, progress(beam_reporting.MASKING)),
        AsSingleton(probs)).with_output_types(
            typing.Tuple[int, typing.Any]).with_outputs("stats", main="records")
    totals = processed.stats | "SumStats" >> beam.CombineGlobally(_merge_stats, settings)
    every_shard = root | "EveryShard" >> beam.Create(
        [(s, None) for s in range(config.num_shards)])
    token = token or new_token()
    shards = ((processed.records, every_shard) | "Pieces" >> beam.Flatten()
              | "ByShard" >> beam.GroupByKey()
              | "WriteShards" >> beam.Map(beam_output.WriteShard(config, token)))
    return (root | "Once" >> beam.Create([None])
            | "Finalize" >> beam.Map(
                beam_output.Finalize(config, token_info, hashlib.sha256(vocab_bytes).hexdigest(),
                                     start, num_workers, runner_name, token,
                                     stale_temp_files),
                AsList(shards), AsSingleton(totals), AsSingleton(counts),
                AsSingleton(unigram)))


def new_token():
    """A run's temporary-name token: the launcher's PID (`stale_temp` removes the files of
    a launcher that is gone) and a random part (two runs never share a name)."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:12]}"


def _remove_own_temp_files(output_dir, token):
    """Removes this run's temporary files (local output dirs) after an error or interrupt."""
    if not _is_local(output_dir) or not os.path.isdir(output_dir):
        return
    suffix = f".tmp-beam-{token}"
    for name in os.listdir(output_dir):
        if name.startswith(".") and name.endswith(suffix):
            os.remove(os.path.join(output_dir, name))


def _raise_if_nothing_written(output_dir, token):
    """The error `beam_output.Finalize` left for a run that gave no instance, raised here."""
    path = beam_output.nothing_to_write_path(output_dir, token)
    if _is_local(path):
        if not os.path.exists(path):
            return
        with open(path, encoding="utf-8") as f:
            message = f.read()
        os.remove(path)
    else:
        import tensorflow as tf

        if not tf.io.gfile.exists(path):
            return
        with tf.io.gfile.GFile(path) as f:
            message = f.read()
        tf.io.gfile.remove(path)
    raise errors.InputError(message)


def create_pretraining_data_beam(config, beam_options=(), dedicated_process=False):
    """Runs `create_pretraining_data` on Beam; returns the stats dict (also in stats.json)."""
    return run_pipeline(config, beam_options, dedicated_process)[0]


def run_pipeline(config, beam_options=(), dedicated_process=False):
    """Runs `create_pretraining_data` on Beam; returns (stats dict, Beam PipelineResult).

    The result's counters (`beam_reporting.counter_values(result)`) add up what
    the steps read, skipped, masked and wrote.

    Args:
        config: a `pipeline.PretrainingDataConfig` (`num_workers` is not used:
            Beam's options say how many workers run; `progress`: see `beam_reporting`).
        beam_options: Beam pipeline options, e.g. ["--runner=DataflowRunner", ...].
        dedicated_process: as in `pipeline.create_pretraining_data` (lean
            TensorFlow import in the workers).

    Raises the local run's one-line errors (bad path or setting, missing vocab,
    Beam not installed) before the pipeline starts.
    """
    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

    start = time.time()
    config.validate()
    if config.masking == "none":
        config = dataclasses.replace(config, dupe_factor=1)
    sources = [config.tfds_name] if config.tfds_name else _resolve_inputs(config)
    tokenizer, vocab_bytes = _load_vocab(config)
    token_info = {k: getattr(tokenizer, k) for k in
                  ("vocab_size", "cls_id", "sep_id", "mask_id", "unk_id", "pad_id")}
    candidates = instances.random_token_candidates(tokenizer)
    settings = pipeline._settings(config, None, dedicated_process)
    options, runner = pipeline_options(beam_options)
    direct = options.view_as(DirectOptions)
    num_workers = direct.direct_num_workers or 1
    if direct.direct_num_workers == 0:  # as the FnApiRunner: every core
        num_workers = os.cpu_count() or 1
    runner_name = type(runner).__name__ if runner else options.view_as(StandardOptions).runner
    stale = stale_temp.check_output_dir(config.output_dir, config.remove_stale_temp)
    created_dir = _is_local(config.output_dir) and not os.path.isdir(config.output_dir)
    if _is_local(config.output_dir):
        os.makedirs(config.output_dir, exist_ok=True)
    token = new_token()
    root = beam.Pipeline(runner=runner, options=options)
    build_pipeline(root, config, settings, vocab_bytes, sources, token_info, candidates,
                   start, num_workers, runner_name, token, stale)
    # The steps run in this process (FnApiRunner in memory or threads): tqdm bars here.
    in_process = runner is not None and direct.direct_running_mode != "multi_processing"
    if config.progress and not in_process:
        print(f"create_pretraining_data: running on Beam's {runner_name}; every worker "
              f"prints its progress every {beam_reporting.LOG_EVERY_SECONDS:.0f} s, "
              f"counters under {METRICS_NAMESPACE}", file=sys.stderr, flush=True)
    stages = ((beam_reporting.COUNTING,) if config.random_token_source == "unigram" else ()
              ) + (beam_reporting.MASKING, beam_reporting.WRITING)
    try:
        with beam_reporting.progress_bars(config.progress and in_process, _input_bytes(
                config, sources), stages, config.num_shards):
            result = root.run()
            result.wait_until_finish()
        _raise_if_nothing_written(config.output_dir, token)
    except BaseException:  # an error, a nothing-to-write, a Ctrl-C: no temporary file left
        _remove_own_temp_files(config.output_dir, token)
        if created_dir and not os.listdir(config.output_dir):
            os.rmdir(config.output_dir)
        raise
    stats_path = f"{config.output_dir.rstrip('/')}/stats.json"
    if _is_local(stats_path):  # no TensorFlow start-up in the launcher for local output
        with open(stats_path, encoding="utf-8") as f:
            return json.load(f), result
    import tensorflow as tf

    with tf.io.gfile.GFile(stats_path) as f:
        return json.load(f), result


def _input_bytes(config, sources):
    """The bytes the steps will read, when known beforehand (local uncompressed text)."""
    if config.tfds_name or config.input_format != "text" or not all(
            _is_local(s) and not s.endswith(".gz") for s in sources):
        return None
    return sum(os.path.getsize(s) for s in sources)


def _load_vocab(config):
    """(tokenizer, vocabulary file bytes); the local run's errors for a missing/bad file."""
    if _is_local(config.vocab_file):
        tokenizer = BertWordpieceTokenizer(config.vocab_file, config.do_lower_case)
        with open(config.vocab_file, "rb") as f:
            return tokenizer, f.read()
    import tensorflow as tf

    if not tf.io.gfile.exists(config.vocab_file):
        raise MissingFileError(f"vocab file not found: {config.vocab_file}")
    with tf.io.gfile.GFile(config.vocab_file, "rb") as f:
        data = f.read()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "vocab.txt")
        with open(path, "wb") as f:
            f.write(data)
        return BertWordpieceTokenizer(path, config.do_lower_case), data
