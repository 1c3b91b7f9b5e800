"""Tokenizer parity with the reference BERT tokenizer (HF BertTokenizerFast)."""

import numpy as np
import pytest

from spanbert_tf.tokenization import (
    BertWordpieceTokenizer, basic_tokenize, basic_tokenize_tf, load_vocab, truncated_pair_lengths)

# Text-cleaning, whitespace, CJK, punctuation, accents and long-word edge cases.
EDGE_CASES = [
    "a\x0bb c\x0cd e\x85f g\x1ch",           # C0/C1 controls are removed, not spaces
    "a\u200bb \u180e\u00ad\u2060x",           # format characters (Cf) are removed
    "a\ue000b \U000F0000\U00100000",          # private use (Co) removed
    "a\u0378b",                               # unassigned: kept
    "a\u00a0b\u3000c\u2028d\u2029e\u202ff\u1680g\u2003h \u0085",   # Unicode spaces
    "a\x00b\ufffdc \x7f\x80\x9f",
    "\U0002B820\U0002B900\U0002B920 日本語の文章です。中文",  # CJK blocks
    "x" * 100, "x" * 101, "é" * 100, "é" * 101, "a" * 60 + "é" * 45,  # 100 characters
    "ﬁx İstanbul ǅ ẞ Straße ﾊﾝｶｸ ＦＵＬＬ",
    "Crème brûlée naïve café x\u0301y\u0300 Ångström ΑΒΓ αβγ Привет мир",
    "¿Qué? ¡Sí! «quote» — dash – “smart” ‘q’ … $100 + 5% = ^_^ ~`|\\",
    "\t\ttab\r\nnewline   ", "", "emoji 😀👍🏽 test ١٢٣ عربي",
    "[CLS] [MASK] [unused1]",                 # plain text, as google-research/bert
]


@pytest.fixture(scope="module")
def cased(cased_vocab):
    return BertWordpieceTokenizer(cased_vocab, do_lower_case=False)


def _reference(vocab_file, lower):
    transformers = pytest.importorskip("transformers")
    return transformers.BertTokenizerFast(
        vocab_file, do_lower_case=lower, split_special_tokens=True)


def test_parity_whole_wikitext_cased(cased, cased_vocab, wikitext_corpus):
    reference = _reference(cased_vocab, False)
    with open(wikitext_corpus, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    ours = cased.tokenize_to_ids(lines)
    ref = reference(lines, add_special_tokens=False)["input_ids"]
    assert sum(len(r) for r in ref) > 250_000
    mismatches = [i for i, (a, b) in enumerate(zip(ours, ref)) if a.tolist() != b]
    assert not mismatches, (
        f"{len(mismatches)} lines differ, first: {lines[mismatches[0]][:200]!r}")


@pytest.mark.parametrize("lower", [False, True])
def test_parity_edge_cases(lower, cased_vocab, shared_data):
    vocab = cased_vocab if not lower else str(
        shared_data / "vocab" / "bert-base-uncased-vocab.txt")
    ours = BertWordpieceTokenizer(vocab, do_lower_case=lower)
    reference = _reference(vocab, lower)
    for text, ids in zip(EDGE_CASES, ours.tokenize_to_ids(EDGE_CASES)):
        expected = reference(text, add_special_tokens=False)["input_ids"]
        assert ids.tolist() == expected, (
            text, ours.convert_ids_to_tokens(ids),
            reference.convert_ids_to_tokens(expected))


def test_parity_uncased_wikitext_sample(shared_data, wikitext_corpus):
    vocab = str(shared_data / "vocab" / "bert-base-uncased-vocab.txt")
    ours = BertWordpieceTokenizer(vocab, do_lower_case=True)
    reference = _reference(vocab, True)
    with open(wikitext_corpus, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f][:800]
    for text, ids, expected in zip(
            lines, ours.tokenize_to_ids(lines),
            reference(lines, add_special_tokens=False)["input_ids"]):
        assert ids.tolist() == expected, text[:200]


def test_api(cased):
    assert cased.vocab_size == len(cased.vocab) == 28996
    assert cased.convert_ids_to_tokens(
        [cased.cls_id, cased.sep_id, cased.mask_id, cased.unk_id, cased.pad_id]
    ) == ["[CLS]", "[SEP]", "[MASK]", "[UNK]", "[PAD]"]
    assert sorted(cased.special_ids.tolist()) == sorted(
        [cased.cls_id, cased.sep_id, cased.mask_id, cased.unk_id, cased.pad_id])
    assert cased.word_start_table.dtype == bool
    assert cased.word_start_table.shape == (cased.vocab_size,)
    pieces = cased.tokenize("Unbelievably, SpanBERT!")
    assert pieces[0] == "Un" and pieces[1].startswith("##")
    ids = cased.convert_tokens_to_ids(pieces)
    assert [cased.word_start_table[i] for i in ids] == [
        not p.startswith("##") for p in pieces]
    assert cased.convert_ids_to_tokens(ids) == pieces
    assert cased.convert_tokens_to_ids(["not-a-token"]) == [cased.unk_id]
    batch = cased.tokenize_to_ids(["", "a b", "x" * 101])
    assert [b.dtype for b in batch] == [np.int32] * 3
    assert batch[0].size == 0 and batch[2].tolist() == [cased.unk_id]
    assert cased.tokenize_to_ids([]) == []
    with pytest.raises(ValueError, match="outside the vocabulary"):
        cased.convert_ids_to_tokens([10**6])


def test_tf_tokenizer_in_graph(cased):
    import tensorflow as tf

    tf_tok = cased.tf_tokenizer()

    @tf.function
    def run(texts):
        return tf_tok.tokenize(texts).merge_dims(1, 2)

    out = run(tf.constant(["Hello, world!", "SpanBERT"]))
    assert out.to_list() == [a.tolist() for a in cased.tokenize_to_ids(
        ["Hello, world!", "SpanBERT"])]


def test_bad_vocab_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        load_vocab(tmp_path / "nope.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="empty.txt is empty"):
        BertWordpieceTokenizer(empty)
    partial = tmp_path / "partial.txt"
    partial.write_text("[PAD]\n[UNK]\n[CLS]\nhello\n")
    with pytest.raises(ValueError, match=r"partial.txt lacks .*\[SEP\] \[MASK\]"):
        BertWordpieceTokenizer(partial)


def _fuzz_texts(count, seed=0):
    """Random strings mixing scripts, punctuation, spaces and control characters."""
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", "     ",
        ".,;:!?'\"()[]{}-_/\\@#$%^&*+=<>|~`", "éèêëàâäçñøåæœÉÀÇÑÖÜßÿ",
        "αβγδεζηθΣΩЖЙКЛМнопрст", "日本語中文字漢字", "ひらがなカタカナ", "😀👍🏽🎉❤️",
        "\u0301\u0300\u0308\u0327", "\u00a0\u2003\u3000\u202f\t", "\u200b\u200d\u2060\u00ad\ufeff",
        "\x01\x0b\x0c\x1c\x7f\x85\x9f", "\ue000\U000F0001", "\u2028\u2029", "\ufffd\x00",
        "ﬁﬂ½²³™©®°", "١٢٣عربيةעברית", "한국어", "\U0002B820\U0002B920\U00020000", "Ⅻⅻ",
        "\u0378\u0380",
    ]
    weights = np.array([30, 15, 10, 6, 4, 3, 2, 2, 1, 1, 0.5, 0.5, 0.3, 0.2, 0.2, 1, 1, 1,
                        0.2, 0.3, 0.2])
    weights /= weights.sum()
    rng = np.random.default_rng(seed)
    texts = []
    for i in range(count):
        n = rng.integers(1, 80) if i % 50 else rng.integers(90, 260)  # some long words
        picks = rng.choice(len(pools), size=n, p=weights)
        texts.append("".join(pools[p][rng.integers(len(pools[p]))] for p in picks))
    return texts


@pytest.mark.parametrize("lower", [False, True])
def test_parity_fuzz(lower, cased_vocab, shared_data):
    """Both code paths (fast path and exact path) against the reference."""
    vocab = cased_vocab if not lower else str(
        shared_data / "vocab" / "bert-base-uncased-vocab.txt")
    ours = BertWordpieceTokenizer(vocab, do_lower_case=lower)
    reference = _reference(vocab, lower)
    texts = _fuzz_texts(2000, seed=int(lower))
    expected = reference(texts, add_special_tokens=False)["input_ids"]
    for text, ids, exp in zip(texts, ours.tokenize_to_ids(texts), expected):
        assert ids.tolist() == exp, (text, ours.convert_ids_to_tokens(ids),
                                     reference.convert_ids_to_tokens(exp))
    if not lower:  # the in-graph tokenizer agrees with the batched path
        tf_ids = ours.tf_tokenizer().tokenize(texts[:300]).merge_dims(1, 2).to_list()
        assert tf_ids == [e for e in expected[:300]]


def _real_texts(shared_data):
    """Every SQuAD context and question of the dev subset and every GLUE sentence here."""
    import csv
    import json

    data = json.loads((shared_data / "squad/squad-v2.0-dev-subset_haystack-small.json")
                      .read_text(encoding="utf-8"))
    texts = []
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            texts.append(paragraph["context"])
            texts.extend(q["question"] for q in paragraph["qas"])
    for path in sorted((shared_data / "glue").glob("*/*.tsv")):
        with open(path, encoding="utf-8-sig", newline="") as f:
            for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                texts.extend(cell for cell in row if len(cell) > 1)
    return texts


@pytest.mark.parametrize("lower", [False, True])
def test_python_basic_tokenizer_twin_matches_tf(lower, shared_data):
    """The pure-Python `basic_tokenize` (SQuAD answer text) and the TF basic tokenizer
    (training, serving) give identical words on the real SQuAD and GLUE text, the edge
    cases and the fuzz texts."""
    texts = _real_texts(shared_data)
    assert len(texts) > 20_000
    texts += EDGE_CASES + _fuzz_texts(500, seed=7 + int(lower))
    tf_words = basic_tokenize_tf(texts, lower)
    for text, words in zip(texts, tf_words):
        assert basic_tokenize(text, lower) == words, text[:200]


def test_basic_tokenize_matches_reference_on_squad(shared_data):
    """The Python twin equals the reference's Python BasicTokenizer on real SQuAD contexts."""
    import json

    legacy = pytest.importorskip("transformers.models.bert.tokenization_bert_legacy")
    data = json.loads((shared_data / "squad/squad-v2.0-dev-subset_haystack-small.json")
                      .read_text(encoding="utf-8"))
    texts = [p["context"] for a in data["data"] for p in a["paragraphs"]]
    texts += ["Ça coûte 5€ — naïve Jürgen\u200b (東京)", "tab\tand\u00a0nbsp"]
    for lower in (False, True):
        ref = legacy.BasicTokenizer(do_lower_case=lower)
        for t in texts:
            assert basic_tokenize(t, lower) == ref.tokenize(t), t[:40]


def test_truncated_pair_lengths_numpy_and_graph_match_bert():
    """One pair-truncation rule for the Python packing (NumPy) and serving (TF ops)."""
    import itertools

    import tensorflow as tf

    def reference(len_a, len_b, budget):  # google-research/bert's _truncate_seq_pair
        tokens_a, tokens_b = list(range(len_a)), list(range(len_b))
        while len(tokens_a) + len(tokens_b) > budget:
            (tokens_a if len(tokens_a) > len(tokens_b) else tokens_b).pop()
        return len(tokens_a), len(tokens_b)

    cases = list(itertools.product(range(9), range(9), range(1, 10)))
    expected = [reference(a, b, m) for a, b, m in cases]
    cols = [np.array([c[i] for c in cases]) for i in range(3)]
    na, nb = truncated_pair_lengths(*cols)
    assert list(zip(na.tolist(), nb.tolist())) == expected
    ga, gb = truncated_pair_lengths(*(tf.constant(c, tf.int64) for c in cols), ops=tf)
    assert list(zip(ga.numpy().tolist(), gb.numpy().tolist())) == expected
