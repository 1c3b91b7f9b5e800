"""A lean TensorFlow import for the processes of `create_pretraining_data`.

Only for processes that run nothing but the data pipeline (the program and its
workers). `import tensorflow` loads Keras (and through it scikit-learn and
scipy) and, where installed, JAX; `import tensorflow_text` loads every op library
and its Keras layers: seconds of CPU per process that tokenization never uses.
Here Keras and JAX are hidden during the TensorFlow import only (TensorFlow's own
`__init__` runs unchanged and tolerates their absence), and `tensorflow_text` is made a bare
package holding just the two tokenizer modules. The objects imported are then
frozen out of the cyclic garbage collector's reach (`gc.freeze`), so that its
full collections, and the one at exit, do not traverse them again.

Example:
```python
from spanbert_tf.data.writing.lean_tf import import_tensorflow_lean
import_tensorflow_lean()     # first thing in a process that runs only the pipeline
```
"""

import gc
import importlib.util
import os
import sys
import types

from spanbert_tf.quiet import quiet_requested, stderr_silenced

# Importable but unused by the data processes, and loaded by `import tensorflow` when
# installed: Keras (and through it scikit-learn and scipy), and JAX (TF Lite's converter
# helpers try `from jax import jit`; ~1 s of CPU where the jax extra is installed).
HIDDEN_DURING_IMPORT = ("keras", "jax")


def import_tensorflow_lean():
    """Imports TensorFlow without Keras or JAX, and the two tensorflow-text tokenizers.

    Does nothing if TensorFlow is already imported.
    """
    if "tensorflow" in sys.modules:
        return
    # Data processes never need a GPU: do not initialise (and reserve) one.
    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    hidden = [name for name in HIDDEN_DURING_IMPORT if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None
    try:
        with stderr_silenced(quiet_requested()):
            import tensorflow  # noqa: F401  (the import is the point)
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    if "tensorflow_text" not in sys.modules:
        root = importlib.util.find_spec("tensorflow_text").submodule_search_locations[0]
        for name, sub in (("tensorflow_text", ""), ("tensorflow_text.python", "python"),
                          ("tensorflow_text.python.ops", "python/ops")):
            package = types.ModuleType(name)
            package.__path__ = [os.path.join(root, sub)] if sub else [root]
            sys.modules[name] = package
        from tensorflow_text.python.ops import bert_tokenizer, fast_bert_tokenizer

        text = sys.modules["tensorflow_text"]
        text.BertTokenizer = bert_tokenizer.BertTokenizer
        text.FastBertTokenizer = fast_bert_tokenizer.FastBertTokenizer
    # Everything imported so far lives as long as the process.
    gc.freeze()
