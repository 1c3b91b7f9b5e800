"""Worker side of `create_pretraining_data`: document parts → framed TFRecords.

A work unit is a list of document parts. `process_work_unit` tokenizes all their lines
in one batched tensorflow-text call, packs each part (§3.3), masks every block
`dupe_factor` times (§3.1, one `masking.Masker.mask_many` call for the whole
work unit) and serializes the examples straight from the `MaskedBatch`.
Results depend only on the parts and the settings, never on which worker ran
them: the masking RNG of part p of document d in pass (dupe) k is
`np.random.default_rng([seed, d, p, k])` (it draws the masked positions of
the part's blocks in order, then their replacements), and its examples go to
shard `(global_part_index * dupe_factor + k) % num_shards`.

With `settings["masking"]` None (`--masking=none`) each block is written once,
unmasked, with `example_id = (global_part_index << 24) + block index in the part`
(stable for the same input and settings), to shard `global_part_index % num_shards`; with
`settings["output_format"] == "npy"` as `block_files` rows instead of framed records.

Example:
```python
init_worker(settings)                      # once per process
result = process_work_unit([(doc_index, part_index, global_part_index, lines), ...])
result["shards"]   # {shard: (framed TFRecord bytes, num_records)}
```
"""

import re
import signal

import numpy as np

from spanbert_tf.data import features
from spanbert_tf.data.blocks import block_files
from spanbert_tf.data.writing import packing, writer
from spanbert_tf.data.writing.lean_tf import import_tensorflow_lean
from spanbert_tf.errors import InputError
from spanbert_tf.tokenization import BertWordpieceTokenizer
from spanbert_tf.data.masking.masker import Masker, MaskingConfig

_STATE = {}
EXAMPLE_ID_SHIFT = 24  # example_id = (global part index << 24) + block index in the part
_UNUSED = re.compile(r"^\[unused\d+\]$")


def random_token_candidates(tokenizer):
    """Ids random replacement may draw: the vocab minus special and [unusedN] tokens."""
    special = set(tokenizer.special_ids.tolist())
    return np.array([i for i, t in enumerate(tokenizer.vocab)
                     if i not in special and not _UNUSED.match(t)], dtype=np.int32)


def init_worker(settings):
    """Builds the tokenizer and the masker of this process from plain settings."""
    if settings.get("lean_tf_import"):
        import_tensorflow_lean()

    tokenizer = BertWordpieceTokenizer(settings["vocab_file"], settings["do_lower_case"])
    _STATE.clear()
    _STATE.update(settings=settings, tokenizer=tokenizer, masker=None, random_token_probs=None)
    if settings["masking"] is not None:
        _set_masker(settings.get("random_token_probs"))


def init_pool_worker(settings):
    """`init_worker` for a worker process of the local pipeline's pool: SIGINT ignored.

    A Ctrl-C reaches every process of the terminal's group: the main process stops the
    pool and removes its temporary files (`cli.run` prints one line); a worker that took
    the KeyboardInterrupt itself would print a traceback of its own instead.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    init_worker(settings)


def _set_masker(random_token_probs):
    """(Re)builds this process's masker for these random-token weights (None: uniform)."""
    tokenizer, settings = _STATE["tokenizer"], _STATE["settings"]
    _STATE["masker"] = Masker(MaskingConfig(**settings["masking"]), tokenizer.mask_id,
                              tokenizer.word_start_table, random_token_candidates(tokenizer),
                              random_token_probs)
    _STATE["random_token_probs"] = random_token_probs


def count_work_unit(parts):
    """Unigram counting pass: wordpiece counts of the parts' lines [vocab_size]."""
    tokenizer = _STATE["tokenizer"]
    lines = [line for _, _, _, part_lines in parts for line in part_lines]
    flat, _ = tokenizer.tokenize_to_ids_flat(lines)
    return np.bincount(flat, minlength=tokenizer.vocab_size).astype(np.int64)


def _new_stats(settings):
    size = settings["max_predictions_per_seq"] + 1
    return {"tokens": 0, "lines": 0, "empty_lines": 0, "long_lines_split": 0,
            "long_lines_dropped": 0, "dropped_tokens": 0, "blocks": 0, "instances": 0,
            "instance_tokens": 0, "masked_tokens": 0, "sbo_targets": 0,
            "replacement_counts": {"mask": 0, "random": 0, "unchanged": 0},
            "span_words": np.zeros(size, np.int64), "span_pieces": np.zeros(size, np.int64),
            # The span lengths as drawn (span scheme), before adjacent spans merge.
            "drawn_span_words": np.zeros(size, np.int64)}


def merge_stats(total, part):
    """Adds the worker stats `part` into `total` (both from `_new_stats`)."""
    for key, value in part.items():
        if key == "replacement_counts":
            for k, v in value.items():
                total[key][k] += v
        else:
            total[key] = total[key] + value
    return total


def process_work_unit(parts, random_token_probs=None, by_part=False):
    """Tokenizes, packs, masks and serializes a list of document parts.

    Args:
        parts: list of (doc_index, part_index, global_part_index, lines).
        random_token_probs: None (uniform random tokens), or the unigram weights
            of the candidates (from the counting pass).
        by_part: key the output by (shard, global_part_index) instead of shard
            (the Beam pipeline sorts each shard's pieces by part).

    Returns:
        dict(shards={shard: (framed bytes, num_records)}, stats=worker stats);
        with `by_part`, shards={(shard, global_part_index): (framed, num_records)}.
    """
    current = _STATE["random_token_probs"]
    unmasked = _STATE["settings"]["masking"] is None
    if not unmasked and ((current is None) != (random_token_probs is None) or (
            current is not None and not np.array_equal(current, random_token_probs))):
        _set_masker(random_token_probs)
    settings, tokenizer, masker = _STATE["settings"], _STATE["tokenizer"], _STATE["masker"]
    max_len = settings["max_seq_length"]
    max_pred = settings["max_predictions_per_seq"]
    dupe_factor, num_shards = settings["dupe_factor"], settings["num_shards"]
    seed = settings["random_seed"]
    stats = _new_stats(settings)
    lines = [line for _, _, _, part_lines in parts for line in part_lines]
    flat, splits = tokenizer.tokenize_to_ids_flat(lines)
    is_word_start = tokenizer.word_start_table[flat]
    stats["tokens"] = int(flat.size)
    stats["lines"] = len(lines)
    cls = np.array([tokenizer.cls_id], np.int32)
    sep = np.array([tokenizer.sep_id], np.int32)

    groups, shard_of, part_of = [], [], []
    first_line = 0
    for doc_index, part_index, global_part, part_lines in parts:
        part_splits = splits[first_line:first_line + len(part_lines) + 1]
        first_line += len(part_lines)
        blocks, counts = packing.pack_lines(part_splits, is_word_start, max_len - 2,
                                            settings["long_lines"])
        for key, value in counts.items():
            stats[key] += value
        if not blocks:
            continue
        stats["blocks"] += len(blocks)
        block_ids = [np.concatenate((cls, flat[s:e], sep)) for s, e in blocks]
        if unmasked:
            if len(block_ids) >= 1 << EXAMPLE_ID_SHIFT:
                raise InputError(f"document part {doc_index}/{part_index} has more than "
                                 f"2**{EXAMPLE_ID_SHIFT} blocks")
            groups.append((block_ids, (global_part << EXAMPLE_ID_SHIFT)
                           + np.arange(len(block_ids), dtype=np.int64)))
            shard_of += [global_part % num_shards] * len(block_ids)
            part_of += [global_part] * len(block_ids)
            continue
        for dupe in range(dupe_factor):
            groups.append((block_ids, np.random.default_rng([seed, doc_index, part_index, dupe])))
            shard_of += [(global_part * dupe_factor + dupe) % num_shards] * len(block_ids)
            part_of += [global_part] * len(block_ids)

    shards = {}
    if not groups:
        return {"shards": shards, "stats": stats}
    if unmasked and settings.get("output_format") == block_files.BLOCK_FORMAT:
        return _block_rows_by_shard(groups, shard_of, part_of, by_part, stats, max_len,
                                    tokenizer.vocab_size)
    if unmasked:
        records = serialize_unmasked([b for blocks, _ in groups for b in blocks],
                                     np.concatenate([ids for _, ids in groups]), max_len)
        stats["instances"] += len(records)
        stats["instance_tokens"] += sum(len(b) - 2 for blocks, _ in groups for b in blocks)
    else:
        batch = masker.mask_many(groups, check_ids=False)  # ids come from the tokenizer
        records = serialize_batch(batch, max_len, max_pred)
        _batch_stats(stats, batch)
    by_shard = {}
    keys = zip(shard_of, part_of) if by_part else shard_of
    for key, record in zip(keys, records):
        by_shard.setdefault(key, []).append(record)
    for shard, recs in by_shard.items():
        shards[shard] = (writer.frame_records(recs), len(recs))
    return {"shards": shards, "stats": stats}


def _block_rows_by_shard(groups, shard_of, part_of, by_part, stats, max_len, vocab_size):
    """The unmasked blocks as `block_files` rows (bytes) per shard (`--output_format=npy`)."""
    blocks = [b for group_blocks, _ in groups for b in group_blocks]
    rows = block_files.block_rows(blocks, np.concatenate([ids for _, ids in groups]), max_len,
                                  vocab_size)
    stats["instances"] += len(rows)
    stats["instance_tokens"] += int(rows["length"].sum()) - 2 * len(rows)
    keys = np.array(list(zip(shard_of, part_of)) if by_part else shard_of)
    shards = {}
    for key in sorted(set(map(tuple, keys.reshape(len(rows), -1).tolist()))):
        chosen = rows[(keys.reshape(len(rows), -1) == key).all(axis=1)]
        shards[key if by_part else key[0]] = (chosen.tobytes(), len(chosen))
    return {"shards": shards, "stats": stats}


def serialize_unmasked(blocks, example_ids, max_seq_length):
    """`[CLS] block [SEP]` arrays + int64 ids → serialized unmasked records (features.py)."""
    n = np.fromiter(map(len, blocks), np.int64, len(blocks))
    if n.max(initial=0) > max_seq_length:
        raise InputError(f"an instance exceeds max_seq_length {max_seq_length}")
    rows = {
        "input_ids": (np.concatenate(blocks) if blocks else np.zeros(0, np.int64), n),
        "input_mask": ("ones", n),
        "segment_ids": (np.zeros(0, np.int64), np.zeros_like(n)),
        "example_id": (np.asarray(example_ids, np.int64), np.ones_like(n)),
    }
    return writer.serialize_rows(rows, max_seq_length, 0,
                                 features.unmasked_feature_shapes(max_seq_length))


def serialize_batch(batch, max_seq_length, max_predictions_per_seq):
    """A `masking.MaskedBatch` → serialized tf.train.Example bytes (zero-padded)."""
    n, m = batch.input_lengths, batch.num_masked
    if n.max(initial=0) > max_seq_length or m.max(initial=0) > max_predictions_per_seq:
        raise InputError(f"an instance exceeds max_seq_length {max_seq_length} or "
                         f"max_predictions_per_seq {max_predictions_per_seq}")
    rows = {
        "input_ids": (batch.input_ids, n),
        "input_mask": ("ones", n),
        "segment_ids": (np.zeros(0, np.int64), np.zeros_like(n)),
        "masked_lm_weights": ("ones", m),
    }
    for name, attr in (("masked_lm_positions", "masked_positions"),
                       ("masked_lm_ids", "masked_ids"),
                       ("span_left_positions", "span_left_positions"),
                       ("span_right_positions", "span_right_positions"),
                       ("span_relative_positions", "span_relative_positions"),
                       ("sbo_weights", "sbo_weights")):
        rows[name] = (getattr(batch, attr), m)
    return writer.serialize_rows(rows, max_seq_length, max_predictions_per_seq)


def _batch_stats(stats, batch):
    mask, random, unchanged = batch.replacement_counts.sum(axis=0).tolist()
    rep = stats["replacement_counts"]
    rep["mask"] += mask
    rep["random"] += random
    rep["unchanged"] += unchanged
    stats["instances"] += len(batch)
    stats["instance_tokens"] += int(batch.input_lengths.sum()) - 2 * len(batch)
    stats["masked_tokens"] += int(batch.num_masked.sum())
    stats["sbo_targets"] += int(np.count_nonzero(batch.sbo_weights))
    size = stats["span_words"].size
    for key, lengths in (("span_words", batch.span_lengths_words),
                         ("span_pieces", batch.span_lengths_pieces)):
        stats[key] += np.bincount(np.minimum(lengths, size - 1), minlength=size)
    drawn = np.fromiter((n for spans in batch.drawn_span_words for n in spans), np.int64)
    stats["drawn_span_words"] += np.bincount(np.minimum(drawn, size - 1), minlength=size)
