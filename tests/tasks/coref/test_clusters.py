"""Cluster decoding: the official rule by hand, and its in-graph twin (`decode_word_clusters`)
equal to the Python path (`predicted_clusters` then `run.word_clusters`) on random outputs."""

import numpy as np
import pytest
import tensorflow as tf

from spanbert_tf.tasks.coref.clusters import (
    decode_word_clusters, predicted_antecedents, predicted_clusters)
from spanbert_tf.modeling.span_layers import NEG_INF
from spanbert_tf.tasks.coref.run import word_clusters


def random_outputs(rng, num_tokens=40, k=30, c=8):
    """Model outputs of k sorted top spans with random antecedent scores (masked as the
    model masks them), and a subtoken map where several subtokens share a word."""
    spans = sorted({(int(s), int(min(s + w, num_tokens - 1)))
                    for s, w in zip(rng.integers(0, num_tokens, 3 * k),
                                    rng.integers(0, 4, 3 * k))})
    spans = [spans[i] for i in sorted(rng.choice(len(spans), min(k, len(spans)), False))]
    k = len(spans)
    antecedents = rng.integers(0, k, [k, min(c, k)]).astype(np.int32)
    scores = rng.normal(0, 1, antecedents.shape).astype(np.float32)
    scores = np.where(antecedents < np.arange(k)[:, None], scores, NEG_INF)
    words = np.cumsum(rng.random(num_tokens) < 0.4).astype(np.int32)
    return {"top_span_starts": np.array([s for s, _ in spans], np.int32),
            "top_span_ends": np.array([e for _, e in spans], np.int32),
            "top_span_mention_scores": rng.normal(0, 1, k).astype(np.float32),
            "top_antecedents": antecedents,
            "top_antecedent_scores": np.concatenate(
                [np.zeros([k, 1], np.float32), scores], 1)}, words


@pytest.mark.parametrize("singletons", [False, True])
def test_in_graph_decoding_equals_python(singletons):
    rng = np.random.default_rng(7)
    total_dropped = 0
    for _ in range(25):
        outputs, subtoken_map = random_outputs(rng)
        clusters, dropped = word_clusters(predicted_clusters(outputs, singletons),
                                          subtoken_map, singletons)
        total_dropped += dropped
        want = [(s, e, i) for i, cluster in enumerate(clusters) for s, e in cluster]
        got = decode_word_clusters({k: tf.constant(v) for k, v in outputs.items()},
                                   tf.constant(subtoken_map), singletons)
        assert list(zip(*(t.numpy().tolist() for t in got))) == want
    assert total_dropped > 10    # repeated word spans (and dropped clusters) were exercised


def test_predicted_clusters_hand_checked():
    outputs = {"top_span_starts": np.array([0, 2, 5, 8, 9]),
               "top_span_ends": np.array([0, 3, 5, 8, 9]),
               "top_span_mention_scores": np.array([1.0, 2.0, -1.0, 0.5, 3.0]),
               "top_antecedents": np.array([[1, 2], [0, 2], [0, 1], [2, 0], [3, 1]]),
               # best: span0 dummy, span1 -> 0, span2 dummy, span3 -> 2 (col 1), span4 -> 1
               "top_antecedent_scores": np.array([[0, -1e9, -1e9], [0, 2, -1e9], [0, -1, -2],
                                                  [0, 4, 1], [0, -3, 5]], np.float32)}
    assert predicted_antecedents(outputs["top_antecedents"],
                                 outputs["top_antecedent_scores"]) == [-1, 0, -1, 2, 1]
    assert predicted_clusters(outputs) == [((0, 0), (2, 3), (9, 9)), ((5, 5), (8, 8))]
    outputs["top_antecedent_scores"][4] = [0, -3, -5]     # span 4: no antecedent, score 3 > 0
    assert predicted_clusters(outputs, output_singletons=True) == [
        ((0, 0), (2, 3)), ((5, 5), (8, 8)), ((9, 9),)]
