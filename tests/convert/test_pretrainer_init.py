"""--init_checkpoint=HF_DIR in the official SpanBERT with-head layout (`cls.predictions.*`,
`cls.pair_target_predictions.*`): both heads load, their logits equal the official forward,
a tensor that does not fit is named, and convert_checkpoint.py carries the SBO head both ways."""

import os
import sys

import numpy as np
import pytest

from spanbert_tf.convert import hf as convert_hf
from spanbert_tf.convert.checkpoint import convert_checkpoint
from spanbert_tf.convert.pretrainer_init import is_hf_folder, load_hf_into_pretrainer
from spanbert_tf.errors import InputError
from spanbert_tf.modeling.config import ModelConfig, OptimizerConfig, SpanBertConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from official_layout import (official_mlm_logits, official_sbo_logits,  # noqa: E402
                             official_tensors, write_official_folder)

HIDDEN, LAYERS, VOCAB = 32, 1, 500


def _pretrainer(max_pair_targets=15, width=200, vocab_size=VOCAB):
    from spanbert_tf.modeling.pretrainer import build_pretrainer

    model = ModelConfig(vocab_size=vocab_size, hidden_size=HIDDEN, num_layers=LAYERS, num_heads=2,
                        intermediate_size=4 * HIDDEN, dropout=0.0, hidden_act="gelu",
                        max_pair_targets=max_pair_targets, sbo_position_embedding_size=width)
    config = SpanBertConfig(name="t", model=model, optimizer=OptimizerConfig())
    return build_pretrainer(config, dtype="float32"), model


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    tensors = official_tensors(VOCAB, HIDDEN, LAYERS, seed=3)
    folder = str(tmp_path_factory.mktemp("official") / "spanbert_with_head")
    vocab = tmp_path_factory.mktemp("v") / "vocab.txt"
    vocab.write_text("".join(f"[unused{i}]\n" for i in range(VOCAB - 5))
                     + "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n")
    return tensors, write_official_folder(folder, tensors, str(vocab))


def test_both_heads_load_and_match_the_official_forward(official):
    tensors, folder = official
    assert is_hf_folder(folder)
    model, config = _pretrainer()
    lines = load_hf_into_pretrainer(model, folder, config)
    assert "MLM head (cls.predictions.*)" in lines[0]
    assert "SBO head (cls.pair_target_predictions.*, max_targets 15 x 200)" in lines[0]
    assert any("initialised: pooler" in line for line in lines)
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(2, 24, HIDDEN)).astype(np.float32)
    positions = rng.integers(0, 24, size=(2, 5))
    want = np.take_along_axis(official_mlm_logits(tensors, hidden), positions[..., None], 1)
    got = np.asarray(model.mlm_head(hidden, positions))
    np.testing.assert_allclose(got, want, atol=1e-5)
    pairs = np.array([[[0, 4], [7, 12]], [[3, 20], [10, 13]]])
    want = official_sbo_logits(tensors, hidden, pairs)              # [4, 15, V]
    left = np.repeat(pairs[..., 0], 15, axis=1)
    right = np.repeat(pairs[..., 1], 15, axis=1)
    rel = np.tile(np.arange(15), (2, 2))
    got = np.asarray(model.sbo_head(hidden, left, right, rel)).reshape(4, 15, VOCAB)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_a_tensor_that_does_not_fit_is_named(official):
    _, folder = official
    model, config = _pretrainer(max_pair_targets=10)
    with pytest.raises(InputError, match=r"1 tensor\(s\) do not fit the model: "
                       r"cls\.pair_target_predictions\.position_embeddings\.weight: tensor "
                       r"\(15, 200\) does not fit variable .*\(10, 200\)"):
        load_hf_into_pretrainer(model, folder, config)
    model, config = _pretrainer(vocab_size=VOCAB + 1)
    with pytest.raises(InputError, match=r"vocab_size is 500 in .*config.json but 501 in --config"):
        load_hf_into_pretrainer(model, folder, config)


def test_partial_sbo_head_is_refused(official, tmp_path):
    tensors, _ = official
    partial = {k: v for k, v in tensors.items() if "linear2" not in k}
    folder = write_official_folder(str(tmp_path / "partial"), partial)
    with pytest.raises(InputError, match="partial SBO head, missing .*linear2.weight"):
        convert_hf.canonicalize_hf_tensors(convert_hf.read_hf_tensors(folder), LAYERS, folder)


def test_convert_checkpoint_carries_the_sbo_head_both_ways(official, tmp_path):
    from safetensors.numpy import load_file

    tensors, folder = official
    report = convert_checkpoint("hf", folder, "keras", str(tmp_path / "keras"))
    assert report.initialised == ["pooler"] and report.not_exported == []
    back = convert_checkpoint("keras", str(tmp_path / "keras"), "hf", str(tmp_path / "hf"))
    assert back.not_exported == []
    written = load_file(str(tmp_path / "hf" / "model.safetensors"))
    for name, value in tensors.items():
        if name.startswith("cls.pair_target_predictions.") and "decoder" not in name:
            np.testing.assert_array_equal(written[name], value)       # official names, gamma/beta
    np.testing.assert_array_equal(written["cls.predictions.transform.LayerNorm.weight"],
                                  tensors["cls.predictions.transform.LayerNorm.gamma"])
