"""Memory-mapped numpy blocks vs ArrayRecord: write time, size, random-batch and epoch reads.

The TF-free input (`spanbert_tf.data.blocks`) reads `[CLS] block [SEP]` rows at random
positions, a batch at a time. This bench writes the same rows in both formats and times what
the loader does: a batch of `--batch_size` rows at random indices (the shuffled order) and a
whole pass in index order. Rows are random wordpieces, full length (packed blocks are).

    python bench/block_formats.py --rows=200000 --seq_length=128

Needs numpy and (for the ArrayRecord column) the `array_record` package; no TensorFlow.
"""

import argparse
import os
import shutil
import tempfile
import time

import numpy as np


def row_dtype(seq_length):
    return np.dtype([("input_ids", "<u2", (seq_length,)), ("length", "<i4"),
                     ("example_id", "<i8")])


def make_rows(n, seq_length, seed=0):
    rows = np.zeros(n, row_dtype(seq_length))
    rng = np.random.default_rng(seed)
    rows["input_ids"] = rng.integers(999, 28996, (n, seq_length), dtype=np.uint16)
    rows["length"] = seq_length
    rows["example_id"] = np.arange(n)
    return rows


def bench_npy(rows, folder, batch, batches, rng):
    path = os.path.join(folder, "blocks.npy")
    t = time.perf_counter()
    np.save(path, rows)
    write = time.perf_counter() - t
    data = np.load(path, mmap_mode="r")
    idx = [np.sort(rng.choice(len(rows), batch, replace=False)) for _ in range(batches)]
    t = time.perf_counter()
    for i in idx:
        ids = np.asarray(data[i]["input_ids"], np.int32)
    random_s = time.perf_counter() - t
    t = time.perf_counter()
    for start in range(0, len(rows), batch):
        ids = np.asarray(data[start:start + batch]["input_ids"], np.int32)
    seq_s = time.perf_counter() - t
    assert ids.shape[1] == rows["input_ids"].shape[1]
    return write, os.path.getsize(path), random_s, seq_s


def bench_array_record(rows, folder, batch, batches, rng):
    from array_record.python.array_record_module import ArrayRecordReader, ArrayRecordWriter

    path = os.path.join(folder, "blocks.array_record")
    t = time.perf_counter()
    writer = ArrayRecordWriter(path, "group_size:1")  # random access: one record per chunk
    for row in rows:
        writer.write(row.tobytes())
    writer.close()
    write = time.perf_counter() - t
    reader = ArrayRecordReader(path, "readahead_buffer_size:0")
    dtype = rows.dtype
    idx = [np.sort(rng.choice(len(rows), batch, replace=False)) for _ in range(batches)]
    t = time.perf_counter()
    for i in idx:
        got = np.frombuffer(b"".join(reader.read(i.tolist())), dtype)
        ids = got["input_ids"].astype(np.int32)
    random_s = time.perf_counter() - t
    t = time.perf_counter()
    for start in range(0, len(rows), batch):
        got = np.frombuffer(b"".join(reader.read(start, min(start + batch, len(rows)))), dtype)
        ids = got["input_ids"].astype(np.int32)
    seq_s = time.perf_counter() - t
    reader.close()
    assert ids.shape[1] == rows["input_ids"].shape[1]
    return write, os.path.getsize(path), random_s, seq_s


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seq_length", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=400, help="random batches timed")
    args = parser.parse_args(argv)
    rows = make_rows(args.rows, args.seq_length)
    folder = tempfile.mkdtemp(prefix="block_formats-")
    results = {}
    try:
        for name, fn in (("npy (memory-mapped)", bench_npy),
                         ("ArrayRecord", bench_array_record)):
            try:
                results[name] = fn(rows, folder, args.batch_size, args.batches,
                                   np.random.default_rng(1))
            except ImportError as e:
                print(f"{name}: not measured ({e})")
    finally:
        shutil.rmtree(folder)
    print(f"block formats: {args.rows:,} rows of seq {args.seq_length}, batches of "
          f"{args.batch_size} (random: {args.batches} batches at shuffled indices)")
    print(f"  {'format':22s} {'write s':>8s} {'MB':>8s} {'random rows/s':>14s} "
          f"{'sequential rows/s':>18s}")
    for name, (write, size, random_s, seq_s) in results.items():
        print(f"  {name:22s} {write:8.2f} {size / 1e6:8.1f} "
              f"{args.batch_size * args.batches / random_s:14,.0f} {args.rows / seq_s:18,.0f}")
    if len(results) == 2:
        (a, b) = results.values()
        print(f"  npy / ArrayRecord: random reads {b[2] / a[2]:.1f}x faster, sequential "
              f"{b[3] / a[3]:.1f}x, writes {b[0] / a[0]:.1f}x")
    return results


if __name__ == "__main__":
    main()
