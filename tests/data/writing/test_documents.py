"""Streaming input reading: layout, .gz, globs, jsonl, TFDS, skips, long lines."""

import gzip
import json
import tracemalloc

import pytest

from spanbert_tf.data.writing import documents
from spanbert_tf.data.writing.documents import (
    InputError, InputStats, iter_document_parts, resolve_input_files)


def _docs(paths, **kwargs):
    stats = InputStats()
    parts = list(iter_document_parts(paths, stats, **kwargs))
    docs = {}
    for part in parts:
        docs.setdefault(part.doc_index, []).extend(part.lines)
    return [docs[k] for k in sorted(docs)], parts, stats


def test_blank_lines_separate_documents(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("\n\n  First doc line 1.  \nline 2\n\n\n\nSecond doc.\n  \t \nThird\n")
    docs, parts, stats = _docs([str(path)])
    assert docs == [["First doc line 1.", "line 2"], ["Second doc."], ["Third"]]
    assert [p.doc_index for p in parts] == [0, 1, 2]
    assert stats.documents == 3 and stats.lines == 4 and stats.files_read == 1


def test_gz_globs_and_comma_lists_in_order(tmp_path):
    (tmp_path / "b.txt").write_text("B doc\n")
    with gzip.open(tmp_path / "a.txt.gz", "wt", encoding="utf-8") as f:
        f.write("A doc\n\nA second doc")
    (tmp_path / "c.txt").write_text("C doc\n")
    paths = resolve_input_files(f"{tmp_path}/*.txt.gz, {tmp_path}/c.txt,{tmp_path}/b.txt")
    assert [p.rsplit("/", 1)[1] for p in paths] == ["a.txt.gz", "c.txt", "b.txt"]
    docs, _, _ = _docs(paths)
    # A file end ends a document (no blank line needed).
    assert docs == [["A doc"], ["A second doc"], ["C doc"], ["B doc"]]
    # Duplicates (glob + explicit) are read once.
    assert len(resolve_input_files(f"{tmp_path}/*.txt,{tmp_path}/b.txt")) == 2


def test_missing_inputs_name_the_path(tmp_path):
    with pytest.raises(InputError, match="input file not found: .*nope.txt"):
        resolve_input_files(f"{tmp_path}/nope.txt")
    with pytest.raises(InputError, match="matches no file: .*zz"):
        resolve_input_files(f"{tmp_path}/*.zz")
    with pytest.raises(InputError, match="is a directory"):
        resolve_input_files(str(tmp_path))
    with pytest.raises(InputError, match="no input file"):
        resolve_input_files(" , ")


def test_skips_empty_binary_and_corrupt_files(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("Good text.\n")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_text("\n  \n\n")
    (tmp_path / "binary.bin").write_bytes(b"PK\x03\x04\x00\x00" + bytes(range(256)) * 4)
    payload = "".join(f"line {i} {i * 7919 % 10007}\n" for i in range(5000)).encode()
    (tmp_path / "corrupt.gz").write_bytes(gzip.compress(payload)[:3000])
    paths = [str(tmp_path / n) for n in
             ("empty.txt", "blank.txt", "binary.bin", "corrupt.gz", "good.txt")]
    docs, _, stats = _docs(paths)
    assert docs[-1] == ["Good text."]
    assert stats.skipped["empty_file"] == 2
    assert stats.skipped["binary_file"] == 1
    assert stats.skipped["read_error"] == 1
    assert stats.files_read == 1
    assert any("binary.bin" in path for path, _ in stats.skipped_examples)


def test_invalid_utf8_is_replaced_and_counted(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"caf\xe9 ok\nfine \xff\xfe line\n")
    docs, _, stats = _docs([str(path)])
    assert docs == [["caf\ufffd ok", "fine \ufffd\ufffd line"]]
    assert stats.invalid_utf8_bytes == 3


def test_long_line_comes_in_bounded_parts_cut_at_whitespace(tmp_path):
    words = [f"w{i}é" for i in range(3000)]
    path = tmp_path / "long.txt"
    path.write_text("Title line\n" + " ".join(words) + "\nlast line\n\nnext doc\n")
    docs, parts, _ = _docs([str(path)], chunk_bytes=97, part_bytes=1000)
    # Parts are bounded, belong to one document, and never cut a word.
    assert max(sum(len(line.encode()) for line in p.lines) for p in parts) < 1000 + 2 * 97
    assert {p.doc_index for p in parts} == {0, 1}
    assert [p.part_index for p in parts if p.doc_index == 0] == list(range(len(parts) - 1))
    first_doc = " ".join(docs[0])
    assert first_doc == "Title line " + " ".join(words) + " last line"
    assert docs[1] == ["next doc"]


def test_line_without_whitespace_is_cut_at_character_boundaries(tmp_path):
    path = tmp_path / "nospace.txt"
    text = "日本語" * 500
    path.write_text(text + "\n")
    docs, parts, stats = _docs([str(path)], chunk_bytes=64, part_bytes=300)
    assert "".join(docs[0]) == text
    assert stats.invalid_utf8_bytes == 0


def test_huge_single_line_memory_stays_flat(tmp_path):
    path = tmp_path / "huge.txt"
    word = b"lorem ipsum dolor sit amet "
    with open(path, "wb") as f:
        for _ in range(40):
            f.write(word * (1 << 15))  # ~35 MB on one line
    tracemalloc.start()
    stats = InputStats()
    count = 0
    for part in iter_document_parts([str(path)], stats):
        count += 1
        assert sum(len(line) for line in part.lines) < documents.PART_BYTES + 3 * documents.CHUNK_BYTES
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count >= 25
    assert peak < 16 * 2**20


def test_jsonl(tmp_path):
    path = tmp_path / "docs.jsonl"
    rows = [json.dumps({"text": "Line one.\n\nLine two.\n", "id": 1}), "",
            "{not json", json.dumps({"body": "no text"}), json.dumps({"text": 5}),
            json.dumps({"text": "Second doc"})]
    path.write_text("\n".join(rows) + "\n")
    docs, _, stats = _docs([str(path)], input_format="jsonl")
    assert docs == [["Line one.", "Line two."], ["Second doc"]]
    assert stats.skipped == {"invalid_json": 1, "missing_text_key": 2}
    docs, _, stats = _docs([str(path)], input_format="jsonl", text_key="body")
    assert docs == [["no text"]]


def test_tfds_tiny_dataset(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")

    class TinyCorpusForSpanbertTest(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
                {"text": tfds.features.Text(), "title": tfds.features.Text()}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            for i in range(4):
                yield i, {"text": f"Doc {i} line.\nSecond line {i}.", "title": f"t{i}"}

    TinyCorpusForSpanbertTest(data_dir=str(tmp_path)).download_and_prepare()
    spec = dict(name="tiny_corpus_for_spanbert_test", split="train", text_key="text",
                data_dir=str(tmp_path))
    docs, _, stats = _docs([], tfds=spec)
    assert sorted(docs) == sorted([[f"Doc {i} line.", f"Second line {i}."] for i in range(4)])
    assert stats.documents == 4
    with pytest.raises(InputError, match="no feature 'body'"):
        _docs([], tfds=dict(spec, text_key="body"))
    with pytest.raises(InputError, match="no_such_dataset_xyz"):
        _docs([], tfds=dict(spec, name="no_such_dataset_xyz"))
