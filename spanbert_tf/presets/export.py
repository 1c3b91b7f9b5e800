"""TF Serving SavedModels of SpanBERT's keras-hub Tasks, preprocessing inside: raw strings in.

`export_task(task, export_dir)` calls the Task's own `export_serving(export_dir, **kwargs)`
(each Task class writes its SavedModel beside its task: `tasks/<task>/preset.py`), so this
module imports no task. Today:

- `SpanBertTextClassifier` (`tasks/classification/preset.py`): written with Keras 3's `keras.export.ExportArchive`;
  the endpoint runs the Task's own preprocessor (keras-hub's in-graph
  tokenizer and packer) and the model:
  `serving_default(sentence1: string[B], sentence2: string[B])` for pairs, or
  `serving_default(sentence: string[B])` (`pair=False`) →
  `logits` float32[B, C], `probabilities` float32[B, C] (softmax of the logits,
  or the outputs themselves for `activation="softmax"`), `label_id` int32[B]
  (a regression, `num_classes=1`: `score` float32[B], as run_classifier's STS-B export);
  `encode` (same inputs) → the model inputs, to check the tokenization.
- `SpanBertQuestionAnswerer` (`tasks/squad/preset.py`): run_squad.py's QA SavedModel
  (`spanbert_tf.tasks.squad.export`, its windowing and answer selection in the
  graph, tested equal to the Python path) over this Task, with the Task's
  preprocessor and answer-selection settings:
  `serving_default(question: string[B], context: string[B])` → `answer`,
  `start_char`, `end_char`, `score`, `null_score_diff`; `serve_with_threshold`.

Each is written atomically (temporary folder + rename: `write_saved_model_atomically`).

Example:
```python
classifier = keras_hub.models.TextClassifier.from_preset("presets/mrpc")
export_task(classifier, "exports/mrpc")
served = tf.saved_model.load("exports/mrpc").signatures["serving_default"]
served(sentence1=tf.constant(["A man sleeps."]), sentence2=tf.constant(["Nobody sleeps."]))
```
"""

import os
import shutil
import tempfile

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

from spanbert_tf.errors import InputError, OutputExistsError


def write_saved_model_atomically(export_dir, write):
    """Runs `write(tmp_dir)` and renames the folder to `export_dir` (refused if it is not empty)."""
    export_dir = os.path.abspath(str(export_dir))
    if os.path.exists(export_dir) and (not os.path.isdir(export_dir) or os.listdir(export_dir)):
        raise OutputExistsError(f"{export_dir} already exists and is not an empty folder")
    parent = os.path.dirname(export_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-savedmodel-")
    try:
        write(tmp)
        os.chmod(tmp, 0o755)
        if os.path.isdir(export_dir):
            os.rmdir(export_dir)
        os.replace(tmp, export_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return export_dir


def export_task(task, export_dir, **kwargs):
    """Exports a SpanBERT keras-hub Task for TF Serving (see the module docstring)."""
    export = getattr(task, "export_serving", None)
    if export is None:
        raise InputError(f"no serving export for {type(task).__name__}: SpanBERT's keras-hub "
                         "Tasks with an export_serving method export (SpanBertTextClassifier, "
                         "SpanBertQuestionAnswerer, ...)")
    return export(export_dir, **kwargs)
