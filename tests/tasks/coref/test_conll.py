"""CoNLL-2012 reader/writer: all of LitBank (real), an OntoNotes-layout file, bad input."""

import os

import pytest

from spanbert_tf.tasks.coref import conll
from spanbert_tf.tasks.coref.conll import CorefFormatError

LITBANK = "coref/litbank"

# OntoNotes *_gold_conll layout (space-aligned, 12+ columns, speaker in column 10).
ONTONOTES = """\
#begin document (bc/cctv/00/cctv_0000); part 000
bc/cctv/00/cctv_0000   0   0        Hello   UH   (TOP(INTJ*)   -   -   -   Speaker#1   *   (0)
bc/cctv/00/cctv_0000   0   1         John  NNP          (NP*   -   -   -   Speaker#1   *   (1|(2
bc/cctv/00/cctv_0000   0   2        Smith  NNP            *)   -   -   -   Speaker#1   *   2)
bc/cctv/00/cctv_0000   0   3           /.    .           *))   -   -   -   Speaker#1   *   1)

bc/cctv/00/cctv_0000   0   0          you  PRP          (NP*   -   -   -   Speaker#2   *   (1)
bc/cctv/00/cctv_0000   0   1           /-    :            *)   -   -   -   -           *   -
bc/cctv/00/cctv_0000   0   2           /?    .            *)   -   -   -   -           *   (0)

#end document
#begin document (bc/cctv/00/cctv_0000); part 001
bc/cctv/00/cctv_0000   1   0          Bye   UH   (TOP(INTJ*)   -   -   -   Speaker#1   *   -

#end document
"""


def test_reads_all_of_litbank_and_its_split(shared_data):
    root = shared_data / LITBANK
    docs = conll.read_conll_files(str(root / "conll"))
    assert len(docs) == 100
    assert sum(len(c) for d in docs for c in d.clusters) == 29103
    assert sum(len(d.clusters) for d in docs) == 7927
    assert sum(1 for d in docs for c in d.clusters if len(c) == 1) == 5763
    assert sum(d.num_words for d in docs) == 210532
    bleak = next(d for d in docs if d.doc_id == "1023_bleak_house_brat")
    assert bleak.doc_key == "1023_bleak_house_brat_0"
    assert bleak.sentences[0][:4] == ["CHAPTER", "I", "In", "Chancery"]
    assert bleak.clusters[0] == [(3, 3), (1816, 1816), (2012, 2012)]
    assert all(s is None for d in docs for sent in d.speakers for s in sent)
    sizes = {}
    for split in ("train", "dev", "test"):
        split_file = str(root / "splits" / f"{split}.txt")
        split_docs = conll.read_conll_split(str(root / "conll"), split_file)
        sizes[split] = len(split_docs)
    assert sizes == {"train": 80, "dev": 10, "test": 10}


def test_round_trip_is_exact_on_litbank(shared_data, tmp_path):
    folder = shared_data / LITBANK / "conll"
    for name in sorted(os.listdir(folder)):
        path = str(folder / name)
        docs = conll.read_conll(path)
        out = str(tmp_path / name)
        conll.write_conll(out, docs)
        again = conll.read_conll(out)
        assert len(again) == len(docs) == 1
        a, b = docs[0], again[0]
        assert (b.doc_key, b.sentences, b.speakers) == (a.doc_key, a.sentences, a.speakers)
        assert conll.canonical_clusters(b.clusters) == conll.canonical_clusters(a.clusters)
        # Every line but the coreference column is byte-identical to the input.
        with open(path, encoding="utf-8") as f1, open(out, encoding="utf-8") as f2:
            original, written = f1.read().splitlines(), f2.read().splitlines()
        assert len(original) == len(written)
        assert [l.rsplit("\t", 1)[0] for l in original] == [l.rsplit("\t", 1)[0] for l in written]


def test_ontonotes_layout(tmp_path):
    docs = conll.parse_conll(ONTONOTES, "dev.v4_gold_conll")
    assert [d.doc_key for d in docs] == ["bc/cctv/00/cctv_0000_0", "bc/cctv/00/cctv_0000_1"]
    doc = docs[0]
    assert doc.sentences == [["Hello", "John", "Smith", "."], ["you", "-", "?"]]
    assert doc.speakers == [["Speaker#1"] * 4, ["Speaker#2", None, None]]
    # Entity order: first appearance; nested (1 ... (2 ... 2) ... 1).
    assert doc.clusters == [[(0, 0), (6, 6)], [(1, 3), (4, 4)], [(1, 2)]]
    assert docs[1].clusters == [] and docs[1].none_marker == "-"
    # Predicted clusters replace the last column; other columns keep their spacing.
    out = tmp_path / "pred.conll"
    conll.write_conll(str(out), docs, {"bc/cctv/00/cctv_0000_0": [[(1, 3), (4, 4)], [(1, 1)]]})
    lines = out.read_text().splitlines()
    assert lines[2] == ONTONOTES.splitlines()[2][:-len("(1|(2")] + "(1)|(0"
    assert lines[4].endswith("0)") and lines[1].endswith("   -")
    again = conll.read_conll(str(out))
    assert conll.canonical_clusters(again[0].clusters) == (((1, 1),), ((1, 3), (4, 4)))
    assert again[1].clusters == []
    with pytest.raises(ValueError, match="outside its 7 words"):
        conll.format_document(doc, [[(5, 7)]])


@pytest.mark.parametrize("text, line, message", [
    ("#begin document (d); part 0\nd 0 0 a _ (1\nd 0 1 b _ _\n#end document\n", 2,
     "entity 1 opens here and is not closed"),
    ("#begin document (d); part 0\nd 0 0 a _ _\nd 0 1 b _ 3)\n#end document\n", 3,
     "entity 3 closes here but was never opened"),
    ("#begin document (d); part 0\nd 0 0 a _ _\nd 0 1 b _ x _\n#end document\n", 3,
     "7 columns, but the document's rows have 6"),
    ("#begin document (d); part 0\nd 0 0 a _ (1)\n\n", 3, "no '#end document'"),
    ("#begin document (d); part 0\nd 0 0 a _ (1)\n#begin document (e); part 0\n", 3,
     "no '#end document'"),
    ("#begin document (d); part 0\nd 0 0 a _ (1x\n#end document\n", 2,
     "bad coreference column"),
    ("d 0 0 a _ (1)\n", 1, "outside any"),
    ("#begin document (d); part 0\n#end document\n#begin document (d); part 0\n"
     "#end document\n", 4, "appears twice"),
])
def test_malformed_input_names_file_and_line(text, line, message):
    with pytest.raises(CorefFormatError, match=message) as info:
        conll.parse_conll(text, "bad.conll")
    assert str(info.value).startswith(f"bad.conll:{line}: ")


def test_missing_split_entry(tmp_path):
    (tmp_path / "split.txt").write_text("a_doc\nmissing_doc\n")
    (tmp_path / "a_doc.conll").write_text("#begin document (a_doc); part 0\n#end document\n")
    with pytest.raises(CorefFormatError, match=r"split.txt:2: no file"):
        conll.read_conll_split(str(tmp_path), str(tmp_path / "split.txt"))


def test_folders_bom_and_crlf(tmp_path):
    doc = "#begin document (a); part 0\r\na 0 0 Hi _ (0)\r\n\r\n#end document\r\n"
    (tmp_path / "a.v4_gold_conll").write_text("\ufeff" + doc, encoding="utf-8", newline="")
    (tmp_path / "a.v4_auto_conll").write_text("not read", encoding="utf-8")
    docs = conll.read_conll_files(str(tmp_path))
    assert [d.doc_key for d in docs] == ["a_0"] and docs[0].clusters == [[(0, 0)]]
    assert docs[0].sentences == [["Hi"]]
    (tmp_path / "b.conll").write_text(doc.replace("\r", ""))
    with pytest.raises(CorefFormatError, match="b.conll:1: document 'a_0' was already read"):
        conll.read_conll_files(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="No such file"):
        conll.read_conll_files(str(tmp_path / "a.v4_gold_conll") + "_missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no .conll or"):
        conll.read_conll_files(str(empty))
