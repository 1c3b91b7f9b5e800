"""bench/coref.py at the tiny size: every measurement is made and reported (no timing asserted)."""

import importlib.util
import json
import os

import pytest

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench")
# Loaded by path: the name `coref` is also the package tests/tasks/coref.
_spec = importlib.util.spec_from_file_location("bench_coref", os.path.join(BENCH, "coref.py"))
coref_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(coref_bench)


def test_flags_are_checked():
    for argv in (["--segment_lens=abc"], ["--segment_lens=2"], ["--train_steps=-1"]):
        with pytest.raises(SystemExit):
            coref_bench.parse_args(argv)
    args = coref_bench.parse_args(["--segment_lens=128, 256"])
    assert args.segment_lens == [128, 256] and args.long_doc_wordpieces == 20000


def test_tiny_run_reports_every_figure(capsys, shared_data):
    conll_file = str(shared_data / "coref" / "litbank" / "conll" / "32_herland_brat.conll")
    assert coref_bench.main(["--config=coref_tiny", "--segment_lens=64", "--train_steps=1",
                             "--predict_docs=1", "--long_doc_wordpieces=3000",
                             f"--conll={conll_file}"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    (run,) = result["runs"]
    assert run["max_segment_len"] == 64 and run["doc_wordpieces"][0] > 1000
    for phase in ("train", "predict"):
        assert run[phase]["docs_per_s"] > 0 and run[phase]["peak_rss_gib"] > 0.1
    long_doc = result["long_document"]
    # One committed document (~2.7k wordpieces) repeated past 3,000.
    assert long_doc["wordpieces"] >= 3000 and long_doc["segments"] >= 3000 // 62
    assert 0 < long_doc["top_spans"] <= 0.4 * long_doc["wordpieces"]
    assert any(line.startswith("long document:") for line in lines)
