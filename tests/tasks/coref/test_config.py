"""The coreference configs (`configs/coref_*.json`, `tasks/coref/config.py`)."""

import json

import pytest

from spanbert_tf.modeling.config import load_config
from spanbert_tf.tasks.coref.config import load_coref_config


def test_load_coref_configs(tmp_path):
    base = load_coref_config("coref_spanbert_base")
    large = load_coref_config("coref_spanbert_large")
    assert (base.coref.max_segment_len, large.coref.max_segment_len) == (384, 512)
    assert base.coref.ffnn_size == 3000 and base.coref.max_top_antecedents == 50
    assert (base.optimizer.bert_learning_rate, base.optimizer.task_learning_rate) == (2e-5, 1e-4)
    assert (large.optimizer.bert_learning_rate, large.optimizer.task_learning_rate) == (1e-5, 3e-4)
    assert load_config(base.backbone).model.hidden_size == 768
    bad = tmp_path / "bad.json"
    data = load_coref_config("coref_tiny").to_dict()
    data["coref"]["max_span_widht"] = 3
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="bad.json.*max_span_widht"):
        load_coref_config(str(bad))
