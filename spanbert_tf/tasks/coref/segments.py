"""Coreference preprocessing as the official c2f-coref minimize step, and model features.

`minimize(conll_document, tokenizer, max_segment_len)` turns a word-level
`ConllDocument` into a `CorefDocument` (the official `.jsonlines` example):

* every word is WordPiece-tokenized on its own with the model's vocabulary (a word
  with no wordpiece, e.g. only control characters, becomes `[UNK]` so that every
  word keeps a subtoken; counted in `CorefDocument.num_unk_words`);
* segments hold at most `max_segment_len` subtokens including `[CLS]` and `[SEP]`
  and end at the last sentence end that fits, else at the last word end;
* `subtoken_map`: the word of each subtoken; a segment's `[CLS]` maps to the last
  word of the previous segment (0 for the first), its `[SEP]` to its last word;
* `sentence_map`: the sentence of each subtoken; `[CLS]` gets the sentence of the
  segment's first subtoken and `[SEP]` the running sentence count after its last
  subtoken (the next sentence when the segment ends at a sentence end), exactly as
  the official `get_sentence_map`;
* `speakers`: per subtoken, `[SPL]` at `[CLS]`/`[SEP]`, `-` where the word has none;
* `clusters`: (first subtoken of the first word, last subtoken of the last word),
  indices into the segments concatenated with their `[CLS]`/`[SEP]`; clusters
  sharing a mention are merged (official), mentions sorted.

`document_to_features(doc, max_segment_len)` gives the model's numpy arrays (see the
table in its docstring: the official `tensorize_example` layout).
`read_jsonlines`/`write_jsonlines` read and write the official format.

Example:
```python
tokenizer = BertWordpieceTokenizer("vocab.txt")
doc = minimize(read_conll("dev.conll")[0], tokenizer, max_segment_len=384)
features = document_to_features(doc, 384)      # dict of int32 arrays
word_clusters = subtoken_clusters_to_words(doc.clusters, doc.subtoken_map)
```
"""

import dataclasses
import json
from typing import List, Optional

import numpy as np

from spanbert_tf import io_utils
from spanbert_tf.errors import InputError
from spanbert_tf.tasks.coref import conll

GENRES = ("bc", "bn", "mz", "nw", "pt", "tc", "wb")
MAX_NUM_SPEAKERS = 20
SPEAKER_UNK, SPEAKER_SPL = "UNK", "[SPL]"
NO_SPEAKER = "-"
CLS, SEP = "[CLS]", "[SEP]"
JSONLINES_KEYS = ("doc_key", "sentences", "speakers", "clusters", "sentence_map",
                  "subtoken_map")


class CorefJsonlinesError(InputError):
    """A malformed `.jsonlines` coreference example; the message names file:line and field."""


@dataclasses.dataclass
class CorefDocument:
    """One document in the official `.jsonlines` layout.

    Attributes:
        doc_key: the official key (`bc/cctv/00/cctv_0000_0`); its first two
            characters give the genre.
        sentences: the segments: wordpieces, each `[CLS] ... [SEP]`.
        speakers: the speaker of each wordpiece, per segment.
        clusters: entities as [start, end] wordpiece spans (inclusive) into the
            segments concatenated.
        sentence_map, subtoken_map: sentence / word index of every wordpiece.
        input_ids: wordpiece ids per segment (None until tokenized).
        num_unk_words: words that had no wordpiece and became `[UNK]`.
    """
    doc_key: str
    sentences: List[List[str]]
    speakers: List[List[str]]
    clusters: List[List[List[int]]]
    sentence_map: List[int]
    subtoken_map: List[int]
    input_ids: Optional[List[List[int]]] = None
    num_unk_words: int = 0

    @property
    def num_subtokens(self):
        return sum(len(s) for s in self.sentences)

    def to_json(self):
        return {"doc_key": self.doc_key, "sentences": self.sentences,
                "speakers": self.speakers, "clusters": self.clusters,
                "sentence_map": self.sentence_map, "subtoken_map": self.subtoken_map}


def split_into_segments(num_subtokens, max_segment_len, sentence_end, word_end):
    """[start, end] subtoken ranges (inclusive) of the segments, official rule.

    Each holds at most `max_segment_len - 2` subtokens and ends at the last
    sentence end that fits, else at the last word end; a word longer than a
    segment raises `ValueError`.
    """
    segments = []
    current = 0
    while current < num_subtokens:
        limit = min(current + max_segment_len - 1 - 2, num_subtokens - 1)
        end = limit
        while end >= current and not sentence_end[end]:
            end -= 1
        if end < current:
            end = limit
            while end >= current and not word_end[end]:
                end -= 1
            if end < current:
                raise InputError(
                    f"a word of more than {max_segment_len - 2} wordpieces starts at "
                    f"subtoken {current}: no segment of {max_segment_len} can hold it")
        segments.append((current, end))
        current = end + 1
    return segments


def get_sentence_map(segment_lengths, sentence_end):
    """The official sentence map over segments with `[CLS]`/`[SEP]` (lengths without them)."""
    current, sentence_map, i = 0, [], 0
    for length in segment_lengths:
        sentence_map.append(current)
        for _ in range(length):
            sentence_map.append(current)
            current += int(sentence_end[i])
            i += 1
        sentence_map.append(current)
    return sentence_map


def merge_clusters(clusters):
    """Merges clusters that share a mention (official minimize); mentions sorted."""
    merged = []
    for cluster in clusters:
        mentions = {(int(s), int(e)) for s, e in cluster}
        existing = next((m for m in merged if mentions & m), None)
        if existing is not None:
            existing.update(mentions)
        else:
            merged.append(mentions)
    return [[list(m) for m in sorted(c)] for c in merged]


def minimize(document, tokenizer, max_segment_len):
    """A word-level `ConllDocument` -> `CorefDocument` (official minimize step)."""
    if max_segment_len < 3:
        raise InputError(f"max_segment_len must be at least 3, got {max_segment_len}")
    words = document.words()
    word_ids = tokenizer.tokenize_to_ids(words) if words else []
    subtoken_ids, subtoken_map, last_subtoken, sentence_end, word_end = [], [], [], [], []
    num_unk_words = 0
    for word_index, ids in enumerate(word_ids):
        ids = ids.tolist()
        if not ids:
            ids = [tokenizer.unk_id]
            num_unk_words += 1
        subtoken_ids.extend(ids)
        subtoken_map.extend([word_index] * len(ids))
        sentence_end.extend([False] * len(ids))
        word_end.extend([False] * (len(ids) - 1) + [True])
        last_subtoken.append(len(subtoken_ids) - 1)
    word_speakers = [s for sentence in document.speakers for s in sentence]
    num_words = 0
    for sentence in document.sentences:
        num_words += len(sentence)
        if sentence:
            sentence_end[last_subtoken[num_words - 1]] = True

    ranges = split_into_segments(len(subtoken_ids), max_segment_len, sentence_end, word_end)
    tokens = tokenizer.convert_ids_to_tokens(subtoken_ids) if subtoken_ids else []
    segments, segment_ids, speakers, flat_subtoken_map = [], [], [], []
    word_to_flat_first, word_to_flat_last = {}, {}
    previous_word = 0
    for start, end in ranges:
        offset = sum(len(s) for s in segments)
        segments.append([CLS] + tokens[start:end + 1] + [SEP])
        segment_ids.append([tokenizer.cls_id] + subtoken_ids[start:end + 1] + [tokenizer.sep_id])
        words_here = subtoken_map[start:end + 1]
        flat_subtoken_map.extend([previous_word] + words_here + [words_here[-1]])
        previous_word = words_here[-1]
        segment_speakers = [SPEAKER_SPL]
        for i in range(start, end + 1):
            speaker = word_speakers[subtoken_map[i]]
            segment_speakers.append(NO_SPEAKER if speaker is None else speaker)
            flat = offset + 1 + i - start
            word_to_flat_first.setdefault(subtoken_map[i], flat)
            word_to_flat_last[subtoken_map[i]] = flat
        segment_speakers.append(SPEAKER_SPL)
        speakers.append(segment_speakers)
    clusters = merge_clusters(
        [[(word_to_flat_first[s], word_to_flat_last[e]) for s, e in cluster]
         for cluster in document.clusters])
    return CorefDocument(
        doc_key=document.doc_key, sentences=segments, speakers=speakers, clusters=clusters,
        sentence_map=get_sentence_map([e - s + 1 for s, e in ranges], sentence_end),
        subtoken_map=flat_subtoken_map, input_ids=segment_ids, num_unk_words=num_unk_words)


def load_documents(path, tokenizer, max_segment_len, split_file=None):
    """(CorefDocuments, ConllDocuments or None) of a `.jsonlines` file (already
    minimized; `input_ids` from `tokenizer`), or of a CoNLL-2012 file or folder
    (`split_file` naming its documents), minimized here."""
    if str(path).endswith(".jsonlines"):
        return read_jsonlines(path, tokenizer), None
    documents = conll.read_conll_files(path, split_file)
    return [minimize(d, tokenizer, max_segment_len) for d in documents], documents


def subtoken_clusters_to_words(clusters, subtoken_map):
    """Wordpiece-span clusters -> word-span clusters through `subtoken_map`."""
    return [[(int(subtoken_map[s]), int(subtoken_map[e])) for s, e in cluster]
            for cluster in clusters]


def genre_id(doc_key):
    """Index of the doc key's first two characters in `GENRES`; others (and "bc") 0."""
    return GENRES.index(doc_key[:2]) if doc_key[:2] in GENRES else 0


def speaker_dict(speakers, max_num_speakers=MAX_NUM_SPEAKERS):
    """Official `get_speaker_dict`: UNK 0, [SPL] 1, then speakers in order of appearance
    while the dict holds fewer than `max_num_speakers`."""
    mapping = {SPEAKER_UNK: 0, SPEAKER_SPL: 1}
    for s in speakers:
        if s not in mapping and len(mapping) < max_num_speakers:
            mapping[s] = len(mapping)
    return mapping


def document_to_features(doc, max_segment_len, tokenizer=None,
                         max_num_speakers=MAX_NUM_SPEAKERS):
    """The model's numpy features of one `CorefDocument` (official `tensorize_example`).

    | key | dtype, shape | meaning |
    |---|---|---|
    | input_ids, input_mask, speaker_ids | int32 [S, max_segment_len] | per segment, 0-padded |
    | sentence_map, subtoken_map | int32 [T] | per real subtoken, T = input_mask.sum() |
    | genre | int32 [] | `genre_id(doc_key)` |
    | gold_starts, gold_ends, cluster_ids | int32 [M] | sorted by (start, end); clusters from 1 |

    Speaker ids: 0 UNK (padding, and speakers past `max_num_speakers`), 1 `[SPL]`,
    real speakers from 2 in order of appearance. `doc.input_ids` are used when
    present, else `tokenizer` converts `doc.sentences`.
    """
    if doc.input_ids is not None:
        segment_ids = doc.input_ids
    elif tokenizer is not None:
        segment_ids = [tokenizer.convert_tokens_to_ids(s) for s in doc.sentences]
    else:
        raise InputError(f"document {doc.doc_key} has no input_ids: pass a tokenizer")
    num_segments = len(doc.sentences)
    longest = max((len(s) for s in doc.sentences), default=0)
    if longest > max_segment_len:
        raise InputError(f"document {doc.doc_key} has a segment of {longest} subtokens, "
                         f"more than max_segment_len {max_segment_len}")
    speakers = speaker_dict([s for seg in doc.speakers for s in seg], max_num_speakers)
    input_ids = np.zeros([num_segments, max_segment_len], np.int32)
    input_mask = np.zeros([num_segments, max_segment_len], np.int32)
    speaker_ids = np.zeros([num_segments, max_segment_len], np.int32)
    for i, (ids, seg_speakers) in enumerate(zip(segment_ids, doc.speakers)):
        input_ids[i, :len(ids)] = ids
        input_mask[i, :len(ids)] = 1
        speaker_ids[i, :len(ids)] = [speakers.get(s, 0) for s in seg_speakers]
    num_subtokens = int(input_mask.sum())
    cluster_of = {}
    for cluster_index, cluster in enumerate(doc.clusters):
        for start, end in cluster:
            mention = (int(start), int(end))
            if not 0 <= mention[0] <= mention[1] < num_subtokens:
                raise InputError(f"document {doc.doc_key}: mention {list(mention)} is outside "
                                 f"its {num_subtokens} subtokens")
            if cluster_of.get(mention, cluster_index + 1) != cluster_index + 1:
                raise InputError(f"document {doc.doc_key}: mention {list(mention)} is in two "
                                 "clusters")
            cluster_of[mention] = cluster_index + 1
    mentions = sorted(cluster_of)
    return {
        "input_ids": input_ids,
        "input_mask": input_mask,
        "speaker_ids": speaker_ids,
        "sentence_map": np.asarray(doc.sentence_map, np.int32).reshape([-1]),
        "subtoken_map": np.asarray(doc.subtoken_map, np.int32).reshape([-1]),
        "genre": np.asarray(genre_id(doc.doc_key), np.int32),
        "gold_starts": np.array([m[0] for m in mentions], np.int32),
        "gold_ends": np.array([m[1] for m in mentions], np.int32),
        "cluster_ids": np.array([cluster_of[m] for m in mentions], np.int32),
    }


def check_example(example, where):
    """Raises `CorefJsonlinesError` (naming `where`) unless `example` is an official example."""
    for key in JSONLINES_KEYS:
        if key not in example:
            raise CorefJsonlinesError(f"{where}: missing field {key!r}")
    sentences, speakers = example["sentences"], example["speakers"]
    if not isinstance(sentences, list) or not all(isinstance(s, list) for s in sentences):
        raise CorefJsonlinesError(f"{where}: field 'sentences' must be a list of lists")
    lengths = [len(s) for s in sentences]
    if not isinstance(speakers, list) or [len(s) for s in speakers] != lengths:
        raise CorefJsonlinesError(
            f"{where}: field 'speakers' must have one speaker per subtoken of 'sentences'")
    total = sum(lengths)
    for key in ("sentence_map", "subtoken_map"):
        if len(example[key]) != total:
            raise CorefJsonlinesError(
                f"{where}: field {key!r} has {len(example[key])} entries, expected {total} "
                "(one per subtoken)")
    for cluster in example["clusters"]:
        for mention in cluster:
            if (len(mention) != 2 or not all(isinstance(x, int) for x in mention)
                    or not 0 <= mention[0] <= mention[1] < total):
                raise CorefJsonlinesError(
                    f"{where}: field 'clusters' has mention {mention}; expected [start, end] "
                    f"with 0 <= start <= end < {total}")


def read_jsonlines(path, tokenizer=None):
    """Reads official `.jsonlines` examples; `tokenizer` fills `input_ids`."""
    docs = []
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_number}"
            try:
                example = json.loads(line)
            except json.JSONDecodeError as e:
                raise CorefJsonlinesError(f"{where}: not JSON ({e})") from None
            if not isinstance(example, dict):
                raise CorefJsonlinesError(f"{where}: expected a JSON object")
            check_example(example, where)
            doc = CorefDocument(**{k: example[k] for k in JSONLINES_KEYS})
            doc.clusters = [[list(m) for m in c] for c in doc.clusters]
            if tokenizer is not None:
                doc.input_ids = [tokenizer.convert_tokens_to_ids(s) for s in doc.sentences]
            docs.append(doc)
    return docs


def write_jsonlines(path, docs):
    """Writes `CorefDocument`s (or official example dicts) as `.jsonlines`, atomically."""
    lines = [json.dumps(d.to_json() if isinstance(d, CorefDocument) else d) for d in docs]
    io_utils.write_text_atomic(path, "".join(line + "\n" for line in lines))
