"""TF Serving SavedModel of a fine-tuned classifier: raw text in, label out.

The whole input pipeline runs in the graph (tensorflow-text WordPiece with the
model dir's vocabulary and casing), so clients send strings:

- single-sentence GLUE tasks: `serving_default(sentence: string[B])`;
- sentence pairs: `serving_default(sentence1: string[B], sentence2: string[B])`,
  packed `[CLS] a [SEP] b [SEP]`, cut longest-first as in Python;
- TACRED: `serving_default(tokens: string[B, T] (padded with ""),
  subj_start, subj_end, obj_start, obj_end: int32[B], subj_type, obj_type: string[B])`,
  mentions replaced by the saved entity markers (unknown type -> untyped marker,
  else [UNK]); an empty type means the untyped `[SUBJ]` / `[OBJ]`.

Outputs: `probabilities` float32[B, C], `label` string[B], `label_id` int32[B];
STS-B: `score` float32[B]. A second signature, `encode`, takes the same
inputs and returns the model inputs (`token_ids`, `segment_ids`,
`padding_mask`), for checking the in-graph tokenization.

Example:
```python
export_classifier("runs/rte", "exports/rte")
served = tf.saved_model.load("exports/rte").signatures["serving_default"]
served(sentence1=tf.constant(["A man sleeps."]), sentence2=tf.constant(["Nobody sleeps."]))
```
"""

import spanbert_tf  # noqa: F401  (sets KERAS_BACKEND before keras is imported)

import numpy as np
import tensorflow as tf

from spanbert_tf.errors import InputError
from spanbert_tf.serving.ops import publish_saved_model
from spanbert_tf.modeling import model_dir as model_dir_lib
from spanbert_tf.tasks.classification.task import ClassificationTask
from spanbert_tf.tasks.classification import glue
from spanbert_tf.tasks.classification import tacred
from spanbert_tf.tokenization import BertWordpieceTokenizer, truncated_pair_lengths


def _keep_first(ragged, lengths):
    """Per-row prefix of a 2-D ragged tensor."""
    positions = tf.ragged.range(ragged.row_lengths())
    return tf.ragged.boolean_mask(ragged, positions < tf.expand_dims(lengths, 1))


def _column(batch_size, value):
    return tf.RaggedTensor.from_row_lengths(
        tf.fill([batch_size], tf.cast(value, tf.int64)), tf.ones([batch_size], tf.int64))


class ClassifierServingModule(tf.Module):
    """Tokenizer + classifier + label names as one servable module."""

    def __init__(self, model, tokenizer, meta):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer.tf_tokenizer()
        self.meta = dict(meta)
        self.max_seq_length = int(meta["max_seq_length"])
        self.cls_id, self.sep_id = tokenizer.cls_id, tokenizer.sep_id
        self.unk_id = tokenizer.unk_id
        labels = meta["labels"]
        self.label_names = None if labels is None else tf.constant(labels)
        if meta["name"] == "tacred":
            markers = tacred.TacredMarkers.from_json(meta["markers"])
            ids = markers.ids(tokenizer)
            self.marker_table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(list(ids)), tf.constant(list(ids.values()), tf.int64)), -1)
            self.subj_default = ids.get("[SUBJ]", self.unk_id)
            self.obj_default = ids.get("[OBJ]", self.unk_id)
            self.ptb_table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(list(tacred.PTB_BRACKETS)),
                    tf.constant(list(tacred.PTB_BRACKETS.values()))), "")

    def _pieces(self, texts):
        return self.tokenizer.tokenize(texts).merge_dims(-2, -1)

    def _dense(self, ragged_ids, ragged_segments):
        shape = [None, self.max_seq_length]
        return {
            "token_ids": tf.cast(ragged_ids.to_tensor(0, shape=shape), tf.int32),
            "segment_ids": tf.cast(ragged_segments.to_tensor(0, shape=shape), tf.int32),
            "padding_mask": tf.cast(
                tf.ones_like(ragged_ids).to_tensor(0, shape=shape), tf.int32),
        }

    def classify(self, inputs):
        logits = tf.cast(self.model(inputs, training=False)["logits"], tf.float32)
        if self.label_names is None:
            return {"score": logits[:, 0]}
        probs = tf.nn.softmax(logits, axis=-1)
        label_id = tf.argmax(probs, axis=-1, output_type=tf.int32)
        return {"probabilities": probs, "label_id": label_id,
                "label": tf.gather(self.label_names, label_id)}

    def encode_single(self, sentence):
        a = self._pieces(sentence)
        batch = tf.shape(sentence, out_type=tf.int64)[0]
        a = _keep_first(a, tf.minimum(a.row_lengths(), self.max_seq_length - 2))
        ids = tf.concat([_column(batch, self.cls_id), a, _column(batch, self.sep_id)], axis=1)
        return self._dense(ids, tf.zeros_like(ids))

    def encode_pair(self, sentence1, sentence2):
        a, b = self._pieces(sentence1), self._pieces(sentence2)
        batch = tf.shape(sentence1, out_type=tf.int64)[0]
        la, lb = truncated_pair_lengths(
            a.row_lengths(), b.row_lengths(), tf.constant(self.max_seq_length - 3, tf.int64),
            ops=tf)
        a, b = _keep_first(a, la), _keep_first(b, lb)
        cls, sep = _column(batch, self.cls_id), _column(batch, self.sep_id)
        first = tf.concat([cls, a, sep], axis=1)
        second = tf.concat([b, sep], axis=1)
        ids = tf.concat([first, second], axis=1)
        segments = tf.concat([tf.zeros_like(first), tf.ones_like(second)], axis=1)
        return self._dense(ids, segments)

    def _marker_ids(self, prefix, types, default):
        keys = tf.where(tf.strings.length(types) > 0,
                        tf.strings.join([f"[{prefix}-", types, "]"]), f"[{prefix}]")
        found = self.marker_table.lookup(keys)
        return tf.where(found >= 0, found, tf.cast(default, tf.int64))

    def encode_relation(self, tokens, subj_start, subj_end, obj_start, obj_end,
                          subj_type, obj_type):
        batch = tf.shape(tokens, out_type=tf.int64)[0]
        width = tf.shape(tokens, out_type=tf.int64)[1]
        mapped = self.ptb_table.lookup(tf.strings.lower(tokens))
        words = tf.where(tf.strings.length(mapped) > 0, mapped, tokens)
        pieces = self._pieces(tf.reshape(words, [-1]))               # [B*T, (p)]
        pos = tf.tile(tf.range(width)[tf.newaxis, :], [batch, 1])
        col = lambda v: tf.cast(v, tf.int64)[:, tf.newaxis]          # noqa: E731
        in_subj = (pos >= col(subj_start)) & (pos <= col(subj_end))
        in_obj = (pos >= col(obj_start)) & (pos <= col(obj_end))
        keep = tf.reshape(~(in_subj | in_obj), [-1])
        piece_keep = tf.gather(keep, pieces.value_rowids())
        kept = tf.RaggedTensor.from_row_lengths(
            tf.boolean_mask(pieces.flat_values, piece_keep),
            tf.math.bincount(tf.boolean_mask(pieces.value_rowids(), piece_keep),
                             minlength=batch * width, maxlength=batch * width,
                             dtype=tf.int64))
        subj_here = tf.reshape(pos == col(subj_start), [-1])
        obj_here = tf.reshape(pos == col(obj_start), [-1])
        subj_ids = tf.reshape(tf.tile(self._marker_ids("SUBJ", subj_type, self.subj_default)
                                      [:, tf.newaxis], [1, width]), [-1])
        obj_ids = tf.reshape(tf.tile(self._marker_ids("OBJ", obj_type, self.obj_default)
                                     [:, tf.newaxis], [1, width]), [-1])
        subj_part = tf.RaggedTensor.from_row_lengths(
            tf.boolean_mask(subj_ids, subj_here), tf.cast(subj_here, tf.int64))
        obj_part = tf.RaggedTensor.from_row_lengths(
            tf.boolean_mask(obj_ids, obj_here), tf.cast(obj_here, tf.int64))
        per_token = tf.concat([subj_part, obj_part, kept], axis=1)   # [B*T, (p)]
        body = tf.RaggedTensor.from_uniform_row_length(per_token, width).merge_dims(1, 2)
        ids = tf.concat([_column(batch, self.cls_id), body, _column(batch, self.sep_id)], axis=1)
        # As officially: [CLS] ... [SEP] cut to max_seq_length (to_tensor truncates).
        return self._dense(ids, tf.zeros_like(ids))


def _signatures(module, meta):
    """{"serving_default": text -> label, "encode": text -> model inputs}."""
    if meta["name"] == "tacred":
        ints = tf.TensorSpec([None], tf.int32)
        strs = tf.TensorSpec([None], tf.string)
        specs = [tf.TensorSpec([None, None], tf.string), ints, ints, ints, ints, strs, strs]

        def serve(tokens, subj_start, subj_end, obj_start, obj_end, subj_type, obj_type):
            return module.classify(module.encode_relation(
                tokens, subj_start, subj_end, obj_start, obj_end, subj_type, obj_type))

        encode = module.encode_relation
    elif glue.get_glue_task(meta["name"]).is_pair:
        specs = [tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.string)]

        def serve(sentence1, sentence2):
            return module.classify(module.encode_pair(sentence1, sentence2))

        encode = module.encode_pair
    else:
        specs = [tf.TensorSpec([None], tf.string)]

        def serve(sentence):
            return module.classify(module.encode_single(sentence))

        encode = module.encode_single
    return {"serving_default": tf.function(serve, input_signature=specs),
            "encode": tf.function(encode, input_signature=specs)}


def load_classifier(model_dir):
    """(model, tokenizer, task metadata) of a fine-tuned classifier model dir."""
    info = model_dir_lib.read_model_dir(model_dir)
    meta = info.task
    if not meta or model_dir_lib.task_kind(meta) != "classification":
        raise InputError(f"{info.model_dir}: config.json has no classification 'task' "
                         "(not a run_classifier.py output dir)")
    labels = meta["labels"]
    task = ClassificationTask(
        info.config.model, 1 if labels is None else len(labels), is_regression=labels is None,
        dtype="float32")
    model = task.build_model()
    model_dir_lib.restore_model(model, info.checkpoint_path)
    tokenizer = BertWordpieceTokenizer(info.vocab_file, do_lower_case=info.do_lower_case)
    return model, tokenizer, meta


def export_classifier(model_dir, export_dir):
    """Writes the serving SavedModel of `model_dir` to `export_dir` (atomically).

    Signatures: "serving_default" (text -> probabilities, label, label_id; STS-B:
    score) and "encode" (text -> token_ids, segment_ids, padding_mask).
    Returns `export_dir`. Raises `serving_ops.UnservableOpsError` (and writes nothing)
    when the graph uses ops that TF Serving's model server lacks.
    """
    model, tokenizer, meta = load_classifier(model_dir)
    module = ClassifierServingModule(model, tokenizer, meta)
    signatures = _signatures(module, meta)
    module.serve, module.encode = signatures["serving_default"], signatures["encode"]
    return publish_saved_model(module, export_dir, signatures)


def serve_examples(export_dir, examples, task_name,
                   signatures=("serving_default", "encode")):
    """Loads an export and calls its `signatures` on `examples` (GLUE or TACRED).

    Returns one dict of numpy arrays: every output of every signature.
    """
    loaded = tf.saved_model.load(export_dir)
    if task_name == "tacred":
        width = max(len(ex.tokens) for ex in examples)
        tokens = np.array([ex.tokens + [""] * (width - len(ex.tokens)) for ex in examples],
                          dtype=object)
        kwargs = {"tokens": tf.constant(tokens)}
        for key in ("subj_start", "subj_end", "obj_start", "obj_end"):
            kwargs[key] = tf.constant([getattr(ex, key) for ex in examples], tf.int32)
        for key in ("subj_type", "obj_type"):
            kwargs[key] = tf.constant([getattr(ex, key) or "" for ex in examples])
    elif examples[0].text_b is not None:
        kwargs = {"sentence1": tf.constant([ex.text_a for ex in examples]),
                  "sentence2": tf.constant([ex.text_b for ex in examples])}
    else:
        kwargs = {"sentence": tf.constant([ex.text_a for ex in examples])}
    out = {}
    for name in signatures:
        out.update({k: v.numpy() for k, v in loaded.signatures[name](**kwargs).items()})
    return out
