"""The last steps of the Beam pipeline: shards under temporary names, then all at once.

`WriteShard` writes one shard (its records sorted by global part, GZIP as the
local `ShardWriter`) under a hidden temporary name, hashing it as it goes;
`Finalize` renames every shard to its final name, removes stale shards of an
earlier run and writes `stats.json` and `metadata.json` last. A run killed
before `Finalize` leaves only hidden temporary files; one killed during it,
final-named shards but no metadata.json (an earlier run's is removed first),
which readers require. A retried step
rewrites the same temporary file.

Example:
```python
entry = WriteShard(config, token="abc")((0, [(global_part, framed, num_records), ...]))
entry["tmp"], entry["sha256"], entry["records"]
```
"""

import hashlib
import json
import time
import types
import uuid
import zlib

from spanbert_tf.data.writing import beam_reporting, documents, report, writer


def merged_input_stats(counts):
    """The per-file `InputStats`, merged in input order (as one sequential reader counts)."""
    total = documents.InputStats()
    for _, stats, _, _ in sorted(counts, key=lambda c: c[0]):
        for name in ("files_read", "bytes_read", "documents", "lines", "invalid_utf8_bytes"):
            setattr(total, name, getattr(total, name) + getattr(stats, name))
        total.skipped.update(stats.skipped)
        total.skipped_examples += stats.skipped_examples
    total.skipped_examples = total.skipped_examples[:20]
    return total


def tmp_name(output_dir, name, token):
    return f"{output_dir.rstrip('/')}/.{name}.tmp-beam-{token}"


def nothing_to_write_path(output_dir, token):
    """Where `Finalize` leaves the error of a run that gave no instance, for the launcher."""
    return tmp_name(output_dir, "nothing-to-write", token)


class WriteShard:
    """(shard, pieces) → the shard under a temporary name, hashed as written."""

    def __init__(self, config, token):
        self.config, self.token = config, token
        self.progress = beam_reporting.StageProgress(beam_reporting.WRITING, config.progress)

    def __call__(self, element):
        import tensorflow as tf

        shard, pieces = element
        config = self.config
        name = writer.shard_name(shard, config.num_shards, config.compression)
        tmp = tmp_name(config.output_dir, name, self.token)
        digest, size = hashlib.sha256(), 0
        packer = (zlib.compressobj(6, zlib.DEFLATED, 31) if config.compression == "GZIP"
                  else None)  # the local ShardWriter's GZIP stream
        pieces = sorted((p for p in pieces if p is not None), key=lambda p: p[0])
        with tf.io.gfile.GFile(tmp, "wb") as f:
            for chunk in self._chunks(pieces, packer):
                f.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        records = sum(count for _, _, count in pieces)
        for counter, value in (("shards_written", 1), ("records_written", records),
                              ("bytes_written", size)):
            beam_reporting.count(counter, value)
        self.progress.update(1)
        return {"shard": shard, "name": name, "tmp": tmp, "bytes": size,
                "sha256": digest.hexdigest(), "records": records}

    @staticmethod
    def _chunks(pieces, packer):
        for _, framed, _ in pieces:
            yield packer.compress(framed) if packer else framed
        if packer:
            yield packer.flush()


class Finalize:
    """Renames the shards, removes stale ones, writes stats.json and metadata.json."""

    def __init__(self, config, token_info, vocab_sha256, start, num_workers, runner,
                 token=None, stale_temp_files=None):
        self.config, self.token_info = config, token_info
        self.token, self.stale_temp_files = token or uuid.uuid4().hex[:12], stale_temp_files
        self.vocab_sha256, self.start, self.num_workers = vocab_sha256, start, num_workers
        self.runner = runner

    def __call__(self, _, shards, totals, counts, unigram_counts):
        import tensorflow as tf

        config = self.config
        shards = sorted(shards, key=lambda s: s["shard"])
        out = config.output_dir.rstrip("/")
        if not totals["instances"]:  # nothing to write: no shard, the launcher fails
            for entry in shards:
                if tf.io.gfile.exists(entry["tmp"]):
                    tf.io.gfile.remove(entry["tmp"])
            message = report.nothing_to_write(merged_input_stats(counts), totals)
            with tf.io.gfile.GFile(nothing_to_write_path(out, self.token), "w") as f:
                f.write(message)
            return None
        for name in writer.DESCRIPTION_FILES:  # as ShardWriter: no old metadata over new shards
            if tf.io.gfile.exists(f"{out}/{name}"):
                tf.io.gfile.remove(f"{out}/{name}")
        for entry in shards:
            if tf.io.gfile.exists(entry["tmp"]):  # absent when a retry renamed it already
                tf.io.gfile.rename(entry["tmp"], f"{out}/{entry['name']}", overwrite=True)
        names = [s["name"] for s in shards]
        removed = []
        for path in sorted(tf.io.gfile.glob(f"{out}/pretrain-*-of-*")):
            name = path.rsplit("/", 1)[-1]
            if ".tfrecord" in name and name not in names:
                tf.io.gfile.remove(path)
                removed.append(name)
        shard_writer = types.SimpleNamespace(
            names=names, paths=[f"{out}/{n}" for n in names],
            records=[s["records"] for s in shards], removed_stale=removed)
        stats = report.build_stats(totals, merged_input_stats(counts), shard_writer, config,
                                   time.time() - self.start, self.num_workers, unigram_counts,
                                   self.stale_temp_files)
        stats["timing"]["runner"] = self.runner
        shard_files = [{k: s[k] for k in ("name", "bytes", "sha256", "records")}
                       for s in shards]
        metadata = report.build_metadata(
            config, types.SimpleNamespace(**self.token_info), shard_writer, stats,
            self.vocab_sha256, unigram_counts, shard_files=shard_files)
        for name, obj in (("stats.json", stats), ("metadata.json", metadata)):
            tmp = tmp_name(out, name, self.token)
            with tf.io.gfile.GFile(tmp, "w") as f:
                f.write(json.dumps(obj, indent=2) + "\n")
            tf.io.gfile.rename(tmp, f"{out}/{name}", overwrite=True)
        return stats
