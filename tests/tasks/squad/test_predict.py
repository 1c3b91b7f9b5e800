"""n-best / null-score postprocessing and text recovery, on hand-built logits."""

import json

import numpy as np
import pytest

from spanbert_tf.tasks.squad import reader as squad
from spanbert_tf.tasks.squad import features as squad_features
from spanbert_tf.tasks.squad import predict as squad_predict
from spanbert_tf.tokenization import BertWordpieceTokenizer

CONTEXT = "The Normans (Norman: Nourmands) were led by Rollo, a Viking, in 911."


@pytest.fixture(scope="module")
def cased(cased_vocab):
    return BertWordpieceTokenizer(cased_vocab)


def _setup(tokenizer, max_seq_length=64):
    ex = squad.make_example("q1", "Who led the Normans?", CONTEXT, [], False, False,
                            squad.ReadStats(), "t")
    feats = squad_features.convert_examples_to_features([ex], tokenizer, max_seq_length, 128,
                                                        64, is_training=False)
    tokens = tokenizer.convert_ids_to_tokens(feats.input_ids[0][:feats.num_tokens[0]])
    return ex, feats, tokens


def _logits(feats, start=(), end=()):
    s = np.full(feats.input_ids.shape, -20.0, np.float32)
    e = np.full(feats.input_ids.shape, -20.0, np.float32)
    for i, v in start:
        s[0, i] = v
    for i, v in end:
        e[0, i] = v
    return s, e


def test_best_span_text_offsets_and_nbest(cased):
    ex, feats, tokens = _setup(cased)
    rollo = tokens.index("Roll")          # "Rollo," → Roll ##o ,
    assert tokens[rollo + 1:rollo + 3] == ["##o", ","]
    viking = tokens.index("Viking")
    s, e = _logits(feats, start=[(rollo, 3.0), (viking, 2.0)],
                   end=[(rollo + 1, 3.0), (viking, 1.0)])
    preds, nbest, odds = squad_predict.make_predictions([ex], feats, s, e, cased)
    assert preds == {"q1": "Rollo"} and odds == {}
    top = nbest["q1"]
    assert [(n["text"], n["start_logit"], n["end_logit"]) for n in top[:3]] == [
        ("Rollo", 3.0, 3.0), ("Rollo, a Viking", 3.0, 1.0), ("Viking", 2.0, 1.0)]
    assert CONTEXT[top[0]["start_char"]:top[0]["end_char"]] == "Rollo"
    assert CONTEXT[top[1]["start_char"]:top[1]["end_char"]] == "Rollo, a Viking"
    assert sum(n["probability"] for n in top) == pytest.approx(1.0)
    assert top[0]["probability"] == pytest.approx(
        np.exp(6.0) / sum(np.exp(n["start_logit"] + n["end_logit"]) for n in top))
    assert len(top) == 20 and len({n["text"] for n in top}) == 20


def test_invalid_spans_are_skipped(cased):
    ex, feats, tokens = _setup(cased)
    rollo = tokens.index("Roll")
    # Best start is in the question, best end precedes the start, or the span is too long.
    s, e = _logits(feats, start=[(2, 9.0), (rollo, 1.0)], end=[(rollo - 1, 9.0), (rollo + 1, 0.5)])
    preds, _, _ = squad_predict.make_predictions([ex], feats, s, e, cased)
    assert preds["q1"] == "Rollo"
    preds, nbest, _ = squad_predict.make_predictions([ex], feats, s, e, cased,
                                                     max_answer_length=1)
    assert "Rollo" not in [n["text"] for n in nbest["q1"]]
    # n_best_size 1: the only candidates are the top start (question) x top end → none.
    preds, nbest, _ = squad_predict.make_predictions([ex], feats, s, e, cased, n_best_size=1)
    assert preds["q1"] == "empty" and nbest["q1"][0]["start_char"] == -1


def test_v2_null_score_and_threshold(cased):
    ex, feats, tokens = _setup(cased)
    rollo = tokens.index("Roll")
    s, e = _logits(feats, start=[(0, 2.5), (rollo, 2.0)], end=[(0, 1.5), (rollo + 1, 1.0)])
    preds, nbest, odds = squad_predict.make_predictions([ex], feats, s, e, cased,
                                                        version_2_with_negative=True)
    # null = 2.5 + 1.5 = 4; best span 2 + 1 = 3 → odds 1 > 0 → no answer.
    assert odds["q1"] == pytest.approx(1.0) and preds["q1"] == ""
    assert nbest["q1"][0]["text"] == "" and nbest["q1"][1]["text"] == "Rollo"
    preds, _, _ = squad_predict.make_predictions(
        [ex], feats, s, e, cased, version_2_with_negative=True, null_score_diff_threshold=1.5)
    assert preds["q1"] == "Rollo"
    assert squad_predict.apply_null_threshold(nbest, odds, 0.99) == {"q1": ""}
    assert squad_predict.apply_null_threshold(nbest, odds, 1.0) == {"q1": "Rollo"}


def test_get_final_text_hand_examples():
    # The BERT docstring case: lower-cased pieces back onto the original casing.
    assert squad_predict.get_final_text("steve smith", "Steve Smith's", True) == (
        "Steve Smith", 0, 11)
    assert squad_predict.get_final_text("1895", "(1895-1943).", False) == ("1895", 1, 5)
    # Not found → the whole original span.
    assert squad_predict.get_final_text("xyz", "(1895-1943).", False) == ("(1895-1943).", 0, 12)


def test_write_prediction_files(tmp_path):
    paths = squad_predict.write_prediction_files(
        str(tmp_path), {"q": "a"}, {"q": [{"text": "a", "probability": 1.0}]}, {"q": -1.0})
    assert sorted(paths) == ["nbest", "null_odds", "predictions"]
    assert json.loads((tmp_path / "null_odds.json").read_text()) == {"q": -1.0}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]
