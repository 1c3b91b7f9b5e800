"""Hugging Face folders ⇄ canonical weights: config mapping, tensor classification, writing."""

import json

import numpy as np
import pytest

from spanbert_tf.convert import hf as convert_hf


def _config(tmp_path, **overrides):
    hf = {"vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
          "intermediate_size": 12, "max_position_embeddings": 16, "hidden_act": "gelu"}
    hf.update(overrides)
    (tmp_path / "config.json").write_text(json.dumps(hf))
    return tmp_path


def _weights(num_layers=1, hidden=8, vocab=30, prefix="bert."):
    rng = np.random.default_rng(0)
    return {prefix + k: rng.standard_normal(3).astype(np.float32)
            for k in convert_hf.backbone_keys(num_layers)}


def test_config_mapping_and_activations(tmp_path):
    config, _ = convert_hf.read_hf_config(_config(tmp_path))
    assert (config.vocab_size, config.hidden_size, config.num_layers, config.num_heads) == (30, 8, 1, 2)
    assert config.hidden_act == "gelu" and config.type_vocab_size == 2
    for hf_act in ("gelu_new", "gelu_pytorch_tanh"):
        assert convert_hf.read_hf_config(_config(tmp_path, hidden_act=hf_act))[0].hidden_act == "gelu_approximate"
    with pytest.raises(ValueError, match="hidden_act 'relu' is not supported"):
        convert_hf.read_hf_config(_config(tmp_path, hidden_act="relu"))
    with pytest.raises(ValueError, match="model_type 'roberta' is not 'bert'"):
        convert_hf.read_hf_config(_config(tmp_path, model_type="roberta"))
    _config(tmp_path)
    hf = json.loads((tmp_path / "config.json").read_text())
    del hf["vocab_size"]
    (tmp_path / "config.json").write_text(json.dumps(hf))
    with pytest.raises(ValueError, match=r"config.json: missing key\(s\) \['vocab_size'\]"):
        convert_hf.read_hf_config(tmp_path)
    back = convert_hf.hf_config_dict(config)
    assert back["hidden_act"] == "gelu" and back["num_hidden_layers"] == 1


def test_classification_of_tensors():
    tensors = _weights()
    tensors["bert.embeddings.position_ids"] = np.arange(16)[None]
    tensors["cls.seq_relationship.weight"] = np.zeros((2, 8), np.float32)
    tensors["bert.pooler.dense.weight"] = np.zeros((8, 8), np.float32)
    tensors["bert.pooler.dense.bias"] = np.zeros(8, np.float32)
    weights, report = convert_hf.canonicalize_hf_tensors(tensors, 1)
    assert report == {"dropped": ["cls.seq_relationship.weight"], "skipped": ["bert.embeddings.position_ids"],
                      "missing_pooler": False, "missing_mlm_head": True, "missing_sbo_head": True}
    assert "embeddings.word_embeddings.weight" in weights and "pooler.dense.bias" in weights


def test_old_gamma_beta_names_and_no_prefix():
    tensors = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
               for k, v in _weights(prefix="").items()}
    weights, report = convert_hf.canonicalize_hf_tensors(tensors, 1)
    assert "encoder.layer.0.output.LayerNorm.weight" in weights and report["missing_pooler"]


def test_errors_missing_partial_and_untied():
    tensors = _weights()
    del tensors["bert.encoder.layer.0.output.dense.bias"]
    with pytest.raises(ValueError, match="missing encoder tensor.*encoder.layer.0.output.dense.bias"):
        convert_hf.canonicalize_hf_tensors(tensors, 1, "ckpt")
    tensors = _weights()
    tensors["cls.predictions.bias"] = np.zeros(30, np.float32)
    with pytest.raises(ValueError, match="partial MLM head, missing cls.predictions.transform.dense.weight"):
        convert_hf.canonicalize_hf_tensors(tensors, 1)
    tensors = _weights()
    tensors["cls.predictions.decoder.weight"] = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="differs from the word embeddings"):
        convert_hf.canonicalize_hf_tensors(tensors, 1)
    with pytest.raises(ValueError, match="missing encoder tensor"):
        convert_hf.canonicalize_hf_tensors(_weights(), 2)  # config says 2 layers, checkpoint has 1


def test_fp16_safetensors_read_as_float32(tmp_path):
    from safetensors.numpy import save_file

    value = np.array([0.1, 1e-3, 65504.0], np.float16)
    save_file({"bert.embeddings.word_embeddings.weight": value}, str(tmp_path / "model.safetensors"))
    tensors = convert_hf.read_hf_tensors(tmp_path)
    assert tensors["bert.embeddings.word_embeddings.weight"].dtype == np.float32
    np.testing.assert_array_equal(tensors["bert.embeddings.word_embeddings.weight"], value.astype(np.float32))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no model.safetensors, model.safetensors.index.json or"):
        convert_hf.read_hf_tensors(empty)
