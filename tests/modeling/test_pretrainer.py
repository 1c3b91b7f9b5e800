"""Tests for spanbert_tf/modeling/pretrainer.py: outputs, loss terms, masking, tying, dtype."""

import keras
import numpy as np
import tensorflow as tf

from modeling_test_utils import SMALL_VOCAB, random_features, small_config
from spanbert_tf.modeling.pretrainer import SpanBertPretrainer, build_pretrainer


def _numpy_terms(logits, labels, weights):
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    ce = -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    correct = (logits.argmax(-1) == labels).astype("float32")
    return (ce * weights).sum(), (correct * weights).sum(), weights.sum()


def test_outputs_and_loss_terms_match_numpy():
    model = build_pretrainer(small_config(), sbo_loss_weight=0.5)
    f = random_features()
    outputs = model(f)
    assert set(outputs) == {"mlm_logits", "sbo_logits"}
    for logits in outputs.values():
        assert tuple(logits.shape) == (2, 4, SMALL_VOCAB) and logits.dtype == tf.float32
    terms = model.loss_terms(f, outputs)
    assert set(terms) == {"mlm_loss", "sbo_loss", "mlm_accuracy", "sbo_accuracy"}
    for head, weights in (("mlm", "masked_lm_weights"), ("sbo", "sbo_weights")):
        ce, correct, den = _numpy_terms(outputs[f"{head}_logits"].numpy(), f["masked_lm_ids"], f[weights])
        num, got_den = terms[f"{head}_loss"]
        assert num.dtype == tf.float32 and got_den.dtype == tf.float32
        np.testing.assert_allclose(num.numpy(), ce, rtol=1e-5)
        np.testing.assert_allclose(got_den.numpy(), den)
        np.testing.assert_allclose(terms[f"{head}_accuracy"][0].numpy(), correct)
    assert terms["sbo_loss"][1].numpy() == 5.0  # 8 slots - 2 padding - 1 without target
    assert model.loss_weights == {"mlm_loss": 1.0, "sbo_loss": 0.5}


def test_weight_zero_slots_are_ignored():
    model = build_pretrainer(small_config())
    f = random_features()
    outputs = model(f)
    reference = {k: (a.numpy(), b.numpy()) for k, (a, b) in model.loss_terms(f, outputs).items()}

    # Weight-0 slots: last slot (padding) and slot (0, 0) for SBO only.
    g = {k: v.copy() for k, v in f.items()}
    g["masked_lm_ids"][:, -1] = SMALL_VOCAB + 1000       # even an out-of-range id
    changed = {k: v.numpy().copy() for k, v in outputs.items()}
    changed["mlm_logits"][:, -1] = 1e4 * np.random.default_rng(0).normal(size=SMALL_VOCAB)
    changed["sbo_logits"][:, -1] = -7.0
    changed["sbo_logits"][0, 0] = 3e3 * np.random.default_rng(1).normal(size=SMALL_VOCAB)
    terms = model.loss_terms(g, changed)
    for key, (num, den) in terms.items():
        np.testing.assert_allclose(num.numpy(), reference[key][0], rtol=1e-6, err_msg=key)
        np.testing.assert_allclose(den.numpy(), reference[key][1], err_msg=key)

    # The same change at a weighted slot does change the loss (the test can fail).
    changed["mlm_logits"][1, 0] = changed["mlm_logits"][1, 0] + 5.0 * np.eye(SMALL_VOCAB)[3]
    moved = model.loss_terms(g, changed)["mlm_loss"][0].numpy()
    assert abs(moved - reference["mlm_loss"][0]) > 1e-3

    # Inputs at weight-0 prediction slots do not reach the loss either.
    g = {k: v.copy() for k, v in f.items()}
    g["masked_lm_positions"][:, -1] = 5
    g["span_left_positions"][:, -1] = 7
    g["span_relative_positions"][:, -1] = 3
    terms = model.loss_terms(g, model(g))
    for key, (num, den) in terms.items():
        np.testing.assert_allclose(num.numpy(), reference[key][0], rtol=1e-5, err_msg=key)


def test_tied_embedding_is_shared_and_gets_gradient_from_both_heads():
    model = build_pretrainer(small_config())
    embeddings = model.backbone.token_embedding.embeddings
    assert model.mlm_head.token_embedding.embeddings is embeddings
    assert model.sbo_head.token_embedding.embeddings is embeddings
    assert sum(v is embeddings for v in model.trainable_variables) == 1

    f = random_features()
    unused_rows = np.setdiff1d(np.arange(SMALL_VOCAB), f["input_ids"])  # reachable only via decoders
    assert len(unused_rows) > 10
    for term in ("mlm_loss", "sbo_loss"):
        with tf.GradientTape() as tape:
            num, den = model.loss_terms(f, model(f, training=True))[term]
            loss = num / den
        grad = tf.convert_to_tensor(tape.gradient(loss, embeddings)).numpy()
        assert np.abs(grad[unused_rows]).sum() > 0, term

    with tf.GradientTape() as tape:
        terms = model.loss_terms(f, model(f, training=True))
        loss = sum(w * terms[k][0] / terms[k][1] for k, w in model.loss_weights.items())
    grads = tape.gradient(loss, model.trainable_variables)
    missing = [v.path for v, g in zip(model.trainable_variables, grads) if g is None]
    assert missing == ["pooled_dense/kernel", "pooled_dense/bias"]  # unused by pretraining


def test_get_config_round_trip(tmp_path):
    model = build_pretrainer(small_config(), sbo_loss_weight=2.0)
    model.summary(print_fn=lambda *args, **kwargs: None)  # output shapes are computable
    config = model.get_config()
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert type(clone) is SpanBertPretrainer
    assert clone.get_config() == config and clone.loss_weights["sbo_loss"] == 2.0
    assert [w.path for w in clone.weights] == [w.path for w in model.weights]
    clone.set_weights(model.get_weights())
    f = random_features()
    for key, value in model(f).items():
        np.testing.assert_allclose(clone(f)[key].numpy(), value.numpy(), atol=1e-5)
    # A whole-model .keras file keeps the weights and the embedding tying.
    model.save(tmp_path / "pretrainer.keras")
    loaded = keras.saving.load_model(tmp_path / "pretrainer.keras")
    assert loaded.sbo_head.token_embedding.embeddings is loaded.backbone.token_embedding.embeddings
    np.testing.assert_allclose(
        np.asarray(loaded(f)["sbo_logits"]), np.asarray(model(f)["sbo_logits"]), atol=1e-6
    )


def test_mixed_bfloat16_forward_keeps_float32_logits_and_losses():
    model = build_pretrainer(small_config(), dtype="mixed_bfloat16")
    assert model.backbone.compute_dtype == "bfloat16"
    assert model.backbone.token_embedding.embeddings.dtype == "float32"
    f = random_features()
    outputs = model(f, training=True)
    for logits in outputs.values():
        assert logits.dtype == tf.float32
    for num, den in model.loss_terms(f, outputs).values():
        assert num.dtype == tf.float32 and den.dtype == tf.float32
        assert np.isfinite(num.numpy())
    # Close to the float32 model with the same weights (bf16 has ~3 significant digits).
    reference = build_pretrainer(small_config())
    reference.set_weights(model.get_weights())
    np.testing.assert_allclose(
        outputs["mlm_logits"].numpy(), reference(f, training=True)["mlm_logits"].numpy(), atol=0.1
    )


def test_compute_loss_is_the_weighted_mean_terms_for_keras_fit():
    model = build_pretrainer(small_config(), sbo_loss_weight=0.5)
    f = random_features()
    outputs = model(f)
    want = 0.0
    for head, weights, w in (("mlm", "masked_lm_weights", 1.0), ("sbo", "sbo_weights", 0.5)):
        ce, _, den = _numpy_terms(outputs[f"{head}_logits"].numpy(), f["masked_lm_ids"], f[weights])
        want += w * ce / den
    np.testing.assert_allclose(float(model.compute_loss(f, None, outputs)), want, rtol=1e-5)
    # A batch without any SBO target: that term counts 0, not NaN.
    no_sbo = dict(f, sbo_weights=np.zeros_like(f["sbo_weights"]))
    mlm_ce, _, mlm_den = _numpy_terms(outputs["mlm_logits"].numpy(), f["masked_lm_ids"],
                                      f["masked_lm_weights"])
    np.testing.assert_allclose(float(model.compute_loss(no_sbo, None, outputs)),
                               mlm_ce / mlm_den, rtol=1e-5)
    # Keras' own training step uses it (the loss it reports is before the update).
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1))
    np.testing.assert_allclose(model.train_on_batch(f), want, rtol=1e-5)
    assert abs(model.train_on_batch(f) - want) > 1e-4   # the weights moved
