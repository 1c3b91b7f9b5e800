"""Shared test fixtures: the real data (`shared_data`, see tests/data_root.py for where each
path is found and for the plain-clone guard) and the pytest-xdist scheduling of `make test`."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from tests.data_root import RESOURCES, DataRoot  # noqa: E402


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
