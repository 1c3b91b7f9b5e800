"""The docs cannot drift from the code (README.md and docs/*.md, built by mkdocs.yml).

1. Every `python PROGRAM.py --flag ...` / `python -m spanbert_tf.X --flag ...` command in the
   docs (in code blocks or inline, with `\\` line continuations) uses only flags that program
   defines. A program's flags are read in a fresh subprocess, once per program: its module is
   imported (a `python -m` module by its dotted name, whatever package holds it at test time; a
   `.py` path from the repository root) and absl's registrations are read, or, for an argparse
   program, the parser its `main` builds.
2. Every Python snippet marked runnable (the line `<!-- runnable -->` right before a fenced
   ```python block) runs in a subprocess and exits 0.
3. `mkdocs build --strict` succeeds (a broken link or anchor, or a page missing from the nav,
   fails it: see mkdocs.yml's `validation`).
"""

import functools
import importlib.util
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
README = REPO_ROOT / "README.md"
DOCS_DIR = REPO_ROOT / "docs"
README_MAX_LINES = 250
RUNNABLE_MARKER = "<!-- runnable -->"

# `python X.py ...` or `python -m X ...` (python3 too), then the rest of the command.
_COMMAND = re.compile(r"(?<![\w/.-])python3?\s+(?:-m\s+(?P<module>[\w.]+)|(?P<path>[\w./-]+\.py))"
                      r"(?P<rest>[^\n`]*)")
_FLAG_TOKEN = re.compile(r"^\[?--(?P<name>[A-Za-z][\w-]*)")
_RUNNABLE = re.compile(re.escape(RUNNABLE_MARKER) + r"[ \t]*\n```python[ \t]*\n(?P<code>.*?)\n```",
                       re.DOTALL)

# Run in a fresh interpreter: imports one program and prints its flags as JSON.
_FLAG_READER = r"""
import argparse, importlib, importlib.util, json, sys
from absl import app, flags, logging  # absl's own flags (--help, --verbosity, ...) are allowed
builtin = set(flags.FLAGS)
target, kind = sys.argv[1], sys.argv[2]
parsers = []

class _Captured(Exception):
    pass

def _capture(self, args=None, namespace=None):
    parsers.append(self)
    raise _Captured()

argparse.ArgumentParser.parse_known_args = _capture
if kind == "module":
    module = importlib.import_module(target)
else:
    spec = importlib.util.spec_from_file_location("_documented_program", target)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
own = set(flags.FLAGS) - builtin
if own:
    names = own | builtin
    booleans = {n for n in names if flags.FLAGS[n].boolean}
    style = "absl"
else:
    sys.argv = [target]
    try:
        module.main([])
    except _Captured:
        pass
    except TypeError:
        try:
            module.main()
        except _Captured:
            pass
    if not parsers:
        sys.exit("defines no absl flags and builds no argparse parser in main()")
    names = {o[2:] for p in parsers for o in p._option_string_actions if o.startswith("--")}
    booleans = set()
    style = "argparse"
print(json.dumps({"flags": sorted(names), "booleans": sorted(booleans), "style": style}))
"""


def doc_files():
    """README.md and every page under docs/."""
    return [README] + sorted(DOCS_DIR.glob("*.md"))


def join_continuations(text):
    """Shell line continuations (a backslash at the end of a line) joined into one line."""
    return re.sub(r"\\\n", "", text)


def documented_commands(text):
    """(program, flag names) for each python command in markdown `text`: program is
    ("module", "spanbert_tf.x") or ("path", "x.py"); flags as written, without `--` / `=...`."""
    commands = []
    for match in _COMMAND.finditer(join_continuations(text)):
        if match["module"] is not None:
            if not match["module"].startswith("spanbert_tf"):
                continue  # python -m pytest / venv / pip: not this project's programs
            program = ("module", match["module"])
        else:
            program = ("path", match["path"])
        rest = match["rest"]
        try:
            lexer = shlex.shlex(rest, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            lexer.commenters = "#"
            tokens = list(lexer)
        except ValueError:  # an unbalanced quote in prose: plain words are enough
            tokens = rest.split()
        names = []
        for token in tokens:
            if token and set(token) <= set("();<>|&"):
                break  # the command ends at ; && | ( ) redirections
            flag = _FLAG_TOKEN.match(token)
            if flag:
                names.append(flag["name"])
        commands.append((program, names))
    return commands


@functools.lru_cache(maxsize=None)
def program_flags(program):
    """The flags `program` accepts, read once per program in a fresh subprocess."""
    kind, target = program
    if kind == "path":
        path = REPO_ROOT / target
        if not path.is_file():
            raise AssertionError(f"the docs run `python {target}`, which does not exist")
        target = str(path)
    elif importlib.util.find_spec(target) is None:
        raise AssertionError(f"the docs run `python -m {target}`, which is not importable")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", _FLAG_READER, target, kind],
                            capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"cannot read the flags of {program[1]}: "
                             f"{result.stderr.strip().splitlines()[-1:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def unknown_flags(text):
    """'program: --flag' for each flag in `text`'s commands that its program does not define."""
    problems = []
    for program, names in documented_commands(text):
        known = program_flags(program)
        allowed = set(known["flags"]) | {"no" + n for n in known["booleans"]}
        for name in names:
            if name not in allowed:
                problems.append(f"{program[1]}: --{name} (not one of its {known['style']} flags)")
    return problems


def runnable_snippets(text):
    """The code of each fenced python block right after a `<!-- runnable -->` line."""
    return [m["code"] for m in _RUNNABLE.finditer(text)]


def test_readme_is_short_and_keeps_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    assert "make demo" in text and "make test" in text  # .ci/run calls `make test`


def test_readme_links_point_to_files_that_exist():
    """README.md is outside the MkDocs build, so its relative links are checked here."""
    text = README.read_text(encoding="utf-8")
    targets = [m[1] for m in re.finditer(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
               if not re.match(r"[a-z]+://", m[1])]
    assert any(t.startswith("docs/") for t in targets)
    missing = [t for t in targets if not (REPO_ROOT / t).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_every_documented_flag_exists():
    problems = []
    count = 0
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        count += len(documented_commands(text))
        problems += [f"{path.relative_to(REPO_ROOT)}: {p}" for p in unknown_flags(text)]
    assert count >= 30, f"only {count} commands found in the docs: is the extractor broken?"
    assert not problems, "\n".join(problems)


def test_a_flag_that_does_not_exist_is_reported():
    text = ("Run:\n\n```bash\npython run_pretraining.py --model_dir=runs/x \\\n"
            "    --no_such_flag=1 --nojit_compile   # --ignored_comment\n```\n"
            "and `python -m spanbert_tf.tasks.coref.stats --conll=x --bogus` inline.\n")
    assert documented_commands(text) == [
        (("path", "run_pretraining.py"), ["model_dir", "no_such_flag", "nojit_compile"]),
        (("module", "spanbert_tf.tasks.coref.stats"), ["conll", "bogus"]),
    ]
    assert unknown_flags(text) == [
        "run_pretraining.py: --no_such_flag (not one of its absl flags)",
        "spanbert_tf.tasks.coref.stats: --bogus (not one of its argparse flags)",
    ]


def test_quoted_values_and_shell_operators_end_flag_reading():
    text = ('python create_pretraining_data.py --runner=beam \\\n'
            '  --beam_pipeline_options="--runner=DataflowRunner,\\\n--project=P" && ls --all\n')
    assert documented_commands(text) == [
        (("path", "create_pretraining_data.py"), ["runner", "beam_pipeline_options"])]


def test_runnable_snippets_run():
    snippets = [(path, code) for path in doc_files()
                for code in runnable_snippets(path.read_text(encoding="utf-8"))]
    assert snippets, f"no snippet marked {RUNNABLE_MARKER} in the docs"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    for path, code in snippets:
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                cwd=REPO_ROOT, env=env, timeout=300)
        assert result.returncode == 0, (
            f"{path.relative_to(REPO_ROOT)}: a runnable snippet failed:\n{code}\n{result.stderr}")


def test_the_runnable_marker_is_found_and_a_failing_snippet_fails(tmp_path):
    text = f"{RUNNABLE_MARKER}\n```python\nraise SystemExit(3)\n```\n\n```python\nnot run\n```\n"
    assert runnable_snippets(text) == ["raise SystemExit(3)"]
    result = subprocess.run([sys.executable, "-c", runnable_snippets(text)[0]])
    assert result.returncode == 3


def test_mkdocs_build_is_strict_clean(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "index.html").is_file()


def test_mkdocs_build_fails_on_a_broken_link(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [missing](missing.md#nowhere).\n")
    (docs / "orphan.md").write_text("# Not in the nav\n")
    config = (REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    config = re.sub(r"(?ms)^nav:\n(?:  - .*\n)+", "nav:\n  - Home: index.md\n", config)
    config = config.replace("docs_dir: docs", f"docs_dir: {docs}")
    (tmp_path / "mkdocs.yml").write_text(config)
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(tmp_path / "mkdocs.yml"),
         "--site-dir", str(tmp_path / "site")], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "missing.md" in result.stderr and "orphan.md" in result.stderr
