"""keras-hub Tasks → TF Serving SavedModels (preprocessing inside), reloaded in a fresh process:
the same outputs as the Tasks' Python `predict` on raw strings."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import keras
import keras_hub

import spanbert_tf.presets  # noqa: F401
from spanbert_tf.hub import SpanBertQuestionAnswerer
from spanbert_tf.presets.export import export_task
from spanbert_tf.tasks.squad import reader as squad_reader
from tests.presets.conftest import mrpc_pairs

V2_FILE = "squad/squad-v2.0-dev-subset_haystack-small.json"

SERVE = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the WordPiece ops)
    args = json.load(open(sys.argv[1]))
    served = tf.saved_model.load(args["export_dir"]).signatures["serving_default"]
    out = served(**{k: tf.constant(v) for k, v in args["inputs"].items()})
    np.savez(args["out"], **{k: np.array([x.decode("utf-8") for x in v.numpy()])
                             if v.dtype == tf.string else v.numpy() for k, v in out.items()})
""")


def _serve_in_fresh_process(export_dir, inputs, tmp_path):
    """The export's serving_default outputs, computed by a new Python process."""
    args = {"export_dir": export_dir, "inputs": inputs, "out": str(tmp_path / "served.npz")}
    (tmp_path / "args.json").write_text(json.dumps(args))
    run = subprocess.run([sys.executable, "-c", SERVE, str(tmp_path / "args.json")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    return dict(np.load(tmp_path / "served.npz"))


def test_exported_text_classifier_serves_raw_pairs_as_python_predict(
        tiny_cased_preset, shared_data, tmp_path):
    keras.utils.set_random_seed(2)
    classifier = keras_hub.models.TextClassifier.from_preset(tiny_cased_preset[0], num_classes=3)
    classifier.preprocessor.sequence_length = 64
    classifier.compile(jit_compile=False)   # XLA compilation costs more than this CPU predict
    texts_a, texts_b, _ = mrpc_pairs(shared_data, 24)
    want = classifier.predict((np.array(texts_a), np.array(texts_b)), verbose=0)
    export_dir = export_task(classifier, tmp_path / "classifier")
    served = _serve_in_fresh_process(export_dir, {"sentence1": texts_a, "sentence2": texts_b},
                                     tmp_path)
    np.testing.assert_allclose(served["logits"], want, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(served["label_id"], want.argmax(-1))
    np.testing.assert_allclose(served["probabilities"],
                               np.asarray(keras.ops.softmax(want, axis=-1)), atol=1e-6)
    with pytest.raises(FileExistsError):
        export_task(classifier, tmp_path / "classifier")


@pytest.mark.slow
def test_exported_question_answerer_serves_raw_questions_as_python_predict(
        tiny_squad_preset, shared_data, tmp_path):
    answerer = SpanBertQuestionAnswerer.from_preset(tiny_squad_preset[1])
    examples, _ = squad_reader.read_squad_json(str(shared_data / V2_FILE), is_training=False,
                                               version_2_with_negative=True)
    examples = examples[::20]   # 32 questions over the whole subset
    questions = [e.question_text for e in examples]
    contexts = [e.context_text for e in examples]
    want = answerer.predict((questions, contexts))
    assert 0 < sum(bool(a) for a in want) < len(examples)
    export_dir = export_task(answerer, tmp_path / "qa")
    served = _serve_in_fresh_process(export_dir, {"question": questions, "context": contexts},
                                     tmp_path)
    assert list(served["answer"]) == list(want)
