"""SavedModel exports, reloaded in a fresh TensorFlow-only process and compared to Keras."""

import json
import os

import numpy as np
import pytest

# As in conftest.py: the tiny exported model's position table and the preprocessor length.
MAX_POSITIONS = 64
SEQ_LENGTH = 16

TEXTS_A = [
    "SpanBERT masks contiguous spans, not tokens!",
    "Héllo naïve café — “quotes” 東京 tokyo",
    "one two three four five six seven eight nine ten eleven twelve thirteen",
    "x",
]
TEXTS_B = [
    "It predicts them from the boundaries.",
    "a b c d e f g h i j k l m n o p",
    "y",
    "z",
]


def _encoder_inputs():
    rng = np.random.default_rng(1)
    ids = rng.integers(1000, 28996, size=(2, 7)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[1, 5:] = 0
    ids[1, 5:] = 0
    types = np.zeros_like(ids)
    types[0, 4:] = 1
    return ids, mask, types


def _pretrainer_inputs():
    rng = np.random.default_rng(2)
    ids = rng.integers(1000, 28996, size=(2, 10)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[1, 8:] = 0
    return {
        "input_word_ids": ids,
        "input_mask": mask,
        "input_type_ids": np.zeros_like(ids),
        "masked_lm_positions": np.array([[3, 4, 5], [2, 6, 0]], np.int32),
        "span_left_positions": np.array([[2, 2, 2], [1, 5, 0]], np.int32),
        "span_right_positions": np.array([[6, 6, 6], [3, 7, 0]], np.int32),
        "span_relative_positions": np.array([[0, 1, 2], [0, 0, 0]], np.int32),
    }


# The pretrainer's top_k signature: row 0 predicts the span 3..5, row 1 the span 2..2
# (padded to the longest span of the batch).
TOP_K_SPANS = {"span_start": np.array([3, 2], np.int32), "span_end": np.array([5, 2], np.int32)}


def _top_k_inputs():
    pt = _pretrainer_inputs()
    return dict({k: pt[k] for k in ("input_word_ids", "input_mask", "input_type_ids")}, **TOP_K_SPANS)


def _body(**kwargs):
    return json.dumps(kwargs)


def _encoder_row(ids, mask, types):
    return [{"input_word_ids": i.tolist(), "input_mask": m.tolist(), "input_type_ids": t.tolist()}
            for i, m, t in zip(ids, mask, types)]


LONG = np.arange(1, MAX_POSITIONS + 1, dtype=np.int32)[None] + 1000
GOOD, BAD = "good", "bad"


def _rest_requests():
    ids, mask, types = _encoder_inputs()
    pt = _pretrainer_inputs()
    one = {k: v[:1, :] for k, v in pt.items()}
    one["masked_lm_positions"] = one["masked_lm_positions"][:, :1]
    for k in ("span_left_positions", "span_right_positions", "span_relative_positions"):
        one[k] = one[k][:, :1]
    too_long = np.concatenate([LONG, [[1000]]], axis=1)
    col = lambda a: {"input_word_ids": a.tolist(), "input_mask": np.ones_like(a).tolist(),  # noqa: E731
                     "input_type_ids": np.zeros_like(a).tolist()}
    bad_position = dict(one, masked_lm_positions=np.array([[10]], np.int32))
    return [
        # name, model, body, expectation
        ("encoder_row", "encoder", _body(instances=_encoder_row(ids, mask, types)), GOOD),
        ("encoder_columnar", "encoder", _body(inputs={"input_word_ids": ids.tolist(),
         "input_mask": mask.tolist(), "input_type_ids": types.tolist()}), GOOD),
        ("encoder_max_positions", "encoder", _body(inputs=col(LONG)), GOOD),
        ("preprocessor_row", "preprocessor", _body(instances=TEXTS_A[:2]), GOOD),
        ("preprocessor_pair", "preprocessor", _body(signature_name="pair", instances=[
            {"text_a": a, "text_b": b} for a, b in zip(TEXTS_A, TEXTS_B)]), GOOD),
        ("pretrainer_row", "pretrainer", _body(instances=[
            {k: v[0].tolist() for k, v in one.items()}]), GOOD),
        ("pretrainer_top_k_row", "pretrainer", _body(signature_name="top_k", instances=[
            {k: v[0].tolist() for k, v in _top_k_inputs().items()}]), GOOD),
        ("text_embedding_row", "text_embedding", _body(instances=TEXTS_A[:2]), GOOD),
        ("float_ids", "encoder", _body(inputs=dict(col(ids), input_word_ids=(ids + 0.5).tolist())), BAD),
        ("wrong_rank", "encoder", _body(inputs=dict(col(ids), input_word_ids=ids[0].tolist())), BAD),
        ("too_long", "encoder", _body(inputs=col(too_long)), BAD),
        ("id_outside_vocab", "encoder", _body(inputs=col(ids + 30000)), BAD),
        ("missing_input", "encoder", _body(inputs={"input_word_ids": ids.tolist()}), BAD),
        ("ragged", "encoder", _body(inputs=dict(col(ids), input_word_ids=[[1, 2], [3]])), BAD),
        ("text_not_string", "preprocessor", _body(instances=[{"text_a": 5}]), BAD),
        ("position_outside", "pretrainer", _body(inputs={k: v.tolist() for k, v in bad_position.items()}), BAD),
        ("span_at_cls", "pretrainer", _body(signature_name="top_k", inputs={
            k: v.tolist() for k, v in dict(_top_k_inputs(), span_start=np.array([0, 2], np.int32)).items()}), BAD),
        ("span_past_end", "pretrainer", _body(signature_name="top_k", inputs={
            k: v.tolist() for k, v in dict(_top_k_inputs(), span_end=np.array([9, 2], np.int32)).items()}), BAD),
        ("not_json", "encoder", "{instances: ", BAD),
        ("still_alive", "encoder", _body(instances=_encoder_row(ids, mask, types)), GOOD),
    ]


@pytest.fixture(scope="module")
def fresh(exported, fresh_process, tmp_path_factory):
    export_dir, _ = exported
    tmp = str(tmp_path_factory.mktemp("fresh"))
    ids, mask, types = _encoder_inputs()
    inputs = {"encoder/input_word_ids": ids, "encoder/input_mask": mask, "encoder/input_type_ids": types}
    inputs.update({f"pretrainer/{k}": v for k, v in _pretrainer_inputs().items()})
    inputs.update({f"pretrainer:top_k/{k}": v for k, v in _top_k_inputs().items()})
    np.savez(os.path.join(tmp, "inputs.npz"), **inputs)
    requests = _rest_requests()
    job = {
        "export_dir": export_dir,
        "inputs": os.path.join(tmp, "inputs.npz"),
        "texts_a": TEXTS_A,
        "texts_b": TEXTS_B,
        "rest": [{"model": m, "body": b} for _, m, b, _ in requests],
    }
    outputs, report = fresh_process(job, tmp)
    responses = {name: (r, exp) for (name, _, _, exp), r in zip(requests, report["rest"])}
    return outputs, report, responses


def _keras_encoder(model, ids, mask, types):
    out = model.backbone({"token_ids": ids, "segment_ids": types, "padding_mask": mask}, training=False)
    return {k: np.asarray(v) for k, v in out.items()}


def test_tf_serving_layout(exported):
    export_dir, paths = exported
    for name in ("encoder", "preprocessor", "pretrainer", "text_embedding"):
        path = os.path.join(export_dir, name, "1")
        assert paths[name] == path
        assert os.path.isfile(os.path.join(path, "saved_model.pb"))
        assert os.path.isdir(os.path.join(path, "variables"))
    assert sorted(os.listdir(os.path.join(export_dir, "encoder"))) == ["1"]  # no temp dirs left
    with open(os.path.join(export_dir, "models.config")) as f:
        config = f.read()
    for name in ("encoder", "preprocessor", "pretrainer", "text_embedding"):
        assert f'config {{ name: "{name}" base_path: "/models/{name}" model_platform: "tensorflow" }}' in config
    for name in ("preprocessor", "pretrainer", "text_embedding"):
        assert os.listdir(os.path.join(export_dir, name, "1", "assets")) == ["vocab.txt"]


def test_fresh_process_imports_only_tensorflow(fresh):
    assert fresh[1]["imported"] == []


def test_encoder_matches_keras(fresh, pretrained_model_dir):
    outputs, _, responses = fresh
    expected = _keras_encoder(pretrained_model_dir[1], *_encoder_inputs())
    for key in ("sequence_output", "pooled_output"):
        got = outputs[f"encoder/serving_default/{key}"]
        assert got.dtype == np.float32 and got.shape == expected[key].shape
        np.testing.assert_allclose(got, expected[key], rtol=0, atol=1e-5)
    # A sequence as long as the position table is accepted.
    long_out = _keras_encoder(pretrained_model_dir[1], LONG, np.ones_like(LONG), np.zeros_like(LONG))
    response, _ = responses["encoder_max_positions"]
    np.testing.assert_allclose(np.array(response["outputs"]["sequence_output"]),
                               long_out["sequence_output"], rtol=0, atol=1e-5)


def test_pretrainer_matches_keras(fresh, pretrained_model_dir):
    import tensorflow as tf

    outputs, _, _ = fresh
    inputs = _pretrainer_inputs()
    features = {
        "input_ids": inputs["input_word_ids"], "input_mask": inputs["input_mask"],
        "segment_ids": inputs["input_type_ids"],
        **{k: v for k, v in inputs.items() if k.startswith(("masked", "span"))},
    }
    expected = pretrained_model_dir[1](features, training=False)
    for head in ("mlm", "sbo"):
        want = tf.nn.log_softmax(expected[f"{head}_logits"]).numpy()
        got = outputs[f"pretrainer/serving_default/{head}_log_probs"]
        assert got.shape == (2, 3, 28996)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
        np.testing.assert_allclose(np.exp(got).sum(-1), 1.0, atol=1e-4)


def _keras_span_log_probs(model, inputs, start, end):
    """Keras MLM / SBO log-probs [n, vocab] at positions start..end of row 0 of `inputs`."""
    import tensorflow as tf

    n = end - start + 1
    row = lambda a: a[:1]  # noqa: E731
    features = {
        "input_ids": row(inputs["input_word_ids"]), "input_mask": row(inputs["input_mask"]),
        "segment_ids": row(inputs["input_type_ids"]),
        "masked_lm_positions": np.arange(start, end + 1, dtype=np.int32)[None],
        "span_left_positions": np.full([1, n], start - 1, np.int32),
        "span_right_positions": np.full([1, n], end + 1, np.int32),
        "span_relative_positions": np.arange(n, dtype=np.int32)[None],
    }
    out = model(features, training=False)
    return {head: tf.nn.log_softmax(out[f"{head}_logits"]).numpy()[0] for head in ("mlm", "sbo")}


def test_pretrainer_top_k_matches_keras(fresh, pretrained_model_dir, cased_vocab):
    outputs, _, _ = fresh
    vocab = np.array(open(cased_vocab, encoding="utf-8").read().splitlines())
    inputs = _top_k_inputs()
    got = {k.split("/")[-1]: v for k, v in outputs.items() if k.startswith("pretrainer/top_k/")}
    np.testing.assert_array_equal(got["positions"], [[3, 4, 5], [2, -1, -1]])
    for row, (start, end) in enumerate(zip(TOP_K_SPANS["span_start"], TOP_K_SPANS["span_end"])):
        rows = {k: v[row:row + 1] for k, v in inputs.items()}
        want = _keras_span_log_probs(pretrained_model_dir[1], rows, int(start), int(end))
        n = int(end - start + 1)
        for head in ("mlm", "sbo"):
            ids, scores = got[f"{head}_top_ids"][row], got[f"{head}_top_log_probs"][row]
            tokens = got[f"{head}_top_tokens"][row]
            assert ids.shape == (3, 5) and ids.dtype == np.int32
            # The k best, best first (tie-robust: the scores of the returned ids, and the values).
            expected = -np.sort(-want[head], axis=-1)[:, :5]
            np.testing.assert_allclose(scores[:n], expected, rtol=0, atol=1e-5)
            np.testing.assert_allclose(np.take_along_axis(want[head], ids[:n], -1), scores[:n],
                                       rtol=0, atol=1e-5)
            assert [[t.decode() for t in r] for r in tokens[:n]] == vocab[ids[:n]].tolist()
            # Padding slots of the shorter span.
            assert (ids[n:] == -1).all() and (tokens[n:] == b"").all() and (scores[n:] == 0).all()


def test_top_k_answers_are_small_and_k_is_set_at_export(fresh, pretrained_model_dir, cased_vocab):
    import tensorflow as tf

    from spanbert_tf.tasks.pretraining.pretrainer_serving import PretrainerModule

    _, report, responses = fresh
    sizes = dict(zip([r[0] for r in _rest_requests()], report["rest_bytes"]))
    # One row: a span of 3 positions, k=5 (vs the whole vocabulary for 1 position).
    assert sizes["pretrainer_top_k_row"] < 5_000 < 100_000 < sizes["pretrainer_row"]
    prediction = responses["pretrainer_top_k_row"][0]["predictions"][0]
    assert len(prediction["sbo_top_tokens"]) == 3 and len(prediction["sbo_top_tokens"][0]) == 5
    assert isinstance(prediction["sbo_top_tokens"][0][0], str)
    module = PretrainerModule(pretrained_model_dir[1], cased_vocab, top_k=2)
    out = module.top_k(**{k: tf.constant(v) for k, v in _top_k_inputs().items()})
    assert out["mlm_top_ids"].shape == (2, 3, 2)
    with pytest.raises(ValueError, match=r"top_k must be in \[1, 28996\]"):
        PretrainerModule(pretrained_model_dir[1], cased_vocab, top_k=0)


def test_text_embedding_is_preprocessor_then_encoder(fresh, pretrained_model_dir):
    outputs, _, responses = fresh
    for signature in ("serving_default", "pair"):
        pre = {k: outputs[f"preprocessor/{signature}/{k}"]
               for k in ("input_word_ids", "input_mask", "input_type_ids")}
        want = _keras_encoder(pretrained_model_dir[1], pre["input_word_ids"], pre["input_mask"],
                              pre["input_type_ids"])
        got = {k: outputs[f"text_embedding/{signature}/{k}"]
               for k in ("pooled_output", "sequence_output", "input_mask")}
        assert got["sequence_output"].shape == (len(TEXTS_A), SEQ_LENGTH, 32)
        np.testing.assert_array_equal(got["input_mask"], pre["input_mask"])
        for key in ("pooled_output", "sequence_output"):
            np.testing.assert_allclose(got[key], want[key], rtol=0, atol=1e-5)
    row = responses["text_embedding_row"][0]["predictions"]
    np.testing.assert_allclose(row[1]["pooled_output"], outputs["text_embedding/serving_default/pooled_output"][1],
                               rtol=0, atol=1e-6)


def test_preprocessor_length_up_to_the_position_table(cased_vocab):
    import tensorflow as tf

    from spanbert_tf.tasks.pretraining.export import PreprocessorModule
    from spanbert_tf.tokenization import BertWordpieceTokenizer

    module = PreprocessorModule(BertWordpieceTokenizer(cased_vocab), seq_length=MAX_POSITIONS)
    long_text = " ".join(["word"] * 100)
    out = module.pair(text_a=tf.constant([long_text]), text_b=tf.constant(["short"]))
    assert out["input_word_ids"].shape == (1, MAX_POSITIONS)
    assert int(out["input_mask"].numpy().sum()) == MAX_POSITIONS  # trimmed to fill it exactly


def _truncate_seq_pair(a, b, budget):
    """google-research/bert run_classifier._truncate_seq_pair: pop from the longer (b on ties)."""
    a, b = list(a), list(b)
    while len(a) + len(b) > budget:
        (a if len(a) > len(b) else b).pop()
    return a, b


def _reference_packing(reference, texts_a, texts_b=None):
    """Reference wordpieces (HF BertTokenizerFast), truncated and packed as BERT does."""
    rows = {"input_ids": [], "attention_mask": [], "token_type_ids": []}
    pieces_a = reference(texts_a, add_special_tokens=False)["input_ids"]
    pieces_b = reference(texts_b, add_special_tokens=False)["input_ids"] if texts_b else None
    for i, a in enumerate(pieces_a):
        if pieces_b is None:
            a, b = a[: SEQ_LENGTH - 2], None
        else:
            a, b = _truncate_seq_pair(a, pieces_b[i], SEQ_LENGTH - 3)
        ids = [reference.cls_token_id] + a + [reference.sep_token_id]
        types = [0] * len(ids)
        if b is not None:
            ids += b + [reference.sep_token_id]
            types += [1] * (len(b) + 1)
        pad = SEQ_LENGTH - len(ids)
        rows["input_ids"].append(ids + [0] * pad)
        rows["attention_mask"].append([1] * len(ids) + [0] * pad)
        rows["token_type_ids"].append(types + [0] * pad)
    return rows


def test_preprocessor_matches_reference_tokenizer(fresh, cased_vocab):
    transformers = pytest.importorskip("transformers")
    outputs, _, responses = fresh
    reference = transformers.BertTokenizerFast(cased_vocab, do_lower_case=False, split_special_tokens=True)
    single = _reference_packing(reference, TEXTS_A)
    pair = _reference_packing(reference, TEXTS_A, TEXTS_B)
    # Single segments: exactly what the reference tokenizer itself packs.
    hf_single = reference(TEXTS_A, truncation=True, max_length=SEQ_LENGTH, padding="max_length")
    assert hf_single["input_ids"] == single["input_ids"]
    for signature, want in (("serving_default", single), ("pair", pair)):
        got = {k: outputs[f"preprocessor/{signature}/{k}"] for k in
               ("input_word_ids", "input_mask", "input_type_ids")}
        assert got["input_word_ids"].dtype == np.int32
        np.testing.assert_array_equal(got["input_word_ids"], want["input_ids"])
        np.testing.assert_array_equal(got["input_mask"], want["attention_mask"])
        np.testing.assert_array_equal(got["input_type_ids"], want["token_type_ids"])
    response, _ = responses["preprocessor_pair"]
    assert [r["input_word_ids"] for r in response["predictions"]] == pair["input_ids"]
    response, _ = responses["preprocessor_row"]
    assert [r["input_word_ids"] for r in response["predictions"]] == single["input_ids"][:2]


def test_rest_bodies_row_and_columnar(fresh, pretrained_model_dir):
    _, _, responses = fresh
    expected = _keras_encoder(pretrained_model_dir[1], *_encoder_inputs())
    row, _ = responses["encoder_row"]
    columnar, _ = responses["encoder_columnar"]
    assert set(row) == {"predictions"} and set(columnar) == {"outputs"}
    for i in range(2):
        for key in ("sequence_output", "pooled_output"):
            np.testing.assert_allclose(row["predictions"][i][key], expected[key][i], atol=1e-5, rtol=0)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(columnar["outputs"][key], expected[key], atol=1e-5, rtol=0)
    prediction = responses["pretrainer_row"][0]["predictions"][0]
    assert np.array(prediction["mlm_log_probs"]).shape == (1, 28996)
    assert responses["still_alive"][0] == row


@pytest.mark.parametrize("name,needle", [
    ("float_ids", "not a int32"),
    ("wrong_rank", "rank 2 expected"),
    ("too_long", f"position table ({MAX_POSITIONS} positions)"),
    ("id_outside_vocab", "input_word_ids must be < vocab_size (28996)"),
    ("missing_input", "missing ['input_mask', 'input_type_ids']"),
    ("ragged", "ragged"),
    ("text_not_string", "is not a string"),
    ("position_outside", "masked_lm_positions must be < the sequence length"),
    ("span_at_cls", "span_start must be >= 1"),
    ("span_past_end", "span_end must be < the sequence length - 1"),
    ("not_json", "not valid JSON"),
])
def test_bad_requests_fail_clearly(fresh, name, needle):
    response, expectation = fresh[2][name]
    assert expectation == "bad" and set(response) == {"error"}
    assert needle in response["error"], response["error"]


def test_direct_calls_with_wrong_dtype_or_rank_raise(fresh):
    errors = fresh[1]["direct_errors"]
    assert errors["float_ids"] and "int32" in errors["float_ids"]
    assert errors["rank_1"]


def test_saved_model_cli_lists_signatures(fresh):
    cli = fresh[1]["cli"]
    assert "signature_def['serving_default']" in cli["encoder"]
    for name in ("input_word_ids", "input_mask", "input_type_ids", "sequence_output", "pooled_output"):
        assert f"['{name}']" in cli["encoder"]
    assert "signature_def['pair']" in cli["preprocessor"] and "['text_b']" in cli["preprocessor"]
    for name in ("masked_lm_positions", "span_left_positions", "span_right_positions",
                 "span_relative_positions", "mlm_log_probs", "sbo_log_probs"):
        assert f"['{name}']" in cli["pretrainer"]
    assert "signature_def['top_k']" in cli["pretrainer"]
    for name in ("span_start", "span_end", "positions", "mlm_top_ids", "mlm_top_tokens",
                 "mlm_top_log_probs", "sbo_top_ids", "sbo_top_tokens", "sbo_top_log_probs"):
        assert f"['{name}']" in cli["pretrainer"]
    assert "signature_def['pair']" in cli["text_embedding"]
    assert "['pooled_output']" in cli["text_embedding"] and "['text_a']" in cli["text_embedding"]


def test_only_ops_the_model_server_has(fresh, exported):
    """TF Serving's model server has TF core + tensorflow-text 2.12.1's ops (serving_ops)."""
    from spanbert_tf.serving.ops import ops_outside_model_server

    ops = fresh[1]["ops"]
    for name in ("encoder", "preprocessor", "pretrainer", "text_embedding"):
        assert ops_outside_model_server(exported[1][name]) == [], name
    assert {"RegexSplitWithOffsets", "WordpieceTokenizeWithOffsets"} <= set(ops["preprocessor"])


def test_existing_version_is_not_overwritten(exported, pretrained_model_dir):
    from spanbert_tf.tasks.pretraining.export import export_saved_models

    with pytest.raises(FileExistsError, match="--overwrite"):
        export_saved_models(pretrained_model_dir[0], exported[0], seq_length=SEQ_LENGTH,
                            exports=["preprocessor"])
    with pytest.raises(ValueError, match="seq_length"):
        export_saved_models(pretrained_model_dir[0], exported[0], seq_length=MAX_POSITIONS + 1)
