"""TACRED reading and entity-marker replacement on hand-made records (official layout)."""

import json

import pytest

from spanbert_tf.tasks.classification import tacred
from spanbert_tf.tokenization import BertWordpieceTokenizer

RECORDS = [
    {"id": "e1", "relation": "per:title", "token": [
        "Tom", "Thabane", "resigned", "as", "-LRB-", "minister", "-RRB-", "in", "2006", "."],
     "subj_start": 0, "subj_end": 1, "subj_type": "PERSON",
     "obj_start": 5, "obj_end": 5, "obj_type": "TITLE"},
    {"id": "e2", "relation": "no_relation", "token": [
        "He", "lives", "in", "Paris", "with", "Anna", "Schmidt"],
     "subj_start": 5, "subj_end": 6, "subj_type": "PERSON",
     "obj_start": 3, "obj_end": 3, "obj_type": "LOCATION"},
    {"id": "e3", "relation": "per:title", "token": ["Mayor", "Smith", "spoke"],
     "subj_start": 1, "subj_end": 1, "subj_type": "PERSON",
     "obj_start": 0, "obj_end": 0, "obj_type": "TITLE"},
]


@pytest.fixture(scope="module")
def tokenizer(cased_vocab):
    return BertWordpieceTokenizer(cased_vocab)


def write(tmp_path, name, records):
    path = tmp_path / name
    path.write_text(json.dumps(records))
    return path


def test_read_and_labels(tmp_path):
    examples = tacred.read_tacred_json(write(tmp_path, "train.json", RECORDS))
    assert [ex.guid for ex in examples] == ["e1", "e2", "e3"]
    assert (examples[0].subj_type, examples[0].obj_type) == ("PERSON", "TITLE")
    # Negative label first, then by frequency.
    assert tacred.tacred_label_list(examples) == ["no_relation", "per:title"]
    assert tacred.tacred_label_list(examples[:1]) == ["no_relation", "per:title"]


def test_marker_sequence_replaces_mentions():
    ex = tacred._parse_record(RECORDS[0], "x.json", 0)
    (seq,) = tacred.marker_token_sequences([ex])
    assert seq == [("marker", "[SUBJ-PERSON]"), ("word", "resigned"), ("word", "as"),
                   ("word", "("), ("marker", "[OBJ-TITLE]"), ("word", ")"),
                   ("word", "in"), ("word", "2006"), ("word", ".")]


def test_mapping_official_order_and_ids(tmp_path, tokenizer):
    dev = tacred.read_tacred_json(write(tmp_path, "dev.json", RECORDS[1:2]))
    train = tacred.read_tacred_json(write(tmp_path, "train.json", RECORDS))
    markers = tacred.TacredMarkers.build([dev, train], tokenizer.vocab, "vocab.txt")
    # [unused1..4] reserved (start/end markers of the other modes); dev first.
    assert markers.mapping == {
        "[SUBJ-START]": "[unused1]", "[SUBJ-END]": "[unused2]",
        "[OBJ-START]": "[unused3]", "[OBJ-END]": "[unused4]",
        "[SUBJ-PERSON]": "[unused5]", "[OBJ-LOCATION]": "[unused6]",
        "[OBJ-TITLE]": "[unused7]"}
    assert tacred.TacredMarkers.from_json(json.loads(json.dumps(markers.to_json()))) == markers
    features = tacred.encode_tacred(train, tokenizer, markers, max_seq_length=16)
    ids = features["token_ids"]
    assert ids.shape == (3, 16)
    tokens = tokenizer.convert_ids_to_tokens(ids[0][features["padding_mask"][0] == 1])
    assert tokens == ["[CLS]", "[unused5]", "resigned", "as", "(", "[unused7]", ")",
                      "in", "2006", ".", "[SEP]"]
    tokens = tokenizer.convert_ids_to_tokens(ids[1][features["padding_mask"][1] == 1])
    assert tokens == ["[CLS]", "He", "lives", "in", "[unused6]", "with", "[unused5]", "[SEP]"]
    assert features["segment_ids"].sum() == 0
    # Cut as officially: [CLS] + tokens cut to the limit (the final [SEP] is lost).
    short = tacred.encode_tacred(train[:1], tokenizer, markers, max_seq_length=5)
    assert tokenizer.convert_ids_to_tokens(short["token_ids"][0]) == [
        "[CLS]", "[unused5]", "resigned", "as", "("]
    assert short["num_truncated"] == 1


def test_untyped_records_use_plain_markers(tmp_path, tokenizer):
    records = [{k: v for k, v in r.items() if not k.endswith("_type")} for r in RECORDS]
    records[0]["relation"] = "Cause-Effect(e1,e2)"
    examples = tacred.read_tacred_json(write(tmp_path, "semeval.json", records))
    markers = tacred.TacredMarkers.build([examples], tokenizer.vocab)
    assert list(markers.mapping)[4:] == ["[SUBJ]", "[OBJ]"]
    features = tacred.encode_tacred(examples[2:], tokenizer, markers, max_seq_length=8)
    assert tokenizer.convert_ids_to_tokens(features["token_ids"][0][:5]) == [
        "[CLS]", "[unused6]", "[unused5]", "spoke", "[SEP]"]


def test_bad_records_name_file_and_record(tmp_path):
    bad = dict(RECORDS[0], obj_end=10)
    with pytest.raises(ValueError, match=r"bad\.json: record 1 \(id e1\): obj span \[5, 10\]"):
        tacred.read_tacred_json(write(tmp_path, "bad.json", [RECORDS[1], bad]))
    missing = {k: v for k, v in RECORDS[0].items() if k != "relation"}
    with pytest.raises(ValueError, match=r"record 0 \(id e1\): missing field\(s\) \['relation'\]"):
        tacred.read_tacred_json(write(tmp_path, "bad.json", [missing]))
    (tmp_path / "broken.json").write_text('[{"id": 1,\n')
    with pytest.raises(ValueError, match=r"broken\.json:2: not valid JSON"):
        tacred.read_tacred_json(tmp_path / "broken.json")


def test_marker_mapping_runs_out_of_unused_entries(tokenizer):
    markers = tacred.TacredMarkers({f"[M{i}]": f"[unused{i + 1}]" for i in range(99)})
    with pytest.raises(ValueError, match=r"vocab.txt: has no \[unused100\] entry.*\[SUBJ-X\]"):
        markers.add("[SUBJ-X]", ["[unused1]"], "vocab.txt")
