"""The plain-clone guard of tests/data_root.py: a test that would fail on a clone without
../shared fails beside it too, and tests reach the shared data only through the fixture."""

import ast
import pathlib
import tarfile
import threading

import pytest

from tests import data_root

TESTS = pathlib.Path(__file__).resolve().parent


def _strings(path):
    """The string constants of a Python file, docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings:
            yield node.lineno, node.value


def test_tests_reach_the_shared_data_only_through_the_fixture():
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        if path.name == "data_root.py" or path == pathlib.Path(__file__):
            continue
        for line, value in _strings(path):
            if "SPANBERT_SHARED_DATA" in value or "shared/data" in value or value == "shared":
                offenders.append(f"{path.relative_to(TESTS)}:{line}: {value!r}")
    assert not offenders, "read ../shared through the shared_data fixture: " + "; ".join(offenders)


@pytest.fixture
def layout(tmp_path, monkeypatch):
    """A fake ../shared/data and a fake committed tests/data_files beside it."""
    shared, committed = tmp_path / "shared", tmp_path / "committed"
    for root in (shared, committed):
        (root / "corpus").mkdir(parents=True)
    monkeypatch.setattr(data_root, "SHARED_DATA", shared)
    monkeypatch.setattr(data_root, "DATA_FILES", committed)
    monkeypatch.setattr(data_root, "RESOURCE_ALIASES", {})
    monkeypatch.setattr(data_root, "ARCHIVES", {})
    monkeypatch.setattr(data_root, "STANDALONE", False)
    monkeypatch.setenv("SPANBERT_TEST_DATA_CACHE", str(tmp_path / "cache"))
    data_root.unpacked_archive.cache_clear()
    return shared, committed


def _failure(func):
    with pytest.raises(pytest.fail.Exception) as info:
        func()
    return str(info.value)


def test_a_file_only_shared_has_fails_the_test(layout):
    shared, _ = layout
    (shared / "corpus" / "only_here.txt").write_text("text")
    message = _failure(lambda: data_root.DataRoot() / "corpus/only_here.txt")
    assert "plain-clone guard: corpus/only_here.txt is only in" in message


def test_a_committed_copy_with_other_bytes_fails_the_test(layout):
    shared, committed = layout
    (shared / "corpus" / "a.txt").write_text("the full file")
    (committed / "corpus" / "a.txt").write_text("a subset")
    message = _failure(lambda: data_root.DataRoot() / "corpus/a.txt")
    assert "differs from" in message and "corpus/a.txt" in message


def test_a_folder_is_compared_file_by_file(layout):
    shared, committed = layout
    for root in (shared, committed):
        (root / "corpus" / "a.txt").write_text("same")
    folder = data_root.DataRoot() / "corpus"
    assert pathlib.Path(folder.__fspath__()) == shared / "corpus"   # identical: allowed
    (shared / "corpus" / "b.txt").write_text("only beside the checkout")
    data_root._tree_digest.cache_clear()
    assert "differs from" in _failure(lambda: (data_root.DataRoot() / "corpus").__fspath__())


def test_identical_copies_pass_and_glue_is_exempt(layout):
    shared, committed = layout
    for root in (shared, committed):
        (root / "corpus" / "same.txt").write_text("same bytes")
    assert data_root.DataRoot() / "corpus/same.txt" == shared / "corpus" / "same.txt"
    (shared / "glue" / "RTE").mkdir(parents=True)
    (shared / "glue" / "RTE" / "dev.tsv").write_text("a\tb\n")
    assert data_root.DataRoot() / "glue/RTE/dev.tsv" == shared / "glue" / "RTE" / "dev.tsv"


def test_standalone_hides_the_shared_data(layout, monkeypatch):
    shared, committed = layout
    (shared / "corpus" / "a.txt").write_text("shared")
    (committed / "corpus" / "a.txt").write_text("committed")
    monkeypatch.setattr(data_root, "STANDALONE", True)
    assert data_root.DataRoot() / "corpus/a.txt" == committed / "corpus" / "a.txt"
    (shared / "corpus" / "b.txt").write_text("shared only")
    assert "test data missing: corpus/b.txt" in _failure(
        lambda: (data_root.DataRoot() / "corpus/b.txt").__fspath__())


def test_a_committed_archive_serves_its_folder_once_unpacked(layout, tmp_path, monkeypatch):
    shared, _ = layout
    source = tmp_path / "src" / "coref" / "set"
    source.mkdir(parents=True)
    (source / "doc.conll").write_text("#begin document (d); part 0\n")
    archive = tmp_path / "set.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(source, arcname="coref/set")
    monkeypatch.setattr(data_root, "ARCHIVES", {"coref/set": archive})
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        data_root.unpacked_archive(archive))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and (results[0] / "coref/set/doc.conll").is_file()
    assert not [p for p in results[0].parent.iterdir() if ".tmp-" in p.name]
    # Beside a shared copy with the same bytes the guard is satisfied; with other bytes not.
    (shared / "coref" / "set").mkdir(parents=True)
    (shared / "coref" / "set" / "doc.conll").write_text("#begin document (d); part 0\n")
    assert data_root.DataRoot() / "coref/set/doc.conll" == shared / "coref/set/doc.conll"
    (shared / "coref" / "set" / "doc.conll").write_text("other")
    data_root._sha256.cache_clear()
    data_root._tree_digest.cache_clear()
    assert "differs from" in _failure(lambda: data_root.DataRoot() / "coref/set/doc.conll")


def test_the_committed_litbank_archive_is_the_whole_corpus(shared_data):
    """100 documents and the 80/10/10 split of fold 0, whatever lies beside the checkout."""
    folder = data_root.unpacked_archive(data_root.ARCHIVES["coref/litbank"]) / "coref/litbank"
    assert len(list((folder / "conll").glob("*.conll"))) == 100
    sizes = [len((folder / "splits" / f"{s}.txt").read_text().split()) for s in
             ("train", "dev", "test")]
    assert sizes == [80, 10, 10]
