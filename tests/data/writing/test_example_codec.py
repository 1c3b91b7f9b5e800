"""Vectorized Example serialization of ragged rows (the pipeline's fast path)."""

import numpy as np
import pytest

from spanbert_tf.data.writing import example_codec
from spanbert_tf.data import features


def test_varints():
    data, counts = example_codec.encode_varints([0, 1, 127, 128, 300, 16383, 16384, 70000])
    assert counts.tolist() == [1, 1, 1, 2, 2, 2, 3, 3]
    expected = b"".join(example_codec.varint(v) for v in
                        [0, 1, 127, 128, 300, 16383, 16384, 70000])
    assert data.tobytes() == expected
    assert example_codec.varint(300) == b"\xac\x02"
    with pytest.raises(ValueError, match="negative"):
        example_codec.encode_varints([1, -1])


def test_ragged_rows_equal_dense_zero_padded_examples():
    import tensorflow as tf

    rng = np.random.default_rng(3)
    L, P, n = 9, 4, 6
    seq_len = rng.integers(0, L + 1, n)
    preds = rng.integers(0, P + 1, n)
    dense, rows = {}, {}
    for name in features.FEATURE_NAMES:
        width, lengths = (L, seq_len) if name in features.SEQUENCE_FEATURES else (P, preds)
        is_float = name in features.FLOAT_FEATURES
        values = [rng.random(k).astype(np.float32) if is_float
                  else rng.integers(0, 40000, k) for k in lengths]
        rows[name] = (np.concatenate(values), lengths)
        dense[name] = np.zeros((n, width), np.float32 if is_float else np.int64)
        for i, v in enumerate(values):
            dense[name][i, :v.size] = v
    records = example_codec.serialize_rows(rows, L, P)
    assert records == example_codec.serialize_examples(dense)
    spec = features.pretraining_feature_spec(L, P)
    for i, record in enumerate(records):
        parsed = tf.io.parse_single_example(record, spec)
        for name in features.FEATURE_NAMES:
            np.testing.assert_array_equal(parsed[name].numpy(), dense[name][i])


def test_bad_rows():
    rows = {name: (np.zeros(2), np.array([1, 1])) for name in features.FEATURE_NAMES}
    assert len(example_codec.serialize_rows(rows, 3, 2)) == 2
    with pytest.raises(ValueError, match="row lengths must be"):
        example_codec.serialize_rows(dict(rows, input_ids=(np.zeros(8), np.array([4, 4]))), 3, 2)
    with pytest.raises(ValueError, match="has 3 values"):
        example_codec.serialize_rows(dict(rows, masked_lm_ids=(np.zeros(3), np.array([1, 1]))),
                                     3, 2)
    with pytest.raises(ValueError, match="missing features"):
        example_codec.serialize_rows({"input_ids": rows["input_ids"]}, 3, 2)


def test_ones_rows_equal_explicit_ones():
    rng = np.random.default_rng(0)
    n = np.array([3, 0, 5])
    m = np.array([2, 1, 0])
    rows = {name: (rng.integers(0, 100, int((n if name in features.SEQUENCE_FEATURES
                                              else m).sum())), n if name in
                   features.SEQUENCE_FEATURES else m) for name in features.FEATURE_NAMES}
    rows["masked_lm_weights"] = (np.ones(3, np.float32), m)
    rows["input_mask"] = (np.ones(8, np.int64), n)
    explicit = example_codec.serialize_rows(rows, 5, 2)
    rows["masked_lm_weights"] = ("ones", m)
    rows["input_mask"] = ("ones", n)
    assert example_codec.serialize_rows(rows, 5, 2) == explicit
    with pytest.raises(ValueError, match="unknown row pattern"):
        example_codec.serialize_rows(dict(rows, input_mask=("twos", n)), 5, 2)
