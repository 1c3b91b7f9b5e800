"""Readers: SQuAD JSON v1.1/v2.0 (real data), TFDS records, bad input (MRQA: test_mrqa.py)."""

import json

import numpy as np
import pytest

from spanbert_tf.tasks.squad import reader as squad
from spanbert_tf.tasks.squad.reader import SquadFormatError

V2_FILE = "squad/squad-v2.0-dev-subset_haystack-small.json"
V1_FILE = "squad/DERIVED_squad-v1.1-format_from_haystack-small_answerable.json"


def test_read_real_v2_and_v1(shared_data):
    examples, stats = squad.read_squad_json(str(shared_data / V2_FILE), False, True)
    assert (len(examples), stats.num_questions, stats.num_impossible) == (626, 626, 333)
    assert sum(1 for e in examples if e.answers) == 293
    first = examples[0]
    assert first.qas_id == "56ddde6b9a695914005b9628" and not first.is_impossible
    assert first.doc_tokens[:2] == ["The", "Normans"]
    # Every context character maps to the whitespace token holding it (or the one before).
    a = first.answers[0]
    word = first.char_to_word_offset[a["answer_start"]]
    assert first.doc_tokens[word].startswith("France")
    v1, stats1 = squad.read_squad_json(str(shared_data / V1_FILE), False, False)
    assert len(v1) == 293 and stats1.num_impossible == 0
    assert [e.qas_id for e in v1] == [e.qas_id for e in examples if e.answers]


def test_whitespace_split_matches_fine_tuning_code():
    tokens, offsets = squad.split_on_whitespace(" a  bc\u202fd\te\n")
    assert tokens == ["a", "bc", "d", "e"]
    assert offsets == [-1, 0, 0, 0, 1, 1, 1, 2, 2, 3, 3]


def _write(tmp_path, data, name="bad.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def _one(qa, context="Rollo was a Viking."):
    return {"version": "v2.0", "data": [{"title": "t", "paragraphs": [
        {"context": context, "qas": [qa]}]}]}


@pytest.mark.parametrize("qa, message", [
    ({"id": "q1", "answers": []}, "question q1: missing field 'question'"),
    ({"question": "Who?", "answers": []}, "qas[0]: missing field 'id'"),
    ({"id": "q1", "question": "Who?"}, "question q1: missing field 'answers'"),
    ({"id": "q1", "question": "Who?", "answers": [{"text": "Rollo"}]},
     "missing field 'answer_start'"),
    ({"id": "q1", "question": "Who?", "answers": [{"text": "Viking.", "answer_start": 15}]},
     "answer 'Viking.' at character offset 15 (length 7) lies outside the context"),
    ({"id": "q1", "question": "Who?", "answers": [{"text": "R", "answer_start": -1}]},
     "lies outside the context"),
    ({"id": "q1", "question": "Who?", "answers": [{"text": "Rollo", "answer_start": "0"}]},
     "field 'answer_start' has type str"),
])
def test_bad_json_errors_name_file_and_question(tmp_path, qa, message):
    path = _write(tmp_path, _one(qa))
    with pytest.raises(SquadFormatError) as err:
        squad.read_squad_json(path, is_training=False, version_2_with_negative=True)
    assert path in str(err.value) and message in str(err.value)


def test_bad_files(tmp_path):
    with pytest.raises(SquadFormatError, match="not found"):
        squad.read_squad_json(str(tmp_path / "missing.json"), False, False)
    broken = tmp_path / "broken.json"
    broken.write_text('{"data": [')
    with pytest.raises(SquadFormatError, match="broken.json: not valid JSON"):
        squad.read_squad_json(str(broken), False, False)
    path = _write(tmp_path, {"version": "1.1"})
    with pytest.raises(SquadFormatError, match="no top-level 'data' list"):
        squad.read_squad_json(path, False, False)
    no_context = {"data": [{"paragraphs": [{"qas": []}]}]}
    with pytest.raises(SquadFormatError,
                       match=r"data\[0\].paragraphs\[0\]: missing field 'context'"):
        squad.read_squad_json(_write(tmp_path, no_context), False, False)


def test_training_rules(tmp_path):
    two = {"id": "q1", "question": "Who?", "answers": [{"text": "Rollo", "answer_start": 0},
                                                       {"text": "Rollo was", "answer_start": 0}]}
    with pytest.raises(SquadFormatError, match="exactly 1 answer, found 2"):
        squad.read_squad_json(_write(tmp_path, _one(two)), True, False)
    (ex,), _ = squad.read_squad_json(_write(tmp_path, _one(two)), True, False,
                                     first_answer_only=True)
    assert ex.orig_answer_text == "Rollo" and ex.answers == two["answers"][:1]
    none = {"id": "q1", "question": "Who?", "answers": []}
    with pytest.raises(SquadFormatError, match="need --version_2_with_negative"):
        squad.read_squad_json(_write(tmp_path, _one(none)), True, False)
    # v2.0: unanswerable → positions -1; a text that does not match its offsets is
    # skipped and counted, as the official reader does.
    (ex,), _ = squad.read_squad_json(_write(tmp_path, _one(none)), True, True)
    assert (ex.start_position, ex.end_position, ex.is_impossible) == (-1, -1, True)
    wrong = {"id": "q2", "question": "Who?", "answers": [{"text": "Olaf", "answer_start": 0}]}
    examples, stats = squad.read_squad_json(_write(tmp_path, _one(wrong)), True, True)
    assert examples == [] and stats.skipped_answer_not_found == 1 and stats.skipped_ids == ["q2"]
    good = {"id": "q3", "question": "What?", "answers": [{"text": "a Viking",
                                                          "answer_start": 10}]}
    (ex,), _ = squad.read_squad_json(_write(tmp_path, _one(good)), True, True)
    assert (ex.start_position, ex.end_position) == (2, 3)   # words "a", "Viking."


def test_mrqa_files_are_left_to_the_mrqa_reader(tmp_path):
    path = tmp_path / "dev.jsonl.gz"
    path.write_bytes(b"")
    with pytest.raises(SquadFormatError, match=r"dev.jsonl.gz: an MRQA file: read it with "
                                               r"spanbert_tf.tasks.squad.mrqa"):
        squad.read_examples(str(path))


def test_tfds_records():
    context = b"Rollo was a Viking."
    records = [{"id": b"t1", "title": b"N", "context": context, "question": b"Who?",
                "answers": {"text": np.array([b"Rollo"]), "answer_start": np.array([0])},
                "is_impossible": False},
               {"id": b"t2", "title": b"N", "context": context, "question": b"Why?",
                "answers": {"text": np.array([], dtype=object),
                            "answer_start": np.array([], dtype=np.int32)},
                "is_impossible": True}]
    examples, stats = squad.examples_from_tfds(records, True, True)
    assert [e.qas_id for e in examples] == ["t1", "t2"] and stats.num_impossible == 1
    assert examples[0].start_position == 0 and examples[1].start_position == -1
    records[0]["answers"]["answer_start"] = np.array([40])
    with pytest.raises(SquadFormatError, match="tfds: question t1: answer 'Rollo'"):
        squad.examples_from_tfds(records, False, True)


def test_read_tfds_through_tfds_load(tmp_path):
    """`read_tfds` goes through tfds.load (mocked records); a missing dataset is an error."""
    tf = pytest.importorskip("tensorflow")
    tfds = pytest.importorskip("tensorflow_datasets")

    def as_dataset_fn(self, split, **kwargs):
        del self, split, kwargs
        empty = {"text": tf.constant([], tf.string), "answer_start": tf.constant([], tf.int32)}
        return tf.data.Dataset.from_tensors({
            "id": "a1", "title": "T", "context": "Rollo was a Viking.", "question": "Who?",
            "answers": {"text": tf.constant(["Rollo"]),
                        "answer_start": tf.constant([0], tf.int32)},
            "is_impossible": False, "plausible_answers": empty})

    with tfds.testing.mock_data(as_dataset_fn=as_dataset_fn):
        (ex,), stats = squad.read_examples(tfds_name="squad/v2.0", tfds_data_dir=str(tmp_path),
                                           is_training=True, version_2_with_negative=True)
    assert (ex.qas_id, ex.orig_answer_text, ex.start_position) == ("a1", "Rollo", 0)
    with pytest.raises(SquadFormatError, match="TFDS squad/v2.0 .split validation. not available"):
        squad.read_examples(tfds_name="squad/v2.0", tfds_data_dir=str(tmp_path))
