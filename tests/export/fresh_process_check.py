"""Runs exported SavedModels in a FRESH process that imports only TensorFlow.

Used by tests/export/test_saved_model.py (not a test module itself):

    python tests/export/fresh_process_check.py job.json

job.json: {"export_dir", "inputs" (npz of signature inputs, keys "<model>/<input>" for
serving_default, "<model>:<signature>/<input>" for another signature), "texts_a", "texts_b",
"rest": [{"model", "signature", "body"}], "output_npz", "output_json"}.
Writes every signature's outputs to output_npz ("<model>/<signature>/<output>") and
REST responses, saved_model_cli listings, direct-call errors and the imported
modules to output_json.
"""

import contextlib
import importlib.util
import io
import json
import os
import sys

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the preprocessor's tokenizer ops)
from tensorflow.python.tools import saved_model_cli, saved_model_utils

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.join(HERE, "..", "..", "spanbert_tf", "serving", "client.py")


def load_client():
    spec = importlib.util.spec_from_file_location("serving_client_under_test", CLIENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _storable(array):
    """String outputs as fixed-width bytes (loadable without pickle)."""
    return array.astype(bytes) if array.dtype == object else array


def main(job_file):
    with open(job_file) as f:
        job = json.load(f)
    client = load_client()
    models = {
        name: tf.saved_model.load(os.path.join(job["export_dir"], name, "1"))
        for name in ("encoder", "preprocessor", "pretrainer", "text_embedding")
    }
    inputs = dict(np.load(job["inputs"]))
    outputs, report = {}, {"rest": [], "cli": {}, "direct_errors": {}}
    feeds = {}
    for key, value in inputs.items():
        target, input_name = key.split("/", 1)
        model, _, signature = target.partition(":")
        feeds.setdefault((model, signature or "serving_default"), {})[input_name] = tf.constant(value)
    for (name, signature), feed in feeds.items():
        for key, value in models[name].signatures[signature](**feed).items():
            outputs[f"{name}/{signature}/{key}"] = _storable(value.numpy())
    for name in ("preprocessor", "text_embedding"):
        text = models[name].signatures["serving_default"](text_a=tf.constant(job["texts_a"]))
        pair = models[name].signatures["pair"](text_a=tf.constant(job["texts_a"]),
                                               text_b=tf.constant(job["texts_b"]))
        for signature, result in (("serving_default", text), ("pair", pair)):
            for key, value in result.items():
                outputs[f"{name}/{signature}/{key}"] = value.numpy()
    for request in job["rest"]:
        response = client.predict_rest(models[request["model"]], request["body"])
        report.setdefault("rest_bytes", []).append(len(json.dumps(response)))
        report["rest"].append(response)
    # Direct calls with a wrong dtype / rank must raise, not kill the process.
    encoder = models["encoder"].signatures["serving_default"]
    for label, feed in (
        ("float_ids", dict(input_word_ids=tf.constant([[1.5, 2.0]]), input_mask=tf.ones([1, 2], tf.int32),
                           input_type_ids=tf.zeros([1, 2], tf.int32))),
        ("rank_1", dict(input_word_ids=tf.constant([1, 2]), input_mask=tf.constant([1, 1]),
                        input_type_ids=tf.constant([0, 0]))),
    ):
        try:
            encoder(**feed)
            report["direct_errors"][label] = None
        except (TypeError, ValueError, tf.errors.InvalidArgumentError) as e:
            report["direct_errors"][label] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
    for name in models:
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            saved_model_cli._show_all(os.path.join(job["export_dir"], name, "1"))  # `show --all`
        report["cli"][name] = buffer.getvalue()
        graph = saved_model_utils.read_saved_model(os.path.join(job["export_dir"], name, "1")).meta_graphs[0]
        ops = {node.op for node in graph.graph_def.node}
        for function in graph.graph_def.library.function:
            ops |= {node.op for node in function.node_def}
        report.setdefault("ops", {})[name] = sorted(ops)
    report["imported"] = sorted(
        m for m in sys.modules if m.split(".")[0] in ("keras_hub", "spanbert_tf", "keras_nlp")
    )
    np.savez(job["output_npz"], **outputs)
    with open(job["output_json"], "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main(sys.argv[1])
