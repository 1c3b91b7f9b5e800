r"""SpanBERT pretraining (MLM + SBO) with tf.distribute on CPU, GPUs or TPUs.

With no arguments: trains configs/tiny.json on tfrecords/ (the output of
create_pretraining_data.py) into runs/pretrain/. Rerunning with the same
--model_dir resumes from its latest checkpoint.

    python run_pretraining.py --config=base --input_files=gs_or_local/tfrecords \
        --model_dir=runs/base --strategy=mirrored --train_batch_size=256
"""

import dataclasses
import json

from absl import flags

from spanbert_tf import cli  # the shared front end (quiet start-up, one-line errors)
from spanbert_tf.tasks.pretraining.run import PretrainingSettings  # TensorFlow-free
from spanbert_tf.tasks.pretraining.run import format_summary, run_pretraining

_D = PretrainingSettings()
FLAGS = flags.FLAGS
flags.DEFINE_string("config", _D.config, "Model config: tiny | base | large, or a JSON path.")
flags.DEFINE_string("input_files", _D.input_files,
                    "Comma-separated TFRecord dirs (with metadata.json) or shard globs.")
flags.DEFINE_string("model_dir", _D.model_dir,
                    "Output model dir: checkpoints, config.json, vocab.txt, logs. Resumed if "
                    "it has checkpoints.")
flags.DEFINE_enum("strategy", _D.strategy,
                  ["default", "one_device", "mirrored", "multi_worker_mirrored", "tpu"],
                  "tf.distribute strategy.")
flags.DEFINE_string("tpu", _D.tpu, "TPU name, grpc://host:port, or 'local' (--strategy=tpu).")
flags.DEFINE_integer("num_gpus", _D.num_gpus, "GPUs to use with mirrored/one_device "
                     "(default: all visible).")
flags.DEFINE_integer("cpu_devices", _D.cpu_devices,
                     "Split the host CPU into N logical devices (mirrored without GPUs).")
flags.DEFINE_integer("train_batch_size", _D.train_batch_size,
                     "Global batch per optimizer step (default: the config's).")
flags.DEFINE_integer("num_train_steps", _D.num_train_steps,
                     "Optimizer steps; also the decay length (default: the config's).")
flags.DEFINE_integer("num_warmup_steps", _D.num_warmup_steps,
                     "Linear warmup steps (default: the config's).")
flags.DEFINE_float("learning_rate", _D.learning_rate, "Peak learning rate (default: config).")
flags.DEFINE_float("weight_decay", _D.weight_decay,
                   "Decoupled weight decay, not on LayerNorm/bias (default: config).")
flags.DEFINE_enum("optimizer", _D.optimizer, ["adamw", "lamb"], "Optimizer (default: config).")
flags.DEFINE_float("clip_norm", _D.clip_norm, "Global gradient-norm clip, 0 = off "
                   "(default: config).")
flags.DEFINE_integer("grad_accum_steps", _D.grad_accum_steps,
                     "Micro-batches per optimizer step (train_batch_size is split into them).")
flags.DEFINE_integer("steps_per_loop", _D.steps_per_loop,
                     "Optimizer steps run inside one tf.function call.")
flags.DEFINE_enum("mixed_precision", _D.mixed_precision,
                  ["float32", "mixed_float16", "mixed_bfloat16"],
                  "Keras dtype policy; mixed_float16 uses dynamic loss scaling.")
flags.DEFINE_bool("jit_compile", _D.jit_compile, "XLA-compile the forward/backward pass.")
flags.DEFINE_integer("save_checkpoints_steps", _D.save_checkpoints_steps,
                     "Checkpoint every N steps (and at the end).")
flags.DEFINE_integer("keep_checkpoint_max", _D.keep_checkpoint_max, "Checkpoints kept.")
flags.DEFINE_string("init_checkpoint", _D.init_checkpoint,
                    "Model dir or checkpoint prefix to initialise the encoder from, or a "
                    "Hugging Face BERT/SpanBERT folder (encoder, and the MLM / SBO heads it "
                    "has, e.g. spanbert_large_with_head); ignored when --model_dir already "
                    "has a checkpoint.")
flags.DEFINE_float("sbo_loss_weight", _D.sbo_loss_weight, "Weight of the SBO loss.")
flags.DEFINE_integer("seed", _D.seed, "Seed of initialisation, dropout and data order.")
flags.DEFINE_bool("skip_corrupt_records", _D.skip_corrupt_records,
                  "Drop and count records of truncated/corrupt shards instead of stopping "
                  "(shards are checked against metadata.json sizes and checksums).")
flags.DEFINE_enum("backend", _D.backend, ["tensorflow", "jax", "torch"],
                  "Keras backend (default: $KERAS_BACKEND, else tensorflow). jax: Keras fit "
                  "with DataParallel over all local devices, Keras-format checkpoints and a "
                  "keras-hub preset in MODEL_DIR/preset (see README, Backends). jax and torch "
                  "train without TensorFlow from .npy blocks (create_pretraining_data.py "
                  "--masking=none --output_format=npy).")
flags.DEFINE_string("init_weights", _D.init_weights,
                    "A whole pretrainer's .weights.h5 (e.g. MODEL_DIR/ckpt-N.weights.h5 of a "
                    "jax run) to start from (ignored when --model_dir has a checkpoint).")
flags.DEFINE_bool("force", _D.force,
                  "Train even when the step's estimated memory exceeds the device's.")
flags.DEFINE_integer("log_every", _D.log_every, "Log (train_log.jsonl, TensorBoard) every N steps.")
flags.DEFINE_bool("dynamic_masking", _D.dynamic_masking,
                  "Mask in the input pipeline, a new mask every epoch (records written with "
                  "create_pretraining_data.py --masking=none). Default: on iff the records "
                  "are unmasked. The flags below apply only then.")
flags.DEFINE_integer("input_workers", _D.input_workers,
                     "Processes masking .npy blocks (--backend=jax|torch; default: half the "
                     "cores, at most 8; 0: in the training process).")
cli.define_masking_flags(_D)


def main(argv):
    del argv  # cli.run refuses stray arguments

    names = [f.name for f in dataclasses.fields(PretrainingSettings)]
    params = PretrainingSettings(**{n: getattr(FLAGS, n) for n in names if n in FLAGS})
    summary = run_pretraining(params)
    print(format_summary(summary))
    print(json.dumps(summary, default=str), flush=True)  # the results, on the last line


def run():
    cli.run(main, "run_pretraining")


if __name__ == "__main__":
    run()
