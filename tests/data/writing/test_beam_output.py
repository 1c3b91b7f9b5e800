"""The Beam pipeline's last steps: shards under hidden temporary names, then renamed."""

import gzip
import hashlib
import os

import pytest

pytest.importorskip("apache_beam")  # the [beam] extra (part of the [test] extra)

from spanbert_tf.data.writing import beam_output, pipeline  # noqa: E402


def test_a_shard_is_written_in_global_part_order_under_a_name_no_reader_takes(tmp_path):
    config = pipeline.PretrainingDataConfig(output_dir=str(tmp_path), num_shards=3,
                                            compression="GZIP", progress=False)
    pieces = [(7, b"late", 1), None, (2, b"early", 2)]  # None: the every-shard marker
    entry = beam_output.WriteShard(config, "tok")((1, pieces))
    name = ".pretrain-00001-of-00003.tfrecord.gz.tmp-beam-tok"
    assert os.listdir(tmp_path) == [name]
    data = (tmp_path / name).read_bytes()
    assert gzip.decompress(data) == b"earlylate"
    assert entry == {"shard": 1, "name": "pretrain-00001-of-00003.tfrecord.gz",
                     "tmp": str(tmp_path / name), "bytes": len(data),
                     "sha256": hashlib.sha256(data).hexdigest(), "records": 3}
