"""`SpanBertQuestionAnswerer`: a run_squad.py model dir → QA task preset → `from_preset` →
the same answers, n-best lists and null odds as run_squad.py on the real SQuAD 2.0 dev subset."""

import json
import os

import numpy as np
import pytest

import keras
import keras_hub

import spanbert_tf.hub  # noqa: F401  (registers every SpanBERT keras-hub class)
from spanbert_tf.hub import SpanBertQuestionAnswerer, SpanBertQuestionAnswererPreprocessor
from spanbert_tf.tasks.squad import reader as squad_reader
from tests.presets.conftest import SQUAD_SETTINGS

V2_FILE = "squad/squad-v2.0-dev-subset_haystack-small.json"
V1_FILE = "squad/DERIVED_squad-v1.1-format_from_haystack-small_answerable.json"


@pytest.fixture(scope="module")
def squad_run(tiny_squad_preset, tmp_path_factory, shared_data):
    """(model dir, run_squad.py prediction dir, QA task preset, conversion report)."""
    from spanbert_tf.tasks.squad.run import SquadSettings, run_squad

    model_dir, preset, report = tiny_squad_preset
    out = tmp_path_factory.mktemp("qa") / "out"
    run_squad(SquadSettings(init_checkpoint=model_dir, output_dir=str(out), do_predict=True,
                            predict_file=str(shared_data / V2_FILE), predict_batch_size=32,
                            show_progress=False, **SQUAD_SETTINGS))
    return model_dir, out, preset, report


def test_squad_model_dir_converts_to_a_question_answerer_preset(squad_run):
    _, _, preset, report = squad_run
    assert report.do_lower_case is False
    for name in ("config.json", "model.weights.h5", "tokenizer.json", "task.json",
                 "task.weights.h5", "preprocessor.json", "metadata.json"):
        assert os.path.isfile(os.path.join(preset, name)), name
    task = json.load(open(os.path.join(preset, "task.json")))
    assert task["registered_name"].startswith("spanbert_tf>SpanBertQuestionAnswerer ")
    answerer = SpanBertQuestionAnswerer.from_preset(preset)
    assert type(answerer.preprocessor) is SpanBertQuestionAnswererPreprocessor
    # run_squad.py's settings travel with the preset.
    p = answerer.preprocessor
    assert (p.sequence_length, p.doc_stride, p.max_query_length) == (128, 64, 32)
    assert (answerer.n_best_size, answerer.max_answer_length, answerer.version_2_with_negative,
            answerer.null_score_diff_threshold) == (20, 30, True, 0.5)


def test_predictions_equal_run_squad_on_the_squad2_dev_subset(squad_run, shared_data):
    _, out, preset, _ = squad_run
    examples, _ = squad_reader.read_squad_json(str(shared_data / V2_FILE), is_training=False,
                                               version_2_with_negative=True)
    answerer = SpanBertQuestionAnswerer.from_preset(preset)
    questions = [e.question_text for e in examples]
    contexts = [e.context_text for e in examples]
    preds, nbest, null_odds = answerer.predict_answers(
        questions, contexts, question_ids=[e.qas_id for e in examples])

    want_preds = json.loads((out / "predictions.json").read_text())
    want_nbest = json.loads((out / "nbest_predictions.json").read_text())
    want_odds = json.loads((out / "null_odds.json").read_text())
    assert len(want_preds) == len(examples) == 626
    assert dict(preds) == want_preds
    # A real mix of answers and abstentions, so the comparison is not trivially "" == "".
    answered = sum(1 for v in want_preds.values() if v)
    assert 50 < answered < 600, answered
    for qid, entries in want_nbest.items():
        assert [e["text"] for e in nbest[qid]] == [e["text"] for e in entries], qid
        assert [(e["start_char"], e["end_char"]) for e in nbest[qid]] == \
            [(e["start_char"], e["end_char"]) for e in entries], qid
        np.testing.assert_allclose([e["probability"] for e in nbest[qid]],
                                   [e["probability"] for e in entries], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose([null_odds[q] for q in want_odds], list(want_odds.values()),
                               rtol=1e-5, atol=1e-5)

    # keras-style predict on raw strings gives the same answers.
    some = slice(0, 40)
    got = answerer.predict((questions[some], contexts[some]))
    assert list(got) == [want_preds[e.qas_id] for e in examples[some]]


def test_preprocessor_windows_and_labels_in_tf_data(squad_run, shared_data):
    """Raw SQuAD v1.1 answers → run_squad.py's training windows, eagerly and inside tf.data."""
    import tensorflow as tf

    from spanbert_tf.tasks.squad import features as squad_features

    _, _, preset, _ = squad_run
    preprocessor = SpanBertQuestionAnswererPreprocessor.from_preset(preset)
    assert type(preprocessor) is SpanBertQuestionAnswererPreprocessor
    examples, _ = squad_reader.read_squad_json(str(shared_data / V1_FILE), is_training=True,
                                               version_2_with_negative=False,
                                               first_answer_only=True)
    examples = examples[:24]
    want = squad_features.convert_examples_to_features(
        examples, preprocessor.wordpiece(), 128, 64, 32, is_training=True)
    x = ([e.question_text for e in examples], [e.context_text for e in examples])
    y = ([e.answers[0]["text"] for e in examples],
         [e.answers[0]["answer_start"] for e in examples])
    eager_x, eager_y = preprocessor(x, y)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(24).map(preprocessor)
    graph_x, graph_y = next(iter(ds))
    for got_x, got_y in ((eager_x, eager_y), (graph_x, graph_y)):
        np.testing.assert_array_equal(got_x["token_ids"], want.input_ids)
        np.testing.assert_array_equal(got_x["segment_ids"], want.segment_ids)
        np.testing.assert_array_equal(got_x["padding_mask"], want.input_mask)
        np.testing.assert_array_equal(got_y["start_logits"], want.start_positions)
        np.testing.assert_array_equal(got_y["end_logits"], want.end_positions)
    assert (want.start_positions > 0).sum() >= 24   # every answer lands in some window
    with pytest.raises(ValueError, match="outside its context"):
        preprocessor((["Q?"], ["short"]), (["far away"], [100]))


def test_fine_tune_from_a_pretraining_preset_on_raw_squad_questions(tiny_cased_preset, shared_data):
    """A pretraining preset → a fresh QA head; `fit` on raw (question, context) + (answer text,
    offset) lowers the loss (the preprocessor runs in tf.data)."""
    keras.utils.set_random_seed(5)
    answerer = SpanBertQuestionAnswerer.from_preset(tiny_cased_preset[0])
    assert type(answerer.preprocessor) is SpanBertQuestionAnswererPreprocessor
    answerer.preprocessor.sequence_length, answerer.preprocessor.doc_stride = 128, 64
    examples, _ = squad_reader.read_squad_json(str(shared_data / V1_FILE), is_training=True,
                                               version_2_with_negative=False,
                                               first_answer_only=True)
    examples = examples[:16]
    x = (np.array([e.question_text for e in examples]), np.array([e.context_text for e in examples]))
    y = (np.array([e.answers[0]["text"] for e in examples]),
         np.array([e.answers[0]["answer_start"] for e in examples]))
    # jit_compile=False: XLA compilation costs more than these few CPU steps.
    answerer.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    history = answerer.fit(x, y, batch_size=8, epochs=5, verbose=0).history["loss"]
    assert history[-1] < 0.5 * history[0], history
