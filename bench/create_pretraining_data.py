"""Benchmark of create_pretraining_data.py: whole-process tokens/s and peak RSS.

Throughput = input wordpieces x dupe_factor / whole-process wall time (python start
to exit, TensorFlow import included), on the shared WikiText-2 test corpus repeated
`--repeat` times (10 copies of its 62 documents ≈ 2.8 M wordpieces), at
max_seq_length 512, max_predictions_per_seq 80, dupe_factor 5, with 1 and 2
workers. Also reported: CPU seconds of the whole process tree, of the main process
alone, and tokens per CPU second (less sensitive to other users of a shared machine
than wall time). Peak RSS
is the largest summed RSS of the process tree (sampled every 50 ms); memory per worker is
the largest peak RSS of any one process of the tree. `--rss_check` also runs 1 worker on the unrepeated corpus: peak RSS must
not grow with corpus size. With `--reference_script` (google-research/bert's
create_pretraining_data.py, its tokenization.py beside it) the same corpus is run
through it side by side, from a temporary copy patched only to
`import tensorflow.compat.v1 as tf`; without it that row is skipped.

`--rounds=N` repeats the 1- and 2-worker runs N times, interleaved, and reports the median
of the per-round ratios (one run's speed on a shared machine varies by 20% or more). Each
round also runs 1 worker on the corpus's first document alone: that run's wall time F is
the fixed cost of a run (Python and TensorFlow start-up, the first ops, exit), which no
number of workers shortens; perfect scaling of the rest would bound 2 workers at
T1 / (F + (T1 - F) / 2), printed beside the measured speed-up.

`--beam_workers=2` adds the same job as an Apache Beam pipeline on the FnApiRunner
with 2 processes (`--runner=beam`; needs the [beam] extra).

Usage:
    python bench/create_pretraining_data.py \
        --reference_script=/path/to/bert/create_pretraining_data.py
Results: printed, and written to bench/results/create_pretraining_data.json.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import psutil
from spanbert_tf.tokenization import BertWordpieceTokenizer

FIXED, FIXED_NAME = "fixed", "spanbert_tf, 1 worker, one document (fixed cost)"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(REPO, "spanbert_tf", "resources", "wikitext-2-raw-test.txt")
VOCAB = os.path.join(REPO, "spanbert_tf", "resources", "bert-base-cased-vocab.txt")


def make_corpus(path, repeat):
    with open(CORPUS, encoding="utf-8") as f:
        text = f.read().strip("\n") + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join([text] * repeat))  # a blank line between copies


def make_one_document_corpus(path):
    """The corpus's first document: a run on it is start-up (Python, TensorFlow, the
    first ops) and exit, i.e. what a run pays before and after its work."""
    with open(CORPUS, encoding="utf-8") as f:
        text = f.read().strip("\n").split("\n\n")[0]
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def run_measured(cmd, log_path):
    """Runs cmd (output to log_path).

    Returns (wall s, CPU s of the tree, peak RSS MiB of the tree, CPU s of the main process
    alone, the largest peak RSS MiB of one process (memory per worker), number of processes).
    The tree's CPU is the larger of the reaped children's rusage and the sum of the last
    CPU times sampled (every 50 ms) of every process of the tree: worker pools forked
    from a forkserver are not children of the program, and the program need not reap
    its forkserver.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        peak, last_cpu, peak_each = 0, {}, {}
        ps = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [ps] + ps.children(recursive=True)
            except psutil.Error:
                tree = []
            rss = 0
            for p in tree:
                try:
                    with p.oneshot():
                        one = p.memory_info().rss
                        rss += one
                        peak_each[p.pid] = max(peak_each.get(p.pid, 0), one)
                        times = p.cpu_times()
                    last_cpu[p.pid] = times.user + times.system
                except psutil.Error:
                    pass
            peak = max(peak, rss)
            time.sleep(0.05)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu = max(cpu, sum(last_cpu.values()))
    if proc.returncode:
        with open(log_path, "rb") as f:
            tail = f.read()[-2000:].decode(errors="replace")
        sys.exit(f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    largest = max(peak_each.values(), default=0) / 2**20
    return wall, cpu, peak / 2**20, last_cpu.get(proc.pid, 0.0), largest, len(peak_each)


def count_wordpieces(path):
    sys.path.insert(0, REPO)

    tok = BertWordpieceTokenizer(VOCAB)
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    total = 0
    for i in range(0, len(lines), 2000):
        flat, _ = tok.tokenize_to_ids_flat(lines[i:i + 2000])
        total += flat.size
    return total


def patched_reference(script, workdir):
    src = os.path.dirname(os.path.abspath(script))
    for name in ("create_pretraining_data.py", "tokenization.py"):
        with open(os.path.join(src, name), encoding="utf-8") as f:
            code = f.read()
        code = code.replace("import tensorflow as tf", "import tensorflow.compat.v1 as tf")
        with open(os.path.join(workdir, name), "w", encoding="utf-8") as f:
            f.write(code)
    return os.path.join(workdir, "create_pretraining_data.py")


def summarize_rounds(results):
    """Per-round 2-vs-1-worker ratios and their medians, and the speed-up bound (into results)."""
    rows = {w: [r for r in results["runs"] if r["name"] == f"spanbert_tf, {w} worker(s)"]
            for w in (1, 2)}
    speed = [b["tokens_per_second"] / a["tokens_per_second"] for a, b in zip(rows[1], rows[2])]
    cpu = [b["cpu_seconds"] / a["cpu_seconds"] for a, b in zip(rows[1], rows[2])]
    share = [b["main_process_cpu_seconds"] / b["cpu_seconds"] for b in rows[2]]
    # Perfect scaling of everything but the fixed cost F of a run (start-up and exit,
    # measured in the same round) bounds 2 workers at T1 / (F + (T1 - F) / 2).
    fixed = [r["wall_seconds"] for r in results["runs"] if r["name"] == FIXED_NAME]
    bound = [a["wall_seconds"] / (f + (a["wall_seconds"] - f) / 2)
             for a, f in zip(rows[1], fixed)]
    results["rounds"] = {"speedup_2_vs_1_workers": [round(x, 3) for x in speed],
                         "cpu_2_vs_1_workers": [round(x, 3) for x in cpu],
                         "fixed_cost_seconds": fixed,
                         "speedup_bound_2_workers": [round(x, 3) for x in bound]}
    results["speedup_bound_2_workers"] = round(statistics.median(bound), 2)
    results["speedup_2_vs_1_workers"] = round(statistics.median(speed), 2)
    results["cpu_2_vs_1_workers"] = round(statistics.median(cpu), 2)
    results["main_process_cpu_share_2_workers"] = round(statistics.median(share), 3)
    for w in (1, 2):
        walls = [r["wall_seconds"] for r in rows[w]]
        print(f"{w} worker(s): wall seconds per round {walls} (median "
              f"{statistics.median(walls):.2f})")
    print(f"per-round speed-up 2 vs 1 worker: {[round(x, 2) for x in speed]}; "
          f"CPU: {[round(x, 2) for x in cpu]} (medians below)")
    print(f"fixed cost of a run (one document, 1 worker): {fixed} s; perfect scaling of the "
          f"rest would give 2 workers at most {[round(x, 2) for x in bound]}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--dupe_factor", type=int, default=5)
    parser.add_argument("--max_seq_length", type=int, default=512)
    parser.add_argument("--max_predictions_per_seq", type=int, default=80)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the --workers runs this many times, interleaved (1, 2, 1, "
                             "2, ...); ratios are per round, their median reported: on a "
                             "shared machine one run's speed varies by 20%% or more")
    parser.add_argument("--beam_workers", type=int, default=0,
                        help="also run --runner=beam on the FnApiRunner with this many "
                             "processes (multi_processing; needs the [beam] extra); 0 = skip")
    parser.add_argument("--reference_script", default="",
                        help="google-research/bert create_pretraining_data.py (optional)")
    parser.add_argument("--reference_repeat", type=int, default=0,
                        help="corpus copies for the reference run (0 = --repeat; it holds "
                             "the whole corpus in memory and is slow: 1 is enough for a rate)")
    parser.add_argument("--rss_check", action="store_true", default=True)
    parser.add_argument("--no_rss_check", dest="rss_check", action="store_false")
    parser.add_argument("--output", default=os.path.join(REPO, "bench", "results",
                                                         "create_pretraining_data.json"))
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench_cpd_")
    results = {"machine": {"cpus": os.cpu_count(),
                           "load_average_start": list(os.getloadavg())},
               "settings": vars(args), "runs": []}
    try:
        corpora = {}
        for repeat in sorted({1, args.repeat, args.reference_repeat or args.repeat}):
            path = os.path.join(tmp, f"wikitext_x{repeat}.txt")
            make_corpus(path, repeat)
            corpora[repeat] = (path, count_wordpieces(path))
        path = os.path.join(tmp, "one_document.txt")  # the fixed cost of a run
        make_one_document_corpus(path)
        corpora[FIXED] = (path, count_wordpieces(path))
        common = [f"--max_seq_length={args.max_seq_length}",
                  f"--max_predictions_per_seq={args.max_predictions_per_seq}",
                  f"--dupe_factor={args.dupe_factor}", f"--vocab_file={VOCAB}"]
        ours = [sys.executable, os.path.join(REPO, "create_pretraining_data.py"),
                "--noprogress"] + common
        plan = []
        for _ in range(args.rounds):
            plan += [(f"spanbert_tf, {w} worker(s)", args.repeat, ours + [f"--num_workers={w}"])
                     for w in [int(w) for w in args.workers.split(",")]]
            plan.append((FIXED_NAME, FIXED, ours + ["--num_workers=1"]))
        if args.beam_workers:
            plan.append((f"spanbert_tf --runner=beam, {args.beam_workers} process(es)",
                         args.repeat, ours + [
                             "--runner=beam", "--beam_pipeline_options="
                             f"--direct_num_workers={args.beam_workers},"
                             "--direct_running_mode=multi_processing"]))
        if args.rss_check:
            plan.append(("spanbert_tf, 1 worker, corpus x1 (RSS check)", 1,
                         ours + ["--num_workers=1"]))
        if args.reference_script and os.path.isfile(args.reference_script):
            ref = patched_reference(args.reference_script, tmp)
            plan.append(("google-research/bert (reference)",
                         args.reference_repeat or args.repeat,
                         [sys.executable, ref, "--do_lower_case=False",
                          "--do_whole_word_mask=False"] + common))
        elif args.reference_script:
            print(f"reference script not found: {args.reference_script} (skipped)")
        else:
            print("no --reference_script given: google-research/bert run skipped")
        for name, repeat, cmd in plan:
            path, tokens = corpora[repeat]
            out_dir = os.path.join(tmp, "out")
            shutil.rmtree(out_dir, ignore_errors=True)
            os.makedirs(out_dir)
            if "reference" in name:
                cmd = cmd + [f"--input_file={path}",
                             f"--output_file={os.path.join(out_dir, 'ref.tfrecord')}"]
            else:
                cmd = cmd + [f"--input_file={path}", f"--output_dir={out_dir}"]
            wall, cpu, rss, main_cpu, largest, processes = run_measured(
                cmd, os.path.join(tmp, "log.txt"))
            row = {"name": name, "corpus_copies": repeat, "wordpieces": tokens,
                   "wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
                   "tokens_per_second": round(tokens * args.dupe_factor / wall),
                   "tokens_per_cpu_second": round(tokens * args.dupe_factor / cpu),
                   "peak_rss_mib": round(rss, 1),
                   "largest_process_peak_rss_mib": round(largest, 1), "processes": processes,
                   "main_process_cpu_seconds": round(main_cpu, 2)}
            results["runs"].append(row)
            print(f"{name:46s} {tokens:>9,} wp x{args.dupe_factor} {wall:7.2f} s wall "
                  f"{cpu:7.2f} s CPU {row['tokens_per_second']:>10,} tok/s "
                  f"({row['tokens_per_cpu_second']:>10,} /CPU s) peak RSS {rss:6.0f} MiB "
                  f"({processes} processes, largest {largest:5.0f} MiB) "
                  f"main process {main_cpu:5.2f} CPU s",
                  flush=True)
        runs = {r["name"]: r for r in results["runs"]}  # the last round's
        one = runs.get("spanbert_tf, 1 worker(s)")
        two = runs.get("spanbert_tf, 2 worker(s)")
        ref = runs.get("google-research/bert (reference)")
        if one and two:
            summarize_rounds(results)
        if one and ref:
            results["speedup_1_worker_vs_reference"] = round(
                one["tokens_per_second"] / ref["tokens_per_second"], 2)
            results["cpu_efficiency_1_worker_vs_reference"] = round(
                one["tokens_per_cpu_second"] / ref["tokens_per_cpu_second"], 2)
        beam = runs.get(f"spanbert_tf --runner=beam, {args.beam_workers} process(es)")
        local = runs.get(f"spanbert_tf, {args.beam_workers} worker(s)")
        if beam and local:
            results["beam_vs_local_throughput"] = round(
                beam["tokens_per_second"] / local["tokens_per_second"], 2)
            results["beam_vs_local_cpu"] = round(beam["cpu_seconds"] / local["cpu_seconds"], 2)
        results["machine"]["load_average_end"] = list(os.getloadavg())
        for key in ("speedup_1_worker_vs_reference", "cpu_efficiency_1_worker_vs_reference",
                    "speedup_2_vs_1_workers", "speedup_bound_2_workers", "cpu_2_vs_1_workers",
                    "main_process_cpu_share_2_workers", "beam_vs_local_throughput",
                    "beam_vs_local_cpu"):
            if key in results:
                print(f"{key}: {results[key]}x")
        os.makedirs(os.path.dirname(args.output), exist_ok=True)
        with open(args.output, "w") as f:
            json.dump(results, f, indent=2)
        print(f"written {args.output}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
