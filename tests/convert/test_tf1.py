"""google-research/bert TF1 checkpoints (written here with tf.compat.v1) → our model dirs."""

import json
import re

import numpy as np
import pytest

from spanbert_tf.convert.checkpoint import convert_checkpoint
from spanbert_tf.convert.tf1 import tf1_name_to_hf

pytest.importorskip("torch")


def _google_name(hf_name):
    """HF BertForPreTraining name → (google-research/bert variable name, transpose?)."""
    special = {
        "cls.predictions.bias": "cls/predictions/output_bias",
        "cls.seq_relationship.weight": "cls/seq_relationship/output_weights",
        "cls.seq_relationship.bias": "cls/seq_relationship/output_bias",
    }
    if hf_name in special:
        return special[hf_name], False
    name = re.sub(r"layer\.(\d+)", r"layer_\1", hf_name).replace(".", "/")
    if "LayerNorm" in name:
        return name.replace("/weight", "/gamma").replace("/bias", "/beta"), False
    if name.endswith("embeddings/weight"):
        return name[: -len("/weight")], False
    if name.endswith("/weight"):
        return name[: -len("/weight")] + "/kernel", True
    return name, False


def _write_tf1_checkpoint(folder, reference, hf_config):
    import tensorflow as tf

    variables = {}
    for hf_name, tensor in reference.state_dict().items():
        if "position_ids" in hf_name or hf_name.startswith("cls.predictions.decoder"):
            continue
        name, transpose = _google_name(hf_name)
        value = tensor.numpy()
        variables[name] = np.ascontiguousarray(value.T if transpose else value)
    with tf.Graph().as_default():
        for name, value in variables.items():
            tf.compat.v1.get_variable(name, initializer=tf.constant(value))
            tf.compat.v1.get_variable(name + "/adam_m", initializer=tf.zeros_like(value))
            tf.compat.v1.get_variable(name + "/adam_v", initializer=tf.zeros_like(value))
        tf.compat.v1.train.get_or_create_global_step()
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, str(folder / "bert_model.ckpt"), write_meta_graph=False)
    keys = ("attention_probs_dropout_prob", "hidden_act", "hidden_dropout_prob", "hidden_size",
            "initializer_range", "intermediate_size", "max_position_embeddings",
            "num_attention_heads", "num_hidden_layers", "type_vocab_size", "vocab_size")
    (folder / "bert_config.json").write_text(json.dumps({k: hf_config[k] for k in keys}))
    return sorted(variables)


def test_tf1_name_mapping():
    assert tf1_name_to_hf("bert/encoder/layer_11/attention/self/query/kernel") == (
        "bert.encoder.layer.11.attention.self.query.weight", True)
    assert tf1_name_to_hf("bert/embeddings/word_embeddings") == ("bert.embeddings.word_embeddings.weight", False)
    assert tf1_name_to_hf("bert/embeddings/LayerNorm/beta") == ("bert.embeddings.LayerNorm.bias", False)
    assert tf1_name_to_hf("cls/predictions/output_bias") == ("cls.predictions.bias", False)
    assert tf1_name_to_hf("cls/seq_relationship/output_weights") == ("cls.seq_relationship.weight", False)


def test_tf1_checkpoint_matches_transformers(hf_bert, tmp_path, parity):
    folder = tmp_path / "uncased_L-2_H-32_A-4"
    folder.mkdir()
    _, reference = hf_bert
    names = _write_tf1_checkpoint(folder, reference, reference.config.to_dict())
    assert "bert/encoder/layer_1/attention/self/query/kernel" in names
    assert "cls/predictions/transform/dense/kernel" in names
    parity.write_vocab(folder / "vocab.txt", 99)
    out = str(tmp_path / "keras")
    report = convert_checkpoint("tf1", str(folder), "keras", out)
    assert report.dropped == ["cls/seq_relationship/output_bias", "cls/seq_relationship/output_weights"]
    assert report.initialised == ["sbo_head"]
    assert report.do_lower_case is True  # "uncased" in the folder name, as Google names releases
    model, _ = parity.load_model_dir(out)
    inputs = parity.inputs(99)
    ours = parity.keras_outputs(model, *inputs)
    want = parity.torch_outputs(reference, *inputs)
    np.testing.assert_allclose(ours["sequence_output"], want["sequence_output"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(ours["pooled_output"], want["pooled_output"], atol=1e-5, rtol=0)
    valid = inputs[1].astype(bool)
    np.testing.assert_allclose(ours["mlm_logits"][valid], want["mlm_logits"][valid], atol=1e-4, rtol=0)


def test_tf1_missing_config_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no bert_model.ckpt.index"):
        convert_checkpoint("tf1", str(tmp_path), "keras", str(tmp_path / "out"))
