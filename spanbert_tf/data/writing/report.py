"""stats.json, metadata.json and the one-screen summary of `create_pretraining_data`.

Example:
```python
stats = json.load(open("tfrecords/stats.json"))
print(format_summary(stats))
```
"""

import dataclasses
import os

import numpy as np

from spanbert_tf import __version__
from spanbert_tf.data import features
from spanbert_tf.data.blocks import block_files
from spanbert_tf.io_utils import sha256_file


def _histogram(counts):
    return {str(i): int(c) for i, c in enumerate(np.asarray(counts).tolist()) if c}


def _ratio(a, b):
    return float(a) / float(b) if b else 0.0


def build_stats(totals, input_stats, shard_writer, config, wall_seconds, num_workers,
                unigram_counts=None, stale_temp_files=None):
    """The stats.json dict (everything but "timing" is deterministic)."""
    rep = {k: int(v) for k, v in totals["replacement_counts"].items()}
    masked = int(totals["masked_tokens"])
    words = np.asarray(totals["span_words"])
    pieces = np.asarray(totals["span_pieces"])
    num_spans = int(words.sum())
    skipped = dict(sorted(input_stats.skipped.items()))
    for key in ("long_lines_dropped",):
        if totals[key]:
            skipped["long_line"] = int(totals[key])
    stats = {
        "input_files": input_stats.files_read,
        "input_bytes": input_stats.bytes_read,
        "documents": input_stats.documents,
        "lines": input_stats.lines,
        "tokens": int(totals["tokens"]),
        "blocks": int(totals["blocks"]),
        "instances": int(totals["instances"]),
        "instances_per_shard": list(shard_writer.records),
        "instance_tokens": int(totals["instance_tokens"]),
        "masked_tokens": masked,
        "masked_fraction": _ratio(masked, totals["instance_tokens"]),
        "spans": num_spans,
        "mean_span_length_words": _ratio((words * np.arange(words.size)).sum(), num_spans),
        "mean_span_length_pieces": _ratio((pieces * np.arange(pieces.size)).sum(), num_spans),
        "span_length_words_histogram": _histogram(words),
        "span_length_pieces_histogram": _histogram(pieces),
        "drawn_span_length_words_histogram": _histogram(totals["drawn_span_words"]),
        "replacement_counts": rep,
        "replacement_proportions": {k: _ratio(v, masked) for k, v in rep.items()},
        "sbo_target_fraction": _ratio(totals["sbo_targets"], masked),
        "long_lines_split": int(totals["long_lines_split"]),
        "long_lines_dropped": int(totals["long_lines_dropped"]),
        "dropped_tokens": int(totals["dropped_tokens"]),
        "lines_without_tokens": int(totals["empty_lines"]),
        "skipped": skipped,
        "skipped_examples": [f"{path}: {reason}" for path, reason
                             in input_stats.skipped_examples],
        "invalid_utf8_bytes": input_stats.invalid_utf8_bytes,
        "removed_stale_shards": list(shard_writer.removed_stale),
        "stale_temp_files": stale_temp_files or {"found": 0, "bytes": 0, "removed": 0},
        "timing": {
            "wall_seconds": round(wall_seconds, 3),
            "num_workers": num_workers,
            "input_tokens_per_second": round(
                _ratio(totals["tokens"] * config.dupe_factor, wall_seconds), 1),
        },
    }
    stats["records"] = "unmasked" if config.masking == "none" else "masked"
    if config.masking != "none":
        stats["masking_target"] = masking_target(config.masking_config())
    if unigram_counts is not None:
        stats["unigram_distinct_wordpieces"] = int((np.asarray(unigram_counts) > 0).sum())
    return stats


def masking_target(masking):
    """What the masker draws from (stats.png compares the counts with it): the span
    lengths in words (span scheme: the truncated geometric of `MaskingConfig`) and the
    replacement shares of masked tokens."""
    target = {"scheme": masking.scheme,
              "replacement": {"mask": masking.mask_prob, "random": masking.random_prob,
                              "unchanged": max(0.0, 1.0 - masking.mask_prob
                                               - masking.random_prob)}}
    if masking.scheme == "span":
        target["geometric_p"] = masking.geometric_p
        target["max_span_length"] = masking.max_span_length
        target["span_length_words"] = {
            str(i): float(p) for i, p in enumerate(masking.span_length_distribution(), 1)}
    return target


def nothing_to_write(input_stats, totals):
    """The one-line error of a run whose input gave no instance: which files were skipped
    and why, or what the readable input held."""
    skipped = ", ".join(f"{path}: {reason}" for path, reason in input_stats.skipped_examples)
    more = sum(input_stats.skipped.values()) - len(input_stats.skipped_examples)
    if more > 0:
        skipped += f" and {more} more"
    if not input_stats.files_read and skipped:
        why = f"every input file was skipped ({skipped})"
    else:
        why = (f"the input ({input_stats.files_read} file(s), {input_stats.documents} "
               f"document(s), {int(totals['tokens'])} wordpiece(s)) gave no instance")
        if totals["long_lines_dropped"]:
            why += (f": {int(totals['long_lines_dropped'])} line(s) longer than a block "
                    "dropped (--long_lines=drop)")
        if skipped:
            why += f"; skipped {skipped}"
    return f"nothing to write: {why}; no shards or metadata.json written"


def shard_file_entries(paths, records, digests=None):
    """metadata.json's `shard_files`: name, bytes, sha256 and records of each written shard
    (checked by `shard_check` before training). `digests`: the shards' sha256 if known
    (`ShardWriter(hash_map=...)`); else they are computed here."""
    if digests is None:
        digests = [sha256_file(p) for p in paths]
    return [{"name": os.path.basename(p), "bytes": os.path.getsize(p), "sha256": digest,
             "records": int(n)} for p, n, digest in zip(paths, records, digests)]


def build_metadata(config, tokenizer, shard_writer, stats, vocab_sha256, unigram_counts=None,
                   shard_files=None):
    """The metadata.json dict: settings, vocab, special ids, feature spec, counts, shard sizes.

    `shard_files` (from `shard_file_entries`, or the Beam pipeline, which hashes shards
    as it writes them) replaces reading back the shards at `shard_writer.paths` here.
    """
    settings = dataclasses.asdict(config)
    settings.pop("progress", None)
    settings.pop("remove_stale_temp", None)  # what the run did, not how the data was made
    unmasked = config.masking == "none"
    metadata = {
        "format": "spanbert_tf pretraining TFRecords",
        "created_by": f"spanbert_tf {__version__} create_pretraining_data",
        "settings": settings,
        "vocab": {"path": os.path.abspath(config.vocab_file), "sha256": vocab_sha256,
                  "size": tokenizer.vocab_size, "do_lower_case": config.do_lower_case},
        "special_token_ids": {"[CLS]": tokenizer.cls_id, "[SEP]": tokenizer.sep_id,
                              "[MASK]": tokenizer.mask_id, "[UNK]": tokenizer.unk_id,
                              "[PAD]": tokenizer.pad_id},
        "max_seq_length": config.max_seq_length,
        "max_predictions_per_seq": config.max_predictions_per_seq,
        "records": "unmasked" if unmasked else "masked",
        "feature_spec": (features.unmasked_feature_spec_json(config.max_seq_length)
                         if unmasked else features.feature_spec_json(
                             config.max_seq_length, config.max_predictions_per_seq)),
        "compression": config.compression,
        "shards": list(shard_writer.names),
        "shard_files": (shard_files if shard_files is not None
                        else shard_file_entries(shard_writer.paths, shard_writer.records)),
        "counts": {"instances": stats["instances"],
                   "instances_per_shard": stats["instances_per_shard"],
                   "documents": stats["documents"], "tokens": stats["tokens"],
                   "masked_tokens": stats["masked_tokens"]},
    }
    if getattr(config, "output_format", "tfrecord") == block_files.BLOCK_FORMAT:
        metadata["format"] = "spanbert_tf pretraining blocks (memory-mapped .npy)"
        metadata["output_format"] = block_files.BLOCK_FORMAT
        metadata["block_row_dtype"] = np.lib.format.dtype_to_descr(
            block_files.row_dtype(config.max_seq_length, tokenizer.vocab_size))
    if unmasked and unigram_counts is not None:  # what dynamic masking's unigram needs
        metadata["unigram_counts"] = np.asarray(unigram_counts).tolist()
    return metadata


def format_summary(stats, output_dir):
    """A one-screen, human-readable summary of a run."""
    t = stats["timing"]
    rep = stats["replacement_proportions"]
    lines = [
        "create_pretraining_data: done",
        f"  input      {stats['input_files']} file(s), {stats['input_bytes']:,} bytes, "
        f"{stats['documents']:,} documents, {stats['lines']:,} lines, "
        f"{stats['tokens']:,} wordpieces",
        f"  output     {stats['instances']:,} instances in "
        f"{len(stats['instances_per_shard'])} shard(s) under {output_dir}",
        f"  masking    {stats['masked_fraction']:.2%} of {stats['instance_tokens']:,} "
        f"block tokens; {stats['spans']:,} spans, mean "
        f"{stats['mean_span_length_words']:.2f} words / "
        f"{stats['mean_span_length_pieces']:.2f} wordpieces",
        f"  replaced   [MASK] {rep.get('mask', 0):.1%}, random {rep.get('random', 0):.1%}, "
        f"unchanged {rep.get('unchanged', 0):.1%}; SBO targets for "
        f"{stats['sbo_target_fraction']:.1%} of masked tokens",
        f"  long lines {stats['long_lines_split']:,} split, "
        f"{stats['long_lines_dropped']:,} dropped ({stats['dropped_tokens']:,} wordpieces)",
    ]
    if stats.get("records") == "unmasked":
        lines[3:5] = [f"  masking    none: {stats['instance_tokens']:,} block tokens written "
                      "unmasked, masked on the fly by run_pretraining.py"]
    skipped = stats["skipped"]
    if skipped:
        lines.append("  skipped    " + ", ".join(f"{k}: {v}" for k, v in skipped.items()))
        for example in stats["skipped_examples"][:5]:
            lines.append(f"             {example}")
    if stats["invalid_utf8_bytes"]:
        lines.append(f"  invalid UTF-8 bytes replaced: {stats['invalid_utf8_bytes']:,}")
    removed_stale = stats.get("removed_stale_shards") or []
    if removed_stale:
        lines.append(f"  removed {len(removed_stale)} older shard(s) of another run: "
                     + ", ".join(removed_stale[:3]) + (" ..." if len(removed_stale) > 3 else ""))
    stale = stats.get("stale_temp_files") or {}
    if stale.get("found"):
        lines.append(f"  stale temp {stale['found']} file(s) of interrupted runs, "
                     f"{stale['bytes'] / 1e6:,.1f} MB, {stale['removed']} removed"
                     + ("" if stale["removed"] else " (--remove_stale_temp deletes them)"))
    runner = f" on Beam's {t['runner']}" if t.get("runner") else ""
    lines.append(f"  time       {t['wall_seconds']:.1f} s with {t['num_workers']} worker(s)"
                 f"{runner}, {t['input_tokens_per_second']:,.0f} input wordpieces x "
                 "dupe_factor / s")
    lines.append("  files      stats.json, metadata.json beside the shards")
    return "\n".join(lines)
