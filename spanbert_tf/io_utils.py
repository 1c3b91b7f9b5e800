"""Atomic file writes: a temporary file in the target's folder, then a rename.

A reader never sees a half-written file: it finds the old file, the new one, or
none. Every program of the project writes its outputs (configs, vocabularies,
logs, predictions, converted weights, TFRecord metadata) through these helpers.
The temporary file gets the usual permissions (0666 minus the umask), not
`mkstemp`'s 0600, so a model server running as another user can read the result.

Example:
```python
write_json_atomic("runs/x/eval_results.json", {"accuracy": 0.8})
with atomic_path("runs/x/model.safetensors") as tmp:
    safetensors.numpy.save_file(tensors, tmp)
```
"""

import contextlib
import hashlib
import json
import os
import pathlib
import shutil
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`; renamed onto `path` if the block succeeds."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path, text):
    """Writes `text` (UTF-8) to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    return str(path)


def write_json_atomic(path, obj, indent=2):
    """Writes `obj` as JSON (with a final newline) to `path` atomically."""
    return write_text_atomic(path, json.dumps(obj, indent=indent) + "\n")


def copy_file_atomic(src, dst):
    """Copies `src` to `dst` atomically."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return str(dst)


def sha256_file(path):
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_jsonl(path):
    """The JSON objects of a .jsonl file, one per non-empty line; [] if it does not exist."""
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl_atomic(path, records):
    """Writes `records` as a .jsonl file (one JSON object per line), atomically."""
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in records))
