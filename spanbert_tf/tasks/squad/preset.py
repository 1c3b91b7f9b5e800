"""`SpanBertQuestionAnswerer` (+ preprocessor): extractive QA as a keras-hub Task.

keras-hub has no question-answering task. This one is `run_squad.py`'s model
and rules, reused rather than rewritten:

- the preprocessor turns `(questions, contexts)` into the windows of
  `spanbert_tf.tasks.squad.features.convert_examples_to_features` (whitespace
  words, WordPiece, `[CLS] question [SEP] context [SEP]` windows every
  `doc_stride` pieces, the "max context" marks), built from
  `spanbert_tf.tasks.squad.reader.make_example`; with answers
  (`y = (answer_texts, answer_starts)`, character offsets as in SQuAD JSON, ""
  for unanswerable) it also gives the start/end labels of every window;
- the Task is `SpanBertQuestionAnswering`'s model: one Dense(2) layer
  (`qa_outputs`) on the backbone's `sequence_output`, float32
  `{"start_logits", "end_logits"}`; `fit` minimises (start CE + end CE) / 2
  over the windows, as `SquadTask`;
- `predict((questions, contexts))` returns the answer strings, chosen by
  `spanbert_tf.tasks.squad.predict.make_predictions` (n-best pairing, v2.0 null
  score, `get_final_text`) from logits of `squad.model.predict_logits`;
  `predict_answers` also returns the n-best lists and null odds.

Window building and answer selection run in Python, as in `run_squad.py`
(in a `tf.data` map through `tf.py_function`); the TF Serving export is
in-graph (`export_question_answerer` here, or `spanbert_tf.presets.export.export_task`).

Example:
```python
import spanbert_tf.presets
qa = SpanBertQuestionAnswerer.from_preset("presets/spanbert_squad2")
qa.predict((["Who went to France?"], ["Rollo and his men went to France in 911."]))
# array(['Rollo and his men'], dtype=object)
qa.fit(x=(questions, contexts), y=(answer_texts, answer_starts), batch_size=8)
```
"""

import logging
import os

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from spanbert_tf.errors import InputError, OutputExistsError
from spanbert_tf.modeling.backbone import SpanBertBackbone, normal_initializer
from spanbert_tf.presets.registration import register, relabel_preset_files
from spanbert_tf.presets.tokenizer import SpanBertTokenizer, WordpieceOfTokenizer
from spanbert_tf.tasks.squad import features as squad_features
from spanbert_tf.tasks.squad import model as squad_model
from spanbert_tf.tasks.squad import predict as squad_predict
from spanbert_tf.tasks.squad import reader as squad_reader
from spanbert_tf.modeling import model_dir as model_dir_lib
from spanbert_tf.tasks.squad.export import export_qa_saved_model
from spanbert_tf.tasks.squad.run import load_finetuned_model

START, END = "start_logits", "end_logits"
_INPUTS = squad_model.INPUT_NAMES


def _strings(values, what):
    """A list of Python str from str / bytes / arrays / tensors of them."""
    if isinstance(values, (tf.Tensor, tf.RaggedTensor)):
        values = values.numpy()
    values = np.asarray(values, dtype=object).reshape(-1)
    out = []
    for i, v in enumerate(values.tolist()):
        if isinstance(v, bytes):
            v = v.decode("utf-8")
        if not isinstance(v, str):
            raise InputError(f"{what}[{i}]: expected a string, got {type(v).__name__}")
        out.append(v)
    return out


@register
class SpanBertQuestionAnswererPreprocessor(WordpieceOfTokenizer, keras_hub.models.Preprocessor):
    """`(questions, contexts)` [+ `(answer_texts, answer_starts)`] → SQuAD windows [+ labels].

    Args:
        tokenizer: a `SpanBertTokenizer`.
        sequence_length: window length, `run_squad.py --max_seq_length` (384).
        doc_stride: pieces between window starts, `--doc_stride` (128).
        max_query_length: question pieces kept, `--max_query_length` (64).

    Called on a batch of B questions it returns W ≥ B rows (every window of
    every question): `{"token_ids", "segment_ids", "padding_mask"}` int32
    `[W, sequence_length]`, and with answers the labels
    `{"start_logits": [W], "end_logits": [W]}` (0 = `[CLS]` where the answer
    is not inside the window or the question is unanswerable); a
    `sample_weight` per question is repeated over its windows. An answer whose
    text is not at its offset (run_squad.py skips those too) drops its
    question, counted in `skipped_answers` and logged.

    Call it as `preprocessor(x, y)` or `preprocessor(x, y=None)`: keras-hub
    layers read a lone 2-tuple argument as `(x, y)`.
    """

    backbone_cls = SpanBertBackbone
    tokenizer_cls = SpanBertTokenizer

    def __init__(self, tokenizer, sequence_length=384, doc_stride=128, max_query_length=64,
                 **kwargs):
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.sequence_length = int(sequence_length)
        self.doc_stride = int(doc_stride)
        self.max_query_length = int(max_query_length)
        if self.doc_stride < 1 or self.max_query_length < 1:
            raise InputError("doc_stride and max_query_length must be >= 1")
        if self.sequence_length < self.max_query_length + 4:
            raise InputError(f"sequence_length={self.sequence_length} leaves no room for the "
                             f"context after a {self.max_query_length}-piece question")
        self.skipped_answers = 0

    def build(self, input_shape):
        self.built = True

    def examples(self, questions, contexts, answers=None, question_ids=None):
        """`SquadExample`s (run_squad.py's reader rules); `answers`: (texts, char starts).

        Returns `(examples, kept)`: `kept` indexes the questions kept (all of
        them unless a training answer was skipped).
        """
        questions, contexts = _strings(questions, "questions"), _strings(contexts, "contexts")
        if len(questions) != len(contexts):
            raise InputError(f"{len(questions)} questions but {len(contexts)} contexts")
        ids = [str(i) for i in range(len(questions))] if question_ids is None else \
            _strings(question_ids, "question_ids")
        if len(ids) != len(questions):
            raise InputError(f"{len(ids)} question_ids for {len(questions)} questions")
        texts = starts = None
        if answers is not None:
            texts, starts = answers
            texts = _strings(texts, "answer_texts")
            starts = np.asarray(starts.numpy() if isinstance(starts, tf.Tensor) else starts)
            starts = starts.reshape(-1).astype(np.int64)
            if len(texts) != len(questions) or len(starts) != len(questions):
                raise InputError(f"{len(texts)} answer texts and {len(starts)} answer starts "
                                 f"for {len(questions)} questions")
        stats = squad_reader.ReadStats()
        examples, kept = [], []
        for i, (qid, question, context) in enumerate(zip(ids, questions, contexts)):
            gold, impossible = [], False
            if texts is not None:
                impossible = not texts[i]
                if not impossible:
                    start = int(starts[i])
                    if start < 0 or start + len(texts[i]) > len(context):
                        raise InputError(
                            f"answers: question {i}: answer {texts[i]!r} at character offset "
                            f"{start} lies outside its context ({len(context)} characters)")
                    gold = [{"text": texts[i], "answer_start": start}]
            example = squad_reader.make_example(qid, question, context, gold, impossible,
                                                texts is not None, stats, "answers")
            if example is not None:
                examples.append(example)
                kept.append(i)
        if stats.skipped_answer_not_found:
            self.skipped_answers += stats.skipped_answer_not_found
            logging.warning("SpanBertQuestionAnswererPreprocessor: skipped %d question(s) whose "
                            "answer text is not at its offset (%s); %d so far",
                            stats.skipped_answer_not_found, ", ".join(stats.skipped_ids[:5]),
                            self.skipped_answers)
        return examples, np.asarray(kept, np.int64)

    def windows(self, examples, is_training=False):
        """`SquadFeatures` of `examples`: `convert_examples_to_features` with these settings."""
        return squad_features.convert_examples_to_features(
            examples, self.wordpiece(), self.sequence_length, self.doc_stride,
            self.max_query_length, is_training=is_training)

    def _window_arrays(self, questions, contexts, answer_texts=None, answer_starts=None,
                       sample_weight=None):
        answers = None if answer_texts is None else (answer_texts, answer_starts)
        examples, kept = self.examples(questions, contexts, answers)
        windows = self.windows(examples, is_training=answers is not None)
        arrays = [windows.input_ids, windows.segment_ids, windows.input_mask]
        if answers is not None:
            arrays += [windows.start_positions, windows.end_positions]
        if sample_weight is not None:
            weights = np.asarray(sample_weight, np.float32).reshape(-1)[kept]
            arrays.append(weights[windows.example_index])
        return arrays

    def call(self, x, y=None, sample_weight=None):
        if not isinstance(x, (tuple, list)) or len(x) != 2:
            raise InputError("SpanBertQuestionAnswererPreprocessor takes x = (questions, "
                             "contexts), two batches of strings")
        inputs = [tf.convert_to_tensor(x[0], tf.string), tf.convert_to_tensor(x[1], tf.string)]
        if y is not None:
            if not isinstance(y, (tuple, list)) or len(y) != 2:
                raise InputError("answers y must be (answer_texts, answer_starts): the answer "
                                 "strings ('' = unanswerable) and their character offsets")
            inputs += [tf.convert_to_tensor(y[0], tf.string),
                       tf.cast(tf.convert_to_tensor(y[1]), tf.int64)]
        if sample_weight is not None:
            inputs.append(tf.cast(tf.convert_to_tensor(sample_weight), tf.float32))
        kinds = [tf.int32] * (3 + (2 if y is not None else 0)) + \
            ([tf.float32] if sample_weight is not None else [])

        def run(*tensors):
            values = [t.numpy() for t in tensors]
            q, c = values[:2]
            texts, starts = (values[2], values[3]) if y is not None else (None, None)
            weights = values[-1] if sample_weight is not None else None
            return self._window_arrays(q, c, texts, starts, weights)

        with tf.device("cpu"):
            if tf.executing_eagerly():
                outputs = [tf.convert_to_tensor(a, k) for a, k in zip(run(*inputs), kinds)]
            else:
                outputs = tf.py_function(run, inputs, kinds)
                for i, t in enumerate(outputs):
                    t.set_shape([None, self.sequence_length] if i < 3 else [None])
        features = dict(zip(_INPUTS, outputs[:3]))
        labels = {START: outputs[3], END: outputs[4]} if y is not None else None
        weights = outputs[-1] if sample_weight is not None else None
        return keras.utils.pack_x_y_sample_weight(features, labels, weights)

    def get_config(self):
        config = super().get_config()
        config.update({"sequence_length": self.sequence_length, "doc_stride": self.doc_stride,
                       "max_query_length": self.max_query_length})
        return config

    def save_to_preset(self, preset_dir):
        super().save_to_preset(preset_dir)
        relabel_preset_files(preset_dir, SpanBertBackbone)


@register
class SpanBertQuestionAnswerer(keras_hub.models.Task):
    """A SpanBERT encoder with `run_squad.py`'s start/end span head.

    Args:
        backbone: a `SpanBertBackbone`.
        preprocessor: a `SpanBertQuestionAnswererPreprocessor` or None (then
            the model takes the window dicts and `predict` is refused).
        initializer_range: std of the N(0, σ) head initialisation (0.02).
        n_best_size, max_answer_length, version_2_with_negative,
        null_score_diff_threshold: `run_squad.py`'s answer-selection flags
            (20, 30, False, 0.0).

    Called on windows it returns `{"start_logits": [W, L], "end_logits": [W, L]}`
    float32; `predict((questions, contexts))` returns the answer strings.
    """

    backbone_cls = SpanBertBackbone
    preprocessor_cls = SpanBertQuestionAnswererPreprocessor

    def __init__(self, backbone, preprocessor=None, initializer_range=0.02, n_best_size=20,
                 max_answer_length=30, version_2_with_negative=False,
                 null_score_diff_threshold=0.0, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.qa_outputs = keras.layers.Dense(
            2, kernel_initializer=normal_initializer(initializer_range),
            dtype=backbone.dtype_policy, name="qa_outputs")
        self.qa_logits = keras.layers.Activation("linear", dtype="float32",
                                                 name="qa_logits_float32")
        # === Functional model ===
        inputs = backbone.input
        logits = self.qa_logits(self.qa_outputs(backbone(inputs)["sequence_output"]))
        outputs = {START: logits[..., 0], END: logits[..., 1]}
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # === Config ===
        self.initializer_range = initializer_range
        self.n_best_size = int(n_best_size)
        self.max_answer_length = int(max_answer_length)
        self.version_2_with_negative = bool(version_2_with_negative)
        self.null_score_diff_threshold = float(null_score_diff_threshold)

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        """As `keras.Model.compile`; "auto" = Adam(5e-5), (start CE + end CE) / 2, accuracies."""
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(5e-5)
        if loss == "auto":
            loss = {name: keras.losses.SparseCategoricalCrossentropy(from_logits=True)
                    for name in (START, END)}
            kwargs.setdefault("loss_weights", {START: 0.5, END: 0.5})
        if metrics == "auto":
            metrics = {name: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
                       for name in (START, END)}
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def window_logits(self, windows, batch_size=32):
        """(start, end) float32 logits `[W, L]` of `SquadFeatures` (`squad.model.predict_logits`)."""
        return squad_model.predict_logits(self, windows, batch_size)

    def predict_answers(self, questions, contexts, question_ids=None, batch_size=32):
        """`run_squad.py`'s `(predictions, nbest, null_odds)` dicts, keyed by question id.

        `question_ids` default to "0", "1", ...; `null_odds` is empty unless
        `version_2_with_negative`.
        """
        if self.preprocessor is None:
            raise InputError("SpanBertQuestionAnswerer.predict needs a preprocessor (from_preset "
                             "gives one) to turn questions and contexts into windows")
        examples, _ = self.preprocessor.examples(questions, contexts, question_ids=question_ids)
        windows = self.preprocessor.windows(examples)
        if not len(windows):
            raise InputError("no windows: every context is empty")
        start, end = self.window_logits(windows, batch_size)
        wordpiece = self.preprocessor.wordpiece()
        return squad_predict.make_predictions(
            examples, windows, start, end, wordpiece, self.n_best_size, self.max_answer_length,
            wordpiece.do_lower_case, self.version_2_with_negative,
            self.null_score_diff_threshold)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """`x = (questions, contexts)` → answer strings (object array; "" = no answer)."""
        if not isinstance(x, (tuple, list)) or len(x) != 2:
            raise InputError("SpanBertQuestionAnswerer.predict takes x = (questions, contexts)")
        predictions, _, _ = self.predict_answers(x[0], x[1], batch_size=batch_size or 32)
        return np.array(list(predictions.values()), dtype=object)

    def get_config(self):
        config = super().get_config()
        config.update({
            "initializer_range": self.initializer_range,
            "n_best_size": self.n_best_size,
            "max_answer_length": self.max_answer_length,
            "version_2_with_negative": self.version_2_with_negative,
            "null_score_diff_threshold": self.null_score_diff_threshold,
        })
        return config

    def save_to_preset(self, preset_dir, max_shard_size=10):
        super().save_to_preset(preset_dir, max_shard_size=max_shard_size)
        relabel_preset_files(preset_dir, SpanBertBackbone)

    def export_serving(self, export_dir):
        """run_squad.py's QA SavedModel over this Task (`export_question_answerer`)."""
        return export_question_answerer(self, export_dir)


def question_answerer_from_model(model, tokenizer, task=None, initializer_range=0.02):
    """A `SpanBertQuestionAnswerer` on a `SpanBertQuestionAnswering`'s backbone and head weights.

    `task` is a model dir's "task" entry (run_squad.py's settings; defaults where absent).
    """
    task = task or {}
    preprocessor = SpanBertQuestionAnswererPreprocessor(
        tokenizer, sequence_length=task.get("max_seq_length", 384),
        doc_stride=task.get("doc_stride", 128),
        max_query_length=task.get("max_query_length", 64))
    answerer = SpanBertQuestionAnswerer(
        model.backbone, preprocessor=preprocessor, initializer_range=initializer_range,
        n_best_size=task.get("n_best_size", 20),
        max_answer_length=task.get("max_answer_length", 30),
        version_2_with_negative=task.get("version_2_with_negative", False),
        null_score_diff_threshold=task.get("null_score_diff_threshold", 0.0))
    source, target = model.qa_outputs.weights, answerer.qa_outputs.weights
    if [tuple(v.shape) for v in source] != [tuple(v.shape) for v in target]:
        raise InputError(f"qa_outputs: weights {[v.shape for v in source]}, expected "
                         f"{[v.shape for v in target]}")
    for a, b in zip(source, target):
        b.assign(a)
    return answerer


def question_answerer_from_model_dir(model_dir):
    """A `SpanBertQuestionAnswerer` with the weights and settings of a `run_squad.py` model dir."""
    from spanbert_tf.presets.preset_io import build_tokenizer

    info = model_dir_lib.read_model_dir(model_dir)
    model = load_finetuned_model(info)
    return question_answerer_from_model(
        model, build_tokenizer(info.vocab_file, info.do_lower_case), task=info.task,
        initializer_range=info.config.model.initializer_range)


def export_question_answerer(answerer, export_dir):
    """Writes a `SpanBertQuestionAnswerer` as run_squad.py's QA serving SavedModel."""
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
