"""CoNLL-2012 coreference files: reader and writer (OntoNotes `*_gold_conll`, LitBank).

Layout: `#begin document (ID); part N` ... `#end document`; one word a row, a blank
line ends a sentence; columns split on tabs when the row has one (LitBank, where
empty columns are kept), else on runs of spaces (OntoNotes). The word is column 4
(`/.`, `/?`, `/-` unescaped as the official minimize step does), the speaker
column 10 where a row has at least 11 columns (`_`, `-` or empty = none), the
coreference column is the last: `(id` opens, `id)` closes (the latest open mention
of that id), `(id)` is a one-word mention, parts joined by `|`; `_`, `-` or empty
means none. Parts of one row are applied in the reference scorer's order (one-word
mentions, then openings, then closings), so the clusters are the scorer's own,
entities ordered by first appearance of their id, mentions by where they close.

Any malformed input (an unclosed or unmatched bracket, a row with another column
count inside a document, no `#end document`, rows outside a document) raises
`CorefFormatError` naming `file:line`.

Example:
```python
docs = read_conll("dev.english.v4_gold_conll")
docs[0].doc_key, docs[0].sentences[0][:3], docs[0].clusters[0]
write_conll("pred.conll", docs, {d.doc_key: predicted[d.doc_key] for d in docs})
```
"""

import dataclasses
import os
import re
from typing import List, Optional, Tuple

from spanbert_tf import io_utils
from spanbert_tf.errors import InputError, MissingFileError

BEGIN_DOCUMENT_REGEX = re.compile(r"#begin document \((.*)\); part (\d+)")
_BEGIN_PREFIX = "#begin document"
_END_PREFIX = "#end document"
_NONE_MARKERS = ("", "_", "-")
_WORD_ESCAPES = {"/.": ".", "/?": "?", "/-": "-"}
_COREF_PART = re.compile(r"\((\d+)\)|\((\d+)|(\d+)\)")

Mention = Tuple[int, int]


class CorefFormatError(InputError):
    """A malformed CoNLL-2012 coreference file; the message starts with `file:line`."""


def normalize_word(word):
    """Undoes the CoNLL-2012 escapes of `.`, `?` and `-` (official minimize step)."""
    return _WORD_ESCAPES.get(word, word)


def doc_key_of(doc_id, part):
    """The official doc key: `ID_partnumber` (`bc/cctv/00/cctv_0000_0`), or ID alone."""
    return doc_id if part is None else f"{doc_id}_{int(part)}"


@dataclasses.dataclass
class ConllDocument:
    """One `#begin document` ... `#end document` block.

    Attributes:
        path: the file it was read from.
        line_number: 1-based line of its `#begin document` row.
        doc_id, part: the header's document ID and part (None without `; part N`).
        sentences: normalized words per sentence.
        speakers: the speaker of each word per sentence (None where absent).
        clusters: entities, each a list of (start, end) word spans, inclusive,
            numbered over the whole document.
        rows: the raw rows, one per word (without the line break).
        coref_column_offsets: where the last column starts in each raw row.
        header, footer: the raw `#begin document` / `#end document` lines.
        none_marker: how the file writes an empty coreference column.
    """
    path: str
    line_number: int
    doc_id: str
    part: Optional[str]
    sentences: List[List[str]]
    speakers: List[List[Optional[str]]]
    clusters: List[List[Mention]]
    rows: List[str]
    coref_column_offsets: List[int]
    header: str
    footer: str
    none_marker: str = "-"

    @property
    def doc_key(self):
        return doc_key_of(self.doc_id, self.part)

    @property
    def num_words(self):
        return len(self.rows)

    def words(self):
        return [w for sentence in self.sentences for w in sentence]


def _split_row(line):
    """(columns, offset of the last column) of one data row."""
    if "\t" in line:
        columns = line.split("\t")
        return columns, line.rfind("\t") + 1
    columns = line.split()
    return columns, re.search(r"\S+\s*$", line).start()


class _DocumentBuilder:
    """Accumulates the rows of one document and resolves its coreference column."""

    def __init__(self, path, line_number, header):
        self.path = path
        self.line_number = line_number
        self.header = header
        match = BEGIN_DOCUMENT_REGEX.match(header)
        if match:
            self.doc_id, self.part = match.group(1), match.group(2)
        else:
            self.doc_id, self.part = header[len(_BEGIN_PREFIX):].strip(), None
        self.sentences, self.speakers = [[]], [[]]
        self.rows, self.offsets = [], []
        self.num_columns = None
        self.column_count_line = None
        self.entity_order = {}
        self.mentions = {}
        self.open = {}  # id -> stack of (start word, line number)
        self.none_markers = set()

    def error(self, line_number, message):
        return CorefFormatError(f"{self.path}:{line_number}: {message}")

    def _entity(self, entity_id):
        self.entity_order.setdefault(entity_id, len(self.entity_order))
        return self.mentions.setdefault(entity_id, [])

    def add_row(self, line, line_number):
        columns, offset = _split_row(line)
        if self.num_columns is None:
            self.num_columns, self.column_count_line = len(columns), line_number
        elif len(columns) != self.num_columns:
            raise self.error(line_number, (
                f"{len(columns)} columns, but the document's rows have {self.num_columns} "
                f"(line {self.column_count_line})"))
        if len(columns) < 5:
            raise self.error(line_number, (
                f"{len(columns)} columns; expected at least 5 (word in column 4, "
                "coreference last)"))
        word_index = len(self.rows)
        speaker = columns[9] if len(columns) >= 11 else None
        if speaker in _NONE_MARKERS:
            speaker = None
        self.sentences[-1].append(normalize_word(columns[3]))
        self.speakers[-1].append(speaker)
        self.rows.append(line)
        self.offsets.append(offset)
        self._add_coref(columns[-1].strip(), word_index, line_number)

    def _add_coref(self, column, word_index, line_number):
        if column in _NONE_MARKERS:
            self.none_markers.add(column)
            return
        parts = _COREF_PART.findall(column)
        rebuilt = "".join(f"({s})" if s else (f"({b}" if b else f"{e})") for s, b, e in parts)
        if not parts or rebuilt != column.replace("|", ""):
            raise self.error(line_number, (
                f"bad coreference column {column!r}; expected '(id', 'id)', '(id)' "
                "joined by '|', or '_'/'-' for none"))
        # The reference scorer's order: one-word mentions, openings, closings.
        for single, _, _ in parts:
            if single:
                self._entity(int(single)).append((word_index, word_index))
        for _, begin, _ in parts:
            if begin:
                self._entity(int(begin))
                self.open.setdefault(int(begin), []).append((word_index, line_number))
        for _, _, end in parts:
            if end:
                entity = self._entity(int(end))
                stack = self.open.get(int(end))
                if not stack:
                    raise self.error(line_number, (
                        f"mention of entity {end} closes here but was never opened"))
                entity.append((stack.pop()[0], word_index))

    def end_sentence(self):
        if self.sentences[-1]:
            self.sentences.append([])
            self.speakers.append([])

    def finish(self, footer, line_number):
        for entity_id, stack in self.open.items():
            if stack:
                raise self.error(stack[-1][1], (
                    f"mention of entity {entity_id} opens here and is not closed "
                    f"before '#end document' (line {line_number})"))
        if not self.sentences[-1]:
            self.sentences.pop()
            self.speakers.pop()
        ordered = sorted(self.entity_order, key=self.entity_order.get)
        none_marker = "-"
        for marker in ("", "_", "-"):
            if marker in self.none_markers:
                none_marker = marker
                break
        return ConllDocument(
            path=self.path, line_number=self.line_number, doc_id=self.doc_id,
            part=self.part, sentences=self.sentences, speakers=self.speakers,
            clusters=[self.mentions[i] for i in ordered], rows=self.rows,
            coref_column_offsets=self.offsets, header=self.header, footer=footer,
            none_marker=none_marker)


def parse_conll(text, path="<string>"):
    """Parses the text of a CoNLL-2012 file: a list of `ConllDocument`."""
    documents, seen = [], {}
    builder = None
    line_number = 0
    lines = text.split("\n")  # not splitlines(): words may hold U+2028 etc.
    if lines and not lines[-1]:
        lines.pop()
    for line_number, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if line.startswith(_BEGIN_PREFIX):
            if builder is not None:
                raise CorefFormatError(
                    f"{path}:{line_number}: '#begin document' inside the document begun at "
                    f"line {builder.line_number} (no '#end document')")
            builder = _DocumentBuilder(path, line_number, line)
        elif line.startswith(_END_PREFIX):
            if builder is None:
                raise CorefFormatError(
                    f"{path}:{line_number}: '#end document' without '#begin document'")
            document = builder.finish(line, line_number)
            if document.doc_key in seen:
                raise CorefFormatError(
                    f"{path}:{line_number}: document {document.doc_key!r} appears twice "
                    f"(first at line {seen[document.doc_key]})")
            seen[document.doc_key] = document.line_number
            documents.append(document)
            builder = None
        elif not line.strip():
            if builder is not None:
                builder.end_sentence()
        elif builder is None:
            raise CorefFormatError(
                f"{path}:{line_number}: a row outside any '#begin document' ... "
                "'#end document' block")
        else:
            builder.add_row(line, line_number)
    if builder is not None:
        raise CorefFormatError(
            f"{path}:{line_number}: end of file inside the document begun at line "
            f"{builder.line_number} (no '#end document')")
    return documents


def read_conll(path):
    """Reads every document of one CoNLL-2012 file."""
    with open(path, encoding="utf-8-sig") as f:
        return parse_conll(f.read(), os.fspath(path))


def _unique(documents):
    """Raises on a doc key read twice (from two files): scores are keyed by doc key."""
    seen = {}
    for d in documents:
        if d.doc_key in seen:
            raise CorefFormatError(
                f"{d.path}:{d.line_number}: document {d.doc_key!r} was already read from "
                f"{seen[d.doc_key]}")
        seen[d.doc_key] = f"{d.path}:{d.line_number}"
    return documents


def read_conll_split(conll_dir, split_file):
    """Reads the documents listed in `split_file` (one file name without `.conll` a line)."""
    documents = []
    with open(split_file, encoding="utf-8") as f:
        for line_number, name in enumerate(f, start=1):
            name = name.strip()
            if not name:
                continue
            path = os.path.join(conll_dir, name + ".conll")
            if not os.path.isfile(path):
                raise CorefFormatError(f"{split_file}:{line_number}: no file {path}")
            documents.extend(read_conll(path))
    return _unique(documents)


def read_conll_files(path, split_file=None):
    """Documents of a CoNLL-2012 file, or of a folder: its `*.conll` and `*_gold_conll`
    files in name order (not `*_auto_conll`), or those named in `split_file`."""
    if not os.path.isdir(path):
        return read_conll(path)
    if split_file:
        return read_conll_split(path, split_file)
    names = sorted(n for n in os.listdir(path) if n.endswith((".conll", "_gold_conll")))
    if not names:
        raise MissingFileError(f"no .conll or *_gold_conll files in folder {path}")
    return _unique([d for n in names for d in read_conll(os.path.join(path, n))])


def canonical_clusters(clusters):
    """Clusters as a sorted tuple of sorted mention tuples (order-free comparison)."""
    return tuple(sorted(tuple(sorted((int(s), int(e)) for s, e in c)) for c in clusters))


def coref_column(word_index, ends, singles, starts):
    """The coreference column text of one word from its closing/single/opening ids."""
    parts = ([f"{c})" for c in ends.get(word_index, ())] +
             [f"({c})" for c in singles.get(word_index, ())] +
             [f"({c}" for c in starts.get(word_index, ())])
    return "|".join(parts)


def format_document(document, clusters=None):
    """The document's CoNLL text with its coreference column set to `clusters`
    (word spans; the document's own clusters when None), numbered 0, 1, ..."""
    clusters = document.clusters if clusters is None else clusters
    starts, ends, singles = {}, {}, {}
    for cluster_id, cluster in enumerate(clusters):
        for start, end in cluster:
            start, end = int(start), int(end)
            if not 0 <= start <= end < document.num_words:
                raise InputError(
                    f"document {document.doc_key}: mention ({start}, {end}) is outside its "
                    f"{document.num_words} words")
            if start == end:
                singles.setdefault(start, []).append(cluster_id)
            else:
                starts.setdefault(start, []).append((end, cluster_id))
                ends.setdefault(end, []).append((start, cluster_id))
    # Longer mentions open first; later-opened mentions close first (official order).
    starts = {k: [c for _, c in sorted(v, key=lambda x: -x[0])] for k, v in starts.items()}
    ends = {k: [c for _, c in sorted(v, key=lambda x: -x[0])] for k, v in ends.items()}
    lines = [document.header]
    word_index = 0
    for sentence in document.sentences:
        for _ in sentence:
            row = document.rows[word_index]
            text = coref_column(word_index, ends, singles, starts) or document.none_marker
            lines.append(row[:document.coref_column_offsets[word_index]] + text)
            word_index += 1
        lines.append("")
    lines.append(document.footer)
    return "\n".join(lines) + "\n"


def write_conll(path, documents, clusters_by_doc_key=None):
    """Writes `documents` with their coreference column replaced, atomically.

    Args:
        path: the output file.
        documents: `ConllDocument`s as read.
        clusters_by_doc_key: doc key -> list of clusters of (start, end) word spans;
            None writes the documents' own clusters; a missing key writes no mentions.
    """
    texts = []
    for document in documents:
        clusters = None
        if clusters_by_doc_key is not None:
            clusters = clusters_by_doc_key.get(document.doc_key, [])
        texts.append(format_document(document, clusters))
    io_utils.write_text_atomic(path, "".join(texts))
