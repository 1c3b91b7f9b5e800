"""The coreference model: pruning, head attention, shapes, loss, training, export."""

import numpy as np
import pytest

import spanbert_tf  # noqa: F401

import tensorflow as tf

from spanbert_tf.modeling.backbone import build_backbone
from spanbert_tf.modeling.config import load_config
from spanbert_tf.modeling.span_layers import select_non_crossing_spans
from spanbert_tf.tasks.coref.layers import bucket_distance, map_in_chunks, window_head_embeddings
from spanbert_tf.tasks.coref.config import load_coref_config
from spanbert_tf.tasks.coref.model import GOLD_NAMES, MODEL_INPUT_NAMES, CorefModel, build_coref_model
from spanbert_tf.tasks.coref.task import CorefTask, input_signature, truncate_document


def synthetic_document(seed=0, segment_lengths=(24, 24, 19), segment_len=24, sentence_len=7):
    """Random wordpiece ids in [CLS] ... [SEP] segments, fixed-length sentences, 3 gold clusters."""
    rng = np.random.default_rng(seed)
    num_segments = len(segment_lengths)
    ids = np.zeros((num_segments, segment_len), np.int32)
    mask = np.zeros_like(ids)
    for s, n in enumerate(segment_lengths):
        ids[s, :n] = rng.integers(1000, 2000, n)
        ids[s, 0], ids[s, n - 1] = 101, 102
        mask[s, :n] = 1
    num_tokens = int(mask.sum())
    speakers = np.where(mask > 0, 2 + (np.arange(segment_len) >= 12), 0).astype(np.int32)
    return {"input_ids": ids, "input_mask": mask, "speaker_ids": speakers,
            "sentence_map": (np.arange(num_tokens) // sentence_len).astype(np.int32),
            "genre": np.int32(3),
            "gold_starts": np.array([2, 5, 9, 20, 30, 31, 40], np.int32),
            "gold_ends": np.array([3, 5, 10, 20, 32, 31, 41], np.int32),
            "cluster_ids": np.array([1, 2, 1, 2, 1, 3, 3], np.int32)}


def model_inputs(doc):
    return {name: doc[name] for name in MODEL_INPUT_NAMES}


@pytest.fixture(scope="module")
def tiny_model():
    tf.keras.utils.set_random_seed(0)
    return build_coref_model(load_coref_config("coref_tiny"))


def reference_non_crossing(scores, starts, ends, k):
    """Plain-python greedy: best first, skip a span crossing a kept one, stop at k."""
    kept = []
    for i in sorted(range(len(scores)), key=lambda i: (-scores[i], i)):
        if len(kept) == k:
            break
        s, e = starts[i], ends[i]
        if all(not (s < starts[j] <= e < ends[j] or starts[j] < s <= ends[j] < e) for j in kept):
            kept.append(i)
    return sorted(kept)


def test_select_non_crossing_spans_matches_reference():
    rng = np.random.default_rng(1)
    nested = 0
    for trial in range(8):
        num_tokens, width = 40, 6
        grid = [(s, s + w) for s in range(num_tokens) for w in range(width) if s + w < num_tokens]
        starts = np.array([s for s, _ in grid], np.int32)
        ends = np.array([e for _, e in grid], np.int32)
        scores = rng.normal(size=len(grid)).astype(np.float32)
        if trial == 0:
            scores = np.round(scores)              # ties: the lower index wins, as argsort(stable)
        k = int(rng.integers(5, 30))
        got = select_non_crossing_spans(scores, starts, ends, k, width).numpy().tolist()
        assert got == reference_non_crossing(scores, starts, ends, k)
        assert len(got) == k
        for a in got:
            for b in got:
                assert not starts[a] < starts[b] <= ends[a] < ends[b], (a, b)
                nested += a != b and starts[a] <= starts[b] and ends[b] <= ends[a]
    assert nested > 0                               # nesting is kept


def test_select_non_crossing_spans_fewer_than_k_and_empty():
    # (0, 2) and (1, 3) cross: the best one only; (1, 1) nests in both.
    got = select_non_crossing_spans(np.array([3.0, 2.0, 1.0], np.float32),
                                    np.array([0, 1, 1]), np.array([2, 3, 1]), 10, 4)
    assert got.numpy().tolist() == [0, 2]
    empty = select_non_crossing_spans(np.zeros([0], np.float32), np.zeros([0], np.int32),
                                      np.zeros([0], np.int32), 5, 4)
    assert empty.shape == (0,)


def test_bucket_distance_hand_checked():
    distances = np.array([0, 1, 4, 5, 7, 8, 15, 16, 31, 32, 63, 64, 1000])
    assert bucket_distance(distances).numpy().tolist() == [0, 1, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9]


def test_window_head_embeddings_equal_full_softmax():
    rng = np.random.default_rng(2)
    tokens = rng.normal(size=(9, 4)).astype(np.float32)
    logits = rng.normal(size=9).astype(np.float32)
    starts = np.array([0, 3, 7], np.int32)
    widths = np.array([[0, 2], [1, 4], [1, 3]], np.int32)     # (7, 10) runs past the end
    got = window_head_embeddings(tokens, logits, starts, widths, max_span_width=5).numpy()
    for i, s in enumerate(starts):
        for j, w in enumerate(widths[i]):
            span = np.arange(s, min(s + w, 8) + 1)
            weights = np.exp(logits[span]) / np.exp(logits[span]).sum()
            np.testing.assert_allclose(got[i, j], weights @ tokens[span], rtol=1e-5, atol=1e-6)


def test_map_in_chunks_equals_unchunked():
    fn = lambda idx: tf.cast(tf.stack([idx, idx * idx], 1), tf.float32)  # noqa: E731
    full = map_in_chunks(fn, 10, 4, chunked=False).numpy()
    np.testing.assert_array_equal(map_in_chunks(fn, 10, 4, chunked=True).numpy(), full)
    assert map_in_chunks(fn, 0, 4, chunked=True).shape == (0, 2)


def test_outputs_shapes_and_invariants(tiny_model):
    doc = synthetic_document()
    num_tokens = int(doc["input_mask"].sum())
    out = tiny_model(model_inputs(doc), training=False)
    starts, ends = out["candidate_starts"].numpy(), out["candidate_ends"].numpy()
    sentence_map = doc["sentence_map"]
    assert (ends - starts < 30).all() and (ends < num_tokens).all()
    assert (sentence_map[starts] == sentence_map[ends]).all()
    expected_candidates = sum(1 for s in range(num_tokens)
                              for e in range(s, min(s + 30, num_tokens))
                              if sentence_map[s] == sentence_map[e])
    assert len(starts) == expected_candidates == out["candidate_mention_scores"].shape[0]
    k = int(np.floor(0.4 * num_tokens))
    top_starts, top_ends = out["top_span_starts"].numpy(), out["top_span_ends"].numpy()
    assert len(top_starts) == k                     # enough non-crossing spans exist here
    assert sorted(zip(top_starts, top_ends)) == list(zip(top_starts, top_ends))
    assert out["top_antecedents"].shape == (k, min(50, k))
    assert out["top_antecedent_scores"].shape == (k, min(50, k) + 1)
    assert (out["top_antecedent_scores"].numpy()[:, 0] == 0).all()      # the dummy
    # Each span's kept antecedents precede it (the rest are masked far below the dummy).
    scores, ants = out["top_antecedent_scores"].numpy()[:, 1:], out["top_antecedents"].numpy()
    valid = ants < np.arange(k)[:, None]
    assert (scores[~valid] < -1e8).all() and (scores[valid] > -1e8).all()
    assert "loss" not in out and np.isfinite(float(tiny_model(doc)["loss"]))
    doc = model_inputs(doc)
    # Prediction is deterministic; chunked equals unchunked scoring.
    again = tiny_model(doc, training=False)
    np.testing.assert_array_equal(again["top_antecedent_scores"], out["top_antecedent_scores"])
    tiny_model.candidate_chunk_size, tiny_model.antecedent_chunk_size = 5, 3
    try:
        chunked = tiny_model(doc, training=False)
    finally:
        tiny_model.candidate_chunk_size = tiny_model.antecedent_chunk_size = 256
    np.testing.assert_allclose(chunked["candidate_mention_scores"],
                               out["candidate_mention_scores"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(chunked["top_antecedent_scores"][:, :1 + valid.sum(1).min()],
                               out["top_antecedent_scores"][:, :1 + valid.sum(1).min()],
                               rtol=1e-4, atol=1e-4)


def test_mention_scores_equal_the_ffnn_on_span_embeddings():
    """Blockwise first layer (training: gathered grid; prediction: chunked grid) = FFNN(g)."""
    import dataclasses

    tf.keras.utils.set_random_seed(6)
    backbone = build_backbone(dataclasses.replace(load_config("tiny").model, dropout=0.0))
    model = CorefModel(backbone, ffnn_size=32, dropout_rate=0.0, candidate_chunk_size=7)
    doc = model_inputs(synthetic_document())
    predicted, trained = model(doc, training=False), model(doc, training=True)
    np.testing.assert_allclose(trained["candidate_mention_scores"],
                               predicted["candidate_mention_scores"], rtol=1e-4, atol=1e-4)
    sequence = backbone({"token_ids": doc["input_ids"], "padding_mask": doc["input_mask"],
                         "segment_ids": 0 * doc["input_ids"]})["sequence_output"]
    tokens = tf.boolean_mask(sequence, doc["input_mask"] > 0)
    starts = predicted["candidate_starts"]
    widths = predicted["candidate_ends"] - starts
    emb = model._span_embeddings(tokens, model.head_attention(tokens)[:, 0], starts,
                                 widths[:, None], False)[:, 0]
    direct = model.mention_scorer(emb)[:, 0] + tf.gather(model._width_prior(False), widths)
    np.testing.assert_allclose(predicted["candidate_mention_scores"], direct, rtol=1e-4, atol=1e-4)


def test_fine_scores_equal_the_ffnn_on_pair_embeddings(tiny_model):
    rng = np.random.default_rng(7)
    k, c, d = 6, 4, tiny_model.span_dim
    span_emb = tf.constant(rng.normal(size=(k, d)), tf.float32)
    antecedents = tf.constant(rng.integers(0, k, (k, c)), tf.int32)
    feature_ids = tuple(tf.constant(rng.integers(0, n, (k, c)), tf.int32) for n in (2, 10, 3))
    genre_emb = tiny_model.genre_embedding(np.int32(2))
    kernel = tiny_model.antecedent_scorer.first_layer.kernel
    blocks = (span_emb @ kernel[:d], span_emb @ kernel[d:2 * d])
    rows = tf.constant([4, 0, 2])
    got = tiny_model._fine_scores(rows, span_emb, blocks, antecedents, feature_ids, genre_emb,
                                  False)
    target = tf.gather(span_emb, rows)[:, None, :] * tf.ones([1, c, 1])
    ant_emb = tf.gather(span_emb, tf.gather(antecedents, rows))
    same, dist, seg = (tf.gather(f, rows) for f in feature_ids)
    pair = tf.concat([target, ant_emb, target * ant_emb,
                      tiny_model.same_speaker_embedding(same), tf.ones([3, c, 1]) * genre_emb,
                      tiny_model.antecedent_distance_embedding(dist),
                      tiny_model.segment_distance_embedding(seg)], -1)
    want = tiny_model.antecedent_scorer(pair)[..., 0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_no_candidates_by_tokens_tensor(tiny_model, tmp_path):
    """Every op output while predicting (tfdbg SHAPE dump): none is [num_candidates, T]."""
    from tensorflow.python.debug.lib import debug_events_reader

    doc = synthetic_document()
    num_tokens = int(doc["input_mask"].sum())
    tf.debugging.experimental.enable_dump_debug_info(
        str(tmp_path), tensor_debug_mode="SHAPE", circular_buffer_size=-1)
    try:
        out = tiny_model(model_inputs(doc), training=False)
        num_candidates = int(out["candidate_starts"].shape[0])
        tf.zeros([num_candidates, num_tokens])      # the detector must see this one
    finally:
        tf.debugging.experimental.disable_dump_debug_info()
    with debug_events_reader.DebugDataReader(str(tmp_path)) as reader:
        reader.update()
        values = [value for execution in reader.executions(digest=False)
                  for value in (execution.debug_tensor_values or [])]
        values += [trace.debug_tensor_value for trace in reader.graph_execution_traces()]
        shapes = [tuple(int(d) for d in value[4:4 + int(value[2])]) for value in values if value]
    big = [s for s in shapes if num_candidates in s and num_tokens in s]
    assert len(shapes) > 300 and big == [(num_candidates, num_tokens)]


def test_loss_matches_hand_computation():
    from spanbert_tf.tasks.coref.layers import antecedent_loss

    scores = np.array([[0.0, -1e9, -1e9], [0.0, 1.0, -1e9], [0.0, 2.0, 0.5]], np.float32)
    antecedents = np.array([[1, 2], [0, 2], [0, 1]], np.int32)
    mask = antecedents < np.arange(3)[:, None]
    top_starts, top_ends = np.array([0, 3, 6]), np.array([1, 3, 7])
    # Spans 0 and 2 in cluster 1; span 1 in no cluster.
    loss = antecedent_loss(scores, antecedents, mask, top_starts, top_ends,
                           np.array([0, 6, 9]), np.array([1, 7, 9]), np.array([1, 1, 2]))
    lse = lambda x: np.log(np.exp(x).sum())           # noqa: E731
    want = 0.0 + (lse([0, 1]) - 0.0) + (lse([0, 2, 0.5]) - 2.0)
    assert float(loss) == pytest.approx(want, rel=1e-5)


def test_overfits_a_synthetic_document():
    """Adam on one document: every head weight gets a gradient, the loss falls."""
    tf.keras.utils.set_random_seed(3)
    backbone = build_backbone(load_config("tiny").model)
    model = CorefModel(backbone, ffnn_size=64, dropout_rate=0.0)
    optimizer = tf.keras.optimizers.Adam(2e-4)
    optimizer.build(model.trainable_variables)          # no variable creation while tracing
    backbone_ids = {id(v) for v in backbone.trainable_variables}
    head_positions = [i for i, v in enumerate(model.trainable_variables)
                      if id(v) not in backbone_ids]

    @tf.function(input_signature=[input_signature(with_gold=True)])
    def step(features):
        with tf.GradientTape() as tape:
            loss = model(features, training=True)["loss"]
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss, tf.stack([tf.norm(grads[i]) for i in head_positions])

    features = {k: tf.constant(v) for k, v in synthetic_document(seed=4).items()}
    loss, head_grad_norms = step(features)
    assert len(head_positions) >= 20 and (head_grad_norms.numpy() > 0).all()
    losses = [float(loss)] + [float(step(features)[0]) for _ in range(14)]
    assert all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3]), losses


def test_task_loss_terms(tiny_model):
    doc = synthetic_document()
    task = CorefTask(load_coref_config("coref_tiny"))
    terms = task.loss_terms(tiny_model, doc, training=True)
    assert np.isfinite(float(terms["coref_loss"][0])) and float(terms["coref_loss"][1]) == 1.0
    assert set(task.loss_weights) <= set(terms)


def test_get_config_round_trip(tiny_model):
    clone = CorefModel.from_config(tiny_model.get_config())
    assert clone.get_config() == tiny_model.get_config()
    assert [w.shape for w in clone.weights] == [w.shape for w in tiny_model.weights]
    clone.set_weights(tiny_model.get_weights())
    doc = model_inputs(synthetic_document())
    np.testing.assert_allclose(clone(doc)["top_antecedent_scores"],
                               tiny_model(doc)["top_antecedent_scores"], rtol=1e-5, atol=1e-5)


def test_exports_as_saved_model(tiny_model, tmp_path):
    module = tf.Module()
    module.model = tiny_model
    module.predict = tf.function(lambda features: tiny_model(features, training=False),
                                 input_signature=[input_signature()])
    tf.saved_model.save(module, str(tmp_path / "coref"))
    reloaded = tf.saved_model.load(str(tmp_path / "coref"))
    for seed, lengths in ((0, (24, 24, 19)), (5, (24, 10))):       # any document shape
        doc = model_inputs(synthetic_document(seed, lengths))
        got = reloaded.predict({k: tf.constant(v) for k, v in doc.items()})
        want = tiny_model(doc, training=False)
        for name in ("top_span_starts", "top_span_ends", "top_antecedents"):
            np.testing.assert_array_equal(got[name], want[name])
        np.testing.assert_allclose(got["top_antecedent_scores"], want["top_antecedent_scores"],
                                   rtol=1e-4, atol=1e-4)


def test_truncate_document_hand_checked():
    doc = synthetic_document(segment_lengths=(24, 24, 19, 10))
    doc["subtoken_map"] = np.arange(int(doc["input_mask"].sum()), dtype=np.int32)
    assert truncate_document(doc, 4, np.random.default_rng(0)) is doc
    rng = np.random.default_rng(0)
    first = int(np.random.default_rng(0).integers(0, 2))
    out = truncate_document(doc, 3, rng)
    offset = [0, 24][first]
    count = [67, 53][first]
    assert out["input_ids"].shape == (3, 24)
    np.testing.assert_array_equal(out["input_ids"], doc["input_ids"][first:first + 3])
    np.testing.assert_array_equal(out["sentence_map"], doc["sentence_map"][offset:offset + count])
    np.testing.assert_array_equal(out["subtoken_map"], np.arange(offset, offset + count))
    inside = (doc["gold_starts"] >= offset) & (doc["gold_ends"] < offset + count)
    np.testing.assert_array_equal(out["gold_starts"], doc["gold_starts"][inside] - offset)
    np.testing.assert_array_equal(out["cluster_ids"], doc["cluster_ids"][inside])
    # Both windows occur.
    firsts = {truncate_document(doc, 3, np.random.default_rng(s))["input_ids"][0, 1]
              for s in range(10)}
    assert firsts == {doc["input_ids"][0, 1], doc["input_ids"][1, 1]}
    assert set(GOLD_NAMES) <= set(doc)


def test_checkpoint_holds_every_weight(tiny_model, tmp_path):
    """tf.train.Checkpoint saves every weight (the scorers' hidden layers included)."""
    path = tf.train.Checkpoint(model=tiny_model).write(str(tmp_path / "ckpt"))
    saved = [name for name, _ in tf.train.list_variables(path) if name.startswith("model/")]
    assert len(saved) == len(tiny_model.weights)
    assert any("mention_scorer/hidden_0" in name for name in saved)
