"""Tests for spanbert_tf/modeling/backbone.py: keras-hub compatibility and the exact GeLU."""

import math

import keras
import keras_hub
import numpy as np

from modeling_test_utils import small_model_config
from spanbert_tf.modeling.backbone import SpanBertBackbone, build_backbone, get_activation


def _inputs(seq_len=10):
    rng = np.random.default_rng(1)
    mask = np.ones((2, seq_len), "int32")
    mask[1, -3:] = 0
    return {
        "token_ids": rng.integers(0, 97, (2, seq_len)).astype("int32"),
        "segment_ids": np.zeros((2, seq_len), "int32"),
        "padding_mask": mask,
    }


def _keras_hub_twin(cfg):
    return keras_hub.models.BertBackbone(
        vocabulary_size=cfg.vocab_size, num_layers=cfg.num_layers, num_heads=cfg.num_heads,
        hidden_dim=cfg.hidden_size, intermediate_dim=cfg.intermediate_size, dropout=cfg.dropout,
        max_sequence_length=cfg.max_position_embeddings,
    )


def test_same_interface_and_weight_layout_as_keras_hub_bert():
    cfg = small_model_config()
    backbone = build_backbone(cfg)
    assert isinstance(backbone, keras_hub.models.BertBackbone)
    assert isinstance(backbone.token_embedding, keras.layers.ReversibleEmbedding)
    twin = _keras_hub_twin(cfg)
    assert [(w.path, tuple(w.shape)) for w in backbone.weights] == [
        (w.path, tuple(w.shape)) for w in twin.weights
    ]
    outputs = backbone(_inputs())
    assert set(outputs) == {"sequence_output", "pooled_output"}
    assert tuple(outputs["sequence_output"].shape) == (2, 10, cfg.hidden_size)
    assert tuple(outputs["pooled_output"].shape) == (2, cfg.hidden_size)


def test_approximate_option_reproduces_keras_hub_and_exact_differs():
    cfg = small_model_config()
    twin = _keras_hub_twin(cfg)
    approx = build_backbone(small_model_config(hidden_act="gelu_approximate"))
    exact = build_backbone(cfg)
    # Make the feed-forward pre-activations large enough for the two GeLUs to differ.
    weights = [w * 8.0 if w.ndim >= 2 else w for w in twin.get_weights()]
    for model in (twin, approx, exact):
        model.set_weights(weights)
    x = _inputs()
    reference = twin(x)["sequence_output"].numpy()
    np.testing.assert_allclose(approx(x)["sequence_output"].numpy(), reference, atol=1e-6)
    assert np.abs(exact(x)["sequence_output"].numpy() - reference).max() > 1e-4


def test_exact_gelu_matches_erf_reference():
    x = np.linspace(-6, 6, 241).astype("float32")
    erf_reference = np.array([0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x])
    exact = keras.ops.convert_to_numpy(get_activation("gelu")(x))
    approx = keras.ops.convert_to_numpy(get_activation("gelu_approximate")(x))
    np.testing.assert_allclose(exact, erf_reference, atol=1e-6)
    assert np.abs(approx - erf_reference).max() > 1e-4
    # ... and the backbone's feed-forward layers really use the exact one.
    backbone = build_backbone(small_model_config())
    for layer in backbone.transformer_layers:
        used = keras.ops.convert_to_numpy(layer._feedforward_intermediate_dense.activation(x))
        np.testing.assert_allclose(used, erf_reference, atol=1e-6)


def test_get_config_round_trip_and_serialization():
    backbone = build_backbone(small_model_config(hidden_act="gelu_approximate", layer_norm_epsilon=1e-6))
    config = backbone.get_config()
    assert config["hidden_act"] == "gelu_approximate" and config["layer_norm_epsilon"] == 1e-6
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(backbone))
    assert type(clone) is SpanBertBackbone
    assert clone.get_config() == config
    clone.set_weights(backbone.get_weights())
    x = _inputs()
    np.testing.assert_allclose(
        clone(x)["sequence_output"].numpy(), backbone(x)["sequence_output"].numpy(), atol=1e-6
    )


def test_mixed_precision_policy():
    backbone = build_backbone(small_model_config(), dtype="mixed_bfloat16")
    out = backbone(_inputs())["sequence_output"]
    assert backbone.token_embedding.embeddings.dtype == "float32"
    assert out.dtype == "bfloat16"
    assert np.isfinite(out.numpy().astype("float32")).all()
