r"""Writes the masks dynamic masking uses in one epoch as ordinary masked shards.

The input is unmasked records (create_pretraining_data.py --masking=none); the
output has exactly the offline writer's features, plus stats.json, made by the
same TF code as run_pretraining.py --dynamic_masking with the same --seed.

Example:
    python materialize_masks.py --input_files=unmasked --output_dir=epoch0 \
        --epoch=0 --seed=12345 --masking=span
"""

from absl import flags

from spanbert_tf import cli  # the shared front end (quiet start-up, one-line errors)

from spanbert_tf.tasks.pretraining.run import PretrainingSettings

_D = PretrainingSettings()
FLAGS = flags.FLAGS
flags.DEFINE_string("input_files", None, "Unmasked records: dirs (with metadata.json) or globs.")
flags.DEFINE_string("output_dir", None, "Where the masked shards, metadata.json, stats.json go.")
flags.DEFINE_integer("epoch", 0, "The training epoch whose masks to write.")
flags.DEFINE_integer("seed", _D.seed, "The --seed of run_pretraining.py.")
flags.DEFINE_string("vocab_file", None, "Default: the records' vocabulary.")
cli.define_masking_flags(_D)
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.mark_flags_as_required(["input_files", "output_dir"])


def main(argv):
    del argv  # cli.run refuses stray arguments
    from spanbert_tf.data.masking.materialize import materialize_masks

    names = ("masking", "masked_lm_prob", "max_predictions_per_seq", "geometric_p",
             "max_span_length", "replacement", "max_pair_targets", "mask_prob", "random_prob")
    params = PretrainingSettings(**{n: getattr(FLAGS, n) for n in names})
    stats = materialize_masks(FLAGS.input_files, FLAGS.output_dir, FLAGS.epoch, FLAGS.seed,
                              params.masking_config(), FLAGS.random_token_source,
                              FLAGS.vocab_file, progress=FLAGS.progress)
    rep = stats["replacement_proportions"]
    print(f"materialize_masks: epoch {stats['epoch']}, {stats['instances']:,} instances in "
          f"{len(stats['instances_per_shard'])} shard(s) under {FLAGS.output_dir}\n"
          f"  masking    {stats['masked_fraction']:.2%} of {stats['instance_tokens']:,} block "
          f"tokens; {stats['spans']:,} spans, mean {stats['mean_span_length_words']:.2f} words"
          f"\n  replaced   [MASK] {rep['mask']:.1%}, random {rep['random']:.1%}, unchanged "
          f"{rep['unchanged']:.1%}; SBO targets for {stats['sbo_target_fraction']:.1%}")


def run():
    cli.run(main, "materialize_masks.py")


if __name__ == "__main__":
    run()
