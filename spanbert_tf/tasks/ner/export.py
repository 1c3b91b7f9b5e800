"""The entity SavedModel: a raw text in, its entities out (character offsets, type, score).

Everything the Python path (`predict_text`) does happens inside the graph, so TF Serving
needs nothing else (tensorflow-text's ops only, no Python package):

1. words: the text is split on whitespace, then by the model's in-graph BERT tokenizer
   (`serving.words.words_with_offsets`: punctuation split off, wordpieces, byte offsets);
2. sentences: a sentence ends after a word ".", "!" or "?" (not a "." after a title such
   as "Mr", `ABBREVIATIONS`) and at the end of the text;
   each sentence is one window `[CLS] pieces [SEP]` of `max_seq_length` (a sentence of
   more than `max_seq_length - 2` wordpieces is refused with an `InvalidArgumentError`);
3. candidates: every span of <= `max_span_width` words inside a sentence
   (`modeling.span_layers.sentence_span_grid`), scored by the span model;
4. decoding: a candidate whose best class is not "none" is an entity, scored by that
   probability; kept by decreasing score unless it crosses a kept one
   (`select_non_crossing_spans`): nesting kept, partial overlaps never.

Signature `serving_default(text: string[])` -> `start_char`, `end_char` (int32[M],
`text[start_char:end_char]` in Unicode characters, end exclusive), `type` (string[M]),
`score` (float32[M]), `text` (string[M], that substring), entities sorted by (start, end).
Only span models (`--model_type=span`) export.

Example:
```python
export_ner("runs/ner", "exports/ner/1")
ner = tf.saved_model.load("exports/ner/1").signatures["serving_default"]
out = ner(text=tf.constant("Mr. Bennet lived at Longbourn."))
out["text"], out["type"]
```
"""

import os

import numpy as np

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

import tensorflow as tf

from spanbert_tf.errors import InputError, OutputExistsError
from spanbert_tf.modeling import model_dir as model_dir_lib
from spanbert_tf.modeling.span_layers import select_non_crossing_spans, sentence_span_grid
from spanbert_tf.serving.ops import publish_saved_model
from spanbert_tf.serving.words import words_with_offsets
from spanbert_tf.tasks.ner import features as features_lib
from spanbert_tf.tasks.ner.formats import NerDocument
from spanbert_tf.tasks.ner.model import build_ner_model, encode
from spanbert_tf.tasks.ner.run import TASK_KIND, load_model_config
from spanbert_tf.tokenization import BertWordpieceTokenizer

SENTENCE_ENDS = (".", "!", "?")
# A "." after one of these words ends no sentence ("Mr. Bennet").
ABBREVIATIONS = ("Mr", "Mrs", "Ms", "Dr", "St", "Messrs", "Mme", "Jr", "Sr", "Prof", "Capt",
                 "Col", "Gen", "Lt", "Rev", "mr", "mrs", "dr", "st")
OUTPUT_NAMES = ("start_char", "end_char", "type", "score", "text")


def text_words(tf_tokenizer, text):
    """(wordpiece dict of `words_with_offsets`, word strings, sentence of each word)."""
    doc = words_with_offsets(tf_tokenizer, tf.reshape(text, [1]))
    strings = tf.strings.substr(text, doc["word_begin"], doc["word_end"] - doc["word_begin"])
    ends = tf.reduce_any(tf.equal(strings[:, None], tf.constant(SENTENCE_ENDS)[None, :]), 1)
    previous = tf.concat([[""], strings[:-1]], 0)
    after_abbreviation = tf.logical_and(tf.equal(strings, "."), tf.reduce_any(
        tf.equal(previous[:, None], tf.constant(ABBREVIATIONS)[None, :]), 1))
    ends = tf.logical_and(ends, tf.logical_not(after_abbreviation))
    sentence = tf.cumsum(tf.cast(ends, tf.int32), exclusive=True)
    return doc, strings, sentence


def _chars(text, byte_offsets):
    prefixes = tf.strings.substr(tf.fill(tf.shape(byte_offsets), text),
                                 tf.zeros_like(byte_offsets), byte_offsets)
    return tf.strings.length(prefixes, unit="UTF8_CHAR")


class NerServingModule(tf.Module):
    """The served graph (see the module docstring)."""

    def __init__(self, model, tokenizer, types, max_seq_length):
        super().__init__(name="ner")
        self.model = model
        self.tokenizer = tokenizer.tf_tokenizer()
        self.vocab_file = tf.saved_model.Asset(tokenizer.vocab_file)
        self.cls_id, self.sep_id = int(tokenizer.cls_id), int(tokenizer.sep_id)
        self.types = tf.constant(list(types))
        self.max_seq_length = int(max_seq_length)

    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="text")])
    def serve(self, text):
        doc, _, word_sentence = text_words(self.tokenizer, text)
        num_words = tf.size(word_sentence)
        check = tf.debugging.assert_positive(num_words, message="text: no words")
        with tf.control_dependencies([check]):
            piece_word, word_sentence = tf.identity(doc["word"]), tf.identity(word_sentence)
        num_sentences = word_sentence[-1] + 1
        piece_sentence = tf.gather(word_sentence, piece_word)
        pieces = tf.range(tf.size(piece_word))
        first_of_sentence = tf.math.unsorted_segment_min(pieces, piece_sentence, num_sentences)
        position = pieces - tf.gather(first_of_sentence, piece_sentence) + 1     # after [CLS]
        lengths = tf.math.bincount(piece_sentence, minlength=num_sentences)
        room = self.max_seq_length - 2
        fits = tf.debugging.assert_less_equal(
            tf.reduce_max(lengths), room,
            message=f"text: a sentence has more than {room} wordpieces")
        with tf.control_dependencies([fits]):
            index = tf.stack([piece_sentence, position], 1)
        shape = tf.stack([num_sentences, self.max_seq_length])
        rows = tf.range(num_sentences)
        ids = tf.tensor_scatter_nd_update(
            tf.scatter_nd(index, doc["ids"], shape),
            tf.concat([tf.stack([rows, tf.zeros_like(rows)], 1),
                       tf.stack([rows, lengths + 1], 1)], 0),
            tf.concat([tf.fill([num_sentences], self.cls_id),
                       tf.fill([num_sentences], self.sep_id)], 0))
        mask = tf.sequence_mask(lengths + 2, self.max_seq_length, tf.int32)
        tokens = encode(self.model.backbone, {"input_ids": ids, "input_mask": mask})
        tokens = tf.reshape(tokens, [-1, tf.shape(tokens)[-1]])                 # [S * L, H]
        flat = piece_sentence * self.max_seq_length + position                  # into tokens
        word_first = tf.math.unsorted_segment_min(flat, piece_word, num_words)
        word_last = tf.math.unsorted_segment_max(flat, piece_word, num_words)
        grid = sentence_span_grid(word_sentence, self.model.max_span_width)
        starts, ends = grid[:, 0], grid[:, 0] + grid[:, 1]
        logits = self.model.classify_spans(tokens, tf.gather(word_first, starts),
                                           tf.gather(word_last, ends), grid[:, 1])
        probs = tf.nn.softmax(tf.cast(logits, tf.float64), -1)
        label = tf.argmax(probs, -1, output_type=tf.int32)
        score = tf.reduce_max(probs, -1)
        entity = tf.where(label > 0)[:, 0]
        starts, ends = tf.gather(starts, entity), tf.gather(ends, entity)
        score, label = tf.gather(score, entity), tf.gather(label, entity)
        kept = select_non_crossing_spans(score, starts, ends, tf.size(entity),
                                         self.model.max_span_width)
        starts, ends = tf.gather(starts, kept), tf.gather(ends, kept)
        begin = tf.gather(doc["word_begin"], starts)
        end = tf.gather(doc["word_end"], ends)
        return {"start_char": tf.cast(_chars(text, begin), tf.int32),
                "end_char": tf.cast(_chars(text, end), tf.int32),
                "type": tf.gather(self.types, tf.gather(label, kept) - 1),
                "score": tf.cast(tf.gather(score, kept), tf.float32),
                "text": tf.strings.substr(tf.fill(tf.shape(begin), text), begin, end - begin)}


def load_ner_model(model_dir, checkpoint=None):
    """(model, tokenizer, NerConfig, types) of a `run_ner.py` output dir, restored."""
    from spanbert_tf.modeling.backbone import build_backbone

    info = model_dir_lib.read_model_dir(model_dir, require_checkpoint=checkpoint is None)
    if not info.task or model_dir_lib.task_kind(info) != TASK_KIND:
        raise InputError(f"{info.model_dir}: not an NER model dir (a run_ner.py output dir); "
                         f"its config.json task is {info.task}")
    config, types, _ = load_model_config(info.model_dir)
    model = build_ner_model(config, len(types), build_backbone(info.config.model))
    model_dir_lib.restore_model(model, checkpoint or info.checkpoint_path)
    tokenizer = BertWordpieceTokenizer(info.vocab_file, do_lower_case=info.do_lower_case)
    return model, tokenizer, config, types


def predict_text(model, tokenizer, config, types, text):
    """The Python path: the entities of `text` as the SavedModel returns them, a list of
    (start_char, end_char, type, score, text)."""
    doc, strings, sentence = text_words(tokenizer.tf_tokenizer(), tf.constant(text))
    words = [w.decode("utf-8") for w in strings.numpy()]
    sentence = sentence.numpy()
    sentences = [[w for w, s in zip(words, sentence) if s == k]
                 for k in range(int(sentence[-1]) + 1)] if words else []
    document = NerDocument("text", sentences, [[] for _ in sentences])
    head = config.ner
    windows = features_lib.document_windows([document], tokenizer, types, head.max_seq_length,
                                            head.doc_stride, head.max_span_width,
                                            pack_sentences=False)
    arrays = features_lib.window_arrays(windows, "span", head.max_seq_length)
    logits = model({k: arrays[k] for k in arrays if k != "span_labels" and k != "span_mask"},
                   training=False)["span_logits"]
    found = features_lib.span_entities([document], windows, np.asarray(logits), types)[0]
    begin, end = doc["word_begin"].numpy(), doc["word_end"].numpy()
    first = np.concatenate([[0], np.cumsum([len(s) for s in sentences])]).astype(int)
    data = text.encode("utf-8")
    out = []
    for k, entities in enumerate(found):
        for a, b, kind, score in entities:
            lo, hi = int(begin[first[k] + a]), int(end[first[k] + b - 1])
            out.append((len(data[:lo].decode("utf-8")), len(data[:hi].decode("utf-8")), kind,
                        score, data[lo:hi].decode("utf-8")))
    return sorted(out)


def export_ner(model_dir, export_dir, checkpoint=None, overwrite=False):
    """Writes the entity SavedModel of a span-model `model_dir` to `export_dir` (atomically)."""
    export_dir = os.path.abspath(export_dir)
    if os.path.exists(export_dir) and not overwrite:
        raise OutputExistsError(f"{export_dir} exists; choose another --version or pass --overwrite")
    model, tokenizer, config, types = load_ner_model(model_dir, checkpoint)
    if config.ner.model_type != "span":
        raise InputError(f"{model_dir}: a {config.ner.model_type} model; only span models "
                         "(run_ner.py --model_type=span) export")
    module = NerServingModule(model, tokenizer, types, config.ner.max_seq_length)
    signatures = {"serving_default": module.serve.get_concrete_function()}
    return publish_saved_model(module, export_dir, signatures, overwrite=overwrite)
