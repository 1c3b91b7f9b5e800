"""The span layers shared by coreference and NER: the candidate grid, the endpoint span
embedding (batched = unbatched), and the non-crossing selection rule NER's decoder follows."""

import numpy as np

from spanbert_tf.modeling.span_layers import (
    endpoint_span_embeddings, select_non_crossing_spans, sentence_span_grid)
from spanbert_tf.tasks.ner.features import decode_spans


def test_sentence_span_grid_stays_inside_sentences():
    grid = np.asarray(sentence_span_grid(np.array([0, 0, 0, 1, 1]), max_span_width=2))
    spans = [(int(s), int(s + w)) for s, w in grid]
    assert spans == [(0, 0), (0, 1), (1, 1), (1, 2), (2, 2), (3, 3), (3, 4), (4, 4)]


def test_endpoint_embeddings_batched_equal_unbatched():
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(2, 6, 4)).astype("float32")
    starts = np.array([[0, 2, 5], [1, 1, 3]], np.int32)
    ends = np.array([[1, 4, 5], [1, 3, 5]], np.int32)
    widths = rng.normal(size=(2, 3, 3)).astype("float32")
    batched = np.asarray(endpoint_span_embeddings(tokens, starts, ends, widths))
    assert batched.shape == (2, 3, 4 + 4 + 3)
    for b in range(2):
        one = np.asarray(endpoint_span_embeddings(tokens[b], starts[b], ends[b], widths[b]))
        np.testing.assert_allclose(batched[b], one)
        np.testing.assert_allclose(one[:, :4], tokens[b][starts[b]])
        np.testing.assert_allclose(one[:, 4:8], tokens[b][ends[b]])


def test_ner_decoding_keeps_what_select_non_crossing_spans_keeps():
    rng = np.random.default_rng(1)
    for _ in range(8):
        starts = rng.integers(0, 20, size=30)
        ends = starts + rng.integers(0, 5, size=30)
        scores = rng.random(30).astype("float32")
        expected = np.asarray(select_non_crossing_spans(scores, starts, ends, 30, 5)).tolist()
        assert decode_spans(starts, ends, scores) == expected
