"""Benchmark: pretraining examples/s and MFU at real sizes, fed by dynamic masking.

Trains `--config` (base or large; tiny for a CPU smoke run) in the project's
Trainer on unmasked records of the embedded WikiText corpus masked on the fly
(`--masking=none` + `DynamicMasker`, span masking), at `--seq_length` /
`--predictions`, with `--mixed_precision` and `--jit_compile`. After
`--warmup` steps (tracing, XLA compilation), `--steps` steps are timed.

MFU = model FLOPs per example x examples/s / peak FLOP/s, with model FLOPs per
example = 6 x the analytic multiply-accumulates of one forward pass (encoder,
MLM head, SBO head; `bench/model_flops.analytic_macs`; training = forward
+ 2 x backward) and the peak from `--peak_tflops`, or for a known GPU its dense
bf16 tensor-core peak. On CPU (no peak known) MFU is not printed.

    python bench/pretraining_throughput.py --config=base --batch_size=64 \
        --mixed_precision=mixed_bfloat16 --jit_compile
    python bench/pretraining_throughput.py --config=large --batch_size=32 \
        --mixed_precision=mixed_bfloat16 --jit_compile
Results: printed, and written to bench/results/pretraining_throughput_<config>.json.
"""

import argparse
import json
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))

def gpu_peak():
    """(bf16 peak FLOP/s of all visible GPUs or None, device description)."""
    import tensorflow as tf
    from model_flops import peak_tflops

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None, "CPU"
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    peak = peak_tflops(name)
    return (None if peak is None else peak * 1e12 * len(gpus)), f"{len(gpus)} x {name}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="base")
    parser.add_argument("--seq_length", type=int, default=512)
    parser.add_argument("--predictions", type=int, default=80)
    parser.add_argument("--batch_size", type=int, default=32, help="global batch per step")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps_per_loop", type=int, default=5)
    parser.add_argument("--mixed_precision", default="float32",
                        choices=["float32", "mixed_float16", "mixed_bfloat16"])
    parser.add_argument("--jit_compile", action="store_true")
    parser.add_argument("--peak_tflops", type=float, default=None,
                        help="peak of the devices in TFLOP/s (default: known GPUs' bf16 peak)")
    parser.add_argument("--records", default=None, help="unmasked records (--masking=none)")
    args = parser.parse_args()

    import spanbert_tf  # noqa: F401
    import tensorflow as tf

    from model_flops import analytic_macs
    from spanbert_tf.data.input import input_pipeline
    from spanbert_tf.data.writing import pipeline
    from spanbert_tf.data.masking.dynamic_masking import masker_for_records
    from spanbert_tf.data.masking.masking_types import MaskingConfig
    from spanbert_tf.modeling.config import load_config
    from spanbert_tf.tasks.pretraining.task import PretrainingTask
    from spanbert_tf.training.trainer import Trainer

    work = tempfile.mkdtemp(prefix="bench_throughput_")
    records = args.records
    if records is None:
        records = os.path.join(work, "unmasked")
        pipeline.create_pretraining_data(pipeline.PretrainingDataConfig(
            output_dir=records, masking="none", max_seq_length=args.seq_length,
            num_shards=4, num_workers=1, progress=False))
    files, meta = input_pipeline.find_pretraining_files(records)
    config = load_config(args.config)
    masker = masker_for_records(meta, MaskingConfig(max_predictions_per_seq=args.predictions),
                                meta["vocab"]["path"])
    fn = input_pipeline.make_pretraining_dataset_fn(files, meta, args.batch_size, seed=1,
                                                    masker=masker)
    strategy = tf.distribute.MirroredStrategy() if len(
        tf.config.list_physical_devices("GPU")) > 1 else tf.distribute.get_strategy()
    total = args.warmup + args.steps
    trainer = Trainer(PretrainingTask(config), strategy, os.path.join(work, "model"),
                      config.optimizer, fn, total, steps_per_loop=args.steps_per_loop,
                      log_every=10 ** 9, save_checkpoints_steps=10 ** 9,
                      jit_compile=args.jit_compile, mixed_precision=args.mixed_precision,
                      show_progress=False)
    trainer.train(until_step=args.warmup)
    start = time.perf_counter()
    trainer.train(until_step=total)
    seconds = time.perf_counter() - start
    examples_per_sec = args.batch_size * args.steps / seconds
    bert, sbo = analytic_macs(config.model, args.seq_length, args.predictions)
    flops_per_example = 6 * (bert + sbo)
    peak, device = gpu_peak()
    if args.peak_tflops:
        peak = args.peak_tflops * 1e12
    mfu = flops_per_example * examples_per_sec / peak if peak else None
    result = dict(config=args.config, device=device, seq_length=args.seq_length,
                  predictions=args.predictions, batch_size=args.batch_size, steps=args.steps,
                  mixed_precision=args.mixed_precision, jit_compile=args.jit_compile,
                  step_seconds=seconds / args.steps, examples_per_sec=examples_per_sec,
                  tokens_per_sec=examples_per_sec * args.seq_length,
                  model_tflops_per_example=flops_per_example / 1e12, mfu=mfu,
                  peak_tflops=None if peak is None else peak / 1e12)
    print(f"pretraining throughput: {args.config}, seq {args.seq_length}, {args.predictions} "
          f"predictions, batch {args.batch_size}, {args.mixed_precision}"
          f"{', XLA' if args.jit_compile else ''}, dynamic masking, on {device}")
    print(f"  step {seconds / args.steps * 1e3:.1f} ms  {examples_per_sec:,.1f} examples/s  "
          f"{examples_per_sec * args.seq_length:,.0f} tokens/s")
    print(f"  model FLOPs per example {flops_per_example / 1e12:.3f} TFLOP; MFU "
          + (f"{mfu:.1%} of {peak / 1e12:,.0f} TFLOP/s" if mfu is not None
             else "n/a (no known peak: pass --peak_tflops)"))
    out = os.path.join(REPO, "bench", "results", f"pretraining_throughput_{args.config}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
