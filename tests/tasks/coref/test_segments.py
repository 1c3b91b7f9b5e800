"""Official minimize step, model features and .jsonlines: hand-derived case, real LitBank."""

import json

import numpy as np
import pytest

from spanbert_tf.tasks.coref import conll, segments
from spanbert_tf.tasks.coref.segments import CorefJsonlinesError
from spanbert_tf.tokenization import BertWordpieceTokenizer

LITBANK = "coref/litbank"

SMALL = """\
#begin document (nw/test/00/t_0000); part 000
t 0 0 John _ _ _ _ _ Speaker#1 _ (0|(2
t 0 1 saw _ _ _ _ _ Speaker#1 _ -
t 0 2 SpanBERT _ _ _ _ _ Speaker#1 _ (1)|2)
t 0 3 /. _ _ _ _ _ Speaker#1 _ -

t 0 0 He _ _ _ _ _ Speaker#2 _ (0)
t 0 1 left _ _ _ _ _ - _ -
t 0 2 . _ _ _ _ _ Speaker#2 _ 0)
#end document
"""


@pytest.fixture(scope="module")
def tokenizer(cased_vocab):
    return BertWordpieceTokenizer(cased_vocab)


def test_hand_derived_minimize_and_features(tokenizer):
    doc = conll.parse_conll(SMALL, "small.conll")[0]
    # Entities in order of first appearance (0, 2, 1); (0 at John closes at the last word.
    assert doc.clusters == [[(4, 4), (0, 6)], [(0, 2)], [(2, 2)]]
    m = segments.minimize(doc, tokenizer, max_segment_len=8)
    # 6 subtokens a segment: no sentence end in John..##RT, so the word end ##RT.
    assert m.sentences == [["[CLS]", "John", "saw", "Spa", "##n", "##BE", "##RT", "[SEP]"],
                           ["[CLS]", ".", "He", "left", ".", "[SEP]"]]
    assert m.subtoken_map == [0, 0, 1, 2, 2, 2, 2, 2, 2, 3, 4, 5, 6, 6]
    # [SEP] after a sentence end gets the next sentence (official get_sentence_map).
    assert m.sentence_map == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2]
    assert m.speakers == [["[SPL]"] + ["Speaker#1"] * 6 + ["[SPL]"],
                          ["[SPL]", "Speaker#1", "Speaker#2", "-", "Speaker#2", "[SPL]"]]
    assert m.clusters == [[[1, 12], [10, 10]], [[1, 6]], [[3, 6]]]
    assert segments.subtoken_clusters_to_words(m.clusters, m.subtoken_map) == [
        [(0, 6), (4, 4)], [(0, 2)], [(2, 2)]]
    f = segments.document_to_features(m, 8)
    assert f["input_ids"].tolist() == [
        tokenizer.convert_tokens_to_ids(m.sentences[0]),
        tokenizer.convert_tokens_to_ids(m.sentences[1]) + [0, 0]]
    assert f["input_mask"].tolist() == [[1] * 8, [1] * 6 + [0, 0]]
    assert f["speaker_ids"].tolist() == [[1, 2, 2, 2, 2, 2, 2, 1], [1, 2, 3, 4, 3, 1, 0, 0]]
    assert f["genre"].shape == () and int(f["genre"]) == 3  # "nw"
    assert f["gold_starts"].tolist() == [1, 1, 3, 10]
    assert f["gold_ends"].tolist() == [6, 12, 6, 10]
    assert f["cluster_ids"].tolist() == [2, 1, 3, 1]
    assert all(v.dtype == np.int32 for v in f.values())
    assert f["sentence_map"].tolist() == m.sentence_map
    # Tokens alone (as read from .jsonlines) give the same ids through a tokenizer.
    m.input_ids = None
    again = segments.document_to_features(m, 10, tokenizer)
    assert again["input_ids"][:, :8].tolist() == f["input_ids"].tolist()
    with pytest.raises(ValueError, match="pass a tokenizer"):
        segments.document_to_features(m, 8)
    with pytest.raises(ValueError, match="more than max_segment_len 7"):
        segments.document_to_features(m, 7, tokenizer)
    # A word longer than a segment cannot be placed.
    with pytest.raises(ValueError, match="more than 3 wordpieces"):
        segments.minimize(doc, tokenizer, max_segment_len=5)


def test_genres_speaker_cap_and_unk_words(tokenizer):
    assert [segments.genre_id(k) for k in ("bc/x_0", "bn/x", "wb/a", "1023_bleak")] == [0, 1, 6, 0]
    rows = "".join(f"d 0 {i} the _ _ _ _ _ spk{i} _ -\n" for i in range(25))
    doc = conll.parse_conll(f"#begin document (d); part 0\n{rows}#end document\n")[0]
    f = segments.document_to_features(segments.minimize(doc, tokenizer, 64), 64)
    # UNK 0, [SPL] 1, spk0..spk17 -> 2..19, later speakers -> 0 (UNK).
    assert f["speaker_ids"][0, :28].tolist() == [1] + list(range(2, 20)) + [0] * 7 + [1, 0]
    bell = conll.parse_conll("#begin document (d); part 0\nd 0 0 he\x07 _ (0)\n"
                             "d 0 1 \x07 _ (0)\n#end document\n")[0]
    m = segments.minimize(bell, tokenizer, 16)
    assert m.sentences == [["[CLS]", "he", "[UNK]", "[SEP]"]] and m.num_unk_words == 1
    assert m.clusters == [[[1, 1], [2, 2]]]


def _check_segments(doc, m, max_segment_len):
    """Each segment ends at the last sentence end that fits, else at the last word end."""
    last_words, n = set(), 0
    for sentence in doc.sentences:
        n += len(sentence)
        last_words.add(n - 1)
    lengths = [len(s) - 2 for s in m.sentences]
    bounds = np.cumsum([n + 2 for n in lengths])[:-1]
    real = [w for seg in np.split(np.asarray(m.subtoken_map), bounds)
            for w in seg[1:-1].tolist()]
    word_end = [i + 1 == len(real) or real[i + 1] != real[i] for i in range(len(real))]
    sentence_end = [word_end[i] and real[i] in last_words for i in range(len(real))]
    start = 0
    for seg, length in zip(m.sentences, lengths):
        assert seg[0] == "[CLS]" and seg[-1] == "[SEP]" and 0 < length <= max_segment_len - 2
        end = start + length - 1
        window = range(start, min(start + max_segment_len - 3, len(real) - 1) + 1)
        ends = [i for i in window if sentence_end[i]] or [i for i in window if word_end[i]]
        assert end == ends[-1]
        start = end + 1
    assert start == len(real)


def test_litbank_round_trip_gold_subtokens_words_conll(shared_data, tokenizer, tmp_path):
    root = shared_data / LITBANK
    docs = conll.read_conll_split(str(root / "conll"), str(root / "splits" / "dev.txt"))
    minimized = []
    for max_segment_len in (384, 512):
        for doc in docs:
            m = segments.minimize(doc, tokenizer, max_segment_len)
            _check_segments(doc, m, max_segment_len)
            # Subtokens re-join to the words.
            pieces = {}
            for token, word in zip([t for s in m.sentences for t in s], m.subtoken_map):
                if token not in ("[CLS]", "[SEP]"):
                    pieces[word] = pieces.get(word, "") + token.removeprefix("##")
            words = doc.words()
            expected = ["".join(tokenizer.convert_ids_to_tokens(ids)).replace("##", "")
                        for ids in tokenizer.tokenize_to_ids(words)]
            assert [pieces[i] for i in range(len(words))] == expected
            # Features agree with the example.
            f = segments.document_to_features(m, max_segment_len)
            t = int(f["input_mask"].sum())
            assert t == m.num_subtokens == len(f["sentence_map"]) == len(f["subtoken_map"])
            ids = f["input_ids"][f["input_mask"].astype(bool)]
            assert tokenizer.convert_ids_to_tokens(ids) == [x for s in m.sentences for x in s]
            assert len(f["gold_starts"]) == sum(len(c) for c in doc.clusters)
            assert (f["gold_starts"] <= f["gold_ends"]).all()
            # Same sentence for both ends of every gold mention.
            assert (f["sentence_map"][f["gold_starts"]] == f["sentence_map"][f["gold_ends"]]).all()
            if max_segment_len == 384:
                minimized.append(m)
    # gold -> subtokens -> words -> CoNLL -> read: exact.
    predicted = {m.doc_key: segments.subtoken_clusters_to_words(m.clusters, m.subtoken_map)
                 for m in minimized}
    out = tmp_path / "dev.conll"
    conll.write_conll(str(out), docs, predicted)
    again = conll.read_conll(str(out))
    assert [d.doc_key for d in again] == [d.doc_key for d in docs]
    for a, b in zip(docs, again):
        assert conll.canonical_clusters(a.clusters) == conll.canonical_clusters(b.clusters)
        assert a.sentences == b.sentences
    # .jsonlines round trip.
    path = tmp_path / "dev.384.jsonlines"
    segments.write_jsonlines(str(path), minimized)
    read = segments.read_jsonlines(str(path), tokenizer)
    assert [r.to_json() for r in read] == [m.to_json() for m in minimized]
    assert [r.input_ids for r in read] == [m.input_ids for m in minimized]
    assert set(json.loads(path.read_text().splitlines()[0])) == set(segments.JSONLINES_KEYS)
    loaded, sources = segments.load_documents(str(path), tokenizer, 384)
    assert sources is None and [d.input_ids for d in loaded] == [m.input_ids for m in minimized]
    loaded, sources = segments.load_documents(
        str(root / "conll"), tokenizer, 384, str(root / "splits" / "dev.txt"))
    assert [d.to_json() for d in loaded] == [m.to_json() for m in minimized]
    assert [d.doc_key for d in sources] == [d.doc_key for d in docs]


@pytest.mark.parametrize("change, message", [
    (lambda e: e.pop("speakers"), "missing field 'speakers'"),
    (lambda e: e["subtoken_map"].pop(), "'subtoken_map' has 3 entries, expected 4"),
    (lambda e: e["speakers"][0].pop(), "one speaker per subtoken"),
    (lambda e: e["clusters"].append([[2, 9]]), r"mention \[2, 9\]"),
])
def test_bad_jsonlines_names_file_line_and_field(tmp_path, change, message):
    example = {"doc_key": "nw/a_0", "sentences": [["[CLS]", "a", "b", "[SEP]"]],
               "speakers": [["[SPL]", "-", "-", "[SPL]"]], "clusters": [[[1, 1], [2, 2]]],
               "sentence_map": [0, 0, 0, 1], "subtoken_map": [0, 0, 1, 1]}
    good = json.dumps(example)
    change(example)
    path = tmp_path / "bad.jsonlines"
    path.write_text(good + "\n" + json.dumps(example) + "\n")
    with pytest.raises(CorefJsonlinesError, match=message) as info:
        segments.read_jsonlines(str(path))
    assert str(info.value).startswith(f"{path}:2: ")
