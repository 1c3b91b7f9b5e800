"""The three NER formats on real LitBank entities: read, write, read back; malformed input."""

import json

import pytest

from spanbert_tf.errors import InputError
from spanbert_tf.tasks.ner import formats

DOC = "1342_pride_and_prejudice_brat"


@pytest.fixture(scope="module")
def litbank(shared_data):
    return shared_data / "ner" / "litbank"


@pytest.fixture(scope="module")
def pride(litbank):
    return formats.read_ner_files(str(litbank / "tsv" / f"{DOC}.tsv"))[0]


def test_layered_tsv_reads_nested_entities(pride):
    assert pride.doc_id == DOC and pride.fmt == "tsv" and pride.num_layers == 4
    first = pride.sentences[0]
    assert first[:3] == ["Chapter", "1", "It"]
    # "a single man in possession of a good fortune", "a wife": PER (layer 1).
    assert [(s, e, t, " ".join(first[s:e])) for s, e, t in pride.entities[0]] == [
        (10, 19, "PER", "a single man in possession of a good fortune"),
        (25, 27, "PER", "a wife")]
    nested = [(e, f) for s in pride.entities for e in s for f in s
              if e != f and f[0] <= e[0] and e[1] <= f[1]]
    assert nested, "LitBank nests entities (Mr. inside Mr. Bennet ...)"


def test_split_file_selects_documents_in_order(litbank):
    docs = formats.read_ner_files(str(litbank / "tsv"), str(litbank / "splits" / "dev.txt"))
    names = [n.strip() for n in open(litbank / "splits" / "dev.txt") if n.strip()]
    assert [d.doc_id for d in docs] == names


@pytest.mark.parametrize("suffix", ["tsv", "jsonl", "conll"])
def test_write_and_read_back(pride, tmp_path, suffix):
    path = str(tmp_path / f"out.{suffix}")
    dropped = formats.write_like(path, [pride], [pride.entities])
    back = formats.read_ner_files(path)
    assert sum(len(d.sentences) for d in back) == len(pride.sentences)
    assert [w for d in back for s in d.sentences for w in s] == [
        w for s in pride.sentences for w in s]          # every word kept
    got = [s for d in back for s in d.entities]
    if suffix == "conll":                               # flat: the outermost entities
        assert dropped > 0
        assert got == [formats.outermost(s)[0] for s in pride.entities]
    else:
        assert dropped == 0 and got == pride.entities


def test_conll_2003_columns_docstart_and_iob1(tmp_path):
    path = tmp_path / "eng.testa"
    path = tmp_path / "eng.conll"
    path.write_text("-DOCSTART- -X- -X- O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\n"
                    "German JJ I-NP I-MISC\n\n-DOCSTART- -X- -X- O\n\nPeter NNP I-NP I-PER\n"
                    "Blackburn NNP I-NP I-PER\n")
    docs = formats.read_ner_files(str(path), scheme="iob1")
    assert [d.entities for d in docs] == [[[(0, 1, "ORG"), (2, 3, "MISC")]], [[(0, 2, "PER")]]]
    out = tmp_path / "out.conll"
    formats.write_conll_columns(str(out), docs, scheme="iob1")
    assert out.read_text() == path.read_text().replace("Blackburn NNP I-NP I-PER\n",
                                                       "Blackburn NNP I-NP I-PER\n\n")
    with pytest.raises(InputError, match=r"eng\.conll:3: .*'I-ORG' does not continue"):
        formats.read_ner_files(str(path), scheme="bio")


@pytest.mark.parametrize("name,text,message", [
    ("bad.tsv", "a\tO\nb\tO\tO\n", r"bad\.tsv:2: 3 columns, expected 2"),
    ("bad.tsv", "a\tO\n\nb\tE-PER\n", r"bad\.tsv:3: layer 1: label 'E-PER' is not a BIO tag"),
    ("bad.tsv", "word-alone\n", r"bad\.tsv:1: expected a word and at least one tag column"),
    ("bad.conll", "a NN O\nb NN\n", r"bad\.conll:2: 2 columns, expected 3"),
    ("bad.jsonl", '{"tokens": ["a"]}\n{"tokens": ["a"], "entities": [[0, 2, "PER"]]}\n',
     r"bad\.jsonl:2: entity \[0, 2, 'PER'\] outside its 1 tokens \(end is exclusive"),
    ("bad.jsonl", '{"tokens": "a b"}\n', r"bad\.jsonl:1: expected an object with \"tokens\""),
    ("bad.jsonl", '{"tokens": [\n', r"bad\.jsonl:1: invalid JSON"),
    ("bad.json", "{}", r"unknown NER file suffix '\.json'"),
])
def test_malformed_input_names_file_and_line(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        formats.read_ner_files(str(path))


def test_jsonl_keeps_other_keys_and_groups_doc_ids(tmp_path):
    path = tmp_path / "in.jsonl"
    lines = [{"doc_id": "a", "tokens": ["Emma", "Woodhouse"], "entities": [[0, 2, "PER"]],
              "note": 1}, {"doc_id": "a", "tokens": ["Highbury"], "entities": [[0, 1, "GPE"]]},
             {"doc_id": "b", "tokens": ["x"]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    docs = formats.read_ner_files(str(path))
    assert [(d.doc_id, len(d.sentences)) for d in docs] == [("a", 2), ("b", 1)]
    out = tmp_path / "out.jsonl"
    formats.write_jsonl(str(out), docs)
    assert [json.loads(r) for r in out.read_text().splitlines()] == [
        dict(r, entities=r.get("entities", [])) for r in lines]
