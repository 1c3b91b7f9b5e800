"""Tests for spanbert_tf/modeling/config.py: the configs/*.json files and their round-trip."""

import dataclasses
import json
import os

import pytest

from spanbert_tf.modeling import config as config_lib
from spanbert_tf.modeling.backbone import build_backbone, model_config_from_backbone


def test_named_configs_follow_the_paper():
    base = config_lib.load_config("base")
    large = config_lib.load_config("large")
    for cfg, (layers, hidden, heads, inter) in ((base, (12, 768, 12, 3072)), (large, (24, 1024, 16, 4096))):
        m, o = cfg.model, cfg.optimizer
        assert (m.num_layers, m.hidden_size, m.num_heads, m.intermediate_size) == (layers, hidden, heads, inter)
        assert (m.vocab_size, m.max_position_embeddings, m.dropout, m.hidden_act) == (28996, 512, 0.1, "gelu")
        assert (m.max_pair_targets, m.sbo_position_embedding_size) == (15, 200)
        assert (o.optimizer, o.learning_rate, o.beta_1, o.beta_2, o.weight_decay) == ("adamw", 1e-4, 0.9, 0.999, 0.01)
        assert (o.num_warmup_steps, o.num_train_steps, o.train_batch_size, o.clip_norm) == (10000, 2400000, 256, 1.0)
        assert o.end_learning_rate == 0.0
    tiny = config_lib.load_config("tiny")
    assert tiny.model.num_layers <= 2 and tiny.model.hidden_size <= 128
    assert tiny.model.vocab_size == 28996 and tiny.model.hidden_act == "gelu"


def test_json_dataclass_backbone_round_trip(tmp_path):
    cfg = config_lib.load_config("tiny")
    # dict -> dataclass -> dict
    assert config_lib.SpanBertConfig.from_dict(cfg.to_dict()) == cfg
    # file -> dataclass -> file (atomic: no temp file left behind)
    path = tmp_path / "sub" / "cfg.json"
    cfg.save(path)
    assert os.listdir(path.parent) == ["cfg.json"]
    assert json.loads(path.read_text()) == cfg.to_dict()
    assert config_lib.load_config(str(path)) == cfg
    # dataclass -> backbone -> get_config -> backbone fields == config fields
    backbone = build_backbone(cfg.model)
    restored = type(backbone).from_config(backbone.get_config())
    fields = model_config_from_backbone(restored)
    expected = dataclasses.asdict(cfg.model)
    for key, value in fields.items():
        assert expected[key] == value, key
    assert restored.get_config() == backbone.get_config()


def _write(tmp_path, data):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_unknown_missing_and_bad_keys_name_the_file(tmp_path):
    good = config_lib.load_config("tiny").to_dict()

    bad = json.loads(json.dumps(good))
    bad["model"]["hidden_sise"] = 3
    with pytest.raises(ValueError, match=r"bad\.json.*unknown key.*hidden_sise"):
        config_lib.load_config(_write(tmp_path, bad))

    bad = json.loads(json.dumps(good))
    del bad["optimizer"]["learning_rate"]
    with pytest.raises(ValueError, match=r"bad\.json.*missing key.*learning_rate"):
        config_lib.load_config(_write(tmp_path, bad))

    bad = json.loads(json.dumps(good))
    bad["extra"] = 1
    with pytest.raises(ValueError, match=r"bad\.json.*unknown top-level key.*extra"):
        config_lib.load_config(_write(tmp_path, bad))

    bad = json.loads(json.dumps(good))
    bad["model"]["num_layers"] = "2"
    with pytest.raises(ValueError, match=r"model\.num_layers must be of type int"):
        config_lib.load_config(_write(tmp_path, bad))

    bad = json.loads(json.dumps(good))
    bad["model"]["hidden_act"] = "relu"
    with pytest.raises(ValueError, match=r"hidden_act"):
        config_lib.load_config(_write(tmp_path, bad))

    bad = json.loads(json.dumps(good))
    bad["model"]["num_heads"] = 3
    with pytest.raises(ValueError, match=r"multiple of"):
        config_lib.load_config(_write(tmp_path, bad))

    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"broken\.json: invalid JSON"):
        config_lib.load_config(str(path))


def test_integer_valued_floats_are_accepted(tmp_path):
    data = config_lib.load_config("tiny").to_dict()
    data["optimizer"]["clip_norm"] = 1  # JSON "1" for a float field
    cfg = config_lib.load_config(_write(tmp_path, data))
    assert isinstance(cfg.optimizer.clip_norm, float)


def test_unknown_config_name():
    with pytest.raises(FileNotFoundError, match="huge"):
        config_lib.load_config("huge")
    with pytest.raises(FileNotFoundError, match="not found"):
        config_lib.load_config("/nonexistent/config.json")
