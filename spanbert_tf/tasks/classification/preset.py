"""`SpanBertTextClassifier` (+ preprocessor): sentence(-pair) classification as a keras-hub Task.

The model is the fine-tuning model of SpanBERT's `run_glue.py`
(`spanbert_tf.tasks.classification.model.SpanBertClassifier`): the pooled
`[CLS]` output, dropout, one dense layer with N(0, initializer_range)
weights. The preprocessor tokenizes raw strings (one text, or a pair as a
tuple) into `[CLS] a [SEP] b [SEP]`, so `fit` / `predict` take raw strings.
`num_classes=1` is STS-B's regression (one score, mean squared error), as
`SpanBertClassifier(num_classes=1)`: keras-hub's TextClassifier carries it,
only the default loss and metrics change.

Example:
```python
import spanbert_tf.presets
classifier = keras_hub.models.TextClassifier.from_preset("presets/spanbert_base", num_classes=2)
classifier.fit(x=(sentences_a, sentences_b), y=labels, batch_size=8)
classifier.predict((["A man sleeps."], ["Nobody sleeps."]))      # logits [1, 2]
```
"""

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

import keras
import keras_hub
import tensorflow as tf

from spanbert_tf.errors import InputError
from spanbert_tf.modeling.backbone import SpanBertBackbone, normal_initializer
from spanbert_tf.presets.export import write_saved_model_atomically
from spanbert_tf.presets.registration import register, relabel_preset_files
from spanbert_tf.presets.tokenizer import SpanBertTokenizer
from spanbert_tf.modeling import model_dir as model_dir_lib
from spanbert_tf.tasks.classification import glue


@register
class SpanBertTextClassifierPreprocessor(keras_hub.models.TextClassifierPreprocessor):
    """Raw strings (or pairs of them) → `token_ids`, `segment_ids`, `padding_mask`.

    Args:
        tokenizer: a `SpanBertTokenizer`.
        sequence_length: int, packed length (default 512).
        truncate: "round_robin" (default) or "waterfall", how pairs are cut.
    """

    backbone_cls = SpanBertBackbone
    tokenizer_cls = SpanBertTokenizer

    def save_to_preset(self, preset_dir):
        super().save_to_preset(preset_dir)
        relabel_preset_files(preset_dir, SpanBertBackbone)


@register
class SpanBertTextClassifier(keras_hub.models.TextClassifier):
    """A SpanBERT encoder with a classification layer on the pooled `[CLS]` output.

    Args:
        backbone: a `SpanBertBackbone`.
        num_classes: int, number of classes (logits are returned); 1 = a
            regression (STS-B), compiled with mean squared error.
        preprocessor: a `SpanBertTextClassifierPreprocessor` or None (then
            the model takes the packed token dicts).
        activation: None (logits, default) or e.g. "softmax".
        dropout: float, dropout on the pooled output (0.1).
    """

    backbone_cls = SpanBertBackbone
    preprocessor_cls = SpanBertTextClassifierPreprocessor

    def __init__(self, backbone, num_classes, preprocessor=None, activation=None, dropout=0.1,
                 **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.output_dropout = keras.layers.Dropout(
            dropout, dtype=backbone.dtype_policy, name="classifier_dropout")
        self.output_dense = keras.layers.Dense(
            num_classes,
            kernel_initializer=normal_initializer(getattr(backbone, "initializer_range", 0.02)),
            activation=activation,
            dtype=backbone.dtype_policy,
            name="logits",
        )
        # === Functional model ===
        inputs = backbone.input
        pooled = backbone(inputs)["pooled_output"]
        outputs = self.output_dense(self.output_dropout(pooled))
        compile_now = kwargs.pop("compile", True)
        super().__init__(inputs=inputs, outputs=outputs, compile=False, **kwargs)
        # === Config ===
        self.num_classes = num_classes
        self.activation = keras.activations.get(activation)
        self.dropout = dropout
        if compile_now:  # after the config: the defaults depend on num_classes
            self.compile()

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        """As `TextClassifier.compile`; with `num_classes=1`, "auto" = mean squared error."""
        if self.num_classes == 1:
            if loss == "auto":
                loss = keras.losses.MeanSquaredError()
            if metrics == "auto":
                metrics = [keras.metrics.MeanAbsoluteError(name="mean_absolute_error")]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_classes": self.num_classes,
            "activation": keras.activations.serialize(self.activation),
            "dropout": self.dropout,
        })
        return config

    def save_to_preset(self, preset_dir, max_shard_size=10):
        super().save_to_preset(preset_dir, max_shard_size=max_shard_size)
        relabel_preset_files(preset_dir, SpanBertBackbone)

    def export_serving(self, export_dir, pair=True):
        """A TF Serving SavedModel, raw strings in (`export_text_classifier`)."""
        return export_text_classifier(self, export_dir, pair=pair)


def text_classifier_from_model_dir(model_dir):
    """A `SpanBertTextClassifier` with the weights of a `run_classifier.py` model dir.

    The model dir's config.json "task" gives the labels and `max_seq_length`
    (the preprocessor's `sequence_length`). A GLUE regression (STS-B, no
    labels) becomes `num_classes=1` (labels None); TACRED (entity markers)
    gets a `SpanBertRelationClassifierPreprocessor`.
    Returns `(classifier, labels)`.
    """
    from spanbert_tf.presets.preset_io import build_tokenizer
    from spanbert_tf.tasks.classification.task import ClassificationTask

    info = model_dir_lib.read_model_dir(model_dir)
    task = info.task or {}
    if model_dir_lib.task_kind(task) != "classification":
        raise InputError(f"{info.model_dir}: config.json has no classification task "
                         f"(not a run_classifier.py model dir)")
    labels = task.get("labels")
    name = task.get(model_dir_lib.TASK_NAME_KEY)
    markers = task.get("markers")
    if (name == "tacred") != (markers is not None) or (markers is not None and not labels):
        raise InputError(f"{info.model_dir}: config.json task {name!r} needs both labels and "
                         f"entity markers (a run_classifier.py TACRED model dir)")
    regression = False
    if not labels:
        try:
            regression = glue.get_glue_task(str(name)).is_regression
        except ValueError:
            pass
    if not labels and not regression:
        raise InputError(f"{info.model_dir}: config.json task {name!r} has no labels and is not "
                         f"a GLUE regression")
    num_classes = 1 if regression else len(labels)
    model = ClassificationTask(info.config.model, num_classes, is_regression=regression,
                               dtype="float32").build_model()
    model_dir_lib.restore_model(model, info.checkpoint_path)
    tokenizer = build_tokenizer(info.vocab_file, info.do_lower_case)
    if markers is not None:  # TACRED: entity-marker inputs
        from spanbert_tf.tasks.classification.relation_preset import (
            SpanBertRelationClassifierPreprocessor)

        preprocessor = SpanBertRelationClassifierPreprocessor(
            tokenizer, markers, sequence_length=int(task["max_seq_length"]))
    else:
        preprocessor = SpanBertTextClassifierPreprocessor(
            tokenizer, sequence_length=int(task["max_seq_length"]))
    classifier = SpanBertTextClassifier(model.backbone, num_classes=num_classes,
                                        preprocessor=preprocessor, dropout=info.config.model.dropout)
    for source, target in zip(model.output_dense.weights, classifier.output_dense.weights):
        target.assign(source)
    return classifier, (None if regression else labels)


def export_text_classifier(classifier, export_dir, pair=True):
    """Writes a `SpanBertTextClassifier` (with its preprocessor) as a serving SavedModel."""
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
    return write_saved_model_atomically(export_dir, lambda path: archive.write_out(path, verbose=False))
