"""Exports a model dir as SavedModels for TF Serving: encoder, preprocessor, pretrainer, text_embedding.

    python export_saved_model.py --model_dir=runs/pretrain --export_dir=runs/export
    # -> runs/export/{encoder,preprocessor,pretrainer,text_embedding}/1/ (saved_model.pb + variables/)

Each is a TF Serving model base path; `saved_model_cli show --all --dir
runs/export/encoder/1` lists the signatures.

A coreference model dir (`run_coref.py --output_dir`) exports its raw-text
SavedModel (`spanbert_tf/tasks/coref/export.py`):

    python export_saved_model.py --model_dir=runs/coref --export_dir=runs/export --models=coref
    # -> runs/export/coref/1/

A span-model NER dir (`run_ner.py --output_dir`) exports its raw-text SavedModel
(`spanbert_tf/tasks/ner/export.py`: a text in, entities out):

    python export_saved_model.py --model_dir=runs/ner --export_dir=runs/export --models=ner
"""

import os

from absl import flags

from spanbert_tf import cli  # the shared front end (quiet start-up, one-line errors)
from spanbert_tf.errors import InputError

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Model dir (config.json + vocab.txt + checkpoints).")
flags.DEFINE_string("checkpoint", None,
                    "Checkpoint prefix to export (e.g. runs/pretrain/ckpt-300); default the "
                    "latest in --model_dir.")
flags.DEFINE_string("export_dir", None, "Writes <export_dir>/<model>/<version>/.")
flags.DEFINE_integer("version", 1, "TF Serving version directory number.")
flags.DEFINE_integer("seq_length", 128,
                     "Output length of the preprocessor and of text_embedding: any length from 3 "
                     "to the model's max_position_embeddings.")
flags.DEFINE_list("models", ["encoder", "preprocessor", "pretrainer", "text_embedding"],
                  "Which SavedModels to write (pretrainer needs a checkpoint with the MLM and "
                  "SBO heads; a fine-tuned model dir exports encoder,preprocessor,text_embedding; "
                  "a run_coref.py model dir exports coref: sentences in, clusters out; a "
                  "run_ner.py span model dir exports ner: a text in, entities out).")
flags.DEFINE_integer("top_k", 5, "Predictions per masked position of the pretrainer's top_k "
                     "signature (ids, tokens, log-probs).")
flags.DEFINE_bool("output_singletons", False,
                  "coref: also output kept spans with a positive mention score and no "
                  "antecedent (as run_coref.py --output_singletons).")
flags.DEFINE_bool("overwrite", False, "Replace an existing <model>/<version> directory.")
flags.mark_flags_as_required(["model_dir", "export_dir"])


def main(argv):
    del argv
    models = [m for m in FLAGS.models if m not in ("coref", "ner")]
    paths = {}
    if ("coref" in FLAGS.models or "ner" in FLAGS.models) and FLAGS.version < 1:
        raise InputError(f"--version must be a positive integer, got {FLAGS.version}")
    if "ner" in FLAGS.models:
        from spanbert_tf.tasks.ner.export import export_ner

        print("writing ner", flush=True)
        paths["ner"] = export_ner(
            FLAGS.model_dir, os.path.join(FLAGS.export_dir, "ner", str(FLAGS.version)),
            checkpoint=FLAGS.checkpoint, overwrite=FLAGS.overwrite)
    if "coref" in FLAGS.models:
        from spanbert_tf.tasks.coref.export import export_coref

        print("writing coref", flush=True)
        paths["coref"] = export_coref(
            FLAGS.model_dir, os.path.join(FLAGS.export_dir, "coref", str(FLAGS.version)),
            checkpoint=FLAGS.checkpoint, output_singletons=FLAGS.output_singletons,
            overwrite=FLAGS.overwrite)
    if models:
        from spanbert_tf.tasks.pretraining.export import export_saved_models

        paths.update(export_saved_models(
            FLAGS.model_dir, FLAGS.export_dir, checkpoint=FLAGS.checkpoint,
            version=FLAGS.version, seq_length=FLAGS.seq_length, exports=models,
            overwrite=FLAGS.overwrite, progress=lambda line: print(line, flush=True),
            top_k=FLAGS.top_k))
    if "coref" in FLAGS.models or "ner" in FLAGS.models:
        from spanbert_tf.tasks.pretraining.export import write_model_server_config

        paths["models.config"] = write_model_server_config(FLAGS.export_dir)
    for name, path in paths.items():
        print(f"{name}: {path}")


def run():
    cli.run(main, "export_saved_model.py")


if __name__ == "__main__":
    run()
