"""build_vocab: a WordPiece vocabulary learned from real text (WikiText-2) and from a small
non-English text written here (CJK, accented Latin), its coverage report and its errors."""

import json
import os

import pytest

from spanbert_tf.data.vocab.build import VocabConfig, build_vocab, format_summary
from spanbert_tf.data.vocab.word_counts import count_words
from spanbert_tf.errors import InputError, MissingFileError
from spanbert_tf.tokenization import BertWordpieceTokenizer, basic_tokenize

# A small multilingual text: Chinese (CJK ideographs are words of one character each, as
# BERT splits them), French and German with accents.
MULTILINGUAL = [
    "北京是中国的首都。上海是中国最大的城市。",
    "我们在北京大学学习中文和数学。",
    "Le café de la gare est fermé le dimanche, mais l'école reste ouverte.",
    "Über die Brücke gehen täglich viele Menschen zur Arbeit.",
    "Élodie préfère le thé à la crème brûlée du café.",
    "Die Straße hinter dem Bahnhof heißt Goethestraße.",
]


@pytest.fixture(scope="module")
def wikitext_vocab(tmp_path_factory, wikitext_corpus):
    tmp = tmp_path_factory.mktemp("vocab")
    corpus = tmp / "wiki-part.txt"
    with open(wikitext_corpus, encoding="utf-8") as f:
        corpus.write_text("".join(f.readlines()[:80]), encoding="utf-8")
    config = VocabConfig(input_file=str(corpus), output_file=str(tmp / "vocab.txt"),
                         vocab_size=700, held_out_every=8, progress=False)
    return config, build_vocab(config)


@pytest.fixture(scope="module")
def multilingual_corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("multi") / "multi.txt"
    # Repeated so every word clears the learner's frequency floor.
    path.write_text("\n".join(MULTILINGUAL * 12) + "\n", encoding="utf-8")
    return path


def test_vocab_starts_with_reserved_tokens_and_fits(wikitext_vocab):
    config, summary = wikitext_vocab
    with open(config.output_file, encoding="utf-8") as f:
        vocab = [line.rstrip("\n") for line in f]
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(vocab) == summary["vocab_size"] <= 700 and len(set(vocab)) == len(vocab)
    assert any(t.startswith("##") for t in vocab) and "the" in vocab
    tok = BertWordpieceTokenizer(config.output_file)
    assert (tok.pad_id, tok.unk_id) == (0, 1)
    # Every wordpiece of a training line glues back to the line's words.
    line = open(config.input_file, encoding="utf-8").readlines()[1].strip()
    pieces = tok.tokenize(line)
    words, current = [], ""
    for p in pieces:
        if p.startswith("##"):
            current += p[2:]
        else:
            if current:
                words.append(current)
            current = p
    words.append(current)
    assert words == basic_tokenize(line)


def test_coverage_report_beside_bert_cased(wikitext_vocab, cased_vocab):
    config, summary = wikitext_vocab
    report = json.load(open(config.output_file + ".coverage.json"))
    learned, reference = report["coverage"]["learned"], report["coverage"]["reference"]
    assert learned["lines"] == reference["lines"] > 0 and learned["words"] == reference["words"]
    assert os.path.samefile(reference["vocab_file"], cased_vocab)
    # A 700-wordpiece vocabulary cuts words into more pieces than BERT's 29k one.
    assert learned["wordpieces_per_word"] > reference["wordpieces_per_word"] >= 1.0
    assert 0 <= learned["unknown_word_rate"] < 0.03
    # The held-out lines were not counted: the training lines plus them are all lines.
    lines = [x for x in open(config.input_file, encoding="utf-8") if x.strip()]
    assert summary["training_lines"] + learned["lines"] == len(lines)
    text = format_summary({**summary})
    assert "held-out" in text and "bert-base-cased-vocab.txt" in text
    assert not [f for f in os.listdir(os.path.dirname(config.output_file)) if f.endswith(".tmp")]


def test_cjk_and_accents_cased(multilingual_corpus, tmp_path):
    out = tmp_path / "vocab.txt"
    build_vocab(VocabConfig(input_file=str(multilingual_corpus), output_file=str(out),
                            vocab_size=400, progress=False, compare_vocab_file=None))
    vocab = out.read_text(encoding="utf-8").split("\n")
    cjk = [t for t in vocab if any("\u4e00" <= c <= "\u9fff" for c in t)]
    assert cjk and all(len(t.removeprefix("##")) == 1 for t in cjk)  # never two ideographs
    tok = BertWordpieceTokenizer(str(out))
    assert tok.tokenize("北京大学") == ["北", "京", "大", "学"]
    assert "café" in vocab and "Brücke" in vocab          # accents kept, case kept
    assert tok.tokenize("Élodie") == ["Élodie"]


def test_cjk_and_accents_lower_cased(multilingual_corpus, tmp_path):
    out = tmp_path / "vocab.txt"
    build_vocab(VocabConfig(input_file=str(multilingual_corpus), output_file=str(out),
                            vocab_size=400, do_lower_case=True, progress=False,
                            compare_vocab_file=None))
    vocab = out.read_text(encoding="utf-8").split("\n")
    latin = [t for t in vocab[5:] if t and not any("\u4e00" <= c <= "\u9fff" for c in t)]
    assert not any(c in "éèüäßÉ" and c != "ß" for t in latin for c in t)  # accents stripped
    assert not any(c.isupper() for t in latin for c in t)
    assert "cafe" in vocab and "brucke" in vocab and "ß" in "".join(vocab)
    tok = BertWordpieceTokenizer(str(out), do_lower_case=True)
    assert tok.tokenize("Élodie CAFÉ") == ["elodie", "cafe"]
    assert tok.tokenize("上海") == ["上", "海"]


def test_bounded_word_table_prunes_deterministically(multilingual_corpus):
    a = count_words([str(multilingual_corpus)], max_unique_words=20, show_progress=False)
    b = count_words([str(multilingual_corpus)], max_unique_words=20, show_progress=False)
    assert a.words == b.words and len(a.words) <= 20 and a.pruned_words > 0
    full = count_words([str(multilingual_corpus)], show_progress=False)
    assert full.pruned_words == 0 and len(full.words) > 20
    # The most frequent words are kept; a kept count never exceeds the true count.
    assert a.words["."] == full.words["."] == 48
    assert all(0 < c <= full.words[w] for w, c in a.words.items())


@pytest.mark.parametrize("kw, message", [
    (dict(reserved_tokens=("[PAD]", "[UNK]", "[CLS]", "[SEP]")), r"missing \[MASK\]"),
    (dict(reserved_tokens=("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[PAD]")), "twice"),
    (dict(vocab_size=3), "no room"),
    (dict(held_out_every=1), "held_out_every"),
])
def test_bad_settings_are_refused(kw, message, tmp_path, multilingual_corpus):
    config = VocabConfig(input_file=str(multilingual_corpus), output_file=str(tmp_path / "v.txt"), **kw)
    with pytest.raises(InputError, match=message):
        build_vocab(config)
    assert not (tmp_path / "v.txt").exists()


def test_missing_and_non_utf8_input(tmp_path):
    with pytest.raises(MissingFileError, match="nope.txt"):
        build_vocab(VocabConfig(input_file=str(tmp_path / "nope.txt"), progress=False))
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"good line\n\xff\xfe broken\n")
    with pytest.raises(InputError, match=r"bad.txt: line 2 is not UTF-8"):
        build_vocab(VocabConfig(input_file=str(bad), output_file=str(tmp_path / "v.txt"),
                                progress=False))
