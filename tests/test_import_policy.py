"""The import rules of the code base, checked on its source (no module is imported).

1. Imports live at the top of a module. The one exception is start-up time: a module that
   does not need TensorFlow when it is imported (a "light" module: the programs' front
   ends, the data writer, tokenization, the model-dir reader, ...) imports TensorFlow,
   Keras, keras-hub, tensorflow-text and the modules that import them ("heavy" modules)
   inside the functions that use them, so that `--help`, flag errors, the data workers and
   the TensorFlow-free JAX bench start in a second. Optional dependencies (torch,
   transformers, apache_beam, jax, scipy, ...) are imported where they are used, so a
   missing extra fails only the feature that needs it.
2. No import cycles between the package's modules (at module level).

A light module imported inside a function is a violation of rule 1; `ALLOWED` lists the
few kept on purpose, each with its reason.
"""

import ast
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]
HEAVY_PACKAGES = {"tensorflow", "tensorflow_text", "tensorflow_datasets", "keras", "keras_hub"}
OPTIONAL_PACKAGES = {"torch", "transformers", "apache_beam", "jax", "jaxlib", "scipy", "sklearn",
                     "safetensors", "huggingface_hub", "sentence_transformers", "psutil",
                     "matplotlib", "tensorboard"}
# Not checked: bench/ scripts run from a checkout without an install. They put the repository on
# sys.path and choose the Keras backend from their flags before importing the package (whose
# import sets the default backend), so their package imports are inside main() on purpose.
# (file, imported module) pairs imported inside a function on purpose (none today).
ALLOWED = set()


def _module_name(path):
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_modules():
    return {_module_name(p): p for p in (REPO / "spanbert_tf").rglob("*.py")}


def _imported_names(node):
    """Module names an import statement loads (`from a import b` may load module a.b)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.module is None or node.level:
        return []
    return [node.module] + [f"{node.module}.{a.name}" for a in node.names]


def _top_level_imports(path):
    """The modules imported at module level, also inside a `try:` (not under an `if`)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        for inner in ([node] if not isinstance(node, ast.Try) else node.body):
            if isinstance(inner, (ast.Import, ast.ImportFrom)):
                names.update(_imported_names(inner))
    return names


class ImportGraph:
    def __init__(self):
        self.modules = _package_modules()
        self.deps = {m: {d for d in _top_level_imports(p) if d in self.modules}
                     | self._parents(m) for m, p in self.modules.items()}
        self.external = {m: {d.split(".")[0] for d in _top_level_imports(p)}
                         for m, p in self.modules.items()}
        self._heavy = {}

    def _parents(self, module):
        parts = module.split(".")
        return {".".join(parts[:i]) for i in range(1, len(parts))} & set(self.modules)

    def is_heavy(self, name, packages=HEAVY_PACKAGES, _stack=()):
        """Whether importing `name` imports one of `packages` (TensorFlow, Keras, keras-hub)."""
        if name.split(".")[0] in packages:
            return True
        if name not in self.modules:
            return False
        key = (name, tuple(sorted(packages)))
        if key not in self._heavy:
            if name in _stack:
                return False
            self._heavy[key] = bool(self.external[name] & packages) or any(
                self.is_heavy(d, packages, _stack + (name,)) for d in self.deps[name])
        return self._heavy[key]

    def may_be_deferred(self, name):
        """Heavy, or needs an optional dependency (an extra that may not be installed)."""
        return self.is_heavy(name, HEAVY_PACKAGES | OPTIONAL_PACKAGES)

    def cycles(self):
        found, state = [], {}

        def visit(module, path):
            state[module] = "open"
            for dep in sorted(self.deps[module]):
                if dep in self._parents(module):
                    continue  # a package's __init__ runs first by definition
                if state.get(dep) == "open":
                    found.append(path[path.index(dep):] + [dep] if dep in path else [module, dep])
                elif dep not in state:
                    visit(dep, path + [dep])
            state[module] = "done"

        for module in sorted(self.modules):
            if module not in state:
                visit(module, [module])
        return found


def _function_local_imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    yield node.name, inner


def _sources():
    for pattern in ("spanbert_tf/**/*.py", "*.py"):
        yield from sorted(REPO.glob(pattern))


def test_function_local_imports_are_heavy_or_optional():
    graph = ImportGraph()
    violations = []
    for path in _sources():
        rel = str(path.relative_to(REPO))
        for function, node in _function_local_imports(path):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    continue
                loaded = [node.module]
                # `from pkg import module`: what matters is the module it loads.
                submodules = [f"{node.module}.{a.name}" for a in node.names
                              if f"{node.module}.{a.name}" in graph.modules]
                loaded = submodules or loaded
            else:
                loaded = [a.name for a in node.names]
            for name in loaded:
                if graph.may_be_deferred(name):
                    continue
                if (rel, name) in ALLOWED:
                    continue
                violations.append(f"{rel}:{node.lineno} in {function}(): {ast.unparse(node)}")
    assert not violations, ("import these at the top of the module (they do not import "
                            "TensorFlow):\n" + "\n".join(violations))


def test_no_import_cycles():
    assert ImportGraph().cycles() == []


def test_the_policy_sees_heavy_and_light_modules():
    graph = ImportGraph()
    # The checks above mean something only if the graph is right about these.
    assert graph.is_heavy("spanbert_tf.modeling.backbone")        # imports keras_hub
    assert graph.is_heavy("spanbert_tf.training.trainer")         # imports tensorflow
    assert not graph.is_heavy("spanbert_tf.tokenization")         # TF inside functions only
    assert not graph.is_heavy("spanbert_tf.tasks.squad.run")      # run_squad.py --help
    assert not graph.is_heavy("spanbert_tf.modeling.model_dir")
    assert "spanbert_tf.modeling.preset_dir" in graph.deps["spanbert_tf.modeling.model_dir"]
    assert graph.may_be_deferred("apache_beam") and graph.may_be_deferred("torch")
    assert graph.may_be_deferred("spanbert_tf.training.keras_fit")     # keras
    assert graph.may_be_deferred("spanbert_tf.data.writing.beam_pipeline")      # apache_beam
    assert not graph.may_be_deferred("spanbert_tf.data.writing.pipeline")


# 3. Every import points down. The layers of the house (docs/architecture.md shows the same
#    table): a module imports only from its own layer or below, at module level or inside a
#    function; a task never imports another task. The first prefix that matches names the layer.
LAYERS = (
    (0, ("spanbert_tf", "spanbert_tf.errors", "spanbert_tf.io_utils", "spanbert_tf.quiet",
         "spanbert_tf.tokenization", "spanbert_tf.keras_hub_hook", "spanbert_tf.cli",
         "spanbert_tf.plot", "spanbert_tf.plotting")),
    (1, ("spanbert_tf.data", "spanbert_tf.serving")),
    (2, ("spanbert_tf.modeling",)),
    (3, ("spanbert_tf.training",)),
    (4, ("spanbert_tf.convert", "spanbert_tf.presets")),
    (5, ("spanbert_tf.tasks",)),
    (6, ("spanbert_tf.programs", "spanbert_tf.hub")),
)
# Imports that still run up a floor or across tasks, each with its reason (none today: the last
# ones, presets/ -> tasks/, went when the task presets moved beside their tasks). The test fails
# when one is gone (delete it here) as well as when a new one appears: the list can only shrink.
UPWARD_ALLOWED = set()


def layer_of(module):
    best = None
    for layer, prefixes in LAYERS:
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > len(best[1]):
                    best = (layer, prefix)
    return None if best is None else best[0]


def _task_of(module):
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "tasks" else None


def _all_imports(path, graph):
    """Package modules a file imports anywhere (module level, functions, under `if`)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
            for name in _imported_names(node):
                if name in graph.modules:
                    yield node.lineno, name


def upward_imports(graph=None):
    graph = graph or ImportGraph()
    found = set()
    for module, path in sorted(graph.modules.items()):
        here = layer_of(module)
        for _, name in _all_imports(path, graph):
            there = layer_of(name)
            if name in graph._parents(module) or name == module:
                continue
            across = _task_of(module) and _task_of(name) and _task_of(module) != _task_of(name)
            if there > here or across:
                found.add((module, name))
    return found


def test_every_package_module_has_a_layer():
    missing = [m for m in ImportGraph().modules if layer_of(m) is None]
    assert not missing, f"add these to LAYERS: {missing}"


def test_every_import_points_down():
    found = upward_imports()
    new = sorted(found - UPWARD_ALLOWED)
    gone = sorted(UPWARD_ALLOWED - found)
    assert not new, "imports that run up a floor (or across tasks): " + ", ".join(
        f"{a} -> {b}" for a, b in new)
    assert not gone, "no longer imported, delete from UPWARD_ALLOWED: " + ", ".join(
        f"{a} -> {b}" for a, b in gone)


def test_the_layer_check_sees_an_upward_import():
    assert layer_of("spanbert_tf.data.masking.masker") == 1 and layer_of("spanbert_tf.tasks.coref.run") == 5
    assert layer_of("spanbert_tf.training.trainer") == 3 and layer_of("spanbert_tf.errors") == 0
    assert layer_of("spanbert_tf.hub") == 6 and layer_of("spanbert_tf.presets.export") == 4


def test_the_layer_check_finds_an_upward_import_and_one_across_tasks(tmp_path):
    """Modules written for the test: presets -> tasks (up) and squad -> coref (across)."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    import spanbert_tf.tasks.squad.run\n"
                     "    from spanbert_tf.tasks.coref import model\n")
    graph = ImportGraph()
    graph.modules.update({"spanbert_tf.presets.probe": probe, "spanbert_tf.tasks.squad.probe": probe})
    found = upward_imports(graph)
    assert ("spanbert_tf.presets.probe", "spanbert_tf.tasks.squad.run") in found
    assert ("spanbert_tf.tasks.squad.probe", "spanbert_tf.tasks.coref.model") in found
    assert ("spanbert_tf.tasks.squad.probe", "spanbert_tf.tasks.squad.run") not in found


def test_hub_imports_every_task_preset_module():
    """A task's keras-hub classes register only when spanbert_tf.hub imports their module."""
    import ast as ast_

    graph = ImportGraph()
    preset_modules = {m for m in graph.modules
                      if m.startswith("spanbert_tf.tasks.") and m.split(".")[-1].endswith("preset")
                      and "pretraining" not in m}
    hub = graph.modules["spanbert_tf.hub"]
    declared = next(ast_.literal_eval(n.value) for n in ast_.parse(hub.read_text()).body
                    if isinstance(n, ast_.Assign) and n.targets[0].id == "TASK_PRESET_MODULES")
    assert preset_modules == set(declared), "list them in spanbert_tf/hub.py TASK_PRESET_MODULES"
    assert preset_modules <= graph.deps["spanbert_tf.hub"], "spanbert_tf/hub.py must import them"
