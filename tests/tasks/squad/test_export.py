"""In-graph QA decoding (squad_export.SquadQAModule) against the Python path, with a
deterministic stand-in model whose logits point at chosen wordpieces."""

import numpy as np
import pytest

from spanbert_tf.tasks.squad import reader as squad
from spanbert_tf.tasks.squad import export as squad_export
from spanbert_tf.tasks.squad import features as squad_features
from spanbert_tf.tasks.squad import predict as squad_predict
from spanbert_tf.tokenization import BertWordpieceTokenizer

tf = pytest.importorskip("tensorflow")

CASES = [
    # (question, context, start piece, end piece): whitespace runs inside the answer,
    # a non-ASCII prefix (character vs byte offsets), a sub-word answer, a late window.
    ("Who went?", "Café Müller: Rollo and  his\tmen went to France.", "and", "men"),
    ("When?", "He lived (1895-1943). Then nothing happened at all.", "1895", "1895"),
    ("Where?", " ".join(["filler"] * 60) + " the Normans reached Sicily in 1061.",
     "Sicily", "Sicily"),
]


@pytest.fixture(scope="module")
def cased(cased_vocab):
    return BertWordpieceTokenizer(cased_vocab)


class StandInModel:
    """Logits 5 at the chosen pieces, a small position-dependent ramp elsewhere.

    The chosen ids are variables, so one traced module serves every case.
    """

    def __init__(self):
        self.start_id = tf.Variable(0, dtype=tf.int32)
        self.end_id = tf.Variable(0, dtype=tf.int32)

    def point_at(self, start_id, end_id):
        self.start_id.assign(start_id)
        self.end_id.assign(end_id)
        return self

    @staticmethod
    def _logits(token_ids, target):
        pos = tf.cast(tf.range(tf.shape(token_ids)[1]), tf.float32)[None, :]
        return tf.where(tf.equal(token_ids, target), 5.0, 0.0) - 0.001 * pos

    def __call__(self, inputs, training=False):
        ids = tf.cast(tf.convert_to_tensor(inputs["token_ids"]), tf.int32)
        return {"start_logits": self._logits(ids, self.start_id),
                "end_logits": self._logits(ids, self.end_id)}


@pytest.fixture(scope="module")
def stand_in():
    return StandInModel()


@pytest.fixture(scope="module")
def modules(cased, stand_in):
    """{version_2: SquadQAModule} on one stand-in model (each traced once)."""
    return {v2: squad_export.SquadQAModule(stand_in, cased, 32, 8, 16,
                                           version_2_with_negative=v2) for v2 in (False, True)}


@pytest.mark.parametrize("version_2", [False, True])
def test_in_graph_decoding_matches_python_path(cased, stand_in, modules, version_2):
    model, module = stand_in, modules[version_2]
    for question, context, start_piece, end_piece in CASES:
        model.point_at(*cased.convert_tokens_to_ids([start_piece, end_piece]))
        ex = squad.make_example("q", question, context, [], False, False, squad.ReadStats(), "t")
        feats = squad_features.convert_examples_to_features([ex], cased, 32, 8, 16)
        out = model(feats.model_inputs())
        preds, nbest, odds = squad_predict.make_predictions(
            [ex], feats, out["start_logits"].numpy(), out["end_logits"].numpy(), cased,
            version_2_with_negative=version_2)
        got = module.serve(tf.constant([question]), tf.constant([context]))
        best = next(e for e in nbest["q"] if e["text"])
        assert got["answer"][0].numpy().decode() == preds["q"] == best["text"]
        assert (int(got["start_char"][0]), int(got["end_char"][0])) == (
            best["start_char"], best["end_char"])
        assert float(got["score"][0]) == pytest.approx(best["start_logit"] + best["end_logit"])
        if version_2:
            assert float(got["null_score_diff"][0]) == pytest.approx(odds["q"], abs=1e-5)


def test_in_graph_decoding_texts_and_null_answer(cased, stand_in, modules):
    question, context, _, _ = CASES[0]
    stand_in.point_at(*cased.convert_tokens_to_ids(["and", "men"]))
    got = modules[False].serve(tf.constant([question, "When?"]),
                               tf.constant([context, CASES[1][1]]))
    # Text with whitespace runs collapsed (official); offsets delimit the original span.
    # Without "and"/"men" a SQuAD 1.1 model still answers: the ramp's first context piece.
    assert got["answer"].numpy().tolist() == [b"and his men", b"He"]
    start, end = int(got["start_char"][0]), int(got["end_char"][0])
    assert context[start:end] == "and  his\tmen"
    # Null answer: [CLS] scores highest; v2.0 answers "" unless the threshold allows.
    stand_in.point_at(cased.cls_id, cased.cls_id)
    got = modules[True].serve(tf.constant([question]), tf.constant([context]))
    assert got["answer"].numpy().tolist() == [b""] and int(got["start_char"][0]) == -1
    assert float(got["null_score_diff"][0]) > 5.0
    got = modules[True].serve_with_threshold(tf.constant([question]), tf.constant([context]),
                                             tf.constant(100.0))
    assert got["answer"].numpy()[0] != b""


class HashModel:
    """Deterministic logits of (token id, position): varied answers on real text."""

    def __call__(self, inputs, training=False):
        ids = tf.cast(tf.convert_to_tensor(inputs["token_ids"]), tf.float32)
        pos = tf.cast(tf.range(tf.shape(ids)[1]), tf.float32)[None, :]
        return {"start_logits": 4.0 * tf.sin(ids * 0.7 + pos * 0.13),
                "end_logits": 4.0 * tf.cos(ids * 0.3 + pos * 0.07)}


def test_in_graph_path_matches_python_on_real_squad(cased, shared_data):
    """Windows, max-context, answer selection and text of the serving graph equal the
    Python path's on every question of the real SQuAD 2.0 dev subset (short windows:
    3,131 windows for 626 questions)."""
    examples = squad.read_squad_json(
        str(shared_data / "squad/squad-v2.0-dev-subset_haystack-small.json"), False, True)[0]
    feats = squad_features.convert_examples_to_features(examples, cased, 64, 24, 16)
    assert len(feats) > 3000
    model = HashModel()
    out = model(feats.model_inputs())
    preds, nbest, odds = squad_predict.make_predictions(
        examples, feats, out["start_logits"].numpy(), out["end_logits"].numpy(), cased,
        version_2_with_negative=True)
    module = squad_export.SquadQAModule(model, cased, 64, 24, 16, version_2_with_negative=True)
    questions = tf.constant([e.question_text for e in examples])
    contexts = tf.constant([e.context_text for e in examples])
    got = module.serve(questions, contexts)
    assert [a.decode() for a in got["answer"].numpy()] == [preds[e.qas_id] for e in examples]
    np.testing.assert_allclose(got["null_score_diff"].numpy(),
                               [odds[e.qas_id] for e in examples], atol=1e-5)
    # A threshold between the null-odds: null and non-null answers alike.
    threshold = float(np.median(list(odds.values()))) + 1e-3
    got = module.serve_with_threshold(questions, contexts, tf.constant(threshold))
    answers = [a.decode() for a in got["answer"].numpy()]
    want = squad_predict.apply_null_threshold(nbest, odds, threshold)
    assert answers == [want[e.qas_id] for e in examples]
    assert 200 < sum(map(bool, answers)) < len(examples) - 200
    # The best non-null span of every question (the threshold lets every span through).
    forced = module.serve_with_threshold(questions, contexts, tf.constant(1e9))
    want = []
    for e in examples:
        best = next(x for x in nbest[e.qas_id] if x["text"])
        want.append((best["text"], best["start_char"], best["end_char"]))
    assert list(zip([a.decode() for a in forced["answer"].numpy()],
                    forced["start_char"].numpy().tolist(),
                    forced["end_char"].numpy().tolist())) == want
