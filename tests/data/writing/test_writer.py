"""Fast Example serialization, TFRecord framing and atomic shard writing."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from spanbert_tf.data import features
from spanbert_tf.data.writing import writer


def _random_arrays(n, seq_len, preds, rng, high=29000):
    arrays = {}
    for name in features.FEATURE_NAMES:
        width = seq_len if name in features.SEQUENCE_FEATURES else preds
        if name in features.FLOAT_FEATURES:
            arrays[name] = (rng.random((n, width)) < 0.5).astype(np.float32)
        else:
            arrays[name] = rng.integers(0, high, (n, width))
    return arrays


@pytest.mark.parametrize("high", [200, 29000, 3_000_000_000])
def test_serialized_examples_parse_with_the_feature_spec(high):
    import tensorflow as tf

    rng = np.random.default_rng(high)
    arrays = _random_arrays(7, 19, 5, rng, high)
    arrays["input_ids"][0, :3] = [0, 127, 128]  # varint byte-count boundaries
    arrays["input_ids"][1, :3] = [16383, 16384, 65535]
    records = writer.serialize_examples(arrays)
    spec = features.pretraining_feature_spec(19, 5)
    for i, record in enumerate(records):
        parsed = tf.io.parse_single_example(record, spec)
        for name in features.FEATURE_NAMES:
            np.testing.assert_array_equal(parsed[name].numpy(), arrays[name][i])
        # Same message as the protobuf library builds.
        proto = tf.train.Example.FromString(record)
        assert sorted(proto.features.feature) == sorted(features.FEATURE_NAMES)
        ref = tf.train.Example()
        for name in features.FEATURE_NAMES:
            values = arrays[name][i].tolist()
            if name in features.FLOAT_FEATURES:
                ref.features.feature[name].float_list.value.extend(values)
            else:
                ref.features.feature[name].int64_list.value.extend(values)
        assert proto == ref
    single = writer.serialize_example({k: v[2] for k, v in arrays.items()})
    assert single == records[2]


def test_serialize_rejects_bad_input():
    arrays = _random_arrays(2, 4, 2, np.random.default_rng(0))
    bad = dict(arrays)
    del bad["sbo_weights"]
    with pytest.raises(ValueError, match="missing features"):
        writer.serialize_examples(bad)
    bad = dict(arrays, input_ids=-arrays["input_ids"] - 1)
    with pytest.raises(ValueError, match="negative"):
        writer.serialize_examples(bad)
    bad = dict(arrays, input_mask=arrays["input_mask"][0])
    with pytest.raises(ValueError, match="input_mask must be"):
        writer.serialize_examples(bad)
    bad = dict(arrays, sbo_weights=arrays["sbo_weights"][:, :1])
    with pytest.raises(ValueError, match=r"sbo_weights must be \[N, 2\]"):
        writer.serialize_examples(bad)


@pytest.mark.parametrize("compression", ["none", "GZIP"])
def test_shards_are_readable_and_renamed_on_success(tmp_path, compression):
    import tensorflow as tf

    (tmp_path / "pretrain-00000-of-00007.tfrecord").write_bytes(b"stale")
    (tmp_path / "unrelated.txt").write_text("keep me")
    records = [f"record {i}".encode() for i in range(10)]
    with writer.ShardWriter(str(tmp_path), 3, compression) as w:
        for i in range(3):
            w.write(i, writer.frame_records(records[i::3]), len(records[i::3]))
        w.write(1, writer.frame_records([]), 0)
        assert not any(n.startswith("pretrain-0") and "of-00003" in n
                       for n in os.listdir(tmp_path))
    names = sorted(os.listdir(tmp_path))
    suffix = ".tfrecord.gz" if compression == "GZIP" else ".tfrecord"
    assert names == [f"pretrain-0000{i}-of-00003{suffix}" for i in range(3)] + ["unrelated.txt"]
    assert w.removed_stale == ["pretrain-00000-of-00007.tfrecord"]
    assert w.records == [4, 3, 3]
    for i in range(3):
        ds = tf.data.TFRecordDataset(str(tmp_path / names[i]),
                                     compression_type="" if compression == "none" else "GZIP")
        assert [r.numpy() for r in ds] == records[i::3]


@pytest.mark.parametrize("compression", ["none", "GZIP"])
def test_hash_map_gives_the_sha256_of_the_final_shards(tmp_path, compression):
    import hashlib
    from concurrent import futures

    records = [f"record {i}".encode() * (i + 1) for i in range(20)]
    with futures.ThreadPoolExecutor(2) as threads, writer.ShardWriter(
            str(tmp_path), 3, compression, hash_map=threads.map) as w:
        for i in range(3):
            w.write(i, writer.frame_records(records[i::3]), len(records[i::3]))
    assert w.sha256 == [hashlib.sha256(open(p, "rb").read()).hexdigest() for p in w.paths]
    assert len(set(w.sha256)) == 3
    with writer.ShardWriter(str(tmp_path / "plain"), 1) as plain:
        plain.write(0, writer.frame_records(records), len(records))
    assert plain.sha256 is None  # no hash_map: metadata.json's writer reads the shards back


def test_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError):
        with writer.ShardWriter(str(tmp_path / "out"), 2) as w:
            w.write(0, writer.frame_records([b"x"]), 1)
            raise RuntimeError("worker failed")
    assert os.listdir(tmp_path / "out") == []


def test_killed_write_leaves_no_final_named_file(tmp_path):
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        import os, signal
        from spanbert_tf.data.writing import writer
        with writer.ShardWriter({str(out)!r}, 2) as w:
            w.write(0, b"partial data", 1)
            w._files[0].flush()
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -9
    names = os.listdir(out)
    assert names and all(n.startswith(".") and ".tmp-" in n for n in names)
    assert not [n for n in names if n.startswith("pretrain-")]


def test_an_earlier_runs_description_goes_before_the_first_rename(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    for name in writer.DESCRIPTION_FILES + ("pretrain-00000-of-00001.tfrecord", "notes.txt"):
        (out / name).write_text("earlier run")
    renamed, real_replace = [], os.replace

    def replace(src, dst):  # what the dir holds when a shard is renamed
        renamed.append(sorted(os.listdir(out)))
        real_replace(src, dst)

    monkeypatch.setattr(writer.os, "replace", replace)
    with writer.ShardWriter(str(out), 1) as w:
        w.write(0, writer.frame_records([b"x"]), 1)
    assert renamed == [[f".pretrain-00000-of-00001.tfrecord.tmp-{os.getpid()}", "notes.txt",
                        "pretrain-00000-of-00001.tfrecord"]]
    assert sorted(os.listdir(out)) == ["notes.txt", "pretrain-00000-of-00001.tfrecord"]
