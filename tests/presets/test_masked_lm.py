"""`SpanBertMaskedLM`: span masking on raw strings (our in-graph masker), the pretrainer's heads, fit learns."""

import numpy as np
import tensorflow as tf

import keras
import keras_hub

import spanbert_tf.presets  # noqa: F401
from spanbert_tf.data.masking.dynamic_masking import DynamicMasker
from spanbert_tf.data.masking.masker import Masker
from spanbert_tf.data.masking.masking_draws import mask_with_draws
from spanbert_tf.presets import SpanBertMaskedLM, SpanBertMaskedLMPreprocessor
from spanbert_tf.tokenization import BertWordpieceTokenizer


def _lines(path, count, min_chars=60):
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f if len(line.strip()) >= min_chars]
    return lines[:count]


def test_preset_keeps_the_pretrainer_heads(tiny_cased_preset):
    preset, pretrainer = tiny_cased_preset
    masked_lm = keras_hub.models.MaskedLM.from_preset(preset)
    assert type(masked_lm) is SpanBertMaskedLM
    assert type(masked_lm.preprocessor) is SpanBertMaskedLMPreprocessor
    assert masked_lm.preprocessor.masking_config.max_pair_targets == pretrainer.max_pair_targets == 5
    rng = np.random.default_rng(0)
    ids = rng.integers(999, 28996, size=(2, 16)).astype(np.int32)
    mask = np.ones_like(ids)
    slots = {k: rng.integers(0, 16, size=(2, 6)).astype(np.int32)
             for k in ("mask_positions", "span_left_positions", "span_right_positions")}
    slots["span_relative_positions"] = rng.integers(0, 5, size=(2, 6)).astype(np.int32)
    got = masked_lm({"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask, **slots})
    want = pretrainer({"input_ids": ids, "segment_ids": np.zeros_like(ids), "input_mask": mask,
                       "masked_lm_positions": slots["mask_positions"],
                       **{k: v for k, v in slots.items() if k != "mask_positions"}})
    np.testing.assert_allclose(np.asarray(got["mlm"]), np.asarray(want["mlm_logits"]), atol=1e-6, rtol=0)
    np.testing.assert_allclose(np.asarray(got["sbo"]), np.asarray(want["sbo_logits"]), atol=1e-6, rtol=0)


def test_preprocessor_masks_as_create_pretraining_data(tiny_cased_preset, wikitext_corpus, cased_vocab):
    preprocessor = keras_hub.models.MaskedLMPreprocessor.from_preset(
        tiny_cased_preset[0], sequence_length=64, seed=7)
    assert type(preprocessor) is SpanBertMaskedLMPreprocessor
    lines = _lines(wikitext_corpus, 120)
    x, y, w = preprocessor(tf.constant(lines))
    # The same blocks through the Masker create_pretraining_data.py uses, same seed: same result.
    ours = BertWordpieceTokenizer(cased_vocab, do_lower_case=False)
    blocks = [np.array([ours.cls_id] + list(ids[:62]) + [ours.sep_id], np.int32)
              for ids in ours.tokenize_to_ids(lines)]
    # Pure TF masking (no numpy_function): the draws of this first call, fed to the Masker code
    # create_pretraining_data.py runs, give the same masks.
    masker = preprocessor.span_masker()
    assert isinstance(masker, DynamicMasker) and isinstance(masker.reference, Masker)
    draws = preprocessor.draws(masker, 0, len(lines))
    draws = [{k: v[i] for k, v in draws.items()} for i in range(len(lines))]
    reference = mask_with_draws(masker.reference, blocks, [{k: np.asarray(v) for k, v in d.items()}
                                                           for d in draws])
    positions = np.asarray(x["mask_positions"])
    weights = np.asarray(w["mlm"])
    num_masked = weights.sum(axis=1).astype(int)
    np.testing.assert_array_equal(num_masked, reference.num_masked)
    real = weights > 0
    np.testing.assert_array_equal(positions[real], reference.masked_positions)
    np.testing.assert_array_equal(np.asarray(y["mlm"])[real], reference.masked_ids)
    np.testing.assert_array_equal(np.asarray(w["sbo"])[real], reference.sbo_weights)
    np.testing.assert_array_equal(np.asarray(x["span_left_positions"])[real], reference.span_left_positions)
    # Statistics: the 15% budget exactly, 80/10/10 per span, most slots with an SBO target.
    lengths = np.array([len(b) - 2 for b in blocks])
    np.testing.assert_array_equal(num_masked, np.minimum(np.ceil(0.15 * lengths), 80).astype(int))
    token_ids = np.asarray(x["token_ids"])
    masked_tokens = np.take_along_axis(token_ids, positions, axis=1)[real]
    mask_rate = np.mean(masked_tokens == ours.mask_id)
    unchanged = np.mean(masked_tokens == np.asarray(y["mlm"])[real])
    assert 0.7 < mask_rate < 0.9 and 0.03 < unchanged < 0.2, (mask_rate, unchanged)
    assert 0.5 < np.asarray(w["sbo"])[real].mean() <= 1.0
    assert np.asarray(x["padding_mask"]).sum(axis=1).tolist() == [len(b) for b in blocks]


def test_fit_on_raw_wikitext_lowers_mlm_and_sbo_losses(tiny_cased_preset, wikitext_corpus):
    keras.utils.set_random_seed(3)
    masked_lm = keras_hub.models.MaskedLM.from_preset(tiny_cased_preset[0])
    # A short packing and few slots keep the [B, P, 28996] logits small on a CPU.
    masked_lm.preprocessor = SpanBertMaskedLMPreprocessor(
        masked_lm.preprocessor.tokenizer, sequence_length=64, max_predictions_per_seq=12,
        max_pair_targets=5, seed=0)
    masked_lm.compile(optimizer=keras.optimizers.Adam(5e-3), jit_compile=False)
    lines = tf.data.Dataset.from_tensor_slices(_lines(wikitext_corpus, 32)).batch(8)
    history = masked_lm.fit(lines, epochs=4, verbose=0).history
    for name in ("mlm_loss", "sbo_loss"):
        assert history[name][-1] < 0.9 * history[name][0], (name, history[name])
    assert history["mlm_loss"][0] > 5.0  # a per-slot mean cross-entropy over 28996 tokens


def test_preprocessor_is_pure_tensorflow(tiny_cased_preset):
    """No Python inside the traced preprocessor (it runs in graph / tf.data / TPU pipelines)."""
    preprocessor = keras_hub.models.MaskedLMPreprocessor.from_preset(
        tiny_cased_preset[0], sequence_length=32, seed=1)
    fn = tf.function(lambda texts: preprocessor(texts))
    graph = fn.get_concrete_function(tf.TensorSpec([None], tf.string)).graph
    ops = {op.type for op in graph.get_operations()}
    for g in graph._functions.values():   # the bodies of while loops and map_fn
        ops |= {node.op for node in g.definition.node_def}
    assert not ops & {"PyFunc", "PyFuncStateless", "EagerPyFunc"}, ops
    texts = tf.constant(["A first line of text here.", "A second, longer line of text."])
    _, _, w = fn(texts)
    fn(texts)
    assert np.asarray(w["mlm"]).sum() > 0
    assert int(preprocessor.calls.numpy()) == 2   # each call masks anew (new draw keys)
