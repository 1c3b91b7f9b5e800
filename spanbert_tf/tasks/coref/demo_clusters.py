"""Print the coreference clusters of a raw paragraph with the exported SavedModel only.

Loads the coreference SavedModel (`export_saved_model.py --models=coref`), splits
`--text` into sentences (after `.`, `!` or `?` and whitespace; the model takes
the sentences of one document in order) and prints one line per cluster. It
imports TensorFlow and tensorflow-text only: run it as a file,

    python spanbert_tf/tasks/coref/demo_clusters.py --saved_model=runs/export/coref/1 \
        --text="Emma met George in the garden. She told him that he was right."

It prints the numbered sentences, then one line per cluster, each mention as
`text [sentence:start-end]` (character offsets into that sentence), e.g. the format
`cluster 0: Emma [0:0-4] | She [1:0-3]`.
"""

import argparse
import json
import os
import re
import sys

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")


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


def model_line(saved_model):
    """Which model the export was made from: its step and best dev CoNLL F1, read from the
    export's `assets.extra/model_info.json` (written by the coreference export), so that a
    user knows why an undertrained model finds nothing."""
    path = os.path.join(saved_model, "assets.extra", "model_info.json")
    if not os.path.isfile(path):
        return "model: unknown (an export without assets.extra/model_info.json)"
    with open(path, encoding="utf-8") as f:
        info = json.load(f)
    step = "unknown" if info.get("step") is None else info["step"]
    dev = ("no dev evaluation recorded" if info.get("dev_conll_f1") is None else
           f"best dev CoNLL F1 {info['dev_conll_f1']:.1f} (step {info['dev_step']})")
    return f"model: {info.get('model_dir')}, trained {step} steps, {dev}"


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
    print(model_line(args.saved_model))
    for i, sentence in enumerate(sentences):
        print(f"[{i}] {sentence}")
    lines = cluster_lines(outputs)
    print("\n".join(lines) if lines else
          "no clusters (a model this far from a trained one finds none: see the model line)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
