"""Where the tests' real data is found, and the plain-clone guard (used by tests/conftest.py).

`DataRoot() / "squad/..."` resolves a data path in this order:
1. ../shared/data beside the checkout (CI lays a copy there), or $SPANBERT_SHARED_DATA;
   hidden when SPANBERT_TEST_STANDALONE=1 (`make test-standalone`: what a plain clone sees);
2. the small redistributable copies committed in tests/data_files/ (SQuAD subset, vocabularies,
   sample corpora, and the whole of LitBank coreference and of LitBank entities as xz archives, unpacked once into
   the cache; attribution and licences in its ATTRIBUTION.md) and the embedded defaults in
   spanbert_tf/resources/;
3. GLUE files (whose terms forbid redistribution) from the fetch cache
   (`python -m spanbert_tf.tasks.classification.fetch_glue`).
A GLUE path found nowhere skips the test with one line naming what is missing and the command
that fetches it; any other missing path fails the test naming it.

The plain-clone guard: CI runs beside ../shared/data, so a test reading a file that only
../shared has would pass there and fail on a clone with nothing beside it. So every path served
from ../shared/data is checked against what a plain clone would read in its place: where the
clone has no copy, or one with other bytes (a folder: other files or bytes), the test FAILS with
one line saying so. GLUE is exempt (a plain clone fetches it or skips). Tests reach the shared
data only through this module (tests/test_data_policy.py enforces that).
"""

import functools
import hashlib
import os
import pathlib
import shutil
import tarfile
import tempfile

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
STANDALONE = os.environ.get("SPANBERT_TEST_STANDALONE", "") not in ("", "0")
SHARED_DATA = pathlib.Path(
    os.environ.get("SPANBERT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
RESOURCES = REPO_ROOT / "spanbert_tf" / "resources"
DATA_FILES = REPO_ROOT / "tests" / "data_files"
# Files of the shared layout that live under another name in the package resources.
RESOURCE_ALIASES = {
    "vocab/bert-base-cased-vocab.txt": RESOURCES / "bert-base-cased-vocab.txt",
    "corpus/wikitext-2-raw-test.txt": RESOURCES / "wikitext-2-raw-test.txt",
}
# Committed archives of a whole data folder (members named from the data root, as in
# ../shared/data): {folder: archive}. Unpacked on first use.
ARCHIVES = {
    "coref/litbank": DATA_FILES / "coref" / "litbank-coref.tar.xz",
    "ner/litbank": DATA_FILES / "ner" / "litbank-ner.tar.xz",
}


def glue_cache():
    from spanbert_tf.tasks.classification.fetch_glue import glue_cache_dir
    return pathlib.Path(glue_cache_dir())


def data_cache_dir():
    """Where committed archives are unpacked ($SPANBERT_TEST_DATA_CACHE, else the user cache)."""
    if os.environ.get("SPANBERT_TEST_DATA_CACHE"):
        return pathlib.Path(os.environ["SPANBERT_TEST_DATA_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "spanbert_tf" / "test-data"


@functools.lru_cache(maxsize=None)
def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def unpacked_archive(archive):
    """The folder `archive` (a committed .tar.xz) is unpacked into, unpacking it if needed.

    The folder is named by the archive's digest, so a changed archive is unpacked anew; it is
    unpacked into a temporary folder and renamed, so concurrent test workers never see half
    of it (the loser of a race removes its copy)."""
    archive = pathlib.Path(archive)
    cache = data_cache_dir()
    target = cache / f"{archive.name.split('.')[0]}-{_sha256(archive)[:16]}"
    if not target.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        staging = tempfile.mkdtemp(dir=cache, prefix=f".{target.name}.tmp-")
        try:
            with tarfile.open(archive, "r:xz") as tar:
                tar.extractall(staging, filter="data")
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _archive_copy(rel):
    key = "/".join(rel)
    for folder, archive in ARCHIVES.items():
        if key == folder or key.startswith(folder + "/"):
            return unpacked_archive(archive).joinpath(*rel)
    return None


def clone_candidates(rel):
    """The places a plain clone (no ../shared) looks for data path `rel`, in order."""
    key = "/".join(rel)
    if key in RESOURCE_ALIASES:
        yield RESOURCE_ALIASES[key]
    yield DATA_FILES.joinpath(*rel)
    archived = _archive_copy(rel)
    if archived is not None:
        yield archived
    if rel and rel[0] == "glue":
        cache = glue_cache().joinpath(*rel[1:])
        yield cache
        # The shared copy holds a re-split of the official train file; the official
        # train.tsv (a superset) serves the tests that read the re-split.
        if rel[-1] == "train_resplit_part1.tsv":
            yield cache.with_name("train.tsv")


def candidates(rel):
    if not STANDALONE:
        yield SHARED_DATA.joinpath(*rel)
    yield from clone_candidates(rel)


@functools.lru_cache(maxsize=None)
def _tree_digest(path):
    """{relative file name: sha256} of a file or of every file under a folder."""
    path = pathlib.Path(path)
    if path.is_file():
        return (("", _sha256(path)),)
    return tuple(sorted((str(p.relative_to(path)), _sha256(p))
                        for p in path.rglob("*") if p.is_file()))


def plain_clone_problem(rel, found):
    """Why a plain clone would not read what `found` (served from ../shared) holds, or None."""
    if STANDALONE or (found != SHARED_DATA and SHARED_DATA not in found.parents):
        return None
    key = "/".join(rel) or "."
    if rel and rel[0] == "glue":
        return None
    for other in clone_candidates(rel):
        if other.exists():
            if other.is_file() != found.is_file():
                return f"{key}: a plain clone finds {other}, not the same kind of path"
            if _tree_digest(other) != _tree_digest(found):
                return (f"{key}: the copy a plain clone reads ({other}) differs from "
                        f"{found}")
            return None
    return (f"{key} is only in {SHARED_DATA}: a plain clone has no copy (commit a small copy "
            "with its licence in tests/data_files, or fetch it and skip when it is missing)")


def _guarded(rel, found):
    problem = plain_clone_problem(rel, found)
    if problem:
        pytest.fail(f"plain-clone guard: {problem}", pytrace=False)
    return found


class DataRoot:
    """`root / "a/b"` -> the first existing copy of data path a/b (see the module docstring)."""

    def __init__(self, parts=()):
        self.parts = tuple(parts)

    def __truediv__(self, other):
        return self._resolve(self.parts + tuple(pathlib.PurePosixPath(str(other)).parts))

    def _resolve(self, rel):
        for path in candidates(rel):
            if path.is_file():
                return _guarded(rel, path)
        # A folder (or a missing file) stays a DataRoot: a folder's files may lie in
        # different places; used as a path it becomes the first existing copy.
        return DataRoot(rel)

    def _path(self):
        for path in candidates(self.parts):
            if path.exists():
                return _guarded(self.parts, path)
        key = "/".join(self.parts)
        if self.parts and self.parts[0] == "glue":
            pytest.skip(f"GLUE data missing: {key} (not in {SHARED_DATA} nor {glue_cache()}; "
                        "run `python -m spanbert_tf.tasks.classification.fetch_glue`)")
        pytest.fail(f"test data missing: {key} (not in {SHARED_DATA} nor {DATA_FILES})")

    def __fspath__(self):
        return str(self._path())

    def __str__(self):
        return self.__fspath__()

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._path(), name)
