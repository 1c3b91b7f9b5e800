"""Streaming input reading: files, globs, .gz, jsonl and TFDS → document parts.

Text layout as in google-research/bert: one sentence (or paragraph) per line, a
blank line between documents. `jsonl` reads one JSON object per line, its
`text_key` field being one document. A TFDS dataset gives one document per
example. Memory stays flat: files are read line by line with a bounded read
size, a line longer than `chunk_bytes` is cut at whitespace, and a document
longer than `part_bytes` is handed on in parts (`DocumentPart.part_index`).

Skipped inputs are counted in `InputStats.skipped` (reason → count):
`empty_file`, `binary_file` (a NUL byte in the first 8 KB), `read_error`
(unreadable or corrupt file, e.g. a truncated .gz), `invalid_json`,
`missing_text_key`. Invalid UTF-8 bytes are replaced (U+FFFD, which BERT's
text cleaning then removes) and counted in `InputStats.invalid_utf8_bytes`.

Example:
```python
stats = InputStats()
for part in iter_document_parts(resolve_input_files("a.txt,b/*.gz"), stats):
    part.doc_index, part.part_index, part.lines   # lines: list of str
```
"""

import codecs
import collections
import dataclasses
import glob
import gzip
import json
import os
import zlib

from spanbert_tf import errors

BINARY_SNIFF_BYTES = 8192
CHUNK_BYTES = 1 << 18        # longest piece of a line read at once
PART_BYTES = 1 << 20         # a document is handed on in parts of about this size
_ERROR_HANDLER = "spanbert_tf_count_replace"


InputError = errors.InputError  # kept importable here; the one input-error type


@dataclasses.dataclass
class InputStats:
    """What the reader saw: files, skips (reason → count), bad bytes."""

    files_read: int = 0
    bytes_read: int = 0
    documents: int = 0
    lines: int = 0
    invalid_utf8_bytes: int = 0
    skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    skipped_examples: list = dataclasses.field(default_factory=list)  # (path, reason)

    def skip(self, path, reason, detail=None):
        self.skipped[reason] += 1
        if len(self.skipped_examples) < 20:
            self.skipped_examples.append(
                (str(path), reason if detail is None else f"{reason}: {detail}"))


@dataclasses.dataclass
class DocumentPart:
    """Consecutive non-empty lines of one document (the whole of it if short)."""

    doc_index: int       # 0-based, in input order
    part_index: int      # 0-based within the document
    lines: list          # str, stripped, non-empty
    num_bytes: int = 0   # input bytes these lines came from (progress)


_counter = {"bytes": 0}


def _count_replace(error):
    _counter["bytes"] += error.end - error.start
    return "\ufffd", error.end


codecs.register_error(_ERROR_HANDLER, _count_replace)


def _decode(data, stats):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        before = _counter["bytes"]
        text = data.decode("utf-8", _ERROR_HANDLER)
        stats.invalid_utf8_bytes += _counter["bytes"] - before
        return text


def resolve_input_files(input_file):
    """Comma-separated files or globs → sorted, de-duplicated paths.

    Raises `InputError` naming the first entry that matches nothing.
    """
    if not input_file or not str(input_file).strip():
        raise InputError("no input file given (--input_file is empty)")
    paths, seen = [], set()
    for entry in str(input_file).split(","):
        entry = os.path.expanduser(entry.strip())
        if not entry:
            continue
        if glob.has_magic(entry):
            matches = sorted(p for p in glob.glob(entry) if os.path.isfile(p))
            if not matches:
                raise InputError(f"input file pattern matches no file: {entry}")
        elif os.path.isdir(entry):
            raise InputError(f"input path is a directory, not a file: {entry}")
        elif not os.path.isfile(entry):
            raise InputError(f"input file not found: {entry}")
        else:
            matches = [entry]
        for path in matches:
            if path not in seen:
                seen.add(path)
                paths.append(path)
    if not paths:
        raise InputError(f"no input file given in {input_file!r}")
    return paths


def _open_binary(path):
    if "://" in path:  # gs://, s3://, ... (the Beam pipeline's workers): TensorFlow's gfile
        import tensorflow as tf

        f = tf.io.gfile.GFile(path, "rb")
        return gzip.GzipFile(fileobj=f, mode="rb") if path.endswith(".gz") else f
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _cut_point(piece):
    """Where to cut a too-long piece: after its last whitespace, else at a char start."""
    cut = max(piece.rfind(b) for b in (b" ", b"\t"))
    if cut > 0:
        return cut + 1
    cut = len(piece)
    while cut > 0 and (piece[cut - 1] & 0xC0) == 0x80:  # inside a UTF-8 sequence
        cut -= 1
    if cut > 0 and piece[cut - 1] >= 0xC0:  # a lead byte whose sequence is cut
        cut -= 1
    return cut or len(piece)


def _iter_raw_pieces(fobj, chunk_bytes):
    """Yields (bytes, ends_line); a long line comes in pieces cut at whitespace."""
    carry = b""
    while True:
        raw = fobj.readline(chunk_bytes)
        if not raw:
            if carry:
                yield carry, True
            return
        data = carry + raw if carry else raw
        carry = b""
        if raw.endswith(b"\n") or len(raw) < chunk_bytes:
            yield data, True
        else:
            cut = _cut_point(data)
            carry = data[cut:]
            yield data[:cut], False


class _PartBuilder:
    """Accumulates lines of the current document; hands on parts of bounded size."""

    def __init__(self, stats, part_bytes, first_doc_index):
        self.stats = stats
        self.part_bytes = part_bytes
        self.doc_index = first_doc_index
        self.part_index = 0
        self.lines = []
        self.size = 0
        self.pending = []  # pieces of the current, unfinished line

    def add_piece(self, data, ends_line):
        """Adds raw bytes; yields finished parts."""
        self.pending.append(data)
        self.size += len(data)
        if ends_line:
            line = _decode(b"".join(self.pending), self.stats).strip()
            self.pending = []
            if line:
                self.lines.append(line)
                self.stats.lines += 1
            else:
                yield from self.end_document()
                return
        if self.size >= self.part_bytes:
            if self.pending:  # cut a long line here (at whitespace)
                text = _decode(b"".join(self.pending), self.stats).strip()
                self.pending = []
                if text:
                    self.lines.append(text)
            yield from self._flush(final=False)

    def add_text_document(self, text):
        """A whole document as one string (jsonl, TFDS): lines split on newlines."""
        for line in text.split("\n"):
            yield from self._add_line(line)
        yield from self.end_document()

    def _add_line(self, line):
        line = line.strip()
        if not line:
            return
        self.lines.append(line)
        self.stats.lines += 1
        self.size += len(line)
        if self.size >= self.part_bytes:
            yield from self._flush(final=False)

    def _flush(self, final):
        if self.lines:
            yield DocumentPart(self.doc_index, self.part_index, self.lines, self.size)
            self.part_index += 1
        self.lines = []
        self.size = 0
        if final:
            if self.part_index:
                self.stats.documents += 1
                self.doc_index += 1
            self.part_index = 0

    def end_document(self):
        if self.pending:
            yield from self.add_piece(b"", True)
        yield from self._flush(final=True)


def _check_file(path, stats):
    """False (and the skip counted) for an unreadable, empty or binary file."""
    try:
        with _open_binary(path) as f:
            head = f.read(BINARY_SNIFF_BYTES)
    except (OSError, EOFError, zlib.error) as e:
        stats.skip(path, "read_error", e)
        return False
    if not head:
        stats.skip(path, "empty_file")
        return False
    if b"\x00" in head:
        stats.skip(path, "binary_file")
        return False
    return True


def iter_text_file_parts(path, stats, builder, chunk_bytes=CHUNK_BYTES):
    """Parts of one text file (blank line = document boundary; a file end too)."""
    if not _check_file(path, stats):
        return
    lines_before = stats.lines
    try:
        with _open_binary(path) as f:
            for piece, ends_line in _iter_raw_pieces(f, chunk_bytes):
                stats.bytes_read += len(piece)
                yield from builder.add_piece(piece, ends_line)
    except (OSError, EOFError, zlib.error) as e:
        stats.skip(path, "read_error", e)
    yield from builder.end_document()
    if stats.lines == lines_before:
        stats.skip(path, "empty_file")
    else:
        stats.files_read += 1


def iter_jsonl_file_parts(path, stats, builder, text_key):
    """Parts of one jsonl file: each object's `text_key` string is a document."""
    if not _check_file(path, stats):
        return
    records = 0
    try:
        with _open_binary(path) as f:
            for raw in f:
                stats.bytes_read += len(raw)
                if not raw.strip():
                    continue
                records += 1
                try:
                    obj = json.loads(_decode(raw, stats))
                except ValueError:
                    stats.skip(path, "invalid_json")
                    continue
                text = obj.get(text_key) if isinstance(obj, dict) else None
                if not isinstance(text, str):
                    stats.skip(path, "missing_text_key")
                    continue
                yield from builder.add_text_document(text)
    except (OSError, EOFError, zlib.error) as e:
        stats.skip(path, "read_error", e)
    if records:
        stats.files_read += 1
    else:
        stats.skip(path, "empty_file")


def iter_tfds_parts(name, split, text_key, data_dir, stats, builder):
    """Parts of a TFDS text dataset read from a local `data_dir`."""
    import tensorflow_datasets as tfds

    try:
        ds_builder = tfds.builder(name, data_dir=data_dir)
        features = ds_builder.info.features
        if text_key not in features:
            raise InputError(
                f"TFDS dataset {name} has no feature {text_key!r} "
                f"(features: {', '.join(sorted(features.keys()))})")
        dataset = ds_builder.as_dataset(split=split, shuffle_files=False)
    except InputError:
        raise
    except Exception as e:  # tfds raises many types; name the dataset
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(
            f"cannot read TFDS dataset {name} split {split} from "
            f"{data_dir or 'the default data dir'}: {first}") from None
    stats.files_read += 1
    for example in tfds.as_numpy(dataset):
        value = example[text_key]
        if isinstance(value, bytes):
            stats.bytes_read += len(value)
            value = _decode(value, stats)
        yield from builder.add_text_document(str(value))


def iter_document_parts(paths, stats, input_format="text", text_key="text",
                        tfds=None, part_bytes=PART_BYTES, chunk_bytes=CHUNK_BYTES):
    """All document parts of the input, in order, with sequential doc indices.

    Args:
        paths: list of files (from `resolve_input_files`); ignored with `tfds`.
        stats: an `InputStats`, updated while reading.
        input_format: "text" or "jsonl".
        text_key: the jsonl field holding the text.
        tfds: None, or dict(name=, split=, text_key=, data_dir=).
    """
    builder = _PartBuilder(stats, part_bytes, 0)
    if tfds is not None:
        yield from iter_tfds_parts(tfds["name"], tfds.get("split", "train"),
                                   tfds.get("text_key", "text"), tfds.get("data_dir"),
                                   stats, builder)
        return
    if input_format not in ("text", "jsonl"):
        raise InputError(f"unknown input format {input_format!r} (text|jsonl)")
    for path in paths:
        if input_format == "text":
            yield from iter_text_file_parts(path, stats, builder, chunk_bytes)
        else:
            yield from iter_jsonl_file_parts(path, stats, builder, text_key)
