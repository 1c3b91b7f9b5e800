"""Tests for spanbert_tf/modeling/heads.py: shapes, hand-computed forwards, tying, config."""

import math

import keras
import numpy as np
import tensorflow as tf

from modeling_test_utils import SMALL_VOCAB, random_features, small_model_config
from spanbert_tf.modeling.backbone import build_backbone
from spanbert_tf.modeling.heads import SpanBertMaskedLMHead, SpanBoundaryHead

_erf = np.vectorize(math.erf)


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _layer_norm(x, gamma, beta, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _randomize(layer, seed):
    """Non-trivial weights (biases/LayerNorm too) so the reference checks every term."""
    rng = np.random.default_rng(seed)
    for v in layer.weights:
        v.assign(rng.normal(0.0, 0.3, v.shape).astype("float32") + (1.0 if "gamma" in v.path else 0.0))


def _setup():
    cfg = small_model_config()
    backbone = build_backbone(cfg)
    rng = np.random.default_rng(0)
    seq = rng.normal(size=(2, 12, cfg.hidden_size)).astype("float32")
    return cfg, backbone, seq


def test_head_shapes_and_dtype():
    cfg, backbone, seq = _setup()
    f = random_features()
    mlm = SpanBertMaskedLMHead(token_embedding=backbone.token_embedding)
    sbo = SpanBoundaryHead(token_embedding=backbone.token_embedding, max_pair_targets=5,
                           position_embedding_size=6)
    mlm_logits = mlm(seq, f["masked_lm_positions"])
    sbo_logits = sbo(seq, f["span_left_positions"], f["span_right_positions"],
                     f["span_relative_positions"])
    for logits in (mlm_logits, sbo_logits):
        assert tuple(logits.shape) == (2, 4, SMALL_VOCAB) and logits.dtype == tf.float32
    assert tuple(sbo.position_embedding.embeddings.shape) == (5, 6)
    assert tuple(sbo.dense_1.kernel.shape) == (2 * cfg.hidden_size + 6, cfg.hidden_size)
    assert tuple(sbo.dense_2.kernel.shape) == (cfg.hidden_size, cfg.hidden_size)


def test_official_initialisation():
    backbone = build_backbone(small_model_config(hidden_size=64, num_heads=2))
    sbo = SpanBoundaryHead(token_embedding=backbone.token_embedding, max_pair_targets=15)
    sbo.build((None, None, 64))
    np.testing.assert_array_equal(sbo.output_bias.numpy(), 0.0)
    np.testing.assert_array_equal(sbo.dense_1.bias.numpy(), 0.0)
    np.testing.assert_array_equal(sbo.layer_norm_1.gamma.numpy(), 1.0)
    np.testing.assert_array_equal(sbo.layer_norm_2.beta.numpy(), 0.0)
    assert sbo.layer_norm_1.epsilon == 1e-12 and sbo.layer_norm_2.epsilon == 1e-12
    kernel = sbo.dense_1.kernel.numpy()            # 328 x 64 draws of N(0, 0.02)
    assert abs(kernel.std() - 0.02) < 0.002
    assert np.abs(kernel).max() > 2.5 * 0.02       # not truncated at 2 sigma
    assert abs(sbo.position_embedding.embeddings.numpy().std() - 0.02) < 0.003


def test_sbo_forward_matches_numpy_reference():
    cfg, backbone, seq = _setup()
    f = random_features()
    head = SpanBoundaryHead(token_embedding=backbone.token_embedding, max_pair_targets=5,
                            position_embedding_size=6)
    head.build(seq.shape)
    _randomize(head, 1)
    got = head(seq, f["span_left_positions"], f["span_right_positions"],
               f["span_relative_positions"]).numpy()

    emb = backbone.token_embedding.embeddings.numpy()
    pos = head.position_embedding.embeddings.numpy()
    expected = np.zeros_like(got)
    for b in range(2):
        for p in range(4):
            left = seq[b, f["span_left_positions"][b, p]]
            right = seq[b, f["span_right_positions"][b, p]]
            x = np.concatenate([left, right, pos[f["span_relative_positions"][b, p]]])
            x = _gelu(x @ head.dense_1.kernel.numpy() + head.dense_1.bias.numpy())
            x = _layer_norm(x, head.layer_norm_1.gamma.numpy(), head.layer_norm_1.beta.numpy())
            x = _gelu(x @ head.dense_2.kernel.numpy() + head.dense_2.bias.numpy())
            x = _layer_norm(x, head.layer_norm_2.gamma.numpy(), head.layer_norm_2.beta.numpy())
            expected[b, p] = x @ emb.T + head.output_bias.numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_mlm_forward_matches_numpy_reference():
    cfg, backbone, seq = _setup()
    f = random_features()
    head = SpanBertMaskedLMHead(token_embedding=backbone.token_embedding)
    head.build(seq.shape)
    _randomize(head, 2)
    got = head(seq, f["masked_lm_positions"]).numpy()
    emb = backbone.token_embedding.embeddings.numpy()
    x = np.take_along_axis(seq, f["masked_lm_positions"][..., None], axis=1)
    x = _gelu(x @ head.transform_dense.kernel.numpy() + head.transform_dense.bias.numpy())
    x = _layer_norm(x, head.transform_layer_norm.gamma.numpy(), head.transform_layer_norm.beta.numpy())
    expected = x @ emb.T + head.output_bias.numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_decoder_is_the_tied_embedding_variable():
    cfg, backbone, seq = _setup()
    f = random_features()
    head = SpanBertMaskedLMHead(token_embedding=backbone.token_embedding)
    before = head(seq, f["masked_lm_positions"]).numpy()
    assert head.token_embedding.embeddings is backbone.token_embedding.embeddings
    # Changing the backbone's embedding matrix changes the head's logits accordingly.
    backbone.token_embedding.embeddings.assign(backbone.token_embedding.embeddings * 2.0)
    after = head(seq, f["masked_lm_positions"]).numpy()
    np.testing.assert_allclose(after, 2.0 * before, rtol=1e-4, atol=1e-5)


def test_relative_positions_beyond_the_table_are_clipped():
    cfg, backbone, seq = _setup()
    head = SpanBoundaryHead(token_embedding=backbone.token_embedding, max_pair_targets=5,
                            position_embedding_size=6)
    left = np.array([[1, 2]], "int32")
    right = np.array([[4, 5]], "int32")
    clipped = head(seq[:1], left, right, np.array([[4, 4]], "int32")).numpy()
    beyond = head(seq[:1], left, right, np.array([[4, 9]], "int32")).numpy()
    np.testing.assert_allclose(beyond, clipped, atol=1e-6)


def test_head_get_config_round_trip():
    cfg, backbone, seq = _setup()
    for head in (
        SpanBertMaskedLMHead(token_embedding=backbone.token_embedding, activation="gelu_approximate"),
        SpanBoundaryHead(token_embedding=backbone.token_embedding, max_pair_targets=7,
                         position_embedding_size=9, layer_norm_epsilon=1e-6),
    ):
        config = head.get_config()
        clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(head))
        assert type(clone) is type(head)
        assert clone.get_config() == config
        assert clone.vocabulary_size == SMALL_VOCAB
