"""Model dir / HF → keras-hub preset → `from_preset`: same encoder and tokens; our programs accept it."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import keras_hub

import spanbert_tf.hub  # noqa: F401  (registers every SpanBERT keras-hub class)
from spanbert_tf.modeling import model_dir as model_dir_lib
from spanbert_tf.modeling.backbone import SpanBertBackbone, build_backbone
from spanbert_tf.tokenization import BertWordpieceTokenizer
from tests.presets.conftest import mrpc_pairs
from spanbert_tf.hub import TASK_PRESETS

TEXTS = ["SpanBERT predicts masked spans from their boundaries.", "A short one."]


def _encode(tokenizer, texts, length=24):
    ids = np.zeros((len(texts), length), np.int32)
    for i, text in enumerate(texts):
        row = [tokenizer.cls_id] + tokenizer.tokenize_to_ids([text])[0][: length - 2] + [tokenizer.sep_id]
        ids[i, : len(row)] = row
    mask = (ids != 0).astype(np.int32)
    types = np.zeros_like(ids)
    return {"token_ids": ids, "segment_ids": types, "padding_mask": mask}


def _lists(ids):
    """keras-hub tokenizers give lists eagerly, ragged tensors in tf.data."""
    ids = ids.to_list() if hasattr(ids, "to_list") else ids
    return [[int(t) for t in row] for row in ids]


def _outputs(backbone, batch):
    out = backbone(batch)
    return np.asarray(out["sequence_output"]), np.asarray(out["pooled_output"])


def test_model_dir_to_preset_round_trip_real_checkpoint(minilm_dirs, shared_data):
    folder, model_dir, preset, report = minilm_dirs
    # A model dir's checkpoint holds both heads: they travel as a SpanBertMaskedLM task.
    assert report.not_exported == [] and report.do_lower_case is True
    for name in ("config.json", "model.weights.h5", "tokenizer.json", "metadata.json",
                 "task.json", "task.weights.h5", "preprocessor.json",
                 os.path.join("assets", "tokenizer", "vocabulary.txt")):
        assert os.path.isfile(os.path.join(preset, name)), name
    metadata = json.load(open(os.path.join(preset, "metadata.json")))
    assert {"TextClassifier", "MaskedLM"} <= set(metadata["tasks"])
    assert metadata["parameter_count"] > 20_000_000

    backbone = keras_hub.models.Backbone.from_preset(preset)
    assert type(backbone) is SpanBertBackbone and backbone.hidden_act == "gelu"
    info = model_dir_lib.read_model_dir(model_dir)
    reference = build_backbone(info.config.model, dtype="float32")
    model_dir_lib.restore_backbone(reference, model_dir)
    batch = _encode(BertWordpieceTokenizer(info.vocab_file, do_lower_case=True), TEXTS)
    for got, want in zip(_outputs(backbone, batch), _outputs(reference, batch)):
        assert np.abs(got - want).max() <= 1e-6

    # The preset's tokenizer gives our tokenizer's ids on real text (uncased vocabulary).
    tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(preset)
    assert type(tokenizer) is spanbert_tf.presets.SpanBertTokenizer
    texts_a, texts_b, _ = mrpc_pairs(shared_data, 40)
    ours = BertWordpieceTokenizer(info.vocab_file, do_lower_case=True).tokenize_to_ids(texts_a + texts_b)
    theirs = _lists(tokenizer(texts_a + texts_b))
    assert [list(x) for x in ours] == theirs


def test_hf_to_preset_has_the_same_weights(minilm_dirs, tmp_path):
    from spanbert_tf.convert.checkpoint import convert_checkpoint

    folder, _, preset, _ = minilm_dirs
    direct = str(tmp_path / "direct")
    report = convert_checkpoint("hf", folder, "keras_hub_preset", direct)
    # HF all-MiniLM has no MLM head and no SBO head: initialised ones are not written.
    assert report.not_exported == ["mlm_head", "sbo_head"] and report.initialised == []
    assert not os.path.exists(os.path.join(direct, "task.json"))
    a = keras_hub.models.Backbone.from_preset(preset)
    b = keras_hub.models.Backbone.from_preset(direct)
    assert len(a.weights) == len(b.weights) == 103
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=x.path)
    with pytest.raises(FileExistsError, match="already holds a config.json"):
        convert_checkpoint("hf", folder, "keras_hub_preset", direct)


def test_preset_is_accepted_as_init_checkpoint(tiny_cased_preset, cased_vocab):
    preset, pretrainer = tiny_cased_preset
    info = model_dir_lib.read_model_dir(preset)
    assert info.do_lower_case is False and info.checkpoint_path.endswith("model.weights.h5")
    assert (info.config.model.hidden_size, info.config.model.num_layers,
            info.config.model.max_position_embeddings, info.config.model.hidden_act) == (32, 2, 128, "gelu")
    assert open(info.vocab_file).read() == open(cased_vocab).read()

    class Holder:  # what the programs pass: a model with a .backbone
        backbone = build_backbone(info.config.model, dtype="float32")

    model_dir_lib.restore_backbone(Holder.backbone, preset)  # the Trainer: the dir itself
    batch = _encode(BertWordpieceTokenizer(info.vocab_file, do_lower_case=False), TEXTS)
    want = _outputs(pretrainer.backbone, batch)
    for got, expected in zip(_outputs(Holder.backbone, batch), want):
        assert np.abs(got - expected).max() <= 1e-6
    # The fine-tuning programs: read_model_dir(...).checkpoint_path → restore_backbone.
    other = build_backbone(info.config.model, dtype="float32")
    model_dir_lib.restore_backbone(other, info.checkpoint_path)
    np.testing.assert_allclose(_outputs(other, batch)[1], want[1], atol=1e-6, rtol=0)


def test_tokenizer_matches_ours_on_the_cased_vocab(tiny_cased_preset, shared_data, cased_vocab):
    tokenizer = keras_hub.models.BertTokenizer.from_preset(tiny_cased_preset[0])
    assert type(tokenizer) is spanbert_tf.presets.SpanBertTokenizer and not tokenizer.lowercase
    texts_a, texts_b, _ = mrpc_pairs(shared_data, 40)
    ours = BertWordpieceTokenizer(cased_vocab, do_lower_case=False).tokenize_to_ids(texts_a + texts_b)
    assert [list(x) for x in ours] == _lists(tokenizer(texts_a + texts_b))


def test_without_spanbert_tf_the_error_says_what_to_install(tiny_cased_preset):
    code = ("import os; os.environ['KERAS_BACKEND'] = 'tensorflow'\n"
            "import keras_hub\n"
            f"keras_hub.models.Backbone.from_preset({tiny_cased_preset[0]!r})\n")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", PYTHONPATH="")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300, cwd="/")
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "pip install spanbert-tf; import spanbert_tf.presets" in last, proc.stderr[-2000:]


@pytest.mark.slow
def test_run_classifier_fine_tunes_from_a_preset(tiny_cased_preset, shared_data, tmp_path):
    from spanbert_tf.modeling.backbone import build_backbone
    from spanbert_tf.tasks.classification.run import ClassificationSettings, run_classifier

    preset, pretrainer = tiny_cased_preset
    mrpc = tmp_path / "MRPC"
    mrpc.mkdir()
    for split, rows in (("train", 16), ("dev", 8)):
        lines = (shared_data / "glue" / "MRPC" / f"{split}.tsv").read_text(encoding="utf-8-sig").split("\n")
        (mrpc / f"{split}.tsv").write_text("\n".join(lines[: rows + 1]) + "\n", encoding="utf-8")
    out = str(tmp_path / "out")
    results = run_classifier(ClassificationSettings(
        task_name="mrpc", data_dir=str(mrpc), init_checkpoint=preset, output_dir=out,
        do_train=True, do_eval=True, num_train_epochs=1, train_batch_size=8, max_seq_length=32,
        show_progress=False))
    assert set(results) >= {"accuracy"}
    # The fine-tuned encoder started from the preset: position rows past max_seq_length are
    # never used, so only weight decay (lr 2e-5 x 0.01 per step) moved them.
    info = model_dir_lib.read_model_dir(out)
    tuned = build_backbone(info.config.model, dtype="float32")
    model_dir_lib.restore_backbone(tuned, info.checkpoint_path)
    unused = slice(40, 128)
    np.testing.assert_allclose(np.asarray(tuned.position_embedding.position_embeddings)[unused],
                               np.asarray(pretrainer.backbone.position_embedding.position_embeddings)[unused],
                               rtol=1e-4, atol=1e-7)
    # ... and the fine-tuned model dir converts to a task preset whose predict on raw pairs gives
    # run_classifier's probabilities (at 128 tokens, where no MRPC dev pair here is truncated).
    from spanbert_tf.convert.checkpoint import convert_checkpoint
    from spanbert_tf.tasks.classification import glue
    from spanbert_tf.tasks.classification.task import ClassificationTask
    from spanbert_tf.tasks.classification.model import (encode_pairs,
                                                         softmax)

    task_preset = str(tmp_path / "mrpc_preset")
    convert_checkpoint("keras", out, "keras_hub_preset", task_preset, task_presets=TASK_PRESETS)
    classifier = keras_hub.models.TextClassifier.from_preset(task_preset)
    assert type(classifier) is spanbert_tf.hub.SpanBertTextClassifier
    assert classifier.num_classes == 2 and classifier.preprocessor.sequence_length == 32
    classifier.preprocessor.sequence_length = 128
    dev = glue.read_glue_tsv("mrpc", mrpc / "dev.tsv")
    texts_a, texts_b = [e.text_a for e in dev], [e.text_b for e in dev]
    got = softmax(np.asarray(classifier.predict((np.array(texts_a), np.array(texts_b)), verbose=0)))
    model = ClassificationTask(info.config.model, 2, dtype="float32").build_model()
    model_dir_lib.restore_model(model, info.checkpoint_path)
    features = encode_pairs(BertWordpieceTokenizer(info.vocab_file, False), texts_a, texts_b, 128)
    assert features["num_truncated"] == 0
    want = softmax(np.asarray(model({k: features[k] for k in ("token_ids", "segment_ids",
                                                               "padding_mask")})["logits"]))
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
