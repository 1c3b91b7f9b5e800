"""spanbert_tf/programs/registry.py lists every program, and each listed one is where it says."""

import ast
import importlib.util
import pathlib

from spanbert_tf.programs.registry import MODULE_PROGRAMS, ROOT_PROGRAMS

REPO = pathlib.Path(__file__).resolve().parents[2]


def _has_main_guard(path):
    return any(isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)
               for node in ast.parse(path.read_text()).body)


def test_every_root_program_is_a_shim_of_a_package_program():
    shims = sorted(p.stem for p in REPO.glob("*.py") if p.name != "setup.py")
    assert shims == sorted(ROOT_PROGRAMS)
    for name in ROOT_PROGRAMS:
        shim = (REPO / f"{name}.py").read_text()
        assert f"from spanbert_tf.programs.{name} import run" in shim
        assert len(shim.splitlines()) <= 8, f"{name}.py is a shim: the program lives in the package"
        program = REPO / "spanbert_tf" / "programs" / f"{name}.py"
        assert "def run(" in program.read_text() and _has_main_guard(program)


def test_every_package_program_is_listed():
    """A module with a `__main__` guard is a program: it is in the registry."""
    found = set()
    for path in (REPO / "spanbert_tf").rglob("*.py"):
        if "__pycache__" in path.parts or not _has_main_guard(path):
            continue
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        found.add(module)
    listed = {f"spanbert_tf.programs.{name}" for name in ROOT_PROGRAMS} | set(MODULE_PROGRAMS)
    assert found == listed
    for module in MODULE_PROGRAMS:
        assert importlib.util.find_spec(module) is not None, module
