"""TF Serving REST :predict mapping (row / columnar, b64, errors) on small tf.functions."""

import base64
import json

import pytest
import tensorflow as tf

from spanbert_tf.serving import client as serving_client


class _Toy(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="ids"),
                                  tf.TensorSpec([None], tf.string, name="text")])
    def two(self, ids, text):
        return {"total": tf.reduce_sum(ids, axis=1), "length": tf.strings.length(text)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def one(self, text):
        return {"upper": tf.strings.upper(text)}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    module = _Toy()
    path = str(tmp_path_factory.mktemp("toy"))
    tf.saved_model.save(module, path, signatures={"serving_default": module.two.get_concrete_function(),
                                                  "one": module.one.get_concrete_function()})
    return tf.saved_model.load(path)


def test_row_and_columnar(toy):
    row = serving_client.predict_rest(
        toy, json.dumps({"instances": [{"ids": [1, 2], "text": "ab"}, {"ids": [3, 4], "text": "xyz"}]}))
    assert row == {"predictions": [{"total": 3, "length": 2}, {"total": 7, "length": 3}]}
    columnar = serving_client.predict_rest(toy, {"inputs": {"ids": [[1, 2], [3, 4]], "text": ["ab", "xyz"]}})
    assert columnar == {"outputs": {"total": [3, 7], "length": [2, 3]}}


def test_single_input_bare_values_b64_and_signature_name(toy):
    b64 = base64.b64encode(b"hi").decode()
    response = serving_client.predict_rest(
        toy, json.dumps({"signature_name": "one", "instances": ["ab", {"b64": b64}]}))
    assert response == {"predictions": ["AB", "HI"]}
    assert serving_client.predict_rest(toy, {"inputs": ["q"]}, "one") == {"outputs": ["Q"]}


@pytest.mark.parametrize("body,needle", [
    ({"instances": [{"ids": [1.5], "text": "a"}]}, "JSON value 1.5 is not a int32"),
    ({"instances": [{"ids": [1], "text": 3}]}, "JSON value 3 is not a string"),
    ({"inputs": {"ids": [1, 2], "text": ["a"]}}, "rank 2 expected, got 1"),
    ({"inputs": {"ids": [[1, 2], [3]], "text": ["a", "b"]}}, "ragged"),
    ({"inputs": {"ids": [[1]]}}, "missing ['text']"),
    ({"instances": [{"ids": [1], "text": "a"}, {"ids": [1]}]}, "same inputs"),
    ({"instances": [], "inputs": {}}, "exactly one of 'instances' or 'inputs'"),
    ({"signature_name": "nope", "inputs": {}}, "signature 'nope' not found"),
    ({"inputs": {"ids": [[True]], "text": ["a"]}}, "JSON value True is not a int32"),
])
def test_bad_requests_give_an_error_not_an_exception(toy, body, needle):
    response = serving_client.predict_rest(toy, json.dumps(body))
    assert set(response) == {"error"} and needle in response["error"], response


def test_error_message_picks_the_assertion_line():
    error = tf.errors.InvalidArgumentError(
        None, None, "Graph execution error:\n\nDetected at node x\n<stack traces unavailable>\n"
        "assertion failed: [sequence too long] [Condition x <= y]\n\t [[{{node a}}]]")
    assert serving_client.error_message(error) == "assertion failed: [sequence too long] [Condition x <= y]"
