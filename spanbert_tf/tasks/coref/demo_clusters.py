"""Print the coreference clusters of a raw paragraph with the exported SavedModel only.

Loads the coreference SavedModel (`export_saved_model.py --models=coref`), splits
`--text` into sentences (after `.`, `!` or `?` and whitespace; the model takes
the sentences of one document in order) and prints one line per cluster. It
imports TensorFlow and tensorflow-text only: run it as a file,

    python spanbert_tf/tasks/coref/demo_clusters.py --saved_model=runs/export/coref/1 \
        --text="Emma met George in the garden. She told him that he was right."

It prints which model it is (its model dir, step and, when the run kept it for its dev
score, that score: read from the export's `assets.extra/model_info.json`), the numbered
sentences, then one line per cluster, each mention as `text [sentence:start-end]`
(character offsets into that sentence), e.g. the format
`cluster 0: Emma [0:0-4] | She [1:0-3]`. "no clusters" from a model with a low (or no)
dev score says so: an undertrained model links nothing.
"""

import argparse
import json
import os
import re
import sys

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
# Written into the SavedModel by export_coref (TF Serving ignores assets.extra).
MODEL_INFO_FILE = os.path.join("assets.extra", "model_info.json")


def split_sentences(text):
    """Sentences of a paragraph: cut after `.`/`!`/`?` followed by whitespace (a rough
    rule: "Mr. Knightley" is cut after "Mr."; a real client brings its own splitter)."""
    return [s for s in (part.strip() for part in SENTENCE_END.split(text)) if s]


def cluster_lines(outputs):
    """One line per cluster from the signature's outputs (numpy arrays or lists)."""
    clusters = {}
    for sentence, start, end, cluster, text in zip(
            *(list(outputs[k]) for k in ("sentence_index", "start_char", "end_char",
                                         "cluster_id", "text"))):
        text = text.decode("utf-8") if isinstance(text, bytes) else text
        clusters.setdefault(int(cluster), []).append(
            f"{text} [{int(sentence)}:{int(start)}-{int(end)}]")
    return [f"cluster {c}: " + " | ".join(mentions) for c, mentions in sorted(clusters.items())]


def read_model_info(saved_model):
    """The export's model_info.json (see `export.model_info`), or None (older exports)."""
    path = os.path.join(saved_model, MODEL_INFO_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def model_line(info):
    """`model: runs/coref ckpt-6 (step 6), dev conll_f1 36.2 (best of 3 evaluations)`."""
    if info is None:
        return "model: unknown (an export without assets.extra/model_info.json)"
    line = f"model: {info['model_dir']} {info['checkpoint']}"
    if info.get("step") is not None:
        line += f" (step {info['step']})"
    if info.get("dev_metric"):
        line += (f", dev {info['dev_metric']} {info['dev_value']:.4g} (best of "
                 f"{info['evaluations']} evaluations)")
    else:
        line += ", no dev score recorded"
    return line


def no_clusters_line(info):
    """"no clusters", and why it may be so when the model looks undertrained."""
    if info is None:
        return "no clusters"
    if not info.get("dev_metric"):
        return ("no clusters (the model dir records no dev score: train with --dev_file to "
                "see how far it got)")
    return (f"no clusters (from the model at step {info.get('step')}, dev "
            f"{info['dev_metric']} {info['dev_value']:.4g}: a model with a low dev score "
            "links few or no mentions)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saved_model", required=True,
                        help="the coreference SavedModel dir (<export_dir>/coref/<version>)")
    parser.add_argument("--text", required=True, help="a raw paragraph")
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.saved_model, "saved_model.pb")):
        parser.error(f"no SavedModel at {args.saved_model} (run export_saved_model.py "
                     "--models=coref first)")
    sentences = split_sentences(args.text)
    if not sentences:
        parser.error("--text holds no sentence")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # TensorFlow's start-up lines go to the C-level stderr: off while it loads.
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the tokenizer ops of the SavedModel)

        resolve = tf.saved_model.load(args.saved_model).signatures["serving_default"]
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    outputs = {k: v.numpy() for k, v in resolve(sentences=tf.constant(sentences)).items()}
    info = read_model_info(args.saved_model)
    print(model_line(info))
    for i, sentence in enumerate(sentences):
        print(f"[{i}] {sentence}")
    lines = cluster_lines(outputs)
    print("\n".join(lines) if lines else no_clusters_line(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
