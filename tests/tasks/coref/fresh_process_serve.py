"""Runs the coreference SavedModel in a FRESH process that imports only TensorFlow.

Used by tests/tasks/coref/test_export.py (not a test module itself):

    python tests/tasks/coref/fresh_process_serve.py EXPORT_DIR JOB_JSON OUTPUT_JSON

JOB_JSON: {"requests": [{"signature", "inputs": {name: str or [str]}}]}. Writes
{"results": [{output: list}], "errors": {label: "Type: message" or None},
"modules": [imported top-level modules], "non_core_ops": [ops core TensorFlow lacks]}
to OUTPUT_JSON.
"""

import json
import sys

import tensorflow as tf
from tensorflow.python.framework import op_def_registry
from tensorflow.python.tools import saved_model_utils


def non_core_ops(export_dir):
    """Ops of the SavedModel's graph and functions that core TensorFlow does not register
    (called before tensorflow_text is imported)."""
    graph = saved_model_utils.read_saved_model(export_dir).meta_graphs[0].graph_def
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops |= {node.op for node in function.node_def}
    return sorted(op for op in ops if op_def_registry.get(op) is None)


def main(export_dir, job_file, output_file):
    with open(job_file) as f:
        job = json.load(f)
    extra_ops = non_core_ops(export_dir)
    import tensorflow_text  # noqa: F401  (registers the tokenizer's ops)

    loaded = tf.saved_model.load(export_dir)
    results = []
    for request in job["requests"]:
        feed = {k: tf.constant(v, tf.string) for k, v in request["inputs"].items()}
        out = loaded.signatures[request["signature"]](**feed)
        results.append({k: [x.decode() if isinstance(x, bytes) else int(x)
                            for x in v.numpy().tolist()] for k, v in out.items()})
    serve = loaded.signatures["serving_default"]
    with_metadata = loaded.signatures["with_metadata"]
    bad = {
        "no_sentences": lambda: serve(sentences=tf.constant([], tf.string)),
        "no_words": lambda: serve(sentences=tf.constant([" \t", ""])),
        "int_sentences": lambda: serve(sentences=tf.constant([1, 2])),
        "rank_2": lambda: serve(sentences=tf.constant([["Anna came."]])),
        "speakers_mismatch": lambda: with_metadata(
            sentences=tf.constant(["Anna came.", "She sat."]), speakers=tf.constant(["A"]),
            genre=tf.constant("nw")),
    }
    errors = {}
    for label, call in bad.items():
        try:
            call()
            errors[label] = None
        except (TypeError, ValueError, tf.errors.InvalidArgumentError) as e:
            errors[label] = f"{type(e).__name__}: {' '.join(str(e).split())[:2000]}"
    modules = sorted({name.split(".")[0] for name in sys.modules})
    with open(output_file, "w") as f:
        json.dump({"results": results, "errors": errors, "modules": modules,
                   "non_core_ops": extra_ops}, f)


if __name__ == "__main__":
    main(*sys.argv[1:4])
