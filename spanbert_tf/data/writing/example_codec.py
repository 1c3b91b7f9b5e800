"""Vectorized tf.train.Example serialization of a batch of pretraining examples.

Writes the protobuf wire format of many examples at once with numpy: every
feature's values are varint-encoded in one pass over the whole batch (a lookup
table of the 2**16 smallest varints), and the examples are then assembled by a
single gather over a byte buffer — no Python object per feature or per example
besides the final `bytes`. The result parses with `tf.io.parse_single_example`
and the `features.py` spec, and equals what the protobuf library writes for the
same `tf.train.Example` (features in `features.FEATURE_NAMES` order).

Example:
```python
records = serialize_rows({
    "input_ids": (flat_ids, lengths),          # rows concatenated, zero-padded to L
    ...                                        # every features.FEATURE_NAMES key
}, max_seq_length=128, max_predictions_per_seq=20)
records = serialize_examples(dense_arrays)     # dict name → [N, length] arrays
```
"""

import numpy as np

from spanbert_tf.data import features
from spanbert_tf.errors import InputError

_LUT_SIZE = 1 << 16
_lut = None
_prefix_tables = {}


def varint(n):
    """The varint bytes of one non-negative int."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _varint_table():
    """Varints of 0 .. 2**16-1 packed little-endian in uint32, and their lengths."""
    global _lut
    if _lut is None:
        v = np.arange(_LUT_SIZE, dtype=np.int64)
        nbytes = 1 + (v >= 1 << 7) + (v >= 1 << 14)
        packed = np.zeros(_LUT_SIZE, np.int64)
        for b in range(3):
            cont = (nbytes > b + 1).astype(np.int64) << 7
            packed |= np.where(nbytes > b, ((v >> (7 * b)) & 0x7F) | cont, 0) << (8 * b)
        _lut = (packed.astype("<u4"), nbytes.astype(np.int8))
    return _lut


def encode_varints(flat):
    """Varint-encodes non-negative ints: (uint8 bytes, int8 byte count per value)."""
    flat = np.asarray(flat).ravel()
    if flat.dtype.kind not in "iu":
        flat = flat.astype(np.int64)
    if flat.size == 0:
        return np.zeros(0, np.uint8), np.zeros(0, np.int8)
    if flat.min() < 0:
        raise InputError("serialize_examples: negative values cannot be written")
    if flat.max() >= _LUT_SIZE:  # not produced by the pipeline (ids < 2**16)
        pieces = [varint(int(x)) for x in flat.tolist()]
        counts = np.fromiter((len(p) for p in pieces), np.int8, len(pieces))
        return np.frombuffer(b"".join(pieces), np.uint8), counts
    table, nbytes = _varint_table()
    encoded = table.take(flat).view(np.uint8)  # 4 bytes a value, zero-padded
    # A varint's bytes are never 0 (continuation bytes have 0x80 set, a final
    # byte is the nonzero rest), except the one byte of the value 0: dropping
    # the zero bytes, bar those, leaves the varints end to end.
    keep = encoded != 0
    keep[4 * np.flatnonzero(flat == 0)] = True
    return encoded.compress(keep), nbytes.take(flat)


def _prefix_table(name, kind, max_payload):
    """Bytes before a feature's payload, for every payload length 0..max_payload.

    Returns (uint8 bytes of all prefixes concatenated, start offsets, lengths).
    """
    key = (name, kind, max_payload)
    if key not in _prefix_tables:
        tag = b"\x1a" if kind == "int64" else b"\x12"  # Feature.int64_list=3, float_list=2
        key_bytes = name.encode()
        prefixes = []
        for payload_len in range(max_payload + 1):
            inner = b"\x0a" + varint(payload_len)  # Int64List/FloatList.value, packed
            feature_len = len(inner) + payload_len
            feature_head = tag + varint(feature_len)
            value_len = len(feature_head) + feature_len
            entry = b"\x0a" + varint(len(key_bytes)) + key_bytes + b"\x12" + varint(value_len)
            prefixes.append(b"\x0a" + varint(len(entry) + value_len) + entry
                            + feature_head + inner)
        lengths = np.array([len(p) for p in prefixes], np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        _prefix_tables[key] = (np.frombuffer(b"".join(prefixes), np.uint8), starts, lengths)
    return _prefix_tables[key]


def serialize_rows(rows, max_seq_length, max_predictions_per_seq, shapes=None):
    """Serializes N examples given each feature's rows, concatenated.

    Args:
        rows: dict with every `features.FEATURE_NAMES` key → (flat values, row
            lengths): row i is the next `row_lengths[i]` values of `flat`, then
            zeros up to the feature's length (L or P). Int features must be
            non-negative. `flat` may be the string "ones": every value is 1
            (`input_mask`, `masked_lm_weights`), with no array to encode.
        max_seq_length, max_predictions_per_seq: L and P.
        shapes: {name: (dtype, width)} of the features to write, in order
            (default: the masked records of `features.feature_shapes`).

    Returns:
        A list of N `bytes`, serialized tf.train.Examples.
    """
    if shapes is None:
        shapes = features.feature_shapes(max_seq_length, max_predictions_per_seq)
    missing = [n for n in shapes if n not in rows]
    if missing:
        raise InputError(f"serialize_examples: missing features {missing}")
    sources, src_pos = [], [0]

    def add_source(data):
        sources.append(data)
        src_pos.append(src_pos[-1] + data.size)
        return src_pos[-2]

    n = len(rows[next(iter(shapes))][1])
    max_width = max(width for _, width in shapes.values())
    zeros_at = add_source(np.zeros(4 * max_width, np.uint8))
    piece_src, piece_len = [], []   # per example, in output order: [N, 3 per feature]
    for name, (dtype, width) in shapes.items():
        flat, lengths = rows[name]
        lengths = np.asarray(lengths, dtype=np.int64)
        if lengths.shape != (n,) or (lengths > width).any() or (lengths < 0).any():
            raise InputError(f"serialize_examples: {name} row lengths must be [N] "
                             f"values in [0, {width}]")
        if isinstance(flat, str):  # "ones": every row value is 1 (input_mask, weights)
            if flat != "ones":
                raise InputError(f"serialize_examples: {name}: unknown row pattern {flat!r}")
            one = np.float32(1).tobytes() if dtype == "float32" else b"\x01"
            unit = len(one)
            row_bytes, pad = unit * lengths, unit * (width - lengths)
            payload_len = row_bytes + pad
            table, t_starts, t_lengths = _prefix_table(name, dtype, unit * width)
            table_at = add_source(table)
            ones_at = add_source(np.frombuffer(one * width, np.uint8))
            piece_src += [table_at + t_starts[payload_len], np.full(n, ones_at),
                          np.full(n, zeros_at)]
            piece_len += [t_lengths[payload_len], row_bytes, pad]
            continue
        if dtype == "float32":
            data = np.ascontiguousarray(flat, dtype="<f4").ravel()
            if data.size != lengths.sum():
                raise InputError(f"serialize_examples: {name} has {data.size} values, "
                                 f"its row lengths sum to {lengths.sum()}")
            data = data.view(np.uint8)
            row_bytes, pad, unit = 4 * lengths, 4 * (width - lengths), 4
        else:
            data, counts = encode_varints(flat)
            if counts.size != lengths.sum():
                raise InputError(f"serialize_examples: {name} has {counts.size} values, "
                                 f"its row lengths sum to {lengths.sum()}")
            ends = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])[np.cumsum(lengths)]
            row_bytes = np.diff(np.concatenate([[0], ends]))
            pad, unit = width - lengths, 3
        payload_len = row_bytes + pad
        table, t_starts, t_lengths = _prefix_table(
            name, dtype, max(unit * width, int(payload_len.max(initial=0))))
        table_at = add_source(table)
        data_at = add_source(data)
        piece_src += [table_at + t_starts[payload_len],
                      data_at + np.cumsum(row_bytes) - row_bytes,
                      np.full(n, zeros_at)]
        piece_len += [t_lengths[payload_len], row_bytes, pad]
    piece_len = np.stack(piece_len, axis=1)
    body_len = piece_len.sum(axis=1)
    header_data, header_counts = encode_varints(body_len)
    header_data = np.concatenate([np.full((n, 1), 0x0A, np.uint8),
                                  _left_aligned(header_data, header_counts)], axis=1)
    header_at = add_source(header_data.ravel())
    stride = header_data.shape[1]
    piece_src = np.concatenate([(header_at + stride * np.arange(n))[:, None],
                                np.stack(piece_src, axis=1)], axis=1).ravel()
    piece_len = np.concatenate([(header_counts + 1)[:, None], piece_len], axis=1)
    flat_len = piece_len.ravel()
    dest_start = np.cumsum(flat_len) - flat_len
    total = int(flat_len.sum())
    source = np.concatenate(sources)
    itype = np.int32 if max(total, source.size) < 2**31 else np.int64
    index = np.repeat((piece_src - dest_start).astype(itype), flat_len)
    index += np.arange(total, dtype=itype)
    out = source.take(index).tobytes()
    bounds = np.concatenate([[0], np.cumsum(body_len + header_counts + 1)]).tolist()
    return [out[bounds[i]:bounds[i + 1]] for i in range(n)]


def _left_aligned(data, counts):
    """Ragged bytes → [N, max count] uint8, each row left-aligned."""
    width = int(counts.max(initial=1))
    out = np.zeros((counts.size, width), np.uint8)
    out[np.arange(width) < counts[:, None]] = data
    return out


def serialize_examples(arrays):
    """Serializes dense examples: dict name → array [N, length] → list of N bytes."""
    missing = [n for n in features.FEATURE_NAMES if n not in arrays]
    if missing:
        raise InputError(f"serialize_examples: missing features {missing}")
    dense = {name: np.asarray(arrays[name]) for name in features.FEATURE_NAMES}
    n = dense["input_ids"].shape[0] if dense["input_ids"].ndim == 2 else -1
    for name, value in dense.items():
        if value.ndim != 2 or value.shape[0] != n:
            raise InputError(f"serialize_examples: {name} must be [N, length], "
                             f"got shape {value.shape}")
    seq_len = dense["input_ids"].shape[1]
    preds = dense["masked_lm_ids"].shape[1]
    for name, (_, width) in features.feature_shapes(seq_len, preds).items():
        if dense[name].shape[1] != width:
            raise InputError(f"serialize_examples: {name} must be [N, {width}], "
                             f"got shape {dense[name].shape}")
    rows = {name: (value.ravel(), np.full(n, value.shape[1])) for name, value in dense.items()}
    return serialize_rows(rows, seq_len, preds)
