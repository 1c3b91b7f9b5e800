"""Throughput of the TF-free input (`.npy` blocks + numpy span masking) against what a GPU eats.

Reads the blocks of `--input_files` (`create_pretraining_data.py --masking=none
--output_format=npy`) through `spanbert_tf.data.blocks.block_loader.BlockBatches` (memory-mapped
rows at shuffled indices, masked by `NumpyDynamicMasker`, the tf.data masks bit for bit) with
0 (in-process), 1, 2, ... worker processes and prints sequences/s and the process CPU seconds
per 1,000 sequences. The bar: 10x what one accelerator consumes while training BERT-base at
that length, derived from FLOPs (`model_flops.training_flops_per_example`):

    consumed seq/s = peak bf16 FLOP/s x MFU / training FLOPs per sequence

(H100: 989 TFLOP/s; `--assumed_mfu` 0.11 gives the issue's ~1,500 seq/s at seq 128; 0.40, a
well-tuned step, is printed too). No TensorFlow is imported.

    python bench/input_throughput.py --input_files=runs/blocks [--workers=0,1,2]

Prints the numbers and one JSON line (the last line).
"""

import argparse
import json
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

from model_flops import BF16_PEAK_TFLOPS, training_flops_per_example  # noqa: E402


def consumption(seq_length, predictions, device="H100", mfu=0.11):
    """(seq/s one `device` trains BERT-base at, FLOPs per sequence)."""
    from spanbert_tf.modeling.config import load_config

    flops = training_flops_per_example(load_config("base").model, seq_length, predictions)
    return BF16_PEAK_TFLOPS[device] * 1e12 * mfu / flops, flops


def _cpu():
    usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def measure(batches, num_batches, warmup):
    """(seq/s, CPU s per 1,000 seq) over `num_batches` after `warmup` batches."""
    it = batches.iterate()
    for _ in range(warmup):
        next(it)
    start, cpu = time.perf_counter(), _cpu()
    rows = 0
    for _ in range(num_batches):
        rows += len(next(it)["input_ids"])
    seconds = time.perf_counter() - start
    cpu_used = _cpu() - cpu  # children: only the workers that ended count (see below)
    it.close()
    return rows / seconds, cpu_used / rows * 1000


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input_files", required=True, help="a .npy block dir")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=40, help="timed batches per setting")
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--workers", default="0,1,2", help="worker counts to measure")
    parser.add_argument("--assumed_mfu", type=float, default=0.11)
    args = parser.parse_args(argv)

    from spanbert_tf.data.blocks.block_files import find_block_files
    from spanbert_tf.data.blocks.block_loader import BlockBatches
    from spanbert_tf.data.masking.masking_types import MaskingConfig
    from spanbert_tf.data.masking.numpy_dynamic import (NumpyDynamicMasker,
                                                        reference_masker_for_records)

    files, metadata = find_block_files(args.input_files)
    L = metadata["max_seq_length"]
    P = metadata["max_predictions_per_seq"]
    masker = NumpyDynamicMasker(reference_masker_for_records(
        metadata, MaskingConfig(max_predictions_per_seq=P), metadata["vocab"]["path"],
        metadata["vocab"].get("do_lower_case", False)), L)
    eaten, flops = consumption(L, P, mfu=args.assumed_mfu)
    eaten_40, _ = consumption(L, P, mfu=0.40)
    bar = 10 * eaten
    print(f"input throughput: {len(files)} shard(s) of {args.input_files}, seq {L}, {P} "
          f"prediction slots, batch {args.batch_size}, {os.cpu_count()} CPU core(s)")
    print(f"  BERT-base training FLOPs per sequence at seq {L}: {flops / 1e9:.1f} GFLOP "
          f"(bench/model_flops.py)")
    print(f"  one H100 consumes {BF16_PEAK_TFLOPS['H100']:.0f} TFLOP/s x MFU "
          f"{args.assumed_mfu:.2f} / {flops / 1e9:.1f} GFLOP = {eaten:,.0f} seq/s "
          f"(MFU 0.40: {eaten_40:,.0f} seq/s); bar 10x = {bar:,.0f} seq/s")
    results = {"seq_length": L, "predictions": P, "batch_size": args.batch_size,
               "flops_per_sequence": flops, "h100_consumed_seq_per_s": eaten,
               "assumed_mfu": args.assumed_mfu, "bar_seq_per_s": bar, "settings": []}
    for workers in [int(w) for w in args.workers.split(",")]:
        batches = BlockBatches(files, metadata, masker, args.batch_size, seed=12345,
                               num_workers=workers)
        seq_s, cpu_k = measure(batches, args.batches, args.warmup)
        results["settings"].append({"workers": workers, "seq_per_s": seq_s,
                                    "cpu_s_per_1000_seq": cpu_k if workers == 0 else None})
        cpu_note = f", {cpu_k:.3f} CPU s / 1,000 seq" if workers == 0 else ""
        print(f"  workers {workers}: {seq_s:10,.0f} seq/s = {seq_s / bar:5.2f} x the bar "
              f"({seq_s / eaten:5.1f} x one H100 at MFU {args.assumed_mfu:.2f}){cpu_note}")
    if results["settings"][0]["workers"] == 0:
        per_core = 1000 / results["settings"][0]["cpu_s_per_1000_seq"]
        print(f"  one core masks {per_core:,.0f} seq/s: the bar needs ~{bar / per_core:.1f} "
              "cores of workers")
        results["seq_per_s_per_core"] = per_core
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
