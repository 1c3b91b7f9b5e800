"""`SpanBertRelationClassifierPreprocessor`: TACRED inputs with SpanBERT's entity markers.

TACRED's classifier is `run_classifier.py`'s (a `SpanBertTextClassifier`: pooled
`[CLS]` → dense); what differs is the input. This preprocessor takes
relation mentions and gives the classifier's token ids as
`spanbert_tf.tasks.classification.tacred.encode_tacred` does (one source of
truth): subject and object mentions replaced by one marker token each
(`[SUBJ-PER]` ... mapped onto `[unusedN]` by the model dir's `TacredMarkers`),
PTB brackets restored, `[CLS] ... [SEP]` cut to `sequence_length`.

`x` is a dict (the layout of run_classifier's TACRED SavedModel):
`tokens` string `[B, T]` padded with "", `subj_start`, `subj_end`,
`obj_start`, `obj_end` int `[B]` (inclusive token spans), `subj_type`,
`obj_type` string `[B]` ("" = untyped marker). Encoding runs in Python (in a
`tf.data` map through `tf.py_function`), as in run_classifier.py.

Example:
```python
classifier = keras_hub.models.TextClassifier.from_preset("presets/tacred")  # converted model dir
classifier.predict({"tokens": [["Tom", "Thabane", "resigned", "as", "minister"]],
                    "subj_start": [0], "subj_end": [1], "obj_start": [4], "obj_end": [4],
                    "subj_type": ["PERSON"], "obj_type": ["TITLE"]})
```
"""

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from spanbert_tf.errors import InputError
from spanbert_tf.modeling.backbone import SpanBertBackbone
from spanbert_tf.presets.registration import register, relabel_preset_files
from spanbert_tf.presets.tokenizer import SpanBertTokenizer, WordpieceOfTokenizer
from spanbert_tf.tasks.classification import tacred

INT_FIELDS = ("subj_start", "subj_end", "obj_start", "obj_end")
TYPE_FIELDS = ("subj_type", "obj_type")
FIELDS = ("tokens",) + INT_FIELDS + TYPE_FIELDS


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


@register
class SpanBertRelationClassifierPreprocessor(WordpieceOfTokenizer, keras_hub.models.Preprocessor):
    """Relation mentions → `token_ids`, `segment_ids`, `padding_mask` with entity markers.

    Args:
        tokenizer: a `SpanBertTokenizer`.
        markers: dict marker name → vocabulary token (`TacredMarkers.to_json()`).
        sequence_length: packed length (run_classifier's `max_seq_length`).
    """

    backbone_cls = SpanBertBackbone
    tokenizer_cls = SpanBertTokenizer

    def __init__(self, tokenizer, markers, sequence_length=128, **kwargs):
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.markers = tacred.TacredMarkers.from_json(markers)
        self.sequence_length = int(sequence_length)

    def build(self, input_shape):
        self.built = True

    def examples(self, x):
        """`TacredExample`s from the input dict of numpy arrays / lists (see the module)."""
        missing = [k for k in FIELDS if k not in x]
        if missing:
            raise InputError(f"relation inputs lack {missing}; expected the fields {FIELDS}")
        rows = len(x["tokens"])
        out = []
        for i in range(rows):
            tokens = [_text(t) for t in np.asarray(x["tokens"][i], dtype=object).reshape(-1)]
            while tokens and not tokens[-1]:
                tokens.pop()
            spans = {k: int(np.asarray(x[k]).reshape(-1)[i]) for k in INT_FIELDS}
            for side in ("subj", "obj"):
                s, e = spans[f"{side}_start"], spans[f"{side}_end"]
                if not 0 <= s <= e < len(tokens):
                    raise InputError(f"relation input {i}: {side} span [{s}, {e}] is not inside "
                                     f"its {len(tokens)} tokens")
            types = {k: _text(np.asarray(x[k], dtype=object).reshape(-1)[i]) or None
                     for k in TYPE_FIELDS}
            out.append(tacred.TacredExample(guid=str(i), tokens=tokens, label=None, **spans,
                                            **types))
        return out

    def encode(self, x):
        """The classifier inputs (int32 `[B, sequence_length]`) of `encode_tacred`."""
        features = tacred.encode_tacred(self.examples(x), self.wordpiece(), self.markers,
                                        self.sequence_length)
        return [features[k] for k in ("token_ids", "segment_ids", "padding_mask")]

    def call(self, x, y=None, sample_weight=None):
        if not isinstance(x, dict):
            raise InputError(f"SpanBertRelationClassifierPreprocessor takes a dict with {FIELDS}")
        tensors = [tf.convert_to_tensor(x["tokens"], tf.string)]
        tensors += [tf.cast(tf.convert_to_tensor(x[k]), tf.int64) for k in INT_FIELDS]
        tensors += [tf.convert_to_tensor(x[k], tf.string) for k in TYPE_FIELDS]

        def run(*values):
            return self.encode(dict(zip(FIELDS, (v.numpy() for v in values))))

        with tf.device("cpu"):
            if tf.executing_eagerly():
                outputs = [tf.constant(a, tf.int32) for a in run(*tensors)]
            else:
                outputs = tf.py_function(run, tensors, [tf.int32] * 3)
                for t in outputs:
                    t.set_shape([None, self.sequence_length])
        features = dict(zip(("token_ids", "segment_ids", "padding_mask"), outputs))
        return keras.utils.pack_x_y_sample_weight(features, y, sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update({"markers": self.markers.to_json(),
                       "sequence_length": self.sequence_length})
        return config

    def save_to_preset(self, preset_dir):
        super().save_to_preset(preset_dir)
        relabel_preset_files(preset_dir, SpanBertBackbone)
