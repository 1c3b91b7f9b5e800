"""Named-entity files: readers and writers of three formats, chosen by the file's suffix.

* `.tsv`, LitBank's layered TSV (the layout of meizhiju/layered-bilstm-crf): one word a
  line, `word<TAB>layer 1<TAB>layer 2 ...` (BIO tags, one column per nesting layer, the
  innermost first; a trailing tab is allowed), a blank line between sentences, one
  document per file. Every line of a file has the same number of columns.
* `.conll` / `.txt` / `.bio` / `.iob`, CoNLL-2003 columns: `word ... TAG` (columns split on
  whitespace, the tag last, flat: BIO, IOB1 or IOBES as `scheme` says), a blank line
  between sentences, `-DOCSTART-` lines starting documents (one document when none).
* `.jsonl` / `.jsonlines`, one sentence a line: `{"tokens": [...], "entities":
  [[start, end, type], ...]}` with word offsets and `end` EXCLUSIVE (`tokens[start:end]`),
  nesting allowed; an optional `"doc_id"` groups consecutive lines into a document.

A folder is read as every file of those suffixes in it (sorted; with `split_file`, the
files whose names without suffix it lists). Malformed input (a line with another column
count, a tag outside the scheme, an entity outside its sentence, bad JSON) raises an
`InputError` naming `file:line`. Writers keep every word and column of the input
(`write_like` writes predicted entities in the format and layout of the file read).

Example:
```python
docs = read_ner_files("litbank/tsv", "litbank/splits/dev.txt")
docs[0].sentences[0][:3], docs[0].entities[0][:2]    # words; [(10, 19, 'PER'), ...]
write_like("predictions.tsv", docs, predicted)          # predicted: [[entities] per sentence]
```
"""

import dataclasses
import json
import os
from typing import List, Optional, Tuple

from spanbert_tf import io_utils
from spanbert_tf.errors import InputError, MissingFileError
from spanbert_tf.tasks.ner.schemes import (
    check_scheme, entities_to_tags, nesting_layers, outermost, tags_to_entities)

Entity = Tuple[int, int, str]           # (start, end exclusive, type), words of a sentence
TSV_SUFFIXES = (".tsv",)
CONLL_SUFFIXES = (".conll", ".txt", ".bio", ".iob")
JSONL_SUFFIXES = (".jsonl", ".jsonlines")
DOCSTART = "-DOCSTART-"


@dataclasses.dataclass
class NerDocument:
    """One document: its sentences (lists of words) and each sentence's entities.

    `fmt` is the format it was read from ("tsv", "conll", "jsonl"); `columns` keeps the
    CoNLL columns between word and tag of every word (written back as they were);
    `num_layers` the TSV layer count; `records` the JSON lines records (other keys kept).
    """

    doc_id: str
    sentences: List[List[str]]
    entities: List[List[Entity]]
    fmt: str = "jsonl"
    columns: Optional[List[List[List[str]]]] = None
    num_layers: int = 0
    records: Optional[List[dict]] = None

    @property
    def num_words(self):
        return sum(len(s) for s in self.sentences)


def format_of(path):
    """"tsv" | "conll" | "jsonl" from the suffix of `path`; InputError for another suffix."""
    suffix = os.path.splitext(str(path))[1].lower()
    for fmt, suffixes in (("tsv", TSV_SUFFIXES), ("conll", CONLL_SUFFIXES),
                          ("jsonl", JSONL_SUFFIXES)):
        if suffix in suffixes:
            return fmt
    raise InputError(f"{path}: unknown NER file suffix {suffix!r}; expected one of "
                     f"{TSV_SUFFIXES + CONLL_SUFFIXES + JSONL_SUFFIXES}")


def _lines(path):
    if not os.path.isfile(path):
        raise MissingFileError(f"NER file not found: {path}")
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            yield number, line.rstrip("\r\n")


def read_layered_tsv(path, scheme="bio", types=None):
    """One `NerDocument` of a layered TSV file (see the module docstring)."""
    sentences, entities, words, layers, width = [], [], [], [], None

    def end_sentence():
        if words:
            found = []
            for column, tags in enumerate(zip(*layers)):
                found += tags_to_entities(
                    tags, scheme, types=types,
                    where=lambda i, c=column: f"{path}:{first_line + i}: layer {c + 1}: ")
            sentences.append(list(words))
            entities.append(sorted(set(found)))
            words.clear()
            layers.clear()

    first_line = 1
    for number, line in _lines(path):
        if not line.strip():
            end_sentence()
            continue
        fields = line.split("\t")
        while len(fields) > 1 and fields[-1] == "":
            fields.pop()
        if len(fields) < 2:
            raise InputError(f"{path}:{number}: expected a word and at least one tag column "
                             f"separated by tabs, got {line!r}")
        if width is None:
            width = len(fields)
        elif len(fields) != width:
            raise InputError(f"{path}:{number}: {len(fields)} columns, expected {width} as in "
                             "the file's first line")
        if not words:
            first_line = number
        words.append(fields[0])
        layers.append(fields[1:])
    end_sentence()
    doc_id = os.path.splitext(os.path.basename(path))[0]
    return [NerDocument(doc_id, sentences, entities, "tsv", num_layers=(width or 2) - 1)]


def read_conll_columns(path, scheme="bio", types=None):
    """The `NerDocument`s of a CoNLL-2003 column file (one per `-DOCSTART-`)."""
    base = os.path.splitext(os.path.basename(path))[0]
    docs, words, tags, extra, first_line, width = [], [], [], [], 1, None

    def new_doc():
        docs.append(NerDocument(f"{base}-{len(docs)}", [], [], "conll", columns=[]))

    def end_sentence():
        if words:
            if not docs:
                new_doc()
            where = lambda i: f"{path}:{first_line + i}: "  # noqa: E731
            docs[-1].entities.append(tags_to_entities(tags, scheme, where, types))
            docs[-1].sentences.append(list(words))
            docs[-1].columns.append(list(extra))
            words.clear(), tags.clear(), extra.clear()

    for number, line in _lines(path):
        fields = line.split()
        if not fields:
            end_sentence()
            continue
        if fields[0] == DOCSTART:
            end_sentence()
            new_doc()
            continue
        if len(fields) < 2:
            raise InputError(f"{path}:{number}: expected 'word ... TAG' columns, got {line!r}")
        if width is None:
            width = len(fields)
        elif len(fields) != width:
            raise InputError(f"{path}:{number}: {len(fields)} columns, expected {width} as in "
                             "the file's first word line")
        if not words:
            first_line = number
        words.append(fields[0])
        extra.append(fields[1:-1])
        tags.append(fields[-1])
    end_sentence()
    return [d for d in docs if d.sentences]


def read_jsonl(path, types=None):
    """The `NerDocument`s of a JSON lines file (see the module docstring)."""
    docs = []
    base = os.path.splitext(os.path.basename(path))[0]
    for number, line in _lines(path):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{where}: invalid JSON ({e.msg})") from None
        tokens = record.get("tokens") if isinstance(record, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise InputError(f"{where}: expected an object with \"tokens\": a list of strings")
        found = []
        for entity in record.get("entities", []):
            if (not isinstance(entity, list) or len(entity) != 3
                    or not all(isinstance(x, int) and not isinstance(x, bool)
                               for x in entity[:2]) or not isinstance(entity[2], str)):
                raise InputError(f"{where}: entity {entity!r}: expected [start, end, type]")
            start, end, kind = entity
            if not 0 <= start < end <= len(tokens):
                raise InputError(f"{where}: entity {entity!r} outside its {len(tokens)} tokens "
                                 "(end is exclusive: 0 <= start < end <= len(tokens))")
            if types is not None and kind not in types:
                raise InputError(f"{where}: entity type {kind!r} is not one of {sorted(types)}")
            found.append((start, end, kind))
        doc_id = str(record.get("doc_id", f"{base}-{number}"))
        if not docs or "doc_id" not in record or docs[-1].doc_id != doc_id:
            docs.append(NerDocument(doc_id, [], [], "jsonl", records=[]))
        docs[-1].sentences.append(tokens)
        docs[-1].entities.append(sorted(set(found)))
        docs[-1].records.append(record)
    return docs


def read_ner_file(path, scheme="bio", types=None):
    fmt = format_of(path)
    check_scheme(scheme)
    if fmt == "tsv":
        return read_layered_tsv(path, scheme, types)
    if fmt == "conll":
        return read_conll_columns(path, scheme, types)
    return read_jsonl(path, types)


def read_ner_files(path, split_file=None, scheme="bio", types=None):
    """Documents of a file, or of a folder's files (those `split_file` names, in its order)."""
    path = str(path)
    if not os.path.isdir(path):
        if not os.path.exists(path):
            raise MissingFileError(f"NER file or folder not found: {path}")
        return read_ner_file(path, scheme, types)
    known = TSV_SUFFIXES + CONLL_SUFFIXES + JSONL_SUFFIXES
    files = sorted(f for f in os.listdir(path) if os.path.splitext(f)[1].lower() in known)
    if split_file:
        by_name = {os.path.splitext(f)[0]: f for f in files}
        with open(split_file, encoding="utf-8") as f:
            names = [n.strip() for n in f if n.strip()]
        missing = [n for n in names if n not in by_name]
        if missing:
            raise MissingFileError(f"{split_file}: {len(missing)} document(s) not in {path}, "
                                   f"e.g. {missing[0]!r}")
        files = [by_name[n] for n in names]
    docs = []
    for name in files:
        docs += read_ner_file(os.path.join(path, name), scheme, types)
    return docs


# ------------------------------------------------------------------- writers
def _tsv_text(doc, entities, min_layers):
    lines = []
    for words, found in zip(doc.sentences, entities):
        layers = nesting_layers(found)
        count = max(len(layers), min_layers, 1)
        columns = [entities_to_tags(layer, len(words), "bio") for layer in layers]
        columns += [["O"] * len(words)] * (count - len(columns))
        for i, word in enumerate(words):
            lines.append("\t".join([word] + [c[i] for c in columns]) + "\t")
        lines.append("")
    return "\n".join(lines) + "\n"


def write_layered_tsv(path, doc, entities=None, min_layers=None):
    """Writes one document as layered TSV (`entities` per sentence, default the document's)."""
    entities = doc.entities if entities is None else entities
    io_utils.write_text_atomic(path, _tsv_text(doc, entities, min_layers or doc.num_layers))
    return str(path)


def write_conll_columns(path, docs, entities=None, scheme="bio"):
    """Writes documents as CoNLL-2003 columns (the input's other columns kept); nested
    entities cannot be written flat: only the outermost are. Returns the number dropped."""
    lines, dropped = [], 0
    for d, doc in enumerate(docs):
        if doc.fmt == "conll" or len(docs) > 1:
            lines += [f"{DOCSTART} -X- -X- O", ""]
        found_doc = doc.entities if entities is None else entities[d]
        for s, (words, found) in enumerate(zip(doc.sentences, found_doc)):
            flat, n = outermost(found)
            dropped += n
            tags = entities_to_tags(flat, len(words), scheme)
            for i, word in enumerate(words):
                extra = doc.columns[s][i] if doc.columns else []
                lines.append(" ".join([word] + list(extra) + [tags[i]]))
            lines.append("")
    io_utils.write_text_atomic(path, "\n".join(lines) + "\n")
    return dropped


def write_jsonl(path, docs, entities=None):
    """Writes documents as JSON lines, one sentence a line (other keys of read records kept)."""
    out = []
    for d, doc in enumerate(docs):
        found_doc = doc.entities if entities is None else entities[d]
        for s, (words, found) in enumerate(zip(doc.sentences, found_doc)):
            record = dict(doc.records[s]) if doc.records else {"doc_id": doc.doc_id}
            record["tokens"] = list(words)
            record["entities"] = [[start, end, kind] for start, end, kind in sorted(found)]
            out.append(json.dumps(record, ensure_ascii=False) + "\n")
    io_utils.write_text_atomic(path, "".join(out))


def write_like(path, docs, entities, scheme="bio"):
    """Writes `entities` ([doc][sentence] lists) in the format of `path`'s suffix.

    TSV: one document -> `path`; several -> `path` is a folder of `<doc_id>.tsv` files.
    Returns the number of nested entities a flat (CoNLL) output could not hold.
    """
    fmt = format_of(path)
    if fmt == "jsonl":
        write_jsonl(path, docs, entities)
    elif fmt == "conll":
        return write_conll_columns(path, docs, entities, scheme)
    elif len(docs) == 1:
        write_layered_tsv(path, docs[0], entities[0])
    else:
        for doc, found in zip(docs, entities):
            write_layered_tsv(os.path.join(path, f"{doc.doc_id}.tsv"), doc, found)
    return 0
