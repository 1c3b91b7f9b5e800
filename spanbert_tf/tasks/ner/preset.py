"""`SpanBertTokenClassifier` (+ preprocessor): flat BIO tagging as a keras-hub Task.

The model is `run_ner.py --model_type=token`'s (`model.TokenNerModel`): dropout and one
dense layer over every wordpiece of the SpanBERT encoder; a word's tag is its first
wordpiece's. The preprocessor takes pre-split words (a ragged string tensor
[batch, (words)]) and, for `fit`, their integer tag ids ([batch, (words)]): each word's
wordpieces (keras-hub's tokenizer) are packed as `[CLS] w1 w2 ... [SEP]`, cut at
`sequence_length`; the tag of a word goes to its first wordpiece, the other positions get
sample weight 0 (so the loss and accuracy are over words). `word_first_pieces` gives the
positions to read the predicted tags back from.

Example:
```python
import spanbert_tf.hub
words = tf.ragged.constant([["Emma", "met", "Mr.", "Knightley"]])
tags = tf.ragged.constant([[1, 0, 1, 2]])                 # O, B-PER, I-PER = 0, 1, 2
tagger = SpanBertTokenClassifier(backbone, num_classes=3, preprocessor=preprocessor)
tagger.fit(x=words, y=tags, batch_size=8, epochs=3)
tagger.save_to_preset("presets/ner"); SpanBertTokenClassifier.from_preset("presets/ner")
```
"""

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

import keras
import keras_hub
import tensorflow as tf
from keras_hub.src.utils.tensor_utils import preprocessing_function

from spanbert_tf.errors import InputError
from spanbert_tf.modeling.backbone import SpanBertBackbone
from spanbert_tf.modeling.span_layers import head_initializer
from spanbert_tf.presets.preset_io import build_tokenizer
from spanbert_tf.presets.registration import register, relabel_preset_files
from spanbert_tf.presets.tokenizer import SpanBertTokenizer
from spanbert_tf.tasks.ner.export import load_ner_model


@register
class SpanBertTokenClassifierPreprocessor(keras_hub.models.Preprocessor):
    """Words ([batch, (words)] strings) -> packed wordpieces; tags -> first-piece labels.

    Args:
        tokenizer: a `SpanBertTokenizer`.
        sequence_length: int, packed length with `[CLS]`/`[SEP]` (default 512).
    """

    backbone_cls = SpanBertBackbone
    tokenizer_cls = SpanBertTokenizer

    def __init__(self, tokenizer, sequence_length=512, **kwargs):
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length

    def _pieces(self, words):
        words = tf.RaggedTensor.from_tensor(words) if isinstance(words, tf.Tensor) else words
        # keras-hub 0.32's tokenizers take a pure-Python path when called eagerly; its
        # TensorFlow path (what tf.data and tf.function run) gives ragged ids everywhere.
        pieces = self.tokenizer._tokenize_tf(words.flat_values)  # [num_words, (pieces)]
        if isinstance(pieces, tf.Tensor):
            pieces = tf.RaggedTensor.from_tensor(pieces)
        # A word with no wordpiece becomes one [UNK]: append [UNK] to every word and keep
        # the first max(1, length) pieces.
        unk = tf.fill([tf.shape(pieces.row_lengths())[0], 1], self.tokenizer.token_to_id("[UNK]"))
        padded = tf.concat([pieces, tf.RaggedTensor.from_tensor(tf.cast(unk, pieces.dtype))], 1)
        keep = tf.maximum(pieces.row_lengths(), 1)
        positions = tf.ragged.range(padded.row_lengths())
        pieces = tf.ragged.boolean_mask(padded, positions < keep[:, None])
        return words, tf.RaggedTensor.from_row_splits(pieces, words.row_splits)

    @preprocessing_function
    def word_first_pieces(self, words):
        """[batch, (words)] int32: the packed position of each word's first wordpiece
        (>= sequence_length - 1 when the word was cut off)."""
        _, pieces = self._pieces(words)
        lengths = tf.cast(pieces.row_lengths(axis=2), tf.int32)  # [batch, (words)]
        return 1 + tf.math.cumsum(lengths, axis=1, exclusive=True)

    @preprocessing_function   # keras-hub's tensor conversion (the tokenizer returns ragged)
    def call(self, x, y=None, sample_weight=None):
        words, pieces = self._pieces(x)
        flat = pieces.merge_dims(1, 2)                           # [batch, (pieces)]
        room = self.sequence_length - 2
        batch = tf.shape(flat.row_lengths())[0]
        cls_id = self.tokenizer.token_to_id("[CLS]")
        sep_id = self.tokenizer.token_to_id("[SEP]")
        body = flat[:, :room]
        ids = tf.concat([tf.fill([batch, 1], cls_id), body, tf.fill([batch, 1], sep_id)], 1)
        ids = ids.to_tensor(default_value=0, shape=[None, self.sequence_length])
        mask = tf.sequence_mask(tf.minimum(flat.row_lengths(), room) + 2, self.sequence_length)
        features = {"token_ids": tf.cast(ids, tf.int32),
                    "segment_ids": tf.zeros_like(ids, tf.int32), "padding_mask": mask}
        if y is None:
            return features
        y = tf.RaggedTensor.from_tensor(y) if isinstance(y, tf.Tensor) else y
        lengths = tf.cast(pieces.row_lengths(axis=2), tf.int64)
        first = 1 + tf.math.cumsum(lengths, axis=1, exclusive=True)   # [batch, (words)]
        keep = first <= room
        rows = tf.cast(first.value_rowids(), tf.int64)
        positions = tf.stack([rows, first.flat_values], 1)[keep.flat_values]
        values = tf.cast(y.flat_values, tf.int32)[keep.flat_values]
        shape = tf.cast([batch, self.sequence_length], tf.int64)
        labels = tf.scatter_nd(positions, values, shape)
        weights = tf.scatter_nd(positions, tf.ones_like(values, tf.float32), shape)
        return keras.utils.pack_x_y_sample_weight(features, labels, weights)

    def get_config(self):
        config = super().get_config()
        config.update({"sequence_length": self.sequence_length})
        return config

    def save_to_preset(self, preset_dir):
        super().save_to_preset(preset_dir)
        relabel_preset_files(preset_dir, SpanBertBackbone)


@register
class SpanBertTokenClassifier(keras_hub.models.Task):
    """A SpanBERT encoder with a tag classifier over every wordpiece.

    Args:
        backbone: a `SpanBertBackbone`.
        num_classes: int, number of tags (logits [batch, sequence_length, num_classes]).
        preprocessor: a `SpanBertTokenClassifierPreprocessor` or None.
        dropout: float, dropout on the encoder output (0.1).
    """

    backbone_cls = SpanBertBackbone
    preprocessor_cls = SpanBertTokenClassifierPreprocessor

    def __init__(self, backbone, num_classes, preprocessor=None, dropout=0.1, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.output_dropout = keras.layers.Dropout(dropout, dtype=backbone.dtype_policy,
                                                   name="tagger_dropout")
        self.output_dense = keras.layers.Dense(num_classes, kernel_initializer=head_initializer(),
                                               dtype=backbone.dtype_policy, name="tag_logits")
        # === Functional model ===
        inputs = backbone.input
        sequence = backbone(inputs)["sequence_output"]
        outputs = self.output_dense(self.output_dropout(sequence))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # === Config ===
        self.num_classes = num_classes
        self.dropout = dropout

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        """Adam 5e-5, sparse cross-entropy on logits, weighted accuracy ("auto")."""
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(5e-5)
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if metrics == "auto":
            metrics = None
            kwargs.setdefault("weighted_metrics",
                              [keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "dropout": self.dropout})
        return config

    def save_to_preset(self, preset_dir, max_shard_size=10):
        super().save_to_preset(preset_dir, max_shard_size=max_shard_size)
        relabel_preset_files(preset_dir, SpanBertBackbone)


def token_classifier_from_model_dir(model_dir):
    """A `SpanBertTokenClassifier` with the weights of a `run_ner.py --model_type=token` model
    dir (its preprocessor's `sequence_length` = the run's `max_seq_length`); the tag names
    are `features.tag_names(types)` of the dir's ner_config.json."""
    model, tokenizer, config, _ = load_ner_model(model_dir)
    if config.ner.model_type != "token":
        raise InputError(f"{model_dir}: a {config.ner.model_type} model; only token models "
                         "(run_ner.py --model_type=token) become a SpanBertTokenClassifier")
    preprocessor = SpanBertTokenClassifierPreprocessor(
        build_tokenizer(tokenizer.vocab_file, tokenizer.do_lower_case),
        sequence_length=config.ner.max_seq_length)
    tagger = SpanBertTokenClassifier(model.backbone, model.num_tags, preprocessor=preprocessor,
                                     dropout=model.dropout_rate)
    for source, target in zip(model.token_classifier.weights, tagger.output_dense.weights):
        target.assign(source)
    return tagger
