"""`materialize_masks`: the masks dynamic masking uses in epoch E, as ordinary masked shards.

Reads unmasked records (`create_pretraining_data.py --masking=none`), masks
them through the training pipeline's own TF code (`input_pipeline.mask_records`,
keyed by (seed, epoch, example_id)) and writes `pretrain-SSSSS-of-NNNNN.tfrecord`
shards with exactly the offline writer's features (one output shard per input
shard, records in file order), `metadata.json` (records "masked") and
`stats.json` (masked fraction, span-length histograms, replacement
proportions, SBO-target fraction). Use it to inspect what a dynamic run saw
in an epoch, compare it with the offline path, or freeze it.

Example:
```python
stats = materialize_masks("unmasked/", "epoch3/", epoch=3, seed=12345,
                          config=MaskingConfig(), vocab_file="vocab.txt")
```
"""

import os
import sys
import time

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from spanbert_tf.data import features
from spanbert_tf.data.input import input_pipeline
from spanbert_tf.data.writing import report, writer
from spanbert_tf.data.masking.dynamic_masking import masker_for_records
from spanbert_tf.io_utils import sha256_file, write_json_atomic


def _vocab_file(metadata, vocab_file):
    vocab = metadata.get("vocab") or {}
    path = vocab_file or vocab.get("path")
    source = metadata.get("metadata_path")
    if not path or not os.path.isfile(path):
        raise input_pipeline.InputError(
            f"{source}: vocabulary {path!r} not found; pass --vocab_file")
    if vocab.get("sha256") and sha256_file(path) != vocab["sha256"]:
        raise input_pipeline.InputError(
            f"{path} is not the vocabulary of {source} (sha256 differs)")
    return path, bool(vocab.get("do_lower_case", False))


class _Stats:
    """Masking statistics of masked feature batches (the offline stats.json keys)."""

    def __init__(self, word_start_table, mask_id, max_predictions):
        self.table, self.mask_id = word_start_table, mask_id
        self.words = np.zeros(max_predictions + 1, np.int64)
        self.pieces = np.zeros(max_predictions + 1, np.int64)
        self.kinds = np.zeros(3, np.int64)
        self.instances = self.tokens = self.masked = self.sbo = 0

    def add(self, batch):
        weights = batch["masked_lm_weights"] > 0
        self.instances += weights.shape[0]
        self.tokens += int(batch["input_mask"].sum()) - 2 * weights.shape[0]
        self.masked += int(weights.sum())
        self.sbo += int(batch["sbo_weights"].sum())
        rows = np.nonzero(weights)[0]
        pos = batch["masked_lm_positions"][weights]
        orig = batch["masked_lm_ids"][weights]
        now = batch["input_ids"][rows, pos]
        kind = np.where(now == self.mask_id, 0, np.where(now == orig, 2, 1))
        self.kinds += np.bincount(kind, minlength=3)
        ids = batch["input_ids"].copy()
        ids[rows, pos] = orig
        ws = self.table[ids]
        ws[:, 1] = True
        starts = np.ones(pos.size, bool)
        starts[1:] = (rows[1:] != rows[:-1]) | (pos[1:] != pos[:-1] + 1)
        first = np.flatnonzero(starts)
        size = self.words.size
        lengths = np.diff(np.append(first, pos.size))
        word_counts = np.add.reduceat(ws[rows, pos], first) if pos.size else lengths
        self.pieces += np.bincount(np.minimum(lengths, size - 1), minlength=size)
        self.words += np.bincount(np.minimum(word_counts, size - 1), minlength=size)

    def to_dict(self):
        spans = int(self.words.sum())
        rep = dict(zip(("mask", "random", "unchanged"), self.kinds.tolist()))
        ratio = report._ratio
        return {
            "instances": self.instances, "instance_tokens": self.tokens,
            "masked_tokens": self.masked, "masked_fraction": ratio(self.masked, self.tokens),
            "spans": spans,
            "mean_span_length_words": ratio((self.words * np.arange(self.words.size)).sum(),
                                            spans),
            "mean_span_length_pieces": ratio((self.pieces * np.arange(self.pieces.size)).sum(),
                                             spans),
            "span_length_words_histogram": report._histogram(self.words),
            "span_length_pieces_histogram": report._histogram(self.pieces),
            "replacement_counts": rep,
            "replacement_proportions": {k: ratio(v, self.masked) for k, v in rep.items()},
            "sbo_target_fraction": ratio(self.sbo, self.masked),
        }


def materialize_masks(input_files, output_dir, epoch, seed, config,
                      random_token_source="uniform", vocab_file=None, batch_size=256,
                      progress=True):
    """Writes the masks of epoch `epoch` of a dynamic run with `seed`; returns stats.

    Args:
        input_files: unmasked records (dirs or globs, as `--input_files`).
        output_dir: where the masked shards, metadata.json and stats.json go.
        epoch, seed: the epoch and the `run_pretraining.py --seed` of the run.
        config: the `MaskingConfig` (the masking flags of the run).
        random_token_source: "uniform" or "unigram" (counts from metadata.json).
        vocab_file: default: the records' vocabulary (checked by sha256).
    """
    start = time.time()
    files, metadata = input_pipeline.find_pretraining_files(input_files)
    input_pipeline.check_metadata(metadata)
    vocab_path, lower = _vocab_file(metadata, vocab_file)
    masker = masker_for_records(metadata, config, vocab_path, lower, random_token_source)
    L, P = masker.max_seq_length, masker.layout.predictions
    compression = input_pipeline._compression(metadata, files)
    stats = _Stats(masker.reference.word_start_table, masker.reference.mask_id, P)
    total = (metadata.get("counts") or {}).get("instances")
    bar = tqdm(total=total, desc=f"masking epoch {epoch}", unit="ex", file=sys.stderr,
               disable=not progress, mininterval=0.5)
    epoch_tensor = tf.constant(int(epoch), tf.int64)
    with writer.ShardWriter(output_dir, len(files), "none") as shard_writer:
        for index, path in enumerate(files):
            records = tf.data.TFRecordDataset(path, compression_type=compression)
            ds = input_pipeline.mask_records(records.map(lambda r: (r, epoch_tensor)), masker,
                                             int(seed), batch_size, drop_remainder=False)
            for batch in ds:
                batch = {k: v.numpy() for k, v in batch.items()}
                stats.add(batch)
                serialized = writer.serialize_examples(batch)
                shard_writer.write(index, writer.frame_records(serialized), len(serialized))
                bar.update(len(serialized))
    bar.close()
    out = dict(stats.to_dict(), epoch=int(epoch), seed=int(seed),
               instances_per_shard=list(shard_writer.records),
               materialized_from=[os.path.abspath(f) for f in files],
               timing={"wall_seconds": round(time.time() - start, 3)})
    meta = {k: v for k, v in metadata.items()
            if k not in ("metadata_path", "unigram_counts", "feature_spec", "shards")}
    settings = dict(metadata.get("settings") or {})
    settings.update(vars(config) if hasattr(config, "__dict__") else {},
                    masking=config.scheme, random_token_source=random_token_source,
                    random_seed=int(seed), epoch=int(epoch))
    meta.update(records="masked", settings=settings, max_predictions_per_seq=P,
                feature_spec=features.feature_spec_json(L, P), compression="none",
                shards=list(shard_writer.names),
                created_by="spanbert_tf materialize_masks",
                counts={"instances": stats.instances,
                        "instances_per_shard": list(shard_writer.records),
                        "masked_tokens": stats.masked})
    write_json_atomic(os.path.join(output_dir, "stats.json"), out)
    write_json_atomic(os.path.join(output_dir, "metadata.json"), meta)
    return out
