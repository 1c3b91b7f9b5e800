"""One command for a GPU run on a JAX machine without TensorFlow: step speed, MFU, real training.

    python bench/gpu_run.py --blocks=DIR [--output=gpu_run.json]      # ~10 minutes on an H100
    python bench/gpu_run.py --dry_run --blocks=DIR                      # tiny sizes, CPU, ~2 min

`bench/gpu_run.sh` wraps it for a fresh machine (installs the carried wheels when keras or
keras-hub are missing, then runs this). In order, each into one JSON (`--output`):

1. the device (JAX's platform and device kind, its bf16 peak from `model_flops.py`);
2. the synthetic pretraining step (`synthetic_step.py`: random span-masked rows of the real
   feature shapes, Keras `train_on_batch`, jitted) of BERT-base and BERT-large at seq 128
   and 512, bf16, the batch sized to the device memory (`training.memory.step_plan`'s
   estimate, halved on an out-of-memory error): seq/s, step time, MFU, and the same step
   without the SBO head (`MlmOnlyPretrainer`): SBO step time / MLM-only step time;
3. `--train_seconds` (180) of real pretraining of `--train_config` (tiny) from the TF-free
   blocks: `run_pretraining.py --backend=jax --dynamic_masking` in a subprocess, stopped by
   SIGTERM (it checkpoints and ends), its train_log.jsonl read back: seq/s and the losses;
4. the peak device memory after each part (JAX's `memory_stats()`, where the device has it).

A part that would end past `--budget_seconds` (540) is skipped and named in the JSON.
`--dry_run`: the tiny config at seq 32 and 64, batch 2, 2 timed steps, 25 s of training.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", required=True,
                        help="a .npy block dir (create_pretraining_data.py --masking=none "
                             "--output_format=npy), e.g. the demo blocks carried along")
    parser.add_argument("--output", default=None,
                        help="the JSON (default $OUT/gpu_run.json, else bench/results/)")
    parser.add_argument("--dry_run", action="store_true", help="tiny sizes (CPU check)")
    parser.add_argument("--train_config", default="tiny")
    parser.add_argument("--train_batch_size", type=int, default=None,
                        help="default 256 (dry run 8)")
    parser.add_argument("--train_seconds", type=float, default=None,
                        help="default 180 (dry run 25)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 10)")
    parser.add_argument("--budget_seconds", type=float, default=540)
    return parser.parse_args(argv)


def device_info():
    import jax

    from model_flops import peak_tflops

    d = jax.devices()[0]
    name = d.device_kind if d.platform != "cpu" else f"cpu ({os.cpu_count()} cores)"
    return {"platform": d.platform, "device_kind": name, "devices": jax.device_count(),
            "bf16_peak_tflops": peak_tflops(name), "jax": jax.__version__}


def peak_memory_bytes():
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use"), stats.get("bytes_limit")


def batch_to_memory(config_name, seq_length, predictions, limit_bytes, start_cap=1024):
    """The largest power-of-two batch whose estimated step fits 80 % of `limit_bytes`."""
    from synthetic_step import load_bench_config
    from spanbert_tf.training import memory

    model = load_bench_config(config_name).model
    batch = start_cap
    while batch > 1 and memory.step_plan(model, batch, seq_length, predictions, 1, 1,
                                         "mixed_bfloat16")["step_bytes"] > 0.8 * limit_bytes:
        batch //= 2
    return batch


def _oom(error):
    text = str(error)
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


def synthetic_part(args, results, deadline):
    import synthetic_step

    dry = args.dry_run
    sizes = ([("tiny", 32), ("tiny", 64)] if dry
             else [("base", 128), ("base", 512), ("large", 128), ("large", 512)])
    steps = args.steps or (2 if dry else 10)
    _, limit = peak_memory_bytes()
    for config, seq in sizes:
        entry = {"config": config, "seq_length": seq}
        results["synthetic"].append(entry)
        if time.monotonic() > deadline:
            entry["skipped"] = "time budget"
            continue
        predictions = max(1, 20 * seq // 128)
        batch = 2 if dry else batch_to_memory(config, seq, predictions, limit or 16e9)
        precision = "float32" if dry else "mixed_bfloat16"
        for mlm_only in (False, True):
            key = "mlm_only" if mlm_only else "spanbert"
            while True:
                try:
                    out = synthetic_step.run(config, batch, seq, predictions, precision, steps,
                                             2, "auto", None, mlm_only=mlm_only)
                    break
                except Exception as e:  # noqa: BLE001  (an OOM is retried at half the batch)
                    if not _oom(e) or batch == 1:
                        raise
                    batch //= 2
                    print(f"gpu_run: out of memory, batch {batch * 2} -> {batch}", flush=True)
            entry.update(batch_size=batch, mixed_precision=precision)
            entry[key] = {"step_seconds": out["step_seconds"],
                          "seq_per_second": out["examples_per_second"],
                          "tokens_per_second": out["tokens_per_second"], "mfu": out["mfu"],
                          "tflops": out["tflops"], "loss": out["loss"]}
        entry["sbo_over_mlm_step"] = (entry["spanbert"]["step_seconds"]
                                      / entry["mlm_only"]["step_seconds"])
        entry["peak_memory_bytes"] = peak_memory_bytes()[0]
        print(f"gpu_run: {config} seq {seq} batch {batch}: {entry['spanbert']['seq_per_second']:,.1f}"
              f" seq/s, SBO step / MLM-only step {entry['sbo_over_mlm_step']:.3f}", flush=True)


def training_part(args, results, deadline, workdir):
    dry = args.dry_run
    seconds = args.train_seconds or (25 if dry else 180)
    batch = args.train_batch_size or (8 if dry else 256)
    entry = {"config": args.train_config, "train_batch_size": batch, "seconds": seconds,
             "blocks": os.path.abspath(args.blocks)}
    results["training"] = entry
    if time.monotonic() + seconds > deadline:
        entry["skipped"] = "time budget"
        return
    model_dir = os.path.join(workdir, "pretrain")
    command = [sys.executable, os.path.join(REPO, "run_pretraining.py"), "--backend=jax",
               f"--input_files={args.blocks}", "--dynamic_masking", f"--model_dir={model_dir}",
               f"--config={args.train_config}", f"--train_batch_size={batch}",
               "--num_train_steps=1000000", "--num_warmup_steps=100",
               f"--log_every={2 if dry else 10}", f"--steps_per_loop={2 if dry else 10}",
               "--save_checkpoints_steps=1000000"]
    entry["command"] = " ".join(command)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.monotonic()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    log = os.path.join(model_dir, "train_log.jsonl")
    # The clock starts at the first logged step (after start-up and compilation).
    while (proc.poll() is None and not (os.path.exists(log) and os.path.getsize(log))
           and time.monotonic() - start < 600):
        time.sleep(1)
    first = time.monotonic()
    while proc.poll() is None and time.monotonic() - first < seconds:
        time.sleep(1)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # StopOnSignals: a checkpoint, then the run ends
    output, _ = proc.communicate(timeout=300)
    entry["startup_seconds"] = first - start
    entry["exit_code"] = proc.returncode
    entry["output_tail"] = output[-1500:]
    records = []
    if os.path.exists(log):
        with open(log, encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()]
    if not records:
        raise RuntimeError(f"the training run logged nothing:\n{output[-3000:]}")
    entry["steps"] = records[-1]["step"]
    entry["losses"] = {r["step"]: r["loss"] for r in records}
    rates = [r["examples_per_sec"] for r in records[1:]] or [records[0]["examples_per_sec"]]
    entry["seq_per_second"] = sorted(rates)[len(rates) // 2]
    entry["loss_first"], entry["loss_last"] = records[0]["loss"], records[-1]["loss"]
    entry["losses_fall"] = records[-1]["loss"] < records[0]["loss"]
    print(f"gpu_run: trained {entry['steps']} steps, {entry['seq_per_second']:,.1f} seq/s, loss "
          f"{entry['loss_first']:.3f} -> {entry['loss_last']:.3f}", flush=True)


def main(argv=None):
    args = parse_args(argv)
    os.environ["KERAS_BACKEND"] = "jax"
    sys.path[:0] = [HERE, REPO]
    import tempfile

    started = time.monotonic()
    deadline = started + args.budget_seconds
    results = {"dry_run": args.dry_run, "device": device_info(), "synthetic": []}
    print(f"gpu_run: device {results['device']}", flush=True)
    synthetic_part(args, results, deadline)
    results["peak_memory_bytes_after_synthetic"] = peak_memory_bytes()[0]
    with tempfile.TemporaryDirectory(prefix="gpu_run-") as workdir:
        training_part(args, results, deadline, workdir)
    results["peak_memory_bytes"], results["memory_limit_bytes"] = peak_memory_bytes()
    results["wall_seconds"] = time.monotonic() - started
    output = args.output or os.path.join(os.environ.get("OUT") or os.path.join(HERE, "results"),
                                         "gpu_run.json")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    tmp = f"{output}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    os.replace(tmp, output)
    print(f"gpu_run: {results['wall_seconds']:.0f} s; results in {output}")
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
