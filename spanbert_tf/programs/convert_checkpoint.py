r"""Converts SpanBERT/BERT checkpoints: Hugging Face / google-research TF1 / ours → ours / HF.

    python convert_checkpoint.py --input_format=hf --input=spanbert-base-cased \
        --output_format=keras --output=runs/spanbert_base
    python convert_checkpoint.py --input_format=keras --input=runs/pretrain \
        --output_format=hf --output=runs/pretrain_hf
    python convert_checkpoint.py --input_format=keras --input=runs/pretrain \
        --output_format=keras_hub_preset --output=presets/spanbert_pretrain

A `keras` output is a model dir (config.json + vocab.txt + checkpoint) that
`export_saved_model.py --model_dir`, `run_pretraining.py --init_checkpoint` and the
fine-tuning programs accept. Dropped / initialised / left-out parts are reported.
"""


from absl import flags

from spanbert_tf import cli  # the shared front end (quiet start-up, one-line errors)
from spanbert_tf.convert.checkpoint import convert_checkpoint

FLAGS = flags.FLAGS
flags.DEFINE_enum("input_format", None, ["hf", "tf1", "keras"],
                  "hf: folder with config.json + model.safetensors (or pytorch_model.bin); "
                  "tf1: google-research/bert folder (bert_config.json + bert_model.ckpt.*) or "
                  "checkpoint prefix; keras: our model dir or a checkpoint prefix in it.")
flags.DEFINE_string("input", None, "Input folder or checkpoint prefix.")
flags.DEFINE_enum("output_format", None, ["keras", "hf", "keras_hub_preset"],
                  "keras: a model dir; hf: config.json + model.safetensors + vocab.txt; "
                  "keras_hub_preset: a keras-hub preset dir (keras_hub.models.Backbone.from_preset "
                  "after `import spanbert_tf.presets`).")
flags.DEFINE_string("output", None, "Output directory (must not hold a checkpoint already).")
flags.DEFINE_string("vocab_file", None,
                    "Vocabulary to copy to the output; default <input folder>/vocab.txt "
                    "(the model dir's vocab for --input_format=keras).")
flags.DEFINE_enum("do_lower_case", None, ["true", "false"],
                  "Casing of the vocabulary; default: the model dir's config.json, the input's "
                  "tokenizer_config.json, 'uncased' in the folder name, else false (cased).")
flags.DEFINE_integer("seed", 0, "Seed that initialises what the input lacks (pooler, MLM/SBO heads).")
flags.mark_flags_as_required(["input_format", "input", "output_format", "output"])


def main(argv):
    del argv
    lower = None if FLAGS.do_lower_case is None else FLAGS.do_lower_case == "true"
    task_presets = None
    if FLAGS.output_format == "keras_hub_preset" and FLAGS.input_format == "keras":
        from spanbert_tf.hub import TASK_PRESETS as task_presets  # fine-tuned dirs: task presets
    report = convert_checkpoint(
        FLAGS.input_format, FLAGS.input, FLAGS.output_format, FLAGS.output,
        vocab_file=FLAGS.vocab_file, do_lower_case=lower, seed=FLAGS.seed,
        task_presets=task_presets)
    print(report.summary())


def run():
    cli.run(main, "convert_checkpoint.py")


if __name__ == "__main__":
    run()
