"""SavedModels for TF Serving and TensorFlow programs without our code.

Four exports, each in TF Serving's layout `<export_dir>/<name>/<version>/`:

- **encoder** — `serving_default(input_word_ids, input_mask, input_type_ids)`
  (int32 `[batch, seq]`, any `seq` ≤ `max_position_embeddings`) →
  `sequence_output [batch, seq, hidden]`, `pooled_output [batch, hidden]`
  (the TF Hub BERT encoder convention).
- **preprocessor** — `serving_default(text_a)` and `pair(text_a, text_b)`
  (string `[batch]`) → `input_word_ids`, `input_mask`, `input_type_ids` (int32
  `[batch, seq_length]`, any `seq_length` ≤ `max_position_embeddings`): BERT
  WordPiece in the graph (tensorflow-text), then `[CLS] a [SEP] (b [SEP])`, the
  longer segment trimmed first, zero-padded. Only core TensorFlow ops plus the
  classic tensorflow-text ops the TF Serving model server links
  (RegexSplitWithOffsets, WordpieceTokenizeWithOffsets, NormalizeUTF8) are used.
  The vocabulary is shipped as `assets/vocab.txt`.
- **pretrainer** — `serving_default` (MLM and SBO log-probabilities over the whole
  vocabulary at given positions) and `top_k(..., span_start, span_end)` (the k best
  ids, tokens and log-probabilities at every position of a masked span): "fill in
  this span from its boundaries". See `pretrainer_serving.py`.
- **text_embedding** — the preprocessor and the encoder in one graph:
  `serving_default(text_a)`, `pair(text_a, text_b)` → `pooled_output`,
  `sequence_output`, `input_mask`. See `text_embedding.py`.

Bad requests (sequence longer than the position table, ids outside the
vocabulary, positions outside the sequence, mismatched shapes) fail inside the
graph with an `InvalidArgumentError` naming the input; dtype and rank are
checked by the signature itself. Every export is checked against the model
server's op set before it is published (`serving_ops.check_serving_ops`).

Example:
```python
paths = export_saved_models("runs/pretrain", "runs/export")
# runs/export/encoder/1, .../preprocessor/1, .../pretrainer/1, .../text_embedding/1
```
"""

import os
import pathlib

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

import tensorflow as tf

from spanbert_tf.errors import InputError, OutputExistsError
from spanbert_tf.tasks.pretraining.pretrainer_serving import DEFAULT_TOP_K, PretrainerModule
from spanbert_tf.serving.inputs import check_encoder_inputs, ids_spec
from spanbert_tf.serving.ops import publish_saved_model
from spanbert_tf.tasks.pretraining.text_embedding import TextEmbeddingModule
from spanbert_tf.tokenization import truncated_pair_lengths
from spanbert_tf.modeling import model_dir as model_dir_lib
from spanbert_tf.tokenization import BertWordpieceTokenizer
from spanbert_tf.io_utils import write_text_atomic

EXPORTS = ("encoder", "preprocessor", "pretrainer", "text_embedding")


class EncoderModule(tf.Module):
    """The backbone behind a TF Hub-style `serving_default` signature.

    Example:
    ```python
    module = EncoderModule(backbone)
    out = module.serve(input_word_ids=ids, input_mask=mask, input_type_ids=types)
    ```
    """

    def __init__(self, backbone):
        super().__init__(name="spanbert_encoder")
        self.backbone = backbone
        self._max_positions = int(backbone.max_sequence_length)
        self._vocab_size = int(backbone.vocabulary_size)
        self._type_vocab_size = int(backbone.num_segments)

    @tf.function(
        input_signature=[
            ids_spec("input_word_ids"), ids_spec("input_mask"), ids_spec("input_type_ids")
        ]
    )
    def serve(self, input_word_ids, input_mask, input_type_ids):
        checks = check_encoder_inputs(
            input_word_ids, input_mask, input_type_ids,
            self._max_positions, self._vocab_size, self._type_vocab_size)
        with tf.control_dependencies(checks):
            outputs = self.backbone(
                {
                    "token_ids": tf.identity(input_word_ids),
                    "segment_ids": input_type_ids,
                    "padding_mask": input_mask,
                },
                training=False,
            )
        return {
            "sequence_output": tf.cast(outputs["sequence_output"], tf.float32),
            "pooled_output": tf.cast(outputs["pooled_output"], tf.float32),
        }


class PreprocessorModule(tf.Module):
    """Raw text → encoder inputs, tokenization in the graph.

    Args:
        tokenizer: a `spanbert_tf.tokenization.BertWordpieceTokenizer`.
        seq_length: length of every output row (trimmed, then zero-padded).

    Example:
    ```python
    pre = PreprocessorModule(BertWordpieceTokenizer("vocab.txt"), seq_length=128)
    pre.pair(text_a=tf.constant(["Who?"]), text_b=tf.constant(["Me."]))
    ```
    """

    def __init__(self, tokenizer, seq_length=128):
        super().__init__(name="spanbert_preprocessor")
        if seq_length < 3:
            raise InputError(f"seq_length must be >= 3 ([CLS] a [SEP] b [SEP]), got {seq_length}")
        self.tokenizer = tokenizer.tf_tokenizer()
        # Shipped as assets/vocab.txt, so clients can map ids back to wordpieces.
        self.vocab_file = tf.saved_model.Asset(tokenizer.vocab_file)
        self._seq_length = int(seq_length)
        self._cls_id = int(tokenizer.cls_id)
        self._sep_id = int(tokenizer.sep_id)

    def _tokenize(self, text):
        return tf.cast(self.tokenizer.tokenize(text).merge_dims(-2, -1), tf.int32)

    def _trim(self, segments):
        """Cuts segments to fit `[CLS] a [SEP] (b [SEP])` in seq_length, in core TF ops.

        As google-research/bert's `_truncate_seq_pair` (`truncated_pair_lengths`).
        (Not tensorflow-text's RoundRobinTrimmer: its op is missing from TF Serving.)
        """
        budget = self._seq_length - len(segments) - 1
        lengths = [tf.cast(s.row_lengths(), tf.int32) for s in segments]
        if len(segments) == 1:
            keep = [tf.minimum(lengths[0], budget)]
        else:
            keep = list(truncated_pair_lengths(lengths[0], lengths[1], budget, ops=tf))
        trimmed = []
        for segment, n, k in zip(segments, lengths, keep):
            mask = tf.ragged.range(n) < tf.expand_dims(k, 1)
            trimmed.append(tf.ragged.boolean_mask(segment, mask))
        return trimmed

    def _pack(self, segments):
        import tensorflow_text as tf_text

        ids, type_ids = tf_text.combine_segments(
            self._trim(segments), start_of_sequence_id=self._cls_id, end_of_segment_id=self._sep_id)
        word_ids, mask = tf_text.pad_model_inputs(ids, max_seq_length=self._seq_length)
        type_ids, _ = tf_text.pad_model_inputs(type_ids, max_seq_length=self._seq_length)
        return {
            "input_word_ids": tf.cast(word_ids, tf.int32),
            "input_mask": tf.cast(mask, tf.int32),
            "input_type_ids": tf.cast(type_ids, tf.int32),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text_a")])
    def single(self, text_a):
        return self._pack([self._tokenize(text_a)])

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="text_a"),
            tf.TensorSpec([None], tf.string, name="text_b"),
        ]
    )
    def pair(self, text_a, text_b):
        checks = [tf.debugging.assert_equal(
            tf.shape(text_a), tf.shape(text_b), message="text_a and text_b must have the same batch size")]
        with tf.control_dependencies(checks):
            return self._pack([self._tokenize(text_a), self._tokenize(text_b)])


def _save_atomically(module, signatures, export_base, version, overwrite):
    """`<export_base>/<version>` through `serving_ops.publish_saved_model`."""
    return publish_saved_model(module, pathlib.Path(export_base) / str(version), signatures,
                               overwrite=overwrite)


def export_encoder(backbone, export_base, version=1, overwrite=False):
    """Writes the encoder SavedModel to `<export_base>/<version>`; returns its path."""
    module = EncoderModule(backbone)
    return _save_atomically(
        module, {"serving_default": module.serve.get_concrete_function()}, export_base, version, overwrite)


def export_preprocessor(tokenizer, export_base, seq_length=128, version=1, overwrite=False):
    """Writes the preprocessor SavedModel (`serving_default` + `pair`); returns its path."""
    module = PreprocessorModule(tokenizer, seq_length)
    signatures = {
        "serving_default": module.single.get_concrete_function(),
        "pair": module.pair.get_concrete_function(),
    }
    return _save_atomically(module, signatures, export_base, version, overwrite)


def export_pretrainer(pretrainer, export_base, vocab_file, top_k=DEFAULT_TOP_K, version=1,
                      overwrite=False):
    """Writes the MLM + SBO SavedModel (`serving_default` + `top_k`); returns its path."""
    module = PretrainerModule(pretrainer, vocab_file, top_k)
    signatures = {
        "serving_default": module.serve.get_concrete_function(),
        "top_k": module.top_k.get_concrete_function(),
    }
    return _save_atomically(module, signatures, export_base, version, overwrite)


def export_text_embedding(backbone, tokenizer, export_base, seq_length=128, version=1,
                          overwrite=False):
    """Writes the one-step text → embedding SavedModel (`serving_default` + `pair`)."""
    module = TextEmbeddingModule(PreprocessorModule(tokenizer, seq_length), EncoderModule(backbone))
    signatures = {
        "serving_default": module.single.get_concrete_function(),
        "pair": module.pair.get_concrete_function(),
    }
    return _save_atomically(module, signatures, export_base, version, overwrite)


def export_saved_models(model_dir, export_dir, checkpoint=None, version=1, seq_length=128,
                        exports=EXPORTS, overwrite=False, progress=None, top_k=DEFAULT_TOP_K):
    """Exports a model dir's checkpoint as SavedModels; returns {name: path}.

    Args:
        model_dir: a model dir (config.json + vocab.txt + checkpoints).
        export_dir: base directory; writes `<export_dir>/<name>/<version>/`.
        checkpoint: checkpoint prefix; default the latest in `model_dir`.
        version: TF Serving version number (positive int).
        seq_length: the output length of the preprocessor and of text_embedding (any
            length in [3, max_position_embeddings]).
        exports: any of "encoder", "preprocessor", "pretrainer", "text_embedding".
        overwrite: replace an existing `<name>/<version>`.
        progress: optional callable given one line per step (e.g. `print`).
        top_k: predictions per position of the pretrainer's `top_k` signature.
    """
    progress = progress or (lambda line: None)
    from spanbert_tf.modeling.pretrainer import build_pretrainer

    unknown = sorted(set(exports) - set(EXPORTS))
    if unknown or not exports:
        raise InputError(f"exports must be a non-empty subset of {EXPORTS}, got {list(exports)}")
    if int(version) < 1:
        raise InputError(f"version must be a positive integer, got {version}")
    info = model_dir_lib.read_model_dir(model_dir, require_checkpoint=checkpoint is None)
    max_positions = info.config.model.max_position_embeddings
    if not 3 <= seq_length <= max_positions:
        raise InputError(
            f"seq_length must be in [3, {max_positions}] (max_position_embeddings of "
            f"{info.model_dir}/config.json), got {seq_length}")
    vocab_size = info.config.model.vocab_size
    if "pretrainer" in exports and not 1 <= top_k <= vocab_size:
        raise InputError(f"top_k must be in [1, {vocab_size}] (vocab_size of "
                         f"{info.model_dir}/config.json), got {top_k}")
    for name in exports:
        existing = os.path.join(export_dir, name, str(version))
        if os.path.exists(existing) and not overwrite:
            raise OutputExistsError(f"{existing} exists; choose another --version or pass --overwrite")
    paths = {}
    tokenizer = BertWordpieceTokenizer(info.vocab_file, info.do_lower_case)
    if {"encoder", "pretrainer", "text_embedding"} & set(exports):
        model = build_pretrainer(info.config, dtype="float32")
        checkpoint = checkpoint or info.checkpoint_path
        progress(f"restoring {checkpoint}")
        if "pretrainer" in exports:
            model_dir_lib.restore_model(model, checkpoint)
        else:
            model_dir_lib.restore_backbone(model.backbone, checkpoint)
        if "encoder" in exports:
            progress("writing encoder")
            paths["encoder"] = export_encoder(
                model.backbone, os.path.join(export_dir, "encoder"), version, overwrite)
        if "pretrainer" in exports:
            progress(f"writing pretrainer (top_k={top_k})")
            paths["pretrainer"] = export_pretrainer(
                model, os.path.join(export_dir, "pretrainer"), info.vocab_file, top_k, version,
                overwrite)
        if "text_embedding" in exports:
            progress(f"writing text_embedding (seq_length={seq_length})")
            paths["text_embedding"] = export_text_embedding(
                model.backbone, tokenizer, os.path.join(export_dir, "text_embedding"), seq_length,
                version, overwrite)
    if "preprocessor" in exports:
        progress(f"writing preprocessor (seq_length={seq_length}, do_lower_case={info.do_lower_case})")
        paths["preprocessor"] = export_preprocessor(
            tokenizer, os.path.join(export_dir, "preprocessor"), seq_length, version, overwrite)
    write_model_server_config(export_dir)
    return paths


def write_model_server_config(export_dir, mount="/models"):
    """Writes `<export_dir>/models.config` for `tensorflow_model_server --model_config_file`.

    Lists every model exported in `export_dir` (a folder holding a numbered version
    with a `saved_model.pb`: these exports, `coref`, or any other written there),
    with base paths as seen inside a container that mounts `export_dir` at `mount`.
    """
    names = sorted(
        name for name in os.listdir(export_dir)
        if os.path.isdir(os.path.join(export_dir, name)) and any(
            version.isdigit() and os.path.isfile(
                os.path.join(export_dir, name, version, "saved_model.pb"))
            for version in os.listdir(os.path.join(export_dir, name))))
    entries = [
        f'  config {{ name: "{name}" base_path: "{mount}/{name}" model_platform: "tensorflow" }}'
        for name in names
    ]
    path = os.path.join(export_dir, "models.config")
    write_text_atomic(path, "model_config_list {\n" + "\n".join(entries) + "\n}\n")
    return path
