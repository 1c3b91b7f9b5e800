"""Benchmark of the pretraining input pipeline: pre-masked records parsed vs dynamic masking.

At max_seq_length 512, max_predictions_per_seq 80 (span masking, span-level
replacement), on the embedded WikiText-2 test corpus (≈ 550 blocks a pass,
repeated as epochs), one process, in one run:

  (a) static:  records masked offline (create_pretraining_data.py), read,
               shuffled, batched, parsed (`input_pipeline.pretraining_dataset`);
  (b) dynamic: unmasked records (--masking=none), read, shuffled, parsed and
               masked on the fly in TF (`masker=DynamicMasker`).

Examples/s are measured over `--batches` batches of `--batch_size` after
`--warmup` batches; CPU seconds of the process over the same span are reported
too (less sensitive to other users of a shared machine). Goal: (b) >= 2,000
examples/s on 2 cores and (b) >= 0.3 x (a). `--profile` also times
`DynamicMasker.apply` alone on a fixed batch: the pipeline's masker (XLA-compiled
span masking) and, alternately, the same masker as op-by-op graph ops.

Usage:
    python bench/input_pipeline.py [--batch_size=64 --batches=60]
Results: printed, and written to bench/results/input_pipeline.json.
"""

import argparse
import json
import os
import resource
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

L, P = 512, 80


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(ds, batch_size, warmup, batches):
    it = iter(ds)
    for _ in range(warmup):
        next(it)
    cpu, start = cpu_seconds(), time.perf_counter()
    for _ in range(batches):
        next(it)
    wall = time.perf_counter() - start
    n = batch_size * batches
    return {"examples_per_sec": n / wall, "wall_seconds": wall,
            "cpu_seconds": cpu_seconds() - cpu,
            "examples_per_cpu_sec": n / max(cpu_seconds() - cpu, 1e-9)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    import tensorflow as tf

    from spanbert_tf.data.input import input_pipeline
    from spanbert_tf.data.writing import pipeline
    from spanbert_tf.data.masking.dynamic_masking import masker_for_records
    from spanbert_tf.data.masking.masking_types import MaskingConfig

    work = args.workdir or tempfile.mkdtemp(prefix="bench_input_")
    dirs = {}
    for kind in ("span", "none"):
        dirs[kind] = os.path.join(work, kind)
        if not os.path.exists(os.path.join(dirs[kind], "metadata.json")):
            pipeline.create_pretraining_data(pipeline.PretrainingDataConfig(
                output_dir=dirs[kind], masking=kind, max_seq_length=L,
                max_predictions_per_seq=P, dupe_factor=1, num_shards=4, num_workers=1,
                progress=False))
    results = {"max_seq_length": L, "max_predictions_per_seq": P,
               "batch_size": args.batch_size, "cpu_count": os.cpu_count()}
    files, meta = input_pipeline.find_pretraining_files(dirs["span"])
    static = input_pipeline.make_pretraining_dataset_fn(files, meta, args.batch_size, seed=1)
    results["static"] = measure(static(), args.batch_size, args.warmup, args.batches)
    files, meta = input_pipeline.find_pretraining_files(dirs["none"])
    masker = masker_for_records(meta, MaskingConfig(max_predictions_per_seq=P),
                                meta["vocab"]["path"])
    dynamic = input_pipeline.make_pretraining_dataset_fn(files, meta, args.batch_size, seed=1,
                                                         masker=masker)
    results["dynamic"] = measure(dynamic(), args.batch_size, args.warmup, args.batches)
    ratio = results["dynamic"]["examples_per_sec"] / results["static"]["examples_per_sec"]
    results["ratio_dynamic_over_static"] = ratio
    if args.profile:
        batch = next(iter(input_pipeline._records(
            files, None, False, True, 1, 1000, "", 8, True, 0).map(
                lambda r, e: r).batch(args.batch_size)))
        spec = tf.io.parse_example(batch, {"example_id": tf.io.FixedLenFeature([1], tf.int64),
                                           "input_ids": tf.io.FixedLenFeature([L], tf.int64),
                                           "input_mask": tf.io.FixedLenFeature([L], tf.int64)})
        draws = tf.map_fn(lambda i: masker.draw(1, 0, i[0]), spec["example_id"],
                          fn_output_signature={k: tf.int64 for k in masker.layout.sizes()})
        # DynamicMasker.apply alone on one batch: the pipeline's masker (XLA for
        # the span scheme) and the same masking as op-by-op graph ops, alternately.
        graph_masker = masker_for_records(meta, MaskingConfig(max_predictions_per_seq=P),
                                          meta["vocab"]["path"], jit_compile=False)
        applies = {"apply_only": tf.function(masker.apply),
                   "apply_graph_ops": tf.function(graph_masker.apply)}
        seconds = dict.fromkeys(applies, 0.0)
        for apply in applies.values():
            apply(spec["input_ids"], spec["input_mask"], draws)
        for _ in range(4):
            for name, apply in applies.items():
                start = time.perf_counter()
                for _ in range(5):
                    apply(spec["input_ids"], spec["input_mask"], draws)
                seconds[name] += time.perf_counter() - start
        for name in applies:
            results[name + "_examples_per_sec"] = 20 * args.batch_size / seconds[name]
    print(f"input pipeline at L={L}, P={P}, batch {args.batch_size}, "
          f"{os.cpu_count()} CPU(s):")
    for kind in ("static", "dynamic"):
        r = results[kind]
        print(f"  ({'a' if kind == 'static' else 'b'}) {kind:8s} "
              f"{r['examples_per_sec']:8,.0f} examples/s  "
              f"({r['examples_per_cpu_sec']:,.0f} per CPU second)")
    print(f"  dynamic / static = {ratio:.2f} (goal >= 0.3); dynamic goal >= 2,000 examples/s")
    if "apply_only_examples_per_sec" in results:
        print(f"  DynamicMasker.apply alone: {results['apply_only_examples_per_sec']:,.0f} "
              f"examples/s (as graph ops, without XLA: "
              f"{results['apply_graph_ops_examples_per_sec']:,.0f})")
    out = os.path.join(REPO, "bench", "results", "input_pipeline.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
