"""The coreference SavedModel: a raw document's sentences in, clusters of character spans out.

Everything the Python prediction path does (`segments.minimize` →
`segments.document_to_features` → the model → `model.predicted_clusters` →
`run.word_clusters`) happens inside the graph, so TF Serving needs nothing else:

1. words: each sentence is split on the basic tokenizer's whitespace
   (`tokenization.WHITESPACE_RANGES`, byte offsets into the sentence), then
   each piece goes through the model's own in-graph BERT tokenizer
   (`BertWordpieceTokenizer.tf_tokenizer()`): its basic-tokenizer words
   (punctuation split off) are the document's words, its wordpieces the
   subtokens (the same rule the Python path applies to `basic_tokenize` words);
2. segments of at most `max_segment_len` subtokens with `[CLS]`/`[SEP]`,
   ending at the last sentence end that fits, else the last word end
   (`segments.split_into_segments`, a `tf.while_loop` here), with the
   official `sentence_map`, `subtoken_map` and speaker ids;
3. the model (`training=False`) and the official cluster decoding: each top
   span joins the cluster of its best antecedent (pointer jumping to the
   first mention), clusters ordered by their first link;
4. word spans through `subtoken_map`, a word span already output dropped,
   clusters left with one mention dropped (`run.word_clusters`).

Signature `serving_default(sentences: string[N])` and
`with_metadata(sentences: string[N], speakers: string[N], genre: string[])`
(the speaker of each sentence, "" = none; the genre as the first two
characters of an OntoNotes doc key, e.g. "nw", others → 0) →
`sentence_index`, `start_char`, `end_char`, `cluster_id` (int32[M], one row
per mention, clusters in order, `sentences[sentence_index][start_char:end_char]`
in Unicode characters) and `text` (string[M], that substring).

Character offsets are exact unless a whitespace-separated piece holds
characters the tokenizer removes or (uncased models) normalizes to a
different length; then the boundaries inside that piece are approximate
(its first and last word still start and end exactly). A mention whose
words run into the next sentence (it starts at a segment's `[CLS]`) ends at
the end of its first sentence.

Bad requests fail inside the graph with an `InvalidArgumentError` naming the
input (no sentences, no words, speakers not one per sentence); dtype and rank
are checked by the signature itself.

Example:
```python
export_coref("runs/coref", "exports/coref/1")
coref = tf.saved_model.load("exports/coref/1").signatures["serving_default"]
out = coref(sentences=tf.constant(["Anna met Tom.", "She liked him."]))
out["text"], out["cluster_id"]   # trained: e.g. [b"Anna", b"She", b"Tom", b"him"], [0, 0, 1, 1]
```
"""

import json
import os

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

import tensorflow as tf

from spanbert_tf.errors import InputError, OutputExistsError
from spanbert_tf.serving.ops import publish_saved_model
from spanbert_tf.modeling import model_dir as model_dir_lib
from spanbert_tf.tasks.coref import segments
from spanbert_tf.tasks.coref.clusters import decode_word_clusters
from spanbert_tf.tasks.coref.config import load_coref_config
from spanbert_tf.tasks.coref.demo_clusters import MODEL_INFO_FILE
from spanbert_tf.tasks.coref.run import CONFIG_FILE, TASK_KIND
from spanbert_tf.serving.words import words_with_offsets
from spanbert_tf.tokenization import BertWordpieceTokenizer
from spanbert_tf.training import finetune

OUTPUT_NAMES = ("sentence_index", "start_char", "end_char", "cluster_id", "text")


def _first_true(mask, axis=-1):
    """Index of the first True along `axis` (the length where there is none)."""
    size = tf.shape(mask, out_type=tf.int32)[axis]
    index = tf.range(size)
    return tf.reduce_min(tf.where(mask, index, size), axis=axis)


class CorefServingModule(tf.Module):
    """Tokenizer + segmenting + coreference model + cluster decoding as one servable module.

    Args:
        model: a `CorefModel` (restored).
        tokenizer: the model dir's `BertWordpieceTokenizer`.
        max_segment_len: wordpieces per segment, `[CLS]`/`[SEP]` included.
        output_singletons: also output kept spans with a positive mention score and
            no antecedent (as `run_coref.py --output_singletons`).

    Example:
    ```python
    module = CorefServingModule(model, tokenizer, max_segment_len=384)
    module.serve(tf.constant(["Anna met Tom.", "She liked him."]))["cluster_id"]
    ```
    """

    def __init__(self, model, tokenizer, max_segment_len, output_singletons=False,
                 max_num_speakers=segments.MAX_NUM_SPEAKERS):
        super().__init__(name="coref")
        if max_segment_len < 3:
            raise InputError(f"max_segment_len must be at least 3, got {max_segment_len}")
        self.model = model
        self.tokenizer = tokenizer.tf_tokenizer()
        self.vocab_file = tf.saved_model.Asset(tokenizer.vocab_file)
        self.cls_id, self.sep_id = int(tokenizer.cls_id), int(tokenizer.sep_id)
        self.max_segment_len = int(max_segment_len)
        self.output_singletons = bool(output_singletons)
        self.max_num_speakers = int(max_num_speakers)
        self.genres = tf.constant(list(segments.GENRES))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sentences")])
    def serve(self, sentences):
        """The default signature: no speakers, genre 0 (`serve_with_metadata`'s graph, so the
        model is traced and stored once)."""
        return self.serve_with_metadata(sentences, tf.fill(tf.shape(sentences), ""),
                                        tf.constant(""))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sentences"),
                                  tf.TensorSpec([None], tf.string, name="speakers"),
                                  tf.TensorSpec([], tf.string, name="genre")])
    def serve_with_metadata(self, sentences, speakers, genre):
        """Like `serve`, with one speaker per sentence and the genre."""
        check = tf.debugging.assert_equal(
            tf.size(speakers), tf.size(sentences),
            message="speakers must have one entry per sentence")
        with tf.control_dependencies([check]):
            prefix = tf.strings.substr(genre, 0, 2)
            found = tf.where(tf.equal(self.genres, prefix))[:, 0]
            genre_id = tf.cast(tf.concat([found, tf.zeros([1], tf.int64)], 0)[0], tf.int32)
            return self._resolve(sentences, speakers, genre_id)

    # === 1. words and wordpieces ===

    def _words(self, sentences):
        """Subtokens and words of the document (`serving.words.words_with_offsets`)."""
        return words_with_offsets(self.tokenizer, sentences)

    # === 2. segments and model features ===

    def _segment_ranges(self, sentence_end, word_end):
        """[S] first and last subtoken of each segment (`segments.split_into_segments`)."""
        n = tf.size(sentence_end)
        room = self.max_segment_len - 2
        window = tf.range(room)

        def body(start, starts, ends):
            limit = tf.minimum(start + room - 1, n - 1)
            positions = start + window
            inside = positions <= limit
            safe = tf.minimum(positions, n - 1)
            # Last sentence end in [start, limit], else last word end (reversed first-true).
            at_sentence = tf.reverse(inside & tf.gather(sentence_end, safe), [0])
            at_word = tf.reverse(inside & tf.gather(word_end, safe), [0])
            check = tf.debugging.Assert(
                tf.reduce_any(at_word),
                [f"a word of more than {room} wordpieces: no segment of "
                 f"{self.max_segment_len} can hold it; it starts at subtoken", start])
            with tf.control_dependencies([check]):
                back = tf.where(tf.reduce_any(at_sentence), _first_true(at_sentence),
                                _first_true(at_word))
            end = start + room - 1 - back
            return end + 1, starts.write(starts.size(), start), ends.write(ends.size(), end)

        _, starts, ends = tf.while_loop(
            lambda start, *_: start < n, body,
            (tf.constant(0), tf.TensorArray(tf.int32, 0, dynamic_size=True),
             tf.TensorArray(tf.int32, 0, dynamic_size=True)))
        return starts.stack(), ends.stack()

    def _speaker_ids(self, names):
        """Official `get_speaker_dict` over the flat speaker names: UNK 0, [SPL] 1, the
        others from 2 in order of appearance while fewer than `max_num_speakers`."""
        unique, index = tf.unique(names)
        special = tf.equal(unique, segments.SPEAKER_UNK) | tf.equal(unique, segments.SPEAKER_SPL)
        rank = 2 + tf.cumsum(tf.cast(~special, tf.int32), exclusive=True)
        ids = tf.where(tf.equal(unique, segments.SPEAKER_SPL), 1,
                       tf.where(special | (rank >= self.max_num_speakers), 0, rank))
        return tf.gather(ids, index)

    def _features(self, doc, speakers, genre_id):
        """The model's features (`segments.document_to_features`) and the flat subtoken map."""
        ids, word = doc["ids"], doc["word"]
        n = tf.size(ids)
        num_words = tf.size(doc["word_sentence"])
        next_word = tf.concat([word[1:], [num_words]], 0)
        word_end = tf.not_equal(word, next_word)
        sentence = tf.gather(doc["word_sentence"], word)
        next_sentence = tf.concat([sentence[1:], [-1]], 0)
        sentence_end = word_end & tf.not_equal(sentence, next_sentence)
        starts, ends = self._segment_ranges(sentence_end, word_end)

        length = self.max_segment_len
        pos = tf.range(length)[None, :]
        count = (ends - starts + 1)[:, None]
        source = tf.clip_by_value(starts[:, None] + pos - 1, 0, n - 1)   # [S, L]
        is_cls, is_sep = tf.equal(pos, 0), tf.equal(pos, count + 1)
        is_piece = (pos >= 1) & (pos <= count)
        input_mask = pos <= count + 1
        input_ids = tf.where(is_piece, tf.gather(ids, source), 0)
        input_ids = tf.where(is_cls, self.cls_id, tf.where(is_sep, self.sep_id, input_ids))

        ends_before = tf.cumsum(tf.cast(sentence_end, tf.int32), exclusive=True)
        ends_through = tf.cumsum(tf.cast(sentence_end, tf.int32))
        last = ends[:, None] + 0 * pos
        previous_word = tf.gather(tf.concat([[0], word], 0), starts)[:, None] + 0 * pos
        first = starts[:, None] + 0 * pos
        sentence_map = tf.where(is_sep, tf.gather(ends_through, last),
                                tf.gather(ends_before, tf.where(is_cls, first, source)))
        subtoken_map = tf.where(is_cls, previous_word,
                                tf.where(is_sep, tf.gather(word, last), tf.gather(word, source)))
        word_speaker = tf.gather(speakers, tf.gather(doc["word_sentence"], word))
        word_speaker = tf.where(tf.equal(word_speaker, ""), segments.NO_SPEAKER, word_speaker)
        names = tf.where(is_piece, tf.gather(word_speaker, source), segments.SPEAKER_SPL)
        flat_names = tf.boolean_mask(names, input_mask)
        speaker_ids = tf.scatter_nd(tf.where(input_mask), self._speaker_ids(flat_names),
                                    tf.shape(input_ids, out_type=tf.int64))
        features = {"input_ids": input_ids, "input_mask": tf.cast(input_mask, tf.int32),
                    "speaker_ids": speaker_ids,
                    "sentence_map": tf.boolean_mask(sentence_map, input_mask),
                    "genre": genre_id}
        return features, tf.boolean_mask(subtoken_map, input_mask)

    def _resolve(self, sentences, speakers, genre_id):
        checks = [tf.debugging.assert_positive(
            tf.size(sentences), message="sentences must hold at least one sentence")]
        with tf.control_dependencies(checks):
            doc = self._words(sentences)
        with tf.control_dependencies([tf.debugging.assert_positive(
                tf.size(doc["ids"]),
                message="sentences hold no words (only whitespace or removed characters)")]):
            features, subtoken_map = self._features(doc, speakers, genre_id)
        outputs = self.model(features, training=False)
        word_start, word_last, cluster = decode_word_clusters(
            outputs, subtoken_map, self.output_singletons)
        sentence = tf.gather(doc["word_sentence"], word_start)
        text_of = tf.gather(sentences, sentence)
        begin = tf.gather(doc["word_begin"], word_start)
        end = tf.where(tf.equal(tf.gather(doc["word_sentence"], word_last), sentence),
                       tf.gather(doc["word_end"], word_last),
                       tf.cast(tf.strings.length(text_of), tf.int64))
        prefix = tf.strings.substr(text_of, tf.zeros_like(begin), begin)
        text = tf.strings.substr(text_of, begin, end - begin)
        start_char = tf.strings.length(prefix, unit="UTF8_CHAR")
        return {"sentence_index": sentence,
                "start_char": start_char,
                "end_char": start_char + tf.strings.length(text, unit="UTF8_CHAR"),
                "cluster_id": cluster,
                "text": text}


def load_coref_model(model_dir, checkpoint=None):
    """(model, tokenizer, `CorefConfig`) of a `run_coref.py` output dir, restored."""
    from spanbert_tf.modeling.backbone import build_backbone
    from spanbert_tf.tasks.coref.model import build_coref_model
    info = model_dir_lib.read_model_dir(model_dir, require_checkpoint=checkpoint is None)
    if not info.task or model_dir_lib.task_kind(info) != TASK_KIND:
        raise InputError(f"{info.model_dir}: not a coreference model dir (a run_coref.py "
                         f"output dir); its config.json task is {info.task}")
    config = load_coref_config(os.path.join(info.model_dir, CONFIG_FILE))
    model = build_coref_model(config, build_backbone(info.config.model))
    model_dir_lib.restore_model(model, checkpoint or info.checkpoint_path)
    tokenizer = BertWordpieceTokenizer(info.vocab_file, do_lower_case=info.do_lower_case)
    return model, tokenizer, config


def export_coref(model_dir, export_dir, checkpoint=None, output_singletons=False,
                 overwrite=False):
    """Writes the coreference SavedModel of `model_dir` to `export_dir` (atomically).

    Signatures "serving_default" (sentences) and "with_metadata" (sentences,
    speakers, genre). Returns `export_dir`.
    """
    export_dir = os.path.abspath(export_dir)
    if os.path.exists(export_dir) and not overwrite:
        raise OutputExistsError(f"{export_dir} exists; choose another --version or pass --overwrite")
    model, tokenizer, config = load_coref_model(model_dir, checkpoint)
    module = CorefServingModule(model, tokenizer, config.coref.max_segment_len,
                                output_singletons=output_singletons)
    signatures = {"serving_default": module.serve.get_concrete_function(),
                  "with_metadata": module.serve_with_metadata.get_concrete_function()}
    info = model_info(model_dir, checkpoint)
    return publish_saved_model(module, export_dir, signatures, overwrite=overwrite,
                               extra_files={MODEL_INFO_FILE: json.dumps(info, indent=2) + "\n"})


def model_info(model_dir, checkpoint=None):
    """What model an export holds: its model dir, checkpoint, step and, when the run kept
    it for its dev score (`kept_checkpoint.json`), that score (else None)."""
    path = checkpoint or model_dir_lib.read_model_dir(model_dir).checkpoint_path
    tail = os.path.basename(str(path)).rsplit("-", 1)[-1]
    kept = finetune.read_kept_record(model_dir)
    if kept is not None and kept["checkpoint"] != os.path.basename(str(path)):
        kept = None                         # another checkpoint than the kept one
    return {"model_dir": os.path.abspath(str(model_dir)),
            "checkpoint": os.path.basename(str(path)),
            "step": int(tail) if tail.isdigit() else None,
            "dev_metric": kept and kept.get("metric"), "dev_value": kept and kept.get("value"),
            "evaluations": kept["evaluations"] if kept else 0}
