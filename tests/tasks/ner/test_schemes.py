"""Tag schemes: decoding, encoding, errors, nesting layers."""

import pytest

from spanbert_tf.tasks.ner.schemes import (
    TagError, entities_to_tags, nesting_layers, outermost, tags_to_entities)


@pytest.mark.parametrize("scheme,tags", [
    ("bio", ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]),
    ("iob1", ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-LOC"]),
    ("iobes", ["B-PER", "E-PER", "O", "S-LOC", "B-LOC", "E-LOC"]),
])
def test_each_scheme_round_trips(scheme, tags):
    entities = [(0, 2, "PER"), (3, 4, "LOC"), (4, 6, "LOC")]
    assert tags_to_entities(tags, scheme) == entities
    assert entities_to_tags(entities, len(tags), scheme) == tags


def test_iob1_i_after_other_type_starts_an_entity():
    assert tags_to_entities(["I-PER", "I-LOC", "B-LOC"], "iob1") == [
        (0, 1, "PER"), (1, 2, "LOC"), (2, 3, "LOC")]


@pytest.mark.parametrize("scheme,tags,message", [
    ("bio", ["O", "E-PER"], r"tag 2: label 'E-PER' is not a BIO tag \(expected O, B-TYPE"),
    ("bio", ["PER"], r"label 'PER' is not a BIO tag"),
    ("bio", ["O", "I-PER"], r"tag 2: 'I-PER' does not continue an entity.*iob1"),
    ("bio", ["B-LOC", "I-PER"], r"does not continue an entity of type PER"),
    ("iobes", ["B-PER", "O"], r"'O' inside an IOBES entity"),
    ("iobes", ["B-PER"], r"not closed by E-PER"),
    ("iobes", ["E-PER"], r"does not continue a B-PER"),
])
def test_tags_outside_the_scheme_are_one_error(scheme, tags, message):
    with pytest.raises(TagError, match=message):
        tags_to_entities(tags, scheme)


def test_unknown_type_and_scheme():
    with pytest.raises(TagError, match=r"type 'XX' is not one of \['PER'\]"):
        tags_to_entities(["B-XX"], "bio", types={"PER"})
    with pytest.raises(ValueError, match="unknown tag scheme 'bilou'"):
        tags_to_entities(["O"], "bilou")


def test_nesting_layers_innermost_first_and_crossing_refused():
    entities = [(0, 1, "PER"), (0, 2, "PER"), (3, 6, "FAC"), (4, 5, "GPE"), (0, 6, "PER")]
    assert nesting_layers(entities) == [
        [(0, 1, "PER"), (4, 5, "GPE")], [(0, 2, "PER"), (3, 6, "FAC")], [(0, 6, "PER")]]
    assert outermost(entities) == ([(0, 6, "PER")], 4)
    with pytest.raises(ValueError, match=r"cross"):
        nesting_layers([(0, 2, "PER"), (1, 3, "PER")])
    with pytest.raises(ValueError, match="overlap"):
        entities_to_tags([(0, 2, "PER"), (1, 2, "LOC")], 3)
