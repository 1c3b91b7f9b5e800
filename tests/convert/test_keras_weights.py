"""Canonical (HF layout) weights ⇄ our Keras variables."""

import numpy as np
import pytest

import spanbert_tf  # noqa: F401
from spanbert_tf.convert import keras_weights
from spanbert_tf.convert.hf import MLM_KEYS, POOLER_KEYS, backbone_keys


@pytest.fixture(scope="module")
def model():
    from spanbert_tf.modeling.config import ModelConfig, OptimizerConfig, SpanBertConfig
    from spanbert_tf.modeling.pretrainer import build_pretrainer

    config = ModelConfig(vocab_size=40, hidden_size=12, num_layers=2, num_heads=3, intermediate_size=20,
                         max_position_embeddings=16)
    return build_pretrainer(SpanBertConfig("t", config, OptimizerConfig()), dtype="float32")


def test_bindings_cover_every_canonical_name(model):
    names = [b.name for b in keras_weights.weight_bindings(model.backbone, model.mlm_head)]
    assert sorted(names) == sorted(backbone_keys(2) + list(POOLER_KEYS) + list(MLM_KEYS))
    assert len(set(id(b.variable) for b in keras_weights.weight_bindings(model.backbone))) == len(
        model.backbone.weights)


def test_round_trip_and_layouts(model):
    rng = np.random.default_rng(0)
    shapes = {"encoder.layer.0.attention.self.query.weight": (12, 12),
              "encoder.layer.0.intermediate.dense.weight": (20, 12)}
    weights = keras_weights.extract_weights(model.backbone, model.mlm_head)
    weights = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in weights.items()}
    for name, shape in shapes.items():
        assert weights[name].shape == shape  # PyTorch [out, in]
    keras_weights.assign_weights(model.backbone, weights, model.mlm_head)
    layer = model.backbone.transformer_layers[0]
    q = layer._self_attention_layer.query_dense.kernel.numpy()  # [in, heads, head_dim]
    np.testing.assert_array_equal(q[:, 1, :], weights["encoder.layer.0.attention.self.query.weight"][4:8].T)
    back = keras_weights.extract_weights(model.backbone, model.mlm_head)
    for k in weights:
        np.testing.assert_array_equal(back[k], weights[k])


def test_shape_mismatch_lists_the_tensor(model):
    with pytest.raises(ValueError, match=r"pooler.dense.weight: tensor \(3, 3\) does not fit"):
        keras_weights.assign_weights(model.backbone, {"pooler.dense.weight": np.zeros((3, 3))}, source="x")
