"""Runs the entity SavedModel in a FRESH process that imports only TensorFlow (+ its text ops).

Used by tests/tasks/ner/test_export.py (not a test module itself):

    python tests/tasks/ner/fresh_process_serve.py EXPORT_DIR JOB_JSON OUTPUT_JSON

JOB_JSON: {"texts": [str], "bad": {label: str}}. Writes {"results": [[[start, end, type,
score, text], ...] per text], "errors": {label: "Type: message" or None}, "modules": [the
imported top-level modules]} to OUTPUT_JSON.
"""

import json
import sys

import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer's ops)


def main(export_dir, job_file, output_file):
    with open(job_file) as f:
        job = json.load(f)
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    results = []
    for text in job["texts"]:
        out = serve(text=tf.constant(text))
        rows = zip(*(out[k].numpy().tolist() for k in
                     ("start_char", "end_char", "type", "score", "text")))
        results.append([[a, b, t.decode(), s, x.decode()] for a, b, t, s, x in rows])
    errors = {}
    for label, text in job["bad"].items():
        try:
            serve(text=tf.constant(text))
            errors[label] = None
        except tf.errors.InvalidArgumentError as e:
            errors[label] = f"{type(e).__name__}: {' '.join(str(e).split())[:500]}"
    modules = sorted({name.split(".")[0] for name in sys.modules})
    with open(output_file, "w") as f:
        json.dump({"results": results, "errors": errors, "modules": modules}, f)


if __name__ == "__main__":
    main(*sys.argv[1:4])
