"""keras-hub preset dirs read as model dirs: config mapping and errors that name the file."""

import json

import pytest

from spanbert_tf.modeling import model_dir as model_dir_lib
from spanbert_tf.modeling import preset_dir


def _preset(tmp_path, registered_name="spanbert_tf>SpanBertBackbone (pip install spanbert-tf; "
            "import spanbert_tf.presets)", lowercase=False, **overrides):
    config = {"vocabulary_size": 30, "num_layers": 1, "num_heads": 2, "hidden_dim": 8,
              "intermediate_dim": 12, "max_sequence_length": 16, "num_segments": 2,
              "dropout": 0.1, "hidden_act": "gelu", "initializer_range": 0.02,
              "layer_norm_epsilon": 1e-12}
    config.update(overrides)
    (tmp_path / "config.json").write_text(json.dumps(
        {"class_name": "SpanBertBackbone", "registered_name": registered_name, "config": config}))
    (tmp_path / "tokenizer.json").write_text(json.dumps({"config": {"lowercase": lowercase}}))
    (tmp_path / "assets" / "tokenizer").mkdir(parents=True, exist_ok=True)
    (tmp_path / "assets" / "tokenizer" / "vocabulary.txt").write_text("[PAD]\n[UNK]\n")
    (tmp_path / "model.weights.h5").write_bytes(b"")
    return tmp_path


def test_spanbert_and_bert_presets_read_as_model_dirs(tmp_path):
    info = model_dir_lib.read_model_dir(_preset(tmp_path))
    assert preset_dir.is_preset_dir(tmp_path)
    assert (info.config.model.vocab_size, info.config.model.hidden_size) == (30, 8)
    assert info.config.model.hidden_act == "gelu" and info.do_lower_case is False
    assert info.checkpoint_path == str(tmp_path / "model.weights.h5")
    info = model_dir_lib.read_model_dir(_preset(tmp_path, "keras_hub>BertBackbone", lowercase=True,
                                                hidden_act="gelu"))
    assert info.config.model.hidden_act == "gelu_approximate" and info.do_lower_case is True


def test_errors_name_the_file_and_field(tmp_path):
    with pytest.raises(ValueError, match=r"config.json: registered_name 'keras_hub>GPT2Backbone'"):
        preset_dir.read_preset_dir(_preset(tmp_path, "keras_hub>GPT2Backbone"))
    with pytest.raises(ValueError, match=r"config.json: missing config key\(s\) \['hidden_dim'\]"):
        config = json.loads((_preset(tmp_path) / "config.json").read_text())
        del config["config"]["hidden_dim"]
        (tmp_path / "config.json").write_text(json.dumps(config))
        preset_dir.read_preset_dir(tmp_path)
    with pytest.raises(ValueError, match="tokenizer.json: config.lowercase must be true or false"):
        _preset(tmp_path, lowercase="yes")
        preset_dir.read_preset_dir(tmp_path)
    (tmp_path / "model.weights.h5").unlink()
    _preset(tmp_path)
    (tmp_path / "model.weights.h5").unlink()
    with pytest.raises(FileNotFoundError, match="has no model.weights.h5"):
        preset_dir.read_preset_dir(tmp_path)
    assert not preset_dir.is_preset_dir(tmp_path / "assets")
