"""End to end: create_pretraining_data on the shared WikiText corpus and bad inputs."""

import collections
import gzip
import hashlib
import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from spanbert_tf.data.writing import documents, packing, pipeline
from spanbert_tf.data import features
from spanbert_tf.tokenization import BertWordpieceTokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAM = os.path.join(REPO, "create_pretraining_data.py")
L, P, DUPE = 64, 10, 2


def _config(**kwargs):
    base = dict(max_seq_length=L, max_predictions_per_seq=P, dupe_factor=DUPE,
                num_shards=3, num_workers=1, progress=False)
    base.update(kwargs)
    return pipeline.PretrainingDataConfig(**base)


def _read_examples(output_dir, max_seq_length=L, max_predictions=P):
    import tensorflow as tf

    meta = json.load(open(os.path.join(output_dir, "metadata.json")))
    spec = features.pretraining_feature_spec(max_seq_length, max_predictions)
    compression = "GZIP" if meta["compression"] == "GZIP" else ""
    examples = []
    for name in meta["shards"]:
        for record in tf.data.TFRecordDataset(os.path.join(output_dir, name), compression):
            parsed = tf.io.parse_single_example(record, spec)
            examples.append({k: v.numpy() for k, v in parsed.items()})
    return examples


def _without_timing(stats):
    return {k: v for k, v in stats.items() if k != "timing"}


@pytest.fixture(scope="module")
def wikitext_run(tmp_path_factory, wikitext_corpus, shared_data):
    out = str(tmp_path_factory.mktemp("wikitext_1_worker"))
    corpus = str(shared_data / "corpus" / "wikitext-2-raw-test.txt")
    saved = pipeline.WORK_UNIT_BYTES
    pipeline.WORK_UNIT_BYTES = 100_000  # many work units: exercises ordering across workers
    try:
        stats = pipeline.create_pretraining_data(_config(input_file=corpus, output_dir=out))
    finally:
        pipeline.WORK_UNIT_BYTES = saved
    return out, stats, corpus


def _expected_blocks(corpus, tokenizer, max_tokens):
    blocks = collections.Counter()
    for part in documents.iter_document_parts([corpus], documents.InputStats()):
        flat, splits = tokenizer.tokenize_to_ids_flat(part.lines)
        ranges, _ = packing.pack_lines(splits, tokenizer.word_start_table[flat], max_tokens)
        for s, e in ranges:
            blocks[tuple(flat[s:e].tolist())] += 1
    return blocks


@pytest.mark.slow
def test_wikitext_end_to_end(wikitext_run, cased_vocab):
    out, stats, corpus = wikitext_run
    tok = BertWordpieceTokenizer(cased_vocab)
    examples = _read_examples(out)
    meta = json.load(open(os.path.join(out, "metadata.json")))
    assert stats == {**json.load(open(os.path.join(out, "stats.json"))), "timing": stats["timing"]}
    assert len(examples) == stats["instances"] == sum(stats["instances_per_shard"])
    assert meta["counts"]["instances"] == len(examples)
    assert stats["documents"] == 62 and stats["tokens"] == 281471
    assert meta["feature_spec"] == features.feature_spec_json(L, P)
    assert meta["vocab"]["sha256"] == hashlib.sha256(open(cased_vocab, "rb").read()).hexdigest()
    assert meta["special_token_ids"] == {"[CLS]": 101, "[SEP]": 102, "[MASK]": 103,
                                         "[UNK]": 100, "[PAD]": 0}
    assert meta["settings"]["dupe_factor"] == DUPE

    originals = collections.Counter()
    masked_total = sbo_total = 0
    for ex in examples:
        n = int(ex["input_mask"].sum())
        assert ex["input_mask"][:n].all() and not ex["input_ids"][n:].any()
        assert not ex["segment_ids"].any()
        m = int(ex["masked_lm_weights"].sum())
        pos = ex["masked_lm_positions"][:m]
        assert m == min(math.ceil(0.15 * (n - 2)), P)
        assert (np.diff(pos) > 0).all() and pos[0] >= 1 and pos[-1] <= n - 2
        assert not ex["masked_lm_positions"][m:].any() and not ex["masked_lm_ids"][m:].any()
        original = ex["input_ids"][:n].copy()
        original[pos] = ex["masked_lm_ids"][:m]
        assert original[0] == tok.cls_id and original[-1] == tok.sep_id
        originals[tuple(original[1:-1].tolist())] += 1
        # SBO targets: boundaries outside the span, offset = distance from its start.
        w = ex["sbo_weights"][:m] > 0
        left, right = ex["span_left_positions"][:m], ex["span_right_positions"][:m]
        rel = ex["span_relative_positions"][:m]
        assert (left[w] >= 1).all() and (right[w] <= n - 2).all()
        assert (left[w] < pos[w]).all() and (pos[w] < right[w]).all()
        assert (rel[w] == pos[w] - left[w] - 1).all() and (rel[w] < 15).all()
        assert not left[~w].any() and not right[~w].any() and not ex["sbo_weights"][m:].any()
        masked_total += m
        sbo_total += int(w.sum())
    # Unmasking gives back exactly the packed blocks of the corpus, dupe_factor times each.
    expected = _expected_blocks(corpus, tok, L - 2)
    assert originals == collections.Counter({k: v * DUPE for k, v in expected.items()})
    assert masked_total == stats["masked_tokens"]
    assert stats["sbo_target_fraction"] == pytest.approx(sbo_total / masked_total)
    assert 0.15 <= stats["masked_fraction"] < 0.17
    rep = stats["replacement_proportions"]
    assert rep["mask"] == pytest.approx(0.8, abs=0.03)
    assert rep["random"] == pytest.approx(0.1, abs=0.02)
    assert sum(int(v) for v in stats["span_length_words_histogram"].values()) == stats["spans"]
    assert stats["skipped"] == {} and stats["invalid_utf8_bytes"] == 0


@pytest.mark.slow
def test_same_output_whatever_the_number_of_workers(wikitext_run, tmp_path):
    out1, stats1, corpus = wikitext_run
    out2 = str(tmp_path / "two_workers")
    saved = pipeline.WORK_UNIT_BYTES
    pipeline.WORK_UNIT_BYTES = 100_000
    try:
        stats2 = pipeline.create_pretraining_data(
            _config(input_file=corpus, output_dir=out2, num_workers=2))
    finally:
        pipeline.WORK_UNIT_BYTES = saved
    assert stats2["timing"]["num_workers"] == 2
    assert _without_timing(stats1) == _without_timing(stats2)
    shard_files = [json.load(open(os.path.join(d, "metadata.json")))["shard_files"]
                   for d in (out1, out2)]  # hashed by the workers with 2
    assert shard_files[0] == shard_files[1]
    assert shard_files[1][0]["sha256"] == hashlib.sha256(
        open(os.path.join(out2, shard_files[1][0]["name"]), "rb").read()).hexdigest()
    for name in json.load(open(os.path.join(out1, "metadata.json")))["shards"]:
        with open(os.path.join(out1, name), "rb") as a, open(os.path.join(out2, name), "rb") as b:
            assert a.read() == b.read(), name


@pytest.mark.slow
def test_long_lines_split_or_drop_and_unigram_random_tokens(tmp_path, cased_vocab):
    tok = BertWordpieceTokenizer(cased_vocab)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
    long_line = " ".join(words * 6)
    corpus = tmp_path / "c.txt.gz"
    with gzip.open(corpus, "wt", encoding="utf-8") as f:
        f.write(f"Short line one.\n{long_line}\nShort line two.\n\nSecond document here.\n")
    seen = set(tok.tokenize_to_ids_flat(
        ["Short line one.", long_line, "Short line two.", "Second document here."])[0].tolist())
    split = pipeline.create_pretraining_data(_config(
        input_file=str(corpus), output_dir=str(tmp_path / "split"), max_seq_length=16,
        dupe_factor=30, random_token_source="unigram", num_shards=1))
    assert split["long_lines_split"] == 1 and split["long_lines_dropped"] == 0
    assert split["unigram_distinct_wordpieces"] == len(seen)
    for ex in _read_examples(str(tmp_path / "split"), 16, P):
        n = int(ex["input_mask"].sum())
        assert n <= 16
        m = int(ex["masked_lm_weights"].sum())
        pos, ids = ex["masked_lm_positions"][:m], ex["masked_lm_ids"][:m]
        now = ex["input_ids"][pos]
        random = (now != tok.mask_id) & (now != ids)
        assert set(now[random].tolist()) <= seen  # unigram: only corpus wordpieces
    # Unigram weights come from a counting pass: still independent of the worker count.
    split2 = pipeline.create_pretraining_data(_config(
        input_file=str(corpus), output_dir=str(tmp_path / "split2"), max_seq_length=16,
        dupe_factor=30, random_token_source="unigram", num_shards=1, num_workers=2))
    assert _without_timing(split2) == _without_timing(split)
    name = "pretrain-00000-of-00001.tfrecord"
    assert (tmp_path / "split" / name).read_bytes() == (tmp_path / "split2" / name).read_bytes()
    drop = pipeline.create_pretraining_data(_config(
        input_file=str(corpus), output_dir=str(tmp_path / "drop"), max_seq_length=16,
        long_lines="drop", num_shards=1))
    assert drop["long_lines_dropped"] == 1 and drop["skipped"] == {"long_line": 1}
    assert drop["tokens"] - drop["dropped_tokens"] == drop["instance_tokens"] // DUPE
    # Another seed: the same blocks, other masks.
    seed = pipeline.create_pretraining_data(_config(
        input_file=str(corpus), output_dir=str(tmp_path / "seed"), max_seq_length=16,
        long_lines="drop", num_shards=1, random_seed=7))
    assert _without_timing(seed)["instance_tokens"] == drop["instance_tokens"]
    a = [e["input_ids"].tobytes() for e in _read_examples(str(tmp_path / "drop"), 16, P)]
    b = [e["input_ids"].tobytes() for e in _read_examples(str(tmp_path / "seed"), 16, P)]
    assert len(a) == len(b) and a != b
    assert split["tokens"] == split["instance_tokens"] // 30


def test_jsonl_input(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps({"body": f"Document number {i}.\nIt has two lines."})
                              for i in range(5)) + "\n")
    stats = pipeline.create_pretraining_data(_config(
        input_file=str(path), input_format="jsonl", text_key="body",
        output_dir=str(tmp_path / "out")))
    assert stats["documents"] == 5 and stats["instances"] == 5 * DUPE


def _cli(*args):
    proc = subprocess.run([sys.executable, PROGRAM, "--noprogress", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    err_lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return proc, err_lines


@pytest.mark.parametrize("args,message", [
    (["--input_file=/nonexistent/corpus.txt"], "input file not found: /nonexistent/corpus.txt"),
    (["--vocab_file=/nonexistent/vocab.txt"], "vocab file not found: /nonexistent/vocab.txt"),
    (["--max_seq_length=2"], "--max_seq_length must be >= 3"),
    (["--masked_lm_prob=1.5"], "--masked_lm_prob must be in (0.0, 1.0], got 1.5"),
    (["--masking=spans"], "--masking"),
    (["--max_seq_length=5"], "--max_seq_length=5 is too short for --masked_lm_prob=0.15: a "
                             "block of 3 wordpieces gets 1 masked (33%, not 15%); use "
                             "--max_seq_length >= 16"),
])
def test_bad_inputs_fail_with_one_clear_line(tmp_path, args, message):
    proc, err = _cli(f"--output_dir={tmp_path}/out", *args)
    assert proc.returncode != 0
    assert len(err) == 1 and message in err[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_vocab_without_special_tokens(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\nhello\n")
    proc, err = _cli(f"--vocab_file={vocab}", f"--output_dir={tmp_path}/out")
    assert proc.returncode != 0 and len(err) == 1
    assert "vocab.txt lacks the special tokens [CLS] [SEP] [MASK]" in err[0]


@pytest.mark.slow
def test_cli_skips_bad_files_and_reports_them(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a_good.txt").write_bytes(b"Caf\xe9 society was busy.\nAnother line here.\n")
    (data / "b_empty.txt").write_bytes(b"")
    (data / "c_binary.txt").write_bytes(b"\x7fELF\x00\x01\x02" * 100)
    (data / "d_good.txt").write_text("A second good document.\n")
    out = tmp_path / "out"
    proc, _ = _cli(f"--input_file={data}/*.txt", f"--output_dir={out}", "--max_seq_length=32",
                   "--max_predictions_per_seq=5", "--num_workers=1")
    assert proc.returncode == 0, proc.stderr
    stats = json.load(open(out / "stats.json"))
    assert stats["skipped"] == {"binary_file": 1, "empty_file": 1}
    assert stats["invalid_utf8_bytes"] == 1
    assert stats["documents"] == 2 and stats["instances"] == 2 * 10
    assert "binary_file: 1" in proc.stdout and "empty_file: 1" in proc.stdout
    assert "invalid UTF-8 bytes replaced: 1" in proc.stdout
    # stats.png beside stats.json where matplotlib is installed (the plots extra).
    picture = ["stats.png"] if importlib.util.find_spec("matplotlib") else []
    assert sorted(os.listdir(out)) == ["metadata.json"] + [
        f"pretrain-{i:05d}-of-00010.tfrecord" for i in range(10)] + ["stats.json"] + picture


@pytest.mark.slow
def test_workers_start_quietly(tmp_path, shared_data):
    """TensorFlow's start-up lines (oneDNN, cudart, absl) stay out of stderr, workers too."""
    proc, err = _cli(f"--input_file={shared_data / 'corpus/bert_sample_text.txt'}",
                     f"--output_dir={tmp_path}/out", "--max_seq_length=64",
                     "--max_predictions_per_seq=10", "--num_workers=2")
    assert proc.returncode == 0 and err == [], proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["local", "beam"])
def test_every_input_skipped_is_one_line_error_and_writes_nothing(tmp_path, runner):
    if runner == "beam":
        pytest.importorskip("apache_beam")
    data = tmp_path / "data"
    data.mkdir()
    (data / "b_empty.txt").write_bytes(b"")
    (data / "c_binary.txt").write_bytes(b"\x7fELF\x00\x01\x02" * 100)
    out = tmp_path / "out"
    proc, err = _cli(f"--input_file={data}/*.txt", f"--output_dir={out}", "--max_seq_length=32",
                     "--max_predictions_per_seq=5", "--num_workers=1", f"--runner={runner}")
    assert proc.returncode == 1
    assert err == [f"create_pretraining_data.py: error: nothing to write: every input file was "
                   f"skipped ({data}/b_empty.txt: empty_file, {data}/c_binary.txt: "
                   "binary_file); no shards or metadata.json written"], proc.stderr
    assert not out.exists()  # no shard, no metadata.json, no temporary file, no dir


def test_readable_input_without_instance_is_an_error(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text(" ".join(["word"] * 100) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(documents.InputError, match=r"^nothing to write: the input \(1 file\(s\), "
                       r"1 document\(s\), 100 wordpiece\(s\)\) gave no instance: 1 line\(s\) "
                       r"longer than a block dropped"):
        pipeline.create_pretraining_data(_config(input_file=str(path), output_dir=str(out),
                                                 max_seq_length=32, max_predictions_per_seq=5,
                                                 long_lines="drop"))
    assert os.listdir(out) == []
