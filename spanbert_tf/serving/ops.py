"""Does a SavedModel run in TF Serving's model server? Its ops, against the server's op set.

The model server links TensorFlow's own ops and tensorflow-text's `ops_lib` at a fixed
version: 2.12.1 in TF Serving 2.12.0 - 2.19.1, whatever tensorflow-text is installed here.
An export that uses a newer tensorflow-text op (`TFText>Utf8Binarize`) or one outside
`ops_lib` (`TFText>RoundRobinTrim`, from `tensorflow_text.RoundRobinTrimmer`) loads in
Python but fails to load in the server ("Op type not registered").

- `saved_model_op_types(path)`: every op type in a SavedModel's graphs, function library
  included (read from `saved_model.pb`; nothing is loaded or run).
- `tensorflow_core_ops()`: the ops TensorFlow itself registers, read in a fresh process
  that imports TensorFlow only (this process may have loaded tensorflow-text already).
- `tensorflow_text_serving_ops()`: the committed list of tensorflow-text 2.12.1's ops
  (`spanbert_tf/resources/tensorflow-text-2.12.1-ops.txt`, taken from its source).
- `check_serving_ops(path)`: raises `UnservableOpsError` naming the ops outside both.

Every export this project writes calls `check_serving_ops` before it publishes the
SavedModel, so an unservable export is never left behind.

Example:
```python
from spanbert_tf.serving.ops import check_serving_ops, ops_outside_model_server
ops_outside_model_server("runs/export/preprocessor/1")   # [] when servable
check_serving_ops("runs/export/preprocessor/1")          # raises if not
```
"""

import functools
import os
import shutil
import subprocess
import sys
import tempfile

from spanbert_tf.errors import InputError, MissingFileError, OutputExistsError

TF_TEXT_SERVING_VERSION = "2.12.1"
TF_TEXT_OPS_FILE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "resources",
    f"tensorflow-text-{TF_TEXT_SERVING_VERSION}-ops.txt")

# Run in a fresh interpreter: the names of all ops registered once TensorFlow (alone) is imported.
_CORE_OPS_PROBE = """
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session as c_api
ops = op_def_pb2.OpList()
ops.ParseFromString(c_api.TF_GetBuffer(c_api.TF_GetAllOpList()))
print("\\n".join(sorted(op.name for op in ops.op)))
"""


class UnservableOpsError(InputError):
    """A SavedModel uses ops that TF Serving's model server does not register."""


def saved_model_op_types(saved_model_dir):
    """The op types of every node in a SavedModel's graphs and their function libraries.

    Calls of library functions (a node whose op is a function name) are not op types.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    path = os.path.join(saved_model_dir, "saved_model.pb")
    if not os.path.isfile(path):
        raise MissingFileError(f"{saved_model_dir}: no saved_model.pb (not a SavedModel directory)")
    saved_model = saved_model_pb2.SavedModel()
    with open(path, "rb") as f:
        saved_model.ParseFromString(f.read())
    ops, functions = set(), set()
    for meta_graph in saved_model.meta_graphs:
        graph = meta_graph.graph_def
        ops.update(node.op for node in graph.node)
        for function in graph.library.function:
            functions.add(function.signature.name)
            ops.update(node.op for node in function.node_def)
    return ops - functions


@functools.lru_cache(maxsize=None)
def tensorflow_core_ops():
    """frozenset of the op names TensorFlow registers itself (no tensorflow-text, no plugins)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", _CORE_OPS_PROBE], capture_output=True,
                          text=True, env=env, timeout=600)
    names = proc.stdout.split()
    if proc.returncode != 0 or not names:
        raise RuntimeError("could not list TensorFlow's registered ops in a fresh process: "
                           + (proc.stderr.strip().splitlines() or ["no output"])[-1])
    return frozenset(names)


@functools.lru_cache(maxsize=None)
def tensorflow_text_serving_ops():
    """frozenset of the tensorflow-text op names the model server links (2.12.1's ops_lib)."""
    names = []
    with open(TF_TEXT_OPS_FILE, encoding="utf-8") as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                names.append(line.split("\t")[0].strip())
    if not names:
        raise InputError(f"{TF_TEXT_OPS_FILE}: no op names (one a line expected)")
    return frozenset(names)


def ops_outside_model_server(saved_model_dir):
    """Sorted op types of the SavedModel that are neither TensorFlow core nor tensorflow-text 2.12.1."""
    allowed = tensorflow_core_ops() | tensorflow_text_serving_ops()
    return sorted(saved_model_op_types(saved_model_dir) - allowed)


def check_serving_ops(saved_model_dir, name=None):
    """Raises UnservableOpsError when the SavedModel needs ops the model server lacks.

    Args:
        saved_model_dir: a SavedModel directory (with saved_model.pb).
        name: what the export is, for the message (default the directory).
    """
    outside = ops_outside_model_server(saved_model_dir)
    if outside:
        raise UnservableOpsError(
            f"{name or saved_model_dir}: uses ops that TF Serving's model server does not "
            f"register (TensorFlow core + tensorflow-text {TF_TEXT_SERVING_VERSION}, "
            f"{os.path.basename(TF_TEXT_OPS_FILE)}): {', '.join(outside)}. Build that part "
            "of the graph from core TensorFlow ops (or ops in that list).")


def publish_saved_model(module, export_dir, signatures, overwrite=True, extra_files=None):
    """Writes `module` as the SavedModel `export_dir`, atomically and only if servable.

    Saves into a hidden temp dir beside `export_dir`, checks its ops
    (`check_serving_ops`), then renames it into place (an older export there is
    replaced when `overwrite`, else FileExistsError). TF Serving polls for numeric
    version dirs, so it never sees a partial export, nor one its model server cannot
    run. Every SavedModel of the package is written through this function.
    `extra_files`: {path relative to the SavedModel: text} written with it (e.g.
    `assets.extra/model_info.json`: TF Serving ignores assets.extra).
    Returns `export_dir` (absolute).
    """
    import tensorflow as tf  # this module's op check runs without TensorFlow loaded

    export_dir = os.path.abspath(str(export_dir))
    if os.path.exists(export_dir) and not overwrite:
        raise OutputExistsError(f"{export_dir} exists; choose another --version or pass --overwrite")
    parent = os.path.dirname(export_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f".tmp-{os.path.basename(export_dir)}-")
    try:
        tf.saved_model.save(module, tmp, signatures=signatures)
        for rel, text in (extra_files or {}).items():
            os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
            with open(os.path.join(tmp, rel), "w", encoding="utf-8") as f:
                f.write(text)
        check_serving_ops(tmp, name=export_dir)
        if os.path.exists(export_dir):
            # Move the old export aside first, so export_dir is never half-deleted.
            old = tempfile.mkdtemp(dir=parent, prefix=f".old-{os.path.basename(export_dir)}-")
            os.rename(export_dir, os.path.join(old, "export"))
            os.rename(tmp, export_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, export_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return export_dir
