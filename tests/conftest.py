"""Shared test fixtures: the real data (`shared_data`, see tests/data_root.py for where each
path is found and for the plain-clone guard) and the pytest-xdist scheduling of `make test`."""

import importlib.util
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from tests import background_gc  # noqa: E402
from tests.data_root import RESOURCES, DataRoot  # noqa: E402


def pytest_collection_finish(session):
    """Test modules imported (TensorFlow with them): full collections go to a background
    thread (see tests/background_gc.py: destroying a tf.data iterator can wait a minute)."""
    if background_gc.enabled():
        background_gc.start()


def pytest_unconfigure(config):
    background_gc.stop()


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
_SHARED_FIXTURE_DIRS = ("convert", "export", "presets")


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

    # pytest-xdist >= 3.6 reorders loadscope units by their number of tests (most first),
    # which undid `LONGEST_UNITS`: one-test units of 3 minutes (tests/tasks/coref/
    # test_export.py) ran last while the other worker sat idle. Keep the collection order.
    config.option.loadscopereorder = False

    class FileOrDirectoryScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return xdist_work_unit(nodeid)

    return FileOrDirectoryScheduling(config, log)


# The longest work units (seconds of one 2-core `make test` run, 2026-12-07 evening,
# `--junitxml` times summed per unit), which the workers take first: longest-first keeps one
# worker from starting a 2-minute file when the other is about done. Only the order changes;
# a unit missing here runs after these, as collected.
LONGEST_UNITS = (
    "tests/tasks/pretraining/test_run.py",          # 158 s
    "tests/presets",                                # 143 s
    "tests/training/test_trainer.py",               # 92 s
    "tests/tasks/pretraining/test_run_jax.py",      # 73 s
    "tests/tasks/squad/test_run.py",                # 72 s
    "tests/export",                                 # 69 s
    "tests/tasks/coref/test_run.py",                # 60 s
    "tests/tasks/coref/test_export.py",             # 45 s
    "tests/tasks/coref/test_backend_parity.py",     # 44 s
    "tests/test_create_pretraining_data.py",        # 29 s
    "tests/data/input/test_input_pipeline_dynamic.py",  # 26 s
    "tests/modeling/test_backend_parity.py",        # 25 s
    "tests/tasks/classification/test_export.py",    # 24 s
    "tests/tasks/ner/test_run.py",                  # 23 s
    "tests/tasks/classification/test_run.py",       # 22 s
    "tests/data/masking/test_dynamic_masking.py",   # 22 s
    "tests/bench/test_pretraining_throughput.py",   # 21 s
    "tests/tasks/ner/test_preset.py",               # 19 s
    "tests/data/masking/test_materialize.py",       # 19 s
    "tests/tasks/coref/test_model.py",              # 18 s
)


def pytest_collection_modifyitems(session, config, items):
    rank = {unit: i for i, unit in enumerate(LONGEST_UNITS)}
    order = {id(item): n for n, item in enumerate(items)}
    items.sort(key=lambda item: (rank.get(xdist_work_unit(item.nodeid), len(rank)),
                                 order[id(item)]))


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


@pytest.fixture(scope="session")
def notf_python(tmp_path_factory):
    """The python of a venv in which TensorFlow cannot be imported (tests/notf_venv.py)."""
    from tests.notf_venv import make_notf_venv

    return make_notf_venv(str(tmp_path_factory.mktemp("notf") / "venv"))


@pytest.fixture(scope="session")
def unmasked_pair(tmp_path_factory, wikitext_corpus):
    """The corpus unmasked (L 64, 3 shards, unigram counts) as TFRecords and as .npy blocks:
    (tfrecord dir, block dir)."""
    from spanbert_tf.data.writing import pipeline

    out = tmp_path_factory.mktemp("unmasked")
    for fmt in ("tfrecord", "npy"):
        pipeline.create_pretraining_data(pipeline.PretrainingDataConfig(
            input_file=wikitext_corpus, output_dir=str(out / fmt), masking="none",
            output_format=fmt, max_seq_length=64, max_predictions_per_seq=10, num_shards=3,
            random_token_source="unigram", num_workers=1, progress=False))
    return out / "tfrecord", out / "npy"
