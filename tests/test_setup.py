"""setup.py: `pip install -e .` builds its editable wheel without setuptools warnings.

pip hides the build backend's output unless asked (`pip install -e . -v`), so this test
calls the backend itself (PEP 660 `build_editable`, what pip runs in its build
environment) and records every warning it emits.
"""

import json
import pathlib
import subprocess
import sys
import zipfile

REPO = pathlib.Path(__file__).resolve().parent.parent
BUILD_EDITABLE = """
import json, sys, warnings
from setuptools import build_meta
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    name = build_meta.build_editable(sys.argv[1])
print(json.dumps({"wheel": name, "warnings": [
    f"{w.category.__module__}.{w.category.__name__}: {str(w.message)[:300]}"
    for w in caught]}))
"""


def test_editable_wheel_builds_without_setuptools_warnings(tmp_path):
    proc = subprocess.run([sys.executable, "-c", BUILD_EDITABLE, str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    setuptools_warnings = [w for w in result["warnings"] if w.startswith(("setuptools", "distutils"))]
    assert setuptools_warnings == []
    assert "!!" not in proc.stderr, proc.stderr[-2000:]
    # The chosen strategy: a .pth file putting the repository root on sys.path (the
    # packages and the top-level programs live there), not a meta path finder.
    with zipfile.ZipFile(tmp_path / result["wheel"]) as wheel:
        names = wheel.namelist()
        pth = [n for n in names if n.endswith(".pth")]
        assert len(pth) == 1, names
        assert wheel.read(pth[0]).decode().split() == [str(REPO)]
        assert not [n for n in names if n.endswith("_finder.py")], names

    # Console scripts come from inside the package, one per program of the registry, and
    # no root program is installed as a top-level module.
    from spanbert_tf.programs.registry import ROOT_PROGRAMS

    with zipfile.ZipFile(tmp_path / result["wheel"]) as wheel:
        entry_points = next(wheel.read(n).decode() for n in names if n.endswith("entry_points.txt"))
        top_level = [n for n in names if "/" not in n and n.endswith(".py")]
    scripts = dict(line.split(" = ") for line in entry_points.splitlines() if " = " in line)
    assert scripts == {script: f"spanbert_tf.programs.{module}:run"
                       for module, (script, _) in ROOT_PROGRAMS.items()}
    assert top_level == [], top_level
