"""Registers SpanBERT's keras-hub classes whenever keras-hub is imported, in either order.

keras-hub finds a preset's classes by their registered names, so `spanbert_tf.hub` (the core
classes of `spanbert_tf.presets` and every task's keras-hub Tasks) must be imported before
`keras_hub.models.Backbone.from_preset(...)` reads a SpanBERT preset. Importing
it from `import spanbert_tf` would load keras-hub and TensorFlow into every process that touches
the package (the data workers, `--help`), so `spanbert_tf/__init__.py` does it only when
keras-hub is already loaded, and otherwise calls `install()`: a one-shot import hook that imports
`spanbert_tf.hub` right after keras-hub's own import finishes. Both orders then work:

```python
import spanbert_tf, keras_hub     # or: import keras_hub, spanbert_tf
keras_hub.models.Backbone.from_preset("runs/demo/preset")   # a SpanBertBackbone
```
"""

import importlib
import importlib.abc
import importlib.util
import sys
import threading
import warnings

WATCHED = "keras_hub"
REGISTERING_MODULE = "spanbert_tf.hub"


PACKAGE = "spanbert_tf"
_state = threading.local()
_registered = False


def _initializing(module):
    return getattr(getattr(module, "__spec__", None), "_initializing", False)


def _submodule_initializing(finished=None):
    """Whether a submodule of this package (other than `finished`, whose code has just run) is
    being imported right now, and so maybe the one that imported keras-hub, with its names not
    all defined yet."""
    return any(_initializing(module) for name, module in list(sys.modules.items())
               if name.startswith(PACKAGE + ".") and name != finished)


def register_now(finished=None):
    """Imports `spanbert_tf.hub` (registers the classes) unless one of this package's
    submodules is still importing; then the hook retries when the next one has finished.
    A failure is a warning: it must not break the user's own `import keras_hub`."""
    global _registered
    presets = sys.modules.get(REGISTERING_MODULE)
    if presets is not None and not _initializing(presets):
        _registered = True  # imported directly
    if _registered or _submodule_initializing(finished):
        if _registered:
            uninstall()
        return
    _registered = True
    uninstall()
    try:
        importlib.import_module(REGISTERING_MODULE)
    except Exception as e:  # noqa: BLE001 - reported, and keras-hub stays usable
        warnings.warn(f"spanbert_tf: SpanBERT's keras-hub classes are not registered "
                      f"({type(e).__name__}: {e}); `import spanbert_tf.hub` retries",
                      stacklevel=2)


class _RegisteringLoader(importlib.abc.Loader):
    """A module's own loader, plus `register_now()` (once keras-hub is loaded) after it ran."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        if WATCHED in sys.modules:
            register_now(finished=module.__name__)

    def __getattr__(self, name):  # resource readers, get_filename, ...
        return getattr(self._loader, name)


class _KerasHubWatcher(importlib.abc.MetaPathFinder):
    """Finds keras-hub (and this package's submodules) with the other finders and wraps their
    loaders, until the classes are registered."""

    def find_spec(self, fullname, path=None, target=None):
        if getattr(_state, "looking", False) or not (
                fullname == WATCHED or fullname.startswith(PACKAGE + ".")):
            return None
        _state.looking = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            _state.looking = False
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


def _watchers():
    return [f for f in sys.meta_path if type(f).__name__ == _KerasHubWatcher.__name__]


def install():
    """Registers on keras-hub's import (now, if it is already imported). Idempotent."""
    if WATCHED in sys.modules:
        register_now()
    elif not _registered and not _watchers():
        sys.meta_path.insert(0, _KerasHubWatcher())


def uninstall():
    for finder in _watchers():
        sys.meta_path.remove(finder)
