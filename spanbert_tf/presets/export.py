"""TF Serving SavedModels of the keras-hub Tasks, preprocessing inside: raw strings in.

- `SpanBertTextClassifier`: written with Keras 3's `keras.export.ExportArchive`;
  the endpoint runs the Task's own preprocessor (keras-hub's in-graph
  tokenizer and packer) and the model:
  `serving_default(sentence1: string[B], sentence2: string[B])` for pairs, or
  `serving_default(sentence: string[B])` (`pair=False`) →
  `logits` float32[B, C], `probabilities` float32[B, C] (softmax of the logits,
  or the outputs themselves for `activation="softmax"`), `label_id` int32[B]
  (a regression, `num_classes=1`: `score` float32[B], as run_classifier's STS-B export);
  `encode` (same inputs) → the model inputs, to check the tokenization.
- `SpanBertQuestionAnswerer`: run_squad.py's QA SavedModel
  (`spanbert_tf.tasks.squad.export`, its windowing and answer selection in the
  graph, tested equal to the Python path) over this Task, with the Task's
  preprocessor and answer-selection settings:
  `serving_default(question: string[B], context: string[B])` → `answer`,
  `start_char`, `end_char`, `score`, `null_score_diff`; `serve_with_threshold`.

Both are written atomically (temporary folder + rename).

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

import keras
import tensorflow as tf

from spanbert_tf.errors import InputError, OutputExistsError


def _write_atomically(export_dir, write):
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


def export_text_classifier(classifier, export_dir, pair=True):
    """Writes a `SpanBertTextClassifier` (with its preprocessor) as a serving SavedModel."""
    from spanbert_tf.presets.text_classifier import SpanBertTextClassifierPreprocessor

    if not isinstance(classifier.preprocessor, SpanBertTextClassifierPreprocessor):
        raise InputError("export_text_classifier needs a classifier with a text preprocessor "
                         f"(SpanBertTextClassifierPreprocessor), not "
                         f"{type(classifier.preprocessor).__name__} (TACRED task presets do not "
                         "export; run_classifier.py --export_dir serves TACRED)")
    preprocessor = classifier.preprocessor
    softmax_out = keras.activations.get(classifier.activation) == keras.activations.softmax

    def encode(*texts):
        # y=None: keras-hub layers read a lone 2-tuple as (x, y).
        x = preprocessor(tuple(texts) if pair else texts[0], y=None)
        return {k: tf.cast(v, tf.int32) for k, v in x.items()}

    def serve(*texts):
        outputs = tf.cast(classifier(encode(*texts), training=False), tf.float32)
        if classifier.num_classes == 1:   # a regression (STS-B)
            return {"score": outputs[:, 0]}
        probabilities = outputs if softmax_out else tf.nn.softmax(outputs, axis=-1)
        return {"logits": outputs, "probabilities": probabilities,
                "label_id": tf.argmax(outputs, axis=-1, output_type=tf.int32)}

    names = ("sentence1", "sentence2") if pair else ("sentence",)
    specs = [tf.TensorSpec([None], tf.string, name=n) for n in names]
    archive = keras.export.ExportArchive()
    archive.track(classifier)
    archive.track(preprocessor)
    archive.add_endpoint("serving_default", serve, input_signature=specs)
    archive.add_endpoint("encode", encode, input_signature=specs)
    return _write_atomically(export_dir, lambda path: archive.write_out(path, verbose=False))


def export_question_answerer(answerer, export_dir):
    """Writes a `SpanBertQuestionAnswerer` as run_squad.py's QA serving SavedModel."""
    from spanbert_tf.tasks.squad.export import export_qa_saved_model

    p = answerer.preprocessor
    if p is None:
        raise InputError("export_question_answerer needs an answerer with a preprocessor")
    export_dir = os.path.abspath(str(export_dir))
    if os.path.exists(export_dir) and (not os.path.isdir(export_dir) or os.listdir(export_dir)):
        raise OutputExistsError(f"{export_dir} already exists and is not an empty folder")
    return export_qa_saved_model(
        answerer, p.wordpiece(), export_dir, p.sequence_length, p.doc_stride,
        p.max_query_length, answerer.n_best_size, answerer.max_answer_length,
        answerer.version_2_with_negative, answerer.null_score_diff_threshold)


def export_task(task, export_dir, **kwargs):
    """Exports a SpanBERT keras-hub Task for TF Serving (see the module docstring)."""
    from spanbert_tf.presets.question_answerer import SpanBertQuestionAnswerer
    from spanbert_tf.presets.text_classifier import SpanBertTextClassifier

    if isinstance(task, SpanBertTextClassifier):
        return export_text_classifier(task, export_dir, **kwargs)
    if isinstance(task, SpanBertQuestionAnswerer):
        return export_question_answerer(task, export_dir, **kwargs)
    raise InputError(f"no serving export for {type(task).__name__}: SpanBertTextClassifier "
                     "and SpanBertQuestionAnswerer export")
