"""Benchmark of import times: what every process of the project pays before its first op.

Each import runs `--repeat` times in a fresh interpreter; printed: the median wall and CPU
seconds of the import statement alone (interpreter start-up excluded), and the installed
versions of numpy and ml_dtypes (ml_dtypes 0.7.0 registers its numpy ufunc loops in about
a second at import; setup.py keeps it below 0.7).

Imports measured:
- `ml_dtypes` (imported by TensorFlow, JAX and Keras);
- the data processes' lean TensorFlow + tokenizer import (`spanbert_tf.data.writing.worker_preload`:
  what `create_pretraining_data`'s workers pay once, serially, before any tokenization);
- `tensorflow`; `keras_hub` (Keras on TensorFlow, and TensorFlow).

Usage:
    python bench/import_time.py [--repeat=3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMPORTS = ("ml_dtypes", "spanbert_tf.data.writing.worker_preload", "tensorflow", "keras_hub")
PROBE = ("import time; w, c = time.perf_counter(), time.process_time(); import {name}; "
         "print(time.perf_counter() - w, time.process_time() - c)")


def measure(name):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow",
               PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-c", PROBE.format(name=name)], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[-2]), float(out[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    versions = subprocess.run(
        [sys.executable, "-c", "import numpy, ml_dtypes; print(numpy.__version__, "
                               "ml_dtypes.__version__)"],
        check=True, capture_output=True, text=True).stdout.split()
    print(f"numpy {versions[0]}, ml_dtypes {versions[1]}, {os.cpu_count()} CPUs, "
          f"median of {args.repeat} fresh processes")
    results = {"numpy": versions[0], "ml_dtypes": versions[1], "imports": {}}
    for name in IMPORTS:
        runs = [measure(name) for _ in range(args.repeat)]
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        results["imports"][name] = {"wall_seconds": round(wall, 3), "cpu_seconds": round(cpu, 3)}
        print(f"import {name:34s} {wall:6.2f} s wall {cpu:6.2f} s CPU", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
