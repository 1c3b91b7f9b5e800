"""Shared test fixtures: where the real data is found.

`shared_data / "squad/..."` resolves a data path in this order:
1. ../shared/data beside the checkout (CI lays a copy there), or $SPANBERT_SHARED_DATA;
2. the small redistributable copies committed in tests/data_files/ (SQuAD subset, LitBank
   documents, vocabularies, sample corpora; attribution and licences in its ATTRIBUTION.md)
   and the embedded defaults in spanbert_tf/resources/;
3. GLUE files (whose terms forbid redistribution) from the fetch cache
   (`python -m spanbert_tf.tasks.classification.fetch_glue`).
A path found nowhere skips the test with one line naming what is missing and how to get it.
"""

import importlib.util
import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
# The real data lies in ../shared/data beside the checkout (CI lays a copy there);
# SPANBERT_SHARED_DATA points elsewhere.
SHARED_DATA = pathlib.Path(
    os.environ.get("SPANBERT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
RESOURCES = REPO_ROOT / "spanbert_tf" / "resources"
DATA_FILES = REPO_ROOT / "tests" / "data_files"
# Files of the shared layout that live under another name in the package resources.
_RESOURCE_ALIASES = {
    "vocab/bert-base-cased-vocab.txt": RESOURCES / "bert-base-cased-vocab.txt",
    "corpus/wikitext-2-raw-test.txt": RESOURCES / "wikitext-2-raw-test.txt",
}


def _glue_cache():
    from spanbert_tf.tasks.classification.fetch_glue import glue_cache_dir
    return pathlib.Path(glue_cache_dir())


class DataRoot:
    """`root / "a/b"` -> the first existing copy of data path a/b (see the module docstring)."""

    def __init__(self, parts=()):
        self.parts = tuple(parts)

    def __truediv__(self, other):
        return self._resolve(self.parts + tuple(pathlib.PurePosixPath(str(other)).parts))

    def _candidates(self, rel):
        key = "/".join(rel)
        yield SHARED_DATA.joinpath(*rel)
        if key in _RESOURCE_ALIASES:
            yield _RESOURCE_ALIASES[key]
        yield DATA_FILES.joinpath(*rel)
        if rel and rel[0] == "glue":
            cache = _glue_cache().joinpath(*rel[1:])
            yield cache
            # The shared copy holds a re-split of the official train file; the official
            # train.tsv (a superset) serves the tests that read the re-split.
            if rel[-1] == "train_resplit_part1.tsv":
                yield cache.with_name("train.tsv")

    def _resolve(self, rel):
        for path in self._candidates(rel):
            if path.is_file():
                return path
        # A folder (or a missing file) stays a DataRoot: a folder's files may lie in
        # different places; used as a path it becomes the first existing copy.
        return DataRoot(rel)

    def _path(self):
        for path in self._candidates(self.parts):
            if path.exists():
                return path
        key = "/".join(self.parts)
        if self.parts and self.parts[0] == "glue":
            pytest.skip(f"GLUE data missing: {key} (not in {SHARED_DATA} nor {_glue_cache()}; "
                        "run `python -m spanbert_tf.tasks.classification.fetch_glue`)")
        pytest.fail(f"test data missing: {key} (not in {SHARED_DATA} nor {DATA_FILES})")

    def __fspath__(self):
        return str(self._path())

    def __str__(self):
        return str(SHARED_DATA) if not self.parts else self.__fspath__()

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._path(), name)


@pytest.fixture(scope="session")
def shared_data():
    return DataRoot()


@pytest.fixture(scope="session")
def cased_vocab():
    return str(RESOURCES / "bert-base-cased-vocab.txt")


@pytest.fixture(scope="session")
def wikitext_corpus():
    return str(RESOURCES / "wikitext-2-raw-test.txt")


# Directories whose test files share expensive session-scoped fixtures (exported SavedModels,
# converted checkpoints): under pytest-xdist they run in one worker, built once.
_SHARED_FIXTURE_DIRS = ("export", "presets")


def xdist_work_unit(nodeid):
    """The unit of work a pytest-xdist worker takes whole: the test's file (its module-scoped
    fixtures are built once), or its directory for those in `_SHARED_FIXTURE_DIRS`."""
    path = nodeid.split("::", 1)[0]
    parts = path.split("/")
    if len(parts) > 2 and parts[0] == "tests" and parts[1] in _SHARED_FIXTURE_DIRS:
        return "/".join(parts[:2])
    return path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`make test` runs the suite on pytest-xdist workers, scheduled by `xdist_work_unit`.

    (Not `--dist loadgroup` with `xdist_group` marks: pytest-xdist 3.8 applies those by
    rewriting `item._nodeid`, which pytest >= 9.2 no longer reads, so every test became
    its own unit and module fixtures were built once per worker that ran one of its tests.)
    """
    from xdist.scheduler import LoadScopeScheduling

    class FileOrDirectoryScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return xdist_work_unit(nodeid)

    return FileOrDirectoryScheduling(config, log)


def _check_png(path, size=None, min_ink=0.01):
    """Looks at a PNG the code drew: a real PNG file of `size` (width, height) pixels,
    not blank (at least `min_ink` of its pixels differ from the background, the corner
    pixel's colour). Returns (width, height)."""
    from PIL import Image

    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    if size is not None:
        assert (pixels.shape[1], pixels.shape[0]) == tuple(size), pixels.shape
    background = pixels[0, 0]
    ink = np.any(np.abs(pixels - background) > 16, axis=-1).mean()
    assert ink >= min_ink, f"{path}: {ink:.4f} of the pixels drawn (blank picture?)"
    assert pixels.std() > 5.0, f"{path}: pixel std {pixels.std():.2f} (blank picture?)"
    return pixels.shape[1], pixels.shape[0]


def _check_plot_written(path, output, size=None):
    """A program's picture: with matplotlib a drawn PNG at `path` (`_check_png`), without
    it none and the one line saying how to get it in the program's `output`."""
    if importlib.util.find_spec("matplotlib") is None:
        assert not os.path.exists(path)
        assert 'no plot written: matplotlib is not installed (get it with `pip install -e ' \
               '".[plots]"`)' in output
        return None
    return _check_png(path, size)


@pytest.fixture(scope="session")
def check_png():
    """`check_png(path, size=(w, h))`: asserts `path` is a drawn, non-blank PNG."""
    return _check_png


@pytest.fixture(scope="session")
def check_plot_written():
    """`check_plot_written(path, program_output)`: see `_check_plot_written`."""
    return _check_plot_written
