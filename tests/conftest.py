"""Shared test fixtures: paths of the real data in ../shared/data and the embedded defaults."""

import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
# The real data lies in ../shared/data beside the checkout (CI lays a copy there);
# SPANBERT_SHARED_DATA points elsewhere.
SHARED_DATA = pathlib.Path(
    os.environ.get("SPANBERT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
RESOURCES = REPO_ROOT / "spanbert_tf" / "resources"


@pytest.fixture(scope="session")
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real test data not found at {SHARED_DATA} (set SPANBERT_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def cased_vocab():
    return str(RESOURCES / "bert-base-cased-vocab.txt")


@pytest.fixture(scope="session")
def wikitext_corpus():
    return str(RESOURCES / "wikitext-2-raw-test.txt")
