"""Fixtures of the data tests: inputs built from the shared corpus."""

import gzip

import pytest

from spanbert_tf.data.writing import pipeline


@pytest.fixture(scope="session")
def multi_file_input(tmp_path_factory, wikitext_corpus):
    """The corpus in three files (one gzipped) plus a binary and an empty file."""
    folder = tmp_path_factory.mktemp("multi")
    documents = open(wikitext_corpus, encoding="utf-8").read().split("\n\n")
    third = len(documents) // 3
    chunks = [documents[:third], documents[third:2 * third], documents[2 * third:]]
    for i, chunk in enumerate(chunks):
        text = "\n\n".join(chunk).encode()
        if i == 1:
            with gzip.open(folder / f"part{i}.txt.gz", "wb") as f:
                f.write(text)
        else:
            (folder / f"part{i}.txt").write_bytes(text)
    (folder / "part3.txt").write_bytes(b"\x00\x01binary\x00" * 10)
    (folder / "part4.txt").write_bytes(b"")
    return f"{folder}/part*.txt,{folder}/part*.txt.gz"


@pytest.fixture
def small_data_config():
    """A factory of small `PretrainingDataConfig`s (L 32, P 5, dupe 2, 3 shards, in-process)."""
    def make(**kwargs):
        base = dict(max_seq_length=32, max_predictions_per_seq=5, dupe_factor=2, num_shards=3,
                    num_workers=1, progress=False)
        base.update(kwargs)
        return pipeline.PretrainingDataConfig(**base)
    return make

