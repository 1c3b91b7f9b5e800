"""Benchmark: the SpanBERT pretraining step.

Two modes:

- default (TensorFlow): SpanBertPretrainer vs keras-hub BertMaskedLM at the
  same size, the step inside the project's Trainer, and the tf.data input
  pipeline against the model's consumption (`keras_hub_comparison.py`):

      python bench/pretraining_step.py [--steps=20] [--input_files=DIR]

- `--synthetic`, any backend: the pretrainer's Keras training step on random
  span-masked batches of the real feature shapes; prints examples/s, tokens/s
  and MFU (model FLOPs per step / step time / the device's bf16 peak from
  `model_flops.BF16_PEAK_TFLOPS` or `--peak_tflops`). On JAX or PyTorch it
  imports no TensorFlow (`synthetic_step.py`; see bench/README.md):

      python bench/pretraining_step.py --synthetic --backend=jax --config=base \\
          --seq_length=512 --batch_size=32 --mixed_precision=mixed_bfloat16

Keras reads KERAS_BACKEND when it is first imported, so this file imports
nothing of Keras or the project before the flags are parsed.
"""

import argparse
import os
import sys

BACKENDS = ("tensorflow", "jax", "torch")
CONFIGS = ("bench", "tiny", "base", "large")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", action="store_true",
                        help="random span-masked batches, any backend, no TensorFlow needed")
    parser.add_argument("--backend", choices=BACKENDS, default="tensorflow",
                        help="Keras backend (sets KERAS_BACKEND)")
    parser.add_argument("--config", choices=CONFIGS, default="bench",
                        help="model size: bench = 4 layers x 256 hidden (synthetic only)")
    parser.add_argument("--seq_length", type=int, default=128, help="(synthetic only)")
    parser.add_argument("--batch_size", type=int, default=16, help="(synthetic only)")
    parser.add_argument("--max_predictions", type=int, default=None,
                        help="prediction slots per row; default 20 per 128 tokens (synthetic only)")
    parser.add_argument("--mixed_precision", choices=("float32", "mixed_bfloat16"),
                        default="float32", help="dtype policy (synthetic only)")
    parser.add_argument("--jit_compile", choices=("auto", "true", "false"), default="auto",
                        help="Keras compile(jit_compile=...) (synthetic only)")
    parser.add_argument("--peak_tflops", type=float, default=None,
                        help="device bf16 peak for MFU when it is not in the table")
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup_steps", type=int, default=3,
                        help="untimed steps first (synthetic only)")
    parser.add_argument("--input_files", default=None,
                        help="TFRecords (seq 128, 20 predictions) for the TensorFlow comparison; "
                             "default: made from the embedded WikiText-2 test split")
    args = parser.parse_args(argv)
    synthetic_only = ("config", "seq_length", "batch_size", "max_predictions",
                      "mixed_precision", "jit_compile", "peak_tflops", "warmup_steps")
    if not args.synthetic:
        changed = [f"--{k}" for k in synthetic_only
                   if getattr(args, k) != parser.get_default(k)]
        if args.backend != "tensorflow" or changed:
            parser.error(f"{', '.join(changed) or '--backend=' + args.backend} needs "
                         "--synthetic (the comparison with keras-hub and the tf.data "
                         "pipeline runs on TensorFlow at its fixed size)")
    elif args.input_files:
        parser.error("--input_files is for the TensorFlow comparison, not --synthetic")
    return args


def main(argv=None):
    args = parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    here = os.path.dirname(os.path.abspath(__file__))
    # bench/ (also when run through runpy) and the repository, for spanbert_tf.
    sys.path[:0] = [here, os.path.dirname(here)]
    if args.synthetic:
        import synthetic_step

        jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
        synthetic_step.run(args.config, args.batch_size, args.seq_length, args.max_predictions,
                           args.mixed_precision, args.steps, args.warmup_steps, jit,
                           args.peak_tflops)
    else:
        import keras_hub_comparison

        keras_hub_comparison.run(args.steps, args.input_files)


if __name__ == "__main__":
    main()
