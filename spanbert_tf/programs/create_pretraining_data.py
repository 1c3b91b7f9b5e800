r"""Creates SpanBERT pretraining TFRecords (span masking §3.1, single segments §3.3).

Run with no flags, it reads the embedded WikiText-2 test corpus and the BERT cased
vocabulary and writes `tfrecords/pretrain-SSSSS-of-NNNNN.tfrecord`, `metadata.json`
and `stats.json`.

Example:
    python create_pretraining_data.py --input_file=corpus/*.txt.gz \
        --output_dir=tfrecords --max_seq_length=512 --dupe_factor=10
    # The same shards from an Apache Beam pipeline (here; or Dataflow, Flink, Spark):
    python create_pretraining_data.py --runner=beam \
        --beam_pipeline_options=--direct_num_workers=2,--direct_running_mode=multi_processing
"""

import dataclasses
import os

# Nothing here multiplies matrices: without this, importing numpy starts an OpenBLAS thread
# that spins for ~0.1 CPU s in this process, the worker pool's server and Beam's workers.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from absl import flags  # noqa: E402

from spanbert_tf import cli  # noqa: E402  (the shared front end: quiet start-up, one-line errors)
from spanbert_tf import plotting  # noqa: E402  (matplotlib only when a picture is drawn)

from spanbert_tf.data.writing import pipeline, report  # noqa: E402
from spanbert_tf.errors import InputError  # noqa: E402
from spanbert_tf.plotting import data_stats_plot  # noqa: E402

_D = pipeline.PretrainingDataConfig()
FLAGS = flags.FLAGS

flags.DEFINE_string("input_file", _D.input_file,
                    "Comma-separated input files or globs (.gz read transparently). Text: "
                    "one sentence/paragraph per line, a blank line between documents.")
flags.DEFINE_enum("input_format", _D.input_format, ["text", "jsonl"],
                  "text: blank-line-separated documents; jsonl: one JSON document per line.")
flags.DEFINE_string("text_key", _D.text_key, "jsonl field holding a document's text.")
flags.DEFINE_string("tfds_name", _D.tfds_name,
                    "Read this TFDS dataset (e.g. wikipedia/20230601.en) instead of files.")
flags.DEFINE_string("tfds_split", _D.tfds_split, "TFDS split to read.")
flags.DEFINE_string("tfds_text_key", _D.tfds_text_key, "TFDS feature holding the text.")
flags.DEFINE_string("tfds_data_dir", _D.tfds_data_dir,
                    "Local TFDS data dir (default: TFDS's default, ~/tensorflow_datasets).")
flags.DEFINE_string("vocab_file", _D.vocab_file, "WordPiece vocabulary (default: BERT cased).")
flags.DEFINE_bool("do_lower_case", _D.do_lower_case,
                  "Lower-case and strip accents (uncased vocabularies only).")
flags.DEFINE_string("output_dir", _D.output_dir, "Where shards, metadata.json, stats.json go.")
flags.DEFINE_integer("num_shards", _D.num_shards, "Number of output TFRecord shards.")
flags.DEFINE_enum("compression", _D.compression, ["none", "GZIP"], "Shard compression.")
flags.DEFINE_enum("output_format", _D.output_format, ["tfrecord", "npy"],
                  "tfrecord: TFRecord shards (tf.data); npy: memory-mapped numpy block shards "
                  "that run_pretraining.py --backend=jax|torch reads without TensorFlow "
                  "(with --masking=none; metadata.json names the format).")
flags.DEFINE_integer("max_seq_length", _D.max_seq_length,
                     "L: [CLS] block [SEP] length; blocks hold up to L-2 wordpieces.")
flags.DEFINE_integer("dupe_factor", _D.dupe_factor,
                     "Times each document is masked, each with a different mask.")
flags.DEFINE_integer("random_seed", _D.random_seed, "Seed of all random choices.")
cli.define_masking_flags(
    _D, schemes=cli.MASKING_SCHEMES + ("none",),
    masking_help="span: SpanBERT; whole_word / token: the paper's BERT ablations; none: "
                 "write each block once, unmasked, for run_pretraining.py's dynamic "
                 "masking (a new mask every epoch).",
    random_token_help="Random replacement tokens: uniform over the non-special vocabulary, "
                      "or by corpus wordpiece frequency (an extra counting pass).")
flags.DEFINE_enum("long_lines", _D.long_lines, ["split", "drop"],
                  "A line longer than a block: split it at word starts, or drop it "
                  "(official SpanBERT).")
flags.DEFINE_integer("num_workers", _D.num_workers,
                     "Worker processes (0 = all cores). Output does not depend on it.")
flags.DEFINE_bool("progress", _D.progress, "Show a progress bar.")
flags.DEFINE_bool("remove_stale_temp", _D.remove_stale_temp,
                  "Delete the temporary files that killed runs left in --output_dir (those "
                  "whose process, the PID in the name, is gone); without it they are "
                  "reported in one line.")
flags.DEFINE_enum("runner", "local", ["local", "beam"],
                  "local: worker processes on this machine; beam: an Apache Beam pipeline "
                  "(the same shards; needs the [beam] extra).")
flags.DEFINE_list("beam_pipeline_options", [],
                  "With --runner=beam: Beam's own options, comma-separated, e.g. "
                  "\"--runner=DataflowRunner,--project=P,--region=R\". Without a --runner "
                  "in them the pipeline runs here on Beam's FnApiRunner "
                  "(--direct_num_workers=N,--direct_running_mode=multi_processing apply).")


def main(argv):
    del argv  # cli.run refuses stray arguments

    values = {f.name: getattr(FLAGS, f.name)
              for f in dataclasses.fields(pipeline.PretrainingDataConfig)}
    config = pipeline.PretrainingDataConfig(**values)
    # Until the shards are renamed (the last moment of a run), an interrupt leaves the
    # output dir as it was: the pipeline removes its temporary files and its workers.
    cli.report_kept(f"no new shards written to {config.output_dir}, temporary files removed")
    if FLAGS.runner == "beam" and config.output_format != "tfrecord":
        raise InputError(f"--output_format={config.output_format}: the Beam runner writes "
                         "TFRecords only; use --runner=local")
    if FLAGS.runner == "beam":
        from spanbert_tf.data.writing import beam_pipeline  # one-line error without the [beam] extra

        stats = beam_pipeline.create_pretraining_data_beam(
            config, FLAGS.beam_pipeline_options, dedicated_process=True)
    else:
        stats = pipeline.create_pretraining_data(config, dedicated_process=True)
    print(report.format_summary(stats, config.output_dir))
    if stats.get("records") == "masked" and "://" not in config.output_dir:
        picture = plotting.plot_or_note("create_pretraining_data.py",
                                        data_stats_plot.plot_data_stats, config.output_dir)
        if picture:
            print(f"  plot       {picture} (span lengths, replacement shares vs targets)")


def run():
    cli.run(main, "create_pretraining_data.py")


if __name__ == "__main__":
    run()
