"""Fill in a masked span with the exported SavedModels only (TensorFlow + tensorflow-text).

Loads `<export_dir>/preprocessor/<version>` and `<export_dir>/pretrainer/<version>`,
sends TF Serving REST `:predict` bodies through them (the same JSON a client would
POST to the model server), masks `--span` inside `--text` and prints, for each
masked wordpiece, the top predictions of the MLM head (sees the whole context)
and of the SBO head (sees only the two span boundaries + the offset), then each
head's joint best string (`joint_best_fill`: the most probable top-k combination
that forms text, wordpieces glued into words).

It imports neither keras, keras_hub nor spanbert_tf: run it as a file,

    python spanbert_tf/tasks/pretraining/demo_fill_span.py --export_dir=runs/demo/export \
        --text="The tower was designed by the engineer Gustave Eiffel ." --span="Gustave Eiffel"
"""

import argparse
import contextlib
import glob
import importlib.util
import json
import os
import sys

import numpy as np


@contextlib.contextmanager
def _quiet_import(verbose):
    """TensorFlow's start-up lines off (this file imports no spanbert_tf, so it cannot use
    spanbert_tf.quiet: a copy of its few lines on purpose)."""
    if verbose:
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _load_serving_client():
    package = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(package, "serving", "client.py")
    spec = importlib.util.spec_from_file_location("spanbert_serving_client", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fail(message):
    print(f"demo_fill_span: error: {message}", file=sys.stderr)
    sys.exit(1)


def _post(client, loaded, body, what, signature="serving_default"):
    response = client.predict_rest(loaded, json.dumps(body), signature)
    if "error" in response:
        _fail(f"{what} rejected the request: {response['error']}")
    return response


def fill_span(export_dir, text, span, version=1, top_k=5, verbose=False):
    """Masks `span` in `text`, returns {"tokens", "span_tokens", "mlm", "sbo"} top-k lists."""
    if not span or span not in text:
        _fail(f"--span {span!r} does not occur in --text {text!r}")
    pre_dir = os.path.join(export_dir, "preprocessor", str(version))
    pt_dir = os.path.join(export_dir, "pretrainer", str(version))
    for d in (pre_dir, pt_dir):
        if not os.path.isfile(os.path.join(d, "saved_model.pb")):
            _fail(f"no SavedModel at {d} (run export_saved_model.py first)")
    with _quiet_import(verbose):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the tokenizer ops the preprocessor uses)

    client = _load_serving_client()
    vocab_files = glob.glob(os.path.join(pre_dir, "assets", "*.txt"))
    if len(vocab_files) != 1:
        _fail(f"{pre_dir}/assets should hold exactly one vocabulary file, found {vocab_files}")
    with open(vocab_files[0], encoding="utf-8") as f:
        vocab = [line.rstrip("\r\n") for line in f]
    ids_of = {t: i for i, t in reversed(list(enumerate(vocab)))}
    cls_id, sep_id, mask_id = ids_of["[CLS]"], ids_of["[SEP]"], ids_of["[MASK]"]

    preprocessor = tf.saved_model.load(pre_dir)
    pretrainer = tf.saved_model.load(pt_dir)
    start = text.index(span)
    parts = [text[:start].strip(), span.strip(), text[start + len(span):].strip()]
    body = {"instances": [{"text_a": p} for p in parts]}
    if verbose:
        print("POST preprocessor:predict", json.dumps(body))
    rows = _post(client, preprocessor, body, "preprocessor")["predictions"]
    pieces = []
    for row in rows:
        n = sum(row["input_mask"])
        pieces.append(row["input_word_ids"][1 : n - 1])  # strip [CLS] ... [SEP]
    before, target, after = pieces
    if not target:
        _fail(f"--span {span!r} has no wordpieces")
    ids = [cls_id] + before + [mask_id] * len(target) + after + [sep_id]
    first = 1 + len(before)
    positions = list(range(first, first + len(target)))
    # The pretrainer's top_k signature: the span by its first and last position; the
    # answer holds the export's k best wordpieces per position, not the whole vocabulary.
    body = {"signature_name": "top_k", "instances": [{
        "input_word_ids": ids,
        "input_mask": [1] * len(ids),
        "input_type_ids": [0] * len(ids),
        "span_start": positions[0],
        "span_end": positions[-1],
    }]}
    if verbose:
        print("POST pretrainer:predict", json.dumps(body))
    prediction = _post(client, pretrainer, body, "pretrainer", "top_k")["predictions"][0]
    exported_k = len(prediction["mlm_top_tokens"][0])
    if top_k > exported_k:
        _fail(f"--top_k={top_k} but the export returns {exported_k} predictions per position "
              "(export_saved_model.py --top_k)")
    result = {
        "tokens": [vocab[i] for i in ids],
        "span_tokens": [vocab[i] for i in target],
    }
    for head in ("mlm", "sbo"):
        tokens = prediction[f"{head}_top_tokens"]
        log_probs = np.asarray(prediction[f"{head}_top_log_probs"], np.float32)
        result[head] = [
            [(tokens[p][j], float(np.exp(log_probs[p, j]))) for j in range(top_k)]
            for p in range(len(target))
        ]
    return result


SPECIAL = ("[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]")


def joint_best_fill(candidates):
    """The best string from per-position top-k lists [(token, prob), ...] of one head.

    Given the span's boundaries (SBO) or its context (MLM), each head scores every position on
    its own, so the joint probability of a fill is the product of its positions'; among the
    top-k combinations the best one that forms text is kept: its first wordpiece starts a word
    (the masked span starts at a word, never "##"), no special token. Returns (string, joint
    probability, wordpieces), or None when no top-k combination forms text.
    """
    chosen = []
    for i, options in enumerate(candidates):
        allowed = [(t, p) for t, p in options
                   if t and t not in SPECIAL and not (i == 0 and t.startswith("##"))]
        if not allowed:
            return None
        chosen.append(max(allowed, key=lambda tp: tp[1]))
    words = []
    for token, _ in chosen:
        if token.startswith("##") and words:
            words[-1] += token[2:]
        else:
            words.append(token)
    joint = float(np.prod([p for _, p in chosen]))
    return " ".join(words), joint, [t for t, _ in chosen]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export_dir", required=True, help="export_saved_model.py --export_dir")
    parser.add_argument("--text", required=True, help="a raw sentence")
    parser.add_argument("--span", required=True, help="the words of --text to mask and predict")
    parser.add_argument("--version", type=int, default=1, help="SavedModel version directory")
    parser.add_argument("--top_k", type=int, default=5,
                        help="predictions shown per wordpiece (at most the export's --top_k)")
    parser.add_argument("--verbose", action="store_true", help="print the REST request bodies")
    args = parser.parse_args(argv)
    result = fill_span(args.export_dir, args.text, args.span, args.version, args.top_k, args.verbose)
    print("input   :", " ".join(result["tokens"]))
    print("span    :", " ".join(result["span_tokens"]))
    for head, label in (("mlm", "MLM (full context)"), ("sbo", "SBO (boundaries only)")):
        print(f"{label}:")
        for i, candidates in enumerate(result[head]):
            shown = "  ".join(f"{tok} {p:.4f}" for tok, p in candidates)
            print(f"  [{i}] {result['span_tokens'][i]:>12} -> {shown}")
        print("  best fill:", " ".join(c[0][0] for c in result[head]))
        joint = joint_best_fill(result[head])
        print("  joint best string:", f"{joint[0]!r} (p = {joint[1]:.3g})" if joint
              else f"none among the top-{args.top_k} (special or '##' first pieces only)")
    leaked = [m for m in ("keras_hub", "spanbert_tf") if m in sys.modules]
    print("loaded with TensorFlow only" if not leaked else f"WARNING: imported {leaked}")


if __name__ == "__main__":
    main()
