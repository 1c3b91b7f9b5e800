"""Coreference metrics: the reference scorer's published test cases, hand-computed LEA,
perfect LitBank predictions (singletons included), repeated mentions."""

import json
import subprocess
import sys

import pytest

from spanbert_tf.tasks.coref import conll, metrics, segments
from spanbert_tf.tasks.coref.metrics import CorefScoreError

# The coreference column, one entry per row, of the reference scorer's test files
# (conll/reference-coreference-scorers v8.01, test/DataFiles, transcribed).
TC_A_KEY = "(0 0) - (1 - - 1) - - (1) - (2 2) - (2) - (2 - 2) -"
TC_A = {
    1: "(0 0) - (1 - - 1) - - (1) - (2 2) - (2) - (2 - 2) -",
    2: "(0 0) - - - - - - - - - (2 2) - (2) - - - - -",
    3: "(0 0) - (1 - - 1) - - (1) (1) (2 2) (2) (2) (3) (2 - 2) -",
    4: "(0 0) - (1 - - 1) - - (1) (1) (2 2) (3) - (2) - - - -",
    5: "(0 0) - (1 (1 1) 1) - - (1) (1) (2 2) (3) - (2) - - - -",
    6: "(0 0) - (1 (3 3) 1) - - (1) (1) (2 2) (3) - (2) - - - -",
    7: "(0 0) - (1(1 - - 1)1) - - (1) (1) (2 2) (3) - (2) - - - -",
    8: "(0 0) - (1(3 - - 3)1) - - (1) (1) (2 2) (3) - (2) - - - -",
    9: "(0 0) - (1" + "(3" * 10 + " - - " + "3)" * 10 + "1) - - (1) (1) (2 2) (3) - (2) - - - -",
    10: "(0 0) - (1 - - 1) - - (2) - (3 3) - (4) - (5 - 5) -",
    11: "(0 0) - (0 - - 0) - - (0) - (0 0) - (0) - (0 - 0) -",
    12: "(0 0) - (1 1) - - (2) - (3) - (4 4) - (5) - (6) - - -",
    13: "(0 0) - (0 0) - - (0) - (0) - (0 0) - (0) - (0) - - -",
}
_F = lambda r, p: 2 * r * p / (r + p)  # noqa: E731
# Expected [recall, precision, F1] from test/CorefMetricTestConfig.pm (fractions).
TC_A_EXPECTED = {
    1: {"muc": [1, 1, 1], "bcub": [1, 1, 1], "ceafm": [1, 1, 1], "ceafe": [1, 1, 1]},
    2: {"muc": [1 / 3, 1, 0.5], "bcub": [(7 / 3) / 6, 1, 14 / 25],
        "ceafm": [0.5, 1, 0.66667], "ceafe": [0.6, 0.9, 0.72]},
    3: {"muc": [1, 3 / 5, 0.75], "bcub": [1, (4 + 7 / 12) / 9, 110 / 163],
        "ceafm": [1, 0.66667, 0.8], "ceafe": [0.88571, 0.66429, 0.75918]},
    4: {"muc": [1 / 3, 1 / 3, 1 / 3],
        "bcub": [(3 + 1 / 3) / 6, (1 + 4 / 3 + 1 / 2) / 7, _F(5 / 9, 17 / 42)],
        "ceafm": [0.66667, 0.57143, 0.61538], "ceafe": [0.73333, 0.55, 0.62857]},
    5: {"muc": [1 / 3, 1 / 4, 2 / 7], "bcub": [(3 + 1 / 3) / 6, 2.5 / 8, _F(5 / 9, 5 / 16)],
        "ceafm": [0.66667, 0.5, 0.57143], "ceafe": [0.68889, 0.51667, 0.59048]},
    6: {"muc": [1 / 3, 1 / 4, 2 / 7],
        "bcub": [(10 / 3) / 6, (1 + 4 / 3 + 1 / 2) / 8, _F(5 / 9, 17 / 48)],
        "ceafm": [0.66667, 0.5, 0.57143], "ceafe": [0.73333, 0.55, 0.62857]},
    **{i: {"muc": [1 / 3, 1 / 3, 1 / 3],
           "bcub": [(10 / 3) / 6, (1 + 4 / 3 + 1 / 2) / 7, _F(5 / 9, 17 / 42)],
           "ceafm": [0.66667, 0.57143, 0.61538], "ceafe": [0.73333, 0.55, 0.62857]}
       for i in (7, 8, 9)},
    10: {"muc": [0, 0, 0], "bcub": [3 / 6, 6 / 6, 2 / 3]},
    11: {"muc": [1, 3 / 5, 6 / 8], "bcub": [1, (1 / 6 + 2 * 2 / 6 + 3 * 3 / 6) / 6, 14 / 25]},
    12: {"muc": [0, 0, 0], "bcub": [(1 + 1 / 2 + 2 / 3) / 6, 4 / 7, _F(13 / 36, 4 / 7)]},
    13: {"muc": [1 / 3, 1 / 6, 2 / 9],
         "bcub": [(1 + 1 / 2 + 2 * 2 / 3) / 6, (1 / 7 + 1 / 7 + 2 * 2 / 7) / 7,
                  _F(17 / 36, 6 / 49)]},
}

_D_KEY = "- (1) - (1) - (1) - (1) - (1) - - - (2) - (2) - - - (3) - (3) - (3) - (3) - (3)"
_FJ = "- (1) - (1) - (1) - (1) " + "- " * 20
_M_KEY = "(0 0) - (0 - - 0) - - (0) - (0 0) - (0) - (0 - 0) -"
_N_KEY = "(0 0) - (1 - - 1) - - (2) - (3 3) - (4) - (5 - 5) -"
OTHER_CASES = [  # (id, key, response, expected)
    ("D1", _D_KEY, _D_KEY.replace("(2)", "(3)"),
     {"muc": [1, 9 / 10, _F(1, 9 / 10)], "bcub": [1, 16 / 21, _F(1, 16 / 21)]}),
    ("E1", _D_KEY, _D_KEY.replace("(3)", "(1)"),
     {"muc": [1, 9 / 10, _F(1, 9 / 10)], "bcub": [1, 7 / 12, _F(1, 7 / 12)]}),
    ("F1", _FJ, "- (1) - (1) - (2) - (2) " + "- " * 20, {"muc": [2 / 3, 1, _F(2 / 3, 1)]}),
    ("G1", "- (1) - (1) - (2) - (2) " + "- " * 20, _FJ, {"muc": [1, 2 / 3, _F(1, 2 / 3)]}),
    ("H1", _FJ, _FJ, {"muc": [1, 1, 1]}),
    ("J1", "- (1) - (1) - (1) " + "- " * 22, "- (1) - - - (1) " + "- " * 22,
     {"muc": [1 / 2, 1, _F(1 / 2, 1)]}),
    ("K1", "- - - (1) - (1) - (1) - (1) - - - (1) - (1) - - - (1) " + "- " * 8,
     "- (1) - (1) - (1) - (2) - (2) - (2) - (3) - (3) - (3) " + "- " * 10,
     {"muc": [3 / 6, 3 / 6, 3 / 6]}),
    ("L1", "- (1) - (1) - (1) - (2) - (2) - (2) - (2) " + "- " * 14,
     "- (1) - (1) - (2) - (2) - - - (3) - (3) - (3) " + "- " * 12,
     {"muc": [2 / 5, 2 / 4, _F(2 / 5, 2 / 4)]}),
    ("M1", _M_KEY, _M_KEY, {m: [1, 1, 1] for m in ("muc", "bcub", "ceafm", "ceafe")}),
    ("M2", _M_KEY, _N_KEY, {"muc": [0, 0, 0]}),
    ("M5", _M_KEY, "(0 0) - (1 - - 1) - - (2) (3) - - (4) - (5) - - - -", {"muc": [0, 0, 0]}),
    ("N1", _N_KEY, _N_KEY, {"muc": [0, 0, 0]}),
    ("N2", _N_KEY, _M_KEY, {"muc": [0, 0, 0]}),
    ("N4", _N_KEY, "(0 0) - (1 - - 1) - - (2) (3) - - (4) - (5) - - - -", {"muc": [0, 0, 0]}),
]


def _clusters(column):
    """Parses a coreference column transcription as the scorer reads a file."""
    rows = "".join(f"t 0 {i} w {c}\n" for i, c in enumerate(column.split()))
    return conll.parse_conll(f"#begin document (t); part 0\n{rows}#end document\n")[0].clusters


def _check(key, response, expected):
    results = metrics.evaluate({"t": _clusters(key)}, {"t": _clusters(response)})
    for name, (recall, precision, f1) in expected.items():
        got = results[name]
        assert got["recall"] == pytest.approx(100 * recall, abs=1e-3), name
        assert got["precision"] == pytest.approx(100 * precision, abs=1e-3), name
        assert got["f1"] == pytest.approx(100 * f1, abs=1e-3), name
    return results


@pytest.mark.parametrize("case", sorted(TC_A))
def test_reference_scorer_tc_a(case):
    _check(TC_A_KEY, TC_A[case], TC_A_EXPECTED[case])


@pytest.mark.parametrize("case_id, key, response, expected", OTHER_CASES,
                         ids=[c[0] for c in OTHER_CASES])
def test_reference_scorer_other_cases(case_id, key, response, expected):
    assert len(key.split()) == len(response.split())
    _check(key, response, expected)


def test_transcription_reads_as_the_scorer():
    # TC-A key: {a} {bc} {def} on rows 0-1 | 3-6, 9 | 11-12, 14, 16-18.
    assert _clusters(TC_A_KEY) == [[(0, 1)], [(3, 6), (9, 9)], [(11, 12), (14, 14), (16, 18)]]
    # TC-A-9: b repeated 10 times in entity 3 (removed as exact repeats: 10, not > 10).
    assert _clusters(TC_A[9])[2] == [(3, 6)] * 10 + [(13, 13)]
    results = metrics.evaluate({"t": _clusters(TC_A_KEY)}, {"t": _clusters(TC_A[9])})
    assert results["repeated_response_mentions"] == 10


def test_lea_hand_computed():
    # TC-A-2 {a} {de}: recall (1 + 0 + 3*1/3) / 6, precision (1 + 2*1/1) / 3.
    _check(TC_A_KEY, TC_A[2], {"lea": [2 / 6, 1, _F(2 / 6, 1)]})
    # TC-A-3 {a} {bcx} {defy} {z}: recall 6/6; precision (1 + 3*1/3 + 4*3/6 + 0) / 9.
    _check(TC_A_KEY, TC_A[3], {"lea": [1, 4 / 9, _F(1, 4 / 9)]})
    # TC-A-10 all singletons: recall {a} 1, others 0: 1/6; precision {a} 1 of 6 singletons.
    _check(TC_A_KEY, TC_A[10], {"lea": [1 / 6, 1 / 6, 1 / 6]})
    _check(TC_A_KEY, TC_A[1], {"lea": [1, 1, 1]})


def test_hand_computed_ceaf_and_conll():
    key = [[(0, 0), (1, 1), (2, 2)], [(5, 5)]]
    response = [[(0, 0), (1, 1)], [(2, 2), (5, 5)], [(7, 7)]]
    r = metrics.evaluate({"d": key}, {"d": response})
    # phi4: best alignment {012}-{01} 4/5 + {5}-{25} 2/3; recall /2, precision /3.
    phi4 = 4 / 5 + 2 / 3
    assert r["ceafe"]["recall"] == pytest.approx(100 * phi4 / 2)
    assert r["ceafe"]["precision"] == pytest.approx(100 * phi4 / 3)
    # phi3: {012}-{01} 2 + {5}-{25} 1 = 3 of 4 key / 5 response mentions.
    assert (r["ceafm"]["recall"], r["ceafm"]["precision"]) == pytest.approx((75, 60))
    # MUC: key links 2, response links 1 + 1 (the {7} singleton is dropped); correct 1.
    assert (r["muc"]["recall"], r["muc"]["precision"]) == pytest.approx((50, 50))
    assert r["mentions"]["recall"] == 100 and r["mentions"]["precision"] == pytest.approx(80)
    assert r["conll_f1"] == pytest.approx(
        (r["muc"]["f1"] + r["bcub"]["f1"] + r["ceafe"]["f1"]) / 3)
    # Micro average over documents: a second, perfect document.
    r2 = metrics.evaluate({"d": key, "e": [[(0, 1), (3, 4)]]},
                          {"d": response, "e": [[(0, 1), (3, 4)]]})
    assert r2["muc"]["recall"] == pytest.approx(100 * 2 / 3)
    assert r2["num_documents"] == 2
    # A missing response document scores as empty; extra response documents are ignored.
    r3 = metrics.evaluate({"d": key}, {"x": key})
    assert r3["muc"]["recall"] == 0 and r3["num_documents"] == 1


def test_perfect_litbank_prediction_scores_100_with_singletons(shared_data):
    root = shared_data / "coref" / "litbank"
    docs = conll.read_conll_split(str(root / "conll"), str(root / "splits" / "dev.txt"))
    assert sum(1 for d in docs for c in d.clusters if len(c) == 1) > 0
    gold = {d.doc_key: d.clusters for d in docs}
    results = metrics.evaluate(gold, gold)
    for name in metrics.METRICS + ("mentions",):
        assert results[name] == {"recall": 100.0, "precision": 100.0, "f1": 100.0}, name
    assert results["conll_f1"] == 100.0
    # Dropping every singleton lowers every metric but MUC (singletons have no links).
    no_singletons = {k: [c for c in v if len(c) > 1] for k, v in gold.items()}
    partial = metrics.evaluate(gold, no_singletons)
    assert partial["muc"]["f1"] == 100.0
    assert all(partial[m]["f1"] < 100.0 for m in ("bcub", "ceafm", "ceafe", "lea"))


def test_too_many_repeated_mentions_refused():
    key = [[(0, 0), (1, 1)]]
    response = [[(0, 0), (1, 1)] + [(0, 0)] * 11]
    with pytest.raises(CorefScoreError, match="too many repeated mentions"):
        metrics.evaluate({"d": key}, {"d": response})
    relaxed = metrics.evaluate({"d": key}, {"d": response}, max_repeated_mentions=None)
    assert relaxed["muc"]["f1"] == 100.0 and relaxed["repeated_response_mentions"] == 11


def test_table_lists_every_metric():
    results = metrics.evaluate({"d": [[(0, 0)]]}, {"d": [[(0, 0)]]})
    table = metrics.format_table(results)
    for name in ("MUC", "B3", "CEAF-e (phi4)", "CEAF-m (phi3)", "LEA", "CoNLL avg F1"):
        assert name in table


def _perturb(doc):
    """A deterministic imperfect response: drops every 4th mention, splits and merges
    entities, adds two-word mentions (alone or in the first entity)."""
    out, n = [], 0
    for i, cluster in enumerate(doc.clusters):
        kept = []
        for mention in cluster:
            n += 1
            if n % 4:
                kept.append(mention)
        if i % 7 == 3 and len(kept) >= 4:
            out += [kept[:len(kept) // 2], kept[len(kept) // 2:]]
        elif i % 5 == 0 and out:
            out[-1] = out[-1] + kept
        else:
            out.append(kept)
    existing = {m for c in doc.clusters for m in c}
    extra = [(s, s + 1) for s in range(5, doc.num_words - 1, 97) if (s, s + 1) not in existing]
    for j, mention in enumerate(extra):
        if j % 2:
            out.append([mention])
        else:
            out[0].append(mention)
    return [c for c in out if c]


# The reference scorer v8.01 (`perl scorer.pl <metric> gold pred none`; LEA: its LEA
# extension) on LitBank dev (fold 0) against `_perturb`, written with our writer:
# [recall num, recall den, precision num, precision den].
REFERENCE_SCORER_LITBANK_DEV = {
    "mentions": [2294, 3053, 2294, 2503],
    "muc": [1651, 2277, 1651, 1848],
    "bcub": [1784.11571996582, 3053, 2123.81477860268, 2503],
    "ceafm": [2116, 3053, 2116, 2503],
    "ceafe": [484.588690864162, 776, 484.588690864162, 655],
    "lea": [1602.33355959909, 3053, 2022.86646092548, 2503],
}


def test_equals_reference_scorer_on_perturbed_litbank(shared_data, tmp_path):
    root = shared_data / "coref" / "litbank"
    docs = conll.read_conll_split(str(root / "conll"), str(root / "splits" / "dev.txt"))
    conll.write_conll(str(tmp_path / "pred.conll"), docs, {d.doc_key: _perturb(d) for d in docs})
    pred = {d.doc_key: d.clusters for d in conll.read_conll(str(tmp_path / "pred.conll"))}
    results = metrics.evaluate({d.doc_key: d.clusters for d in docs}, pred)
    for name, expected in REFERENCE_SCORER_LITBANK_DEV.items():
        assert results["counts"][name] == pytest.approx(expected, rel=1e-12, abs=1e-9), name


def test_evaluate_coref_program_and_jsonlines(shared_data, tmp_path):
    root = shared_data / "coref" / "litbank"
    split = str(root / "splits" / "dev.txt")
    docs = conll.read_conll_split(str(root / "conll"), split)
    conll.write_conll(str(tmp_path / "pred.conll"), docs, {d.doc_key: _perturb(d) for d in docs})
    cmd = [sys.executable, "evaluate_coref.py", f"--gold_file={root / 'conll'}",
           f"--split_file={split}", f"--pred_file={tmp_path / 'pred.conll'}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["counts"]["muc"] == REFERENCE_SCORER_LITBANK_DEV["muc"]
    assert result["num_documents"] == 10 and result["key_documents_without_response"] == 0
    assert any(line.startswith("CoNLL avg F1") for line in lines[:-1])
    # Official .jsonlines predictions (one "wordpiece" per word here) map back to words.
    examples = []
    for d in docs:
        n = d.num_words
        examples.append({
            "doc_key": d.doc_key, "sentences": [["[CLS]"] + d.words() + ["[SEP]"]],
            "speakers": [["[SPL]"] + ["-"] * n + ["[SPL]"]],
            "clusters": [[[s + 1, e + 1] for s, e in c] for c in d.clusters],
            "sentence_map": [0] * (n + 2), "subtoken_map": [0] + list(range(n)) + [n - 1]})
    segments.write_jsonlines(str(tmp_path / "pred.jsonlines"), examples)
    perfect = metrics.evaluate_files(str(root / "conll"), str(tmp_path / "pred.jsonlines"), split)
    assert perfect["conll_f1"] == 100.0 and perfect["lea"]["f1"] == 100.0
    # Bad input: one line on stderr, no traceback, non-zero exit.
    (tmp_path / "bad.conll").write_text(
        "#begin document (x); part 0\nx 0 0 a _ (1\n#end document\n")
    bad = subprocess.run(cmd[:2] + [f"--gold_file={tmp_path / 'bad.conll'}", cmd[4]],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "bad.conll:2:" in bad.stderr


def test_word_level_jsonlines_and_errors(tmp_path):
    path = tmp_path / "predictions.jsonlines"
    path.write_text(
        json.dumps({"doc_key": "d", "clusters": [[[0, 1, "John Smith"], [4, 4, "he"]]]}) + "\n" +
        json.dumps({"doc_key": "e", "sentences": [["[CLS]", "a", "##b", "[SEP]"]],
                    "speakers": [["[SPL]", "-", "-", "[SPL]"]], "clusters": [[[1, 2]]],
                    "sentence_map": [0, 0, 0, 1], "subtoken_map": [0, 0, 0, 0]}) + "\n")
    assert metrics.read_jsonlines_word_clusters(str(path)) == {
        "d": [[(0, 1), (4, 4)]], "e": [[(0, 0)]]}
    path.write_text(json.dumps({"doc_key": "d", "clusters": [[[3, 1]]]}) + "\n")
    with pytest.raises(ValueError, match=r"predictions.jsonlines:1: field 'clusters'"):
        metrics.read_jsonlines_word_clusters(str(path))
    path.write_text("\n" + json.dumps({"doc_key": "d"}) + "\n")
    with pytest.raises(ValueError, match=r"predictions.jsonlines:2: expected an object"):
        metrics.read_jsonlines_word_clusters(str(path))
