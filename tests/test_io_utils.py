"""Tests for spanbert_tf/io_utils.py: atomic writes leave the old file or the new one, never half."""

import json
import os
import stat

import pytest

from spanbert_tf import io_utils


def test_write_json_atomic_replaces_and_is_world_readable(tmp_path):
    path = tmp_path / "sub" / "x.json"
    io_utils.write_json_atomic(path, {"a": 1})
    io_utils.write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    old = os.umask(0o022)
    try:
        io_utils.write_text_atomic(path, "hello\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert os.listdir(path.parent) == ["x.json"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "x.txt"
    io_utils.write_text_atomic(path, "old")
    with pytest.raises(RuntimeError):
        with io_utils.atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("killed mid-write")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["x.txt"]


def test_copy_file_atomic(tmp_path, cased_vocab):
    dst = io_utils.copy_file_atomic(cased_vocab, tmp_path / "vocab.txt")
    with open(cased_vocab, "rb") as a, open(dst, "rb") as b:
        assert a.read() == b.read()


def test_unserializable_json_leaves_the_old_file(tmp_path):
    path = tmp_path / "stats.json"
    io_utils.write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        io_utils.write_json_atomic(path, {"a": object()})
    assert os.listdir(tmp_path) == ["stats.json"]
    assert json.loads(path.read_text()) == {"a": 1}


def test_sha256_file(tmp_path):
    import hashlib

    path = tmp_path / "x.bin"
    data = bytes(range(256)) * 9000  # 2.3 MB: three 1 MiB read blocks
    path.write_bytes(data)
    assert io_utils.sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_jsonl_round_trip(tmp_path):
    from spanbert_tf.io_utils import read_jsonl, write_jsonl_atomic

    path = str(tmp_path / "history.jsonl")
    assert read_jsonl(path) == []
    records = [{"step": 1, "f1": 0.5}, {"step": 2, "f1": 0.75, "best": True}]
    write_jsonl_atomic(path, records)
    assert read_jsonl(path) == records
    assert open(path).read().count("\n") == 2
