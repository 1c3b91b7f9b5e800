"""Tests for spanbert_tf/modeling/model_dir.py: metadata, checkpoints, backbone transfer, errors."""

import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from modeling_test_utils import random_features, small_config
from spanbert_tf.modeling import model_dir as md
from spanbert_tf.modeling.backbone import build_backbone
from spanbert_tf.modeling.pretrainer import build_pretrainer


def _save_pretrainer(model_dir, cased_vocab, step=7, config=None):
    """A model dir as the trainer writes it: Checkpoint(model, optimizer, step)."""
    config = config or small_config()
    model = build_pretrainer(config)
    optimizer = keras.optimizers.AdamW(1e-3)
    optimizer.build(model.trainable_variables)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer,
                                     step=tf.Variable(step, dtype=tf.int64))
    manager = tf.train.CheckpointManager(checkpoint, str(model_dir), max_to_keep=3,
                                         checkpoint_name=md.CHECKPOINT_NAME)
    prefix = manager.save(checkpoint_number=step)
    md.write_model_dir_metadata(model_dir, config, cased_vocab, do_lower_case=False)
    return model, prefix


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_metadata_round_trip(tmp_path, cased_vocab):
    config = small_config()
    md.write_model_dir_metadata(tmp_path, config, cased_vocab, do_lower_case=True,
                                task={"type": "classification", "labels": ["a", "b"]})
    assert sorted(p for p in os.listdir(tmp_path)) == ["config.json", "vocab.txt"]
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["do_lower_case"] is True and data["model"]["hidden_size"] == 16
    info = md.read_model_dir(tmp_path, require_checkpoint=False)
    assert info.config == config and info.do_lower_case is True
    assert info.checkpoint_path is None and info.task["labels"] == ["a", "b"]
    with open(info.vocab_file) as f1, open(cased_vocab) as f2:
        assert f1.read() == f2.read()
    # Rewriting into the same dir (vocab already there) works.
    md.write_model_dir_metadata(tmp_path, config, info.vocab_file)
    assert md.read_model_dir(tmp_path, require_checkpoint=False).do_lower_case is False


def test_task_name_key_and_the_older_key(tmp_path, cased_vocab):
    config = small_config()
    md.write_model_dir_metadata(tmp_path, config, cased_vocab, task={"name": "rte"})
    assert md.read_model_dir(tmp_path, require_checkpoint=False).task == {"name": "rte"}
    # Classifier model dirs written before the one key kept the name under "task_name".
    md.write_model_dir_metadata(tmp_path, config, cased_vocab,
                                task={"kind": "classification", "task_name": "mrpc"})
    task = md.read_model_dir(tmp_path, require_checkpoint=False).task
    assert task == {"kind": "classification", md.TASK_NAME_KEY: "mrpc"}


def test_every_task_entry_has_a_kind_and_a_name_and_older_dirs_get_them(tmp_path, cased_vocab):
    config = small_config()

    def written_then_read(task):
        md.write_model_dir_metadata(tmp_path, config, cased_vocab, task=task)
        return md.read_model_dir(tmp_path, require_checkpoint=False).task

    entry = md.task_entry("squad", "squad", doc_stride=128)
    assert entry == {"kind": "squad", "name": "squad", "doc_stride": 128}
    assert written_then_read(entry) == entry and md.task_kind(entry) == "squad"
    with pytest.raises(ValueError, match="unknown task kind 'qa'"):
        md.task_entry("qa", "squad")
    # Written before "kind": a SQuAD dir by its name, a classifier by its labels, coref by kind.
    assert md.task_kind(written_then_read({"name": "squad", "doc_stride": 64})) == "squad"
    assert written_then_read({"task_name": "rte", "labels": ["a", "b"]}) == {
        "kind": "classification", "name": "rte", "labels": ["a", "b"]}
    assert written_then_read({"kind": "coref", "config": "base"}) == {
        "kind": "coref", "name": "coref", "config": "base"}
    assert md.task_kind(None) is None and md.task_kind(written_then_read({"name": "x"})) is None


def test_restore_backbone_and_model_from_a_pretraining_checkpoint(tmp_path, cased_vocab):
    model, prefix = _save_pretrainer(tmp_path, cased_vocab)
    info = md.read_model_dir(tmp_path)
    assert info.checkpoint_path == prefix and md.read_model_dir(prefix).checkpoint_path == prefix

    backbone = build_backbone(info.config.model)
    assert not _same(backbone.get_weights(), model.backbone.get_weights())
    md.restore_backbone(backbone, info.checkpoint_path)
    assert _same(backbone.get_weights(), model.backbone.get_weights())

    fresh = build_pretrainer(info.config)
    md.restore_model(fresh, tmp_path)  # a model dir resolves to its latest checkpoint
    assert _same(fresh.get_weights(), model.get_weights())
    f = random_features()
    np.testing.assert_allclose(fresh(f)["sbo_logits"].numpy(), model(f)["sbo_logits"].numpy())


def test_backbone_moves_between_models_and_dirs(tmp_path, cased_vocab):
    model, _ = _save_pretrainer(tmp_path / "a", cased_vocab)

    class Classifier(keras.Model):  # any fine-tuning model exposing .backbone
        def __init__(self, backbone):
            super().__init__()
            self.backbone = backbone
            self.head = keras.layers.Dense(3)

        def call(self, x):
            return self.head(self.backbone(x)["pooled_output"])

    classifier = Classifier(build_backbone(small_config().model))
    md.restore_backbone(classifier.backbone, tmp_path / "a")
    assert _same(classifier.backbone.get_weights(), model.backbone.get_weights())
    x = {"token_ids": np.ones((1, 4), "int32"), "segment_ids": np.zeros((1, 4), "int32"),
         "padding_mask": np.ones((1, 4), "int32")}
    classifier(x)
    tf.train.Checkpoint(model=classifier).save(str(tmp_path / "b" / "ckpt"))
    again = build_backbone(small_config().model)
    md.restore_backbone(again, tf.train.latest_checkpoint(str(tmp_path / "b")))
    assert _same(again.get_weights(), model.backbone.get_weights())

    # A copied (moved) model dir still finds its checkpoint.
    shutil.copytree(tmp_path / "a", tmp_path / "moved")
    shutil.rmtree(tmp_path / "a")
    info = md.read_model_dir(tmp_path / "moved")
    assert info.checkpoint_path.startswith(str(tmp_path / "moved"))


def test_clear_errors(tmp_path, cased_vocab):
    with pytest.raises(FileNotFoundError, match="neither a directory nor a checkpoint"):
        md.read_model_dir(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        md.read_model_dir(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="vocabulary file not found"):
        md.write_model_dir_metadata(tmp_path / "x", small_config(), tmp_path / "missing.txt")

    md.write_model_dir_metadata(tmp_path / "meta", small_config(), cased_vocab)
    with pytest.raises(FileNotFoundError, match="no checkpoint in model dir"):
        md.read_model_dir(tmp_path / "meta")
    with pytest.raises(FileNotFoundError, match="no checkpoint in model dir"):
        md.restore_backbone(build_backbone(small_config().model), tmp_path / "meta")

    data = json.loads((tmp_path / "meta" / "config.json").read_text())
    data["model"]["num_layer"] = 2
    (tmp_path / "meta" / "config.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"config\.json: unknown key.*num_layer"):
        md.read_model_dir(tmp_path / "meta", require_checkpoint=False)

    md.write_model_dir_metadata(tmp_path / "meta", small_config(), cased_vocab)
    os.remove(tmp_path / "meta" / "vocab.txt")
    with pytest.raises(FileNotFoundError, match="has no vocab.txt"):
        md.read_model_dir(tmp_path / "meta", require_checkpoint=False)


def test_mismatched_backbone_is_a_clear_error(tmp_path, cased_vocab):
    _, prefix = _save_pretrainer(tmp_path, cased_vocab)
    deeper = build_backbone(small_config(num_layers=3).model)
    with pytest.raises(ValueError, match="does not hold the backbone weights"):
        md.restore_backbone(deeper, prefix)
    wider = build_backbone(small_config(hidden_size=32).model)
    with pytest.raises(ValueError, match="does not fit this backbone"):
        md.restore_backbone(wider, prefix)
    # A checkpoint without a .backbone (e.g. a bare variable) is rejected too.
    other = tf.train.Checkpoint(model=tf.train.Checkpoint(v=tf.Variable(1.0))).save(
        str(tmp_path / "other" / "ckpt"))
    with pytest.raises(ValueError, match="does not hold the backbone weights"):
        md.restore_backbone(build_backbone(small_config().model), other)


def test_restore_backbone_from_a_checkpoint_written_with_write(tmp_path, cased_vocab):
    """Checkpoint.write() stores no save_counter; restoring must not ask for one."""
    config = small_config()
    model = build_pretrainer(config)
    prefix = tf.train.Checkpoint(model=model).write(str(tmp_path / "written"))
    md.write_model_dir_metadata(tmp_path, config, cased_vocab, do_lower_case=False)
    backbone = build_backbone(config.model)
    assert not _same(backbone.get_weights(), model.backbone.get_weights())
    md.restore_backbone(backbone, prefix)
    assert _same(backbone.get_weights(), model.backbone.get_weights())


def test_model_dir_trained_on_jax_reads_through_its_preset(tmp_path, cased_vocab):
    """A `--backend=jax` model dir has ckpt-N.weights.h5 and, once its run ends, preset/:
    read_model_dir(MODEL_DIR) then gives the preset (what the fine-tuning programs load)."""
    config = small_config()
    md.write_model_dir_metadata(tmp_path, config, cased_vocab, do_lower_case=False)
    trained = build_pretrainer(config)
    trained.save_weights(str(tmp_path / "ckpt-5.weights.h5"))
    with pytest.raises(FileNotFoundError, match=r"trained on a Keras backend .* no preset/"):
        md.read_model_dir(str(tmp_path))
    assert md.read_model_dir(str(tmp_path), require_checkpoint=False).checkpoint_path is None

    from spanbert_tf.presets.preset_io import save_pretrainer_preset  # as tasks.pretraining.preset does

    save_pretrainer_preset(str(tmp_path / "preset"), trained, cased_vocab, False, with_heads=True)
    backbone = trained.backbone
    info = md.read_model_dir(str(tmp_path))
    assert info.checkpoint_path == str(tmp_path / "preset" / "model.weights.h5")
    assert info.config.model.hidden_size == config.model.hidden_size
    restored = build_backbone(info.config.model)
    md.restore_backbone(restored, info.checkpoint_path)
    assert _same([w.numpy() for w in restored.weights], [w.numpy() for w in backbone.weights])
