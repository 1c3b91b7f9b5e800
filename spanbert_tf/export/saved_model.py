"""SavedModels for TF Serving and TensorFlow programs without our code.

Three exports, each in TF Serving's layout `<export_dir>/<name>/<version>/`:

- **encoder** — `serving_default(input_word_ids, input_mask, input_type_ids)`
  (int32 `[batch, seq]`, any `seq` ≤ `max_position_embeddings`) →
  `sequence_output [batch, seq, hidden]`, `pooled_output [batch, hidden]`
  (the TF Hub BERT encoder convention).
- **preprocessor** — `serving_default(text_a)` and `pair(text_a, text_b)`
  (string `[batch]`) → `input_word_ids`, `input_mask`, `input_type_ids` (int32
  `[batch, seq_length]`): BERT WordPiece in the graph (tensorflow-text), then
  `[CLS] a [SEP] (b [SEP])`, the longer segment trimmed first, zero-padded.
  Only core TensorFlow ops plus the three tensorflow-text ops the TF Serving
  model server links (RegexSplitWithOffsets, WordpieceTokenizeWithOffsets,
  NormalizeUTF8) are used.
  The vocabulary is shipped as `assets/vocab.txt`.
- **pretrainer** — `serving_default(input_word_ids, input_mask, input_type_ids,
  masked_lm_positions, span_left_positions, span_right_positions,
  span_relative_positions)` (int32; the last four `[batch, num_predictions]`) →
  `mlm_log_probs`, `sbo_log_probs` `[batch, num_predictions, vocab]`: the MLM and
  Span Boundary Objective predictions, i.e. "fill in this span from its
  boundaries".

Bad requests (sequence longer than the position table, ids outside the
vocabulary, positions outside the sequence, mismatched shapes) fail inside the
graph with an `InvalidArgumentError` naming the input; dtype and rank are
checked by the signature itself.

Example:
```python
paths = export_saved_models("runs/pretrain", "runs/export")
# runs/export/encoder/1, runs/export/preprocessor/1, runs/export/pretrainer/1
```
"""

import os
import pathlib
import shutil
import tempfile

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

import tensorflow as tf

from spanbert_tf.export.serving_ops import check_serving_ops
from spanbert_tf.tokenization import truncated_pair_lengths

EXPORTS = ("encoder", "preprocessor", "pretrainer")
PRETRAINER_INPUTS = (
    "masked_lm_positions",
    "span_left_positions",
    "span_right_positions",
    "span_relative_positions",
)


def _ids_spec(name):
    return tf.TensorSpec([None, None], tf.int32, name=name)


def _check_inputs(input_word_ids, input_mask, input_type_ids, max_positions, vocab_size, type_vocab_size):
    """Graph-side validation of the three encoder inputs; returns the assert ops."""
    seq = tf.shape(input_word_ids)[1]
    return [
        tf.debugging.assert_equal(
            tf.shape(input_mask), tf.shape(input_word_ids),
            message="input_mask must have the shape of input_word_ids"),
        tf.debugging.assert_equal(
            tf.shape(input_type_ids), tf.shape(input_word_ids),
            message="input_type_ids must have the shape of input_word_ids"),
        tf.debugging.assert_less_equal(
            seq, tf.constant(max_positions, tf.int32),
            message=f"sequence length exceeds the position table ({max_positions} positions)"),
        tf.debugging.assert_non_negative(input_word_ids, message="input_word_ids must be >= 0"),
        tf.debugging.assert_less(
            input_word_ids, tf.constant(vocab_size, tf.int32),
            message=f"input_word_ids must be < vocab_size ({vocab_size})"),
        tf.debugging.assert_non_negative(input_type_ids, message="input_type_ids must be >= 0"),
        tf.debugging.assert_less(
            input_type_ids, tf.constant(type_vocab_size, tf.int32),
            message=f"input_type_ids must be < type_vocab_size ({type_vocab_size})"),
    ]


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
            _ids_spec("input_word_ids"), _ids_spec("input_mask"), _ids_spec("input_type_ids")
        ]
    )
    def serve(self, input_word_ids, input_mask, input_type_ids):
        checks = _check_inputs(
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
            raise ValueError(f"seq_length must be >= 3 ([CLS] a [SEP] b [SEP]), got {seq_length}")
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


class PretrainerModule(tf.Module):
    """MLM + SBO log-probabilities at given positions (span filling).

    Example:
    ```python
    module = PretrainerModule(pretrainer)
    out = module.serve(input_word_ids=ids, input_mask=mask, input_type_ids=types,
                       masked_lm_positions=pos, span_left_positions=left,
                       span_right_positions=right, span_relative_positions=rel)
    out["sbo_log_probs"]   # [batch, num_predictions, vocab]
    ```
    """

    def __init__(self, pretrainer):
        super().__init__(name="spanbert_pretrainer")
        self.pretrainer = pretrainer
        backbone = pretrainer.backbone
        self._max_positions = int(backbone.max_sequence_length)
        self._vocab_size = int(backbone.vocabulary_size)
        self._type_vocab_size = int(backbone.num_segments)
        self._max_pair_targets = int(pretrainer.max_pair_targets)

    @tf.function(
        input_signature=[_ids_spec(n) for n in ("input_word_ids", "input_mask", "input_type_ids")]
        + [_ids_spec(n) for n in PRETRAINER_INPUTS]
    )
    def serve(self, input_word_ids, input_mask, input_type_ids, masked_lm_positions,
              span_left_positions, span_right_positions, span_relative_positions):
        seq = tf.shape(input_word_ids)[1]
        checks = _check_inputs(
            input_word_ids, input_mask, input_type_ids,
            self._max_positions, self._vocab_size, self._type_vocab_size)
        for name, value in (
            ("masked_lm_positions", masked_lm_positions),
            ("span_left_positions", span_left_positions),
            ("span_right_positions", span_right_positions),
        ):
            checks += [
                tf.debugging.assert_equal(
                    tf.shape(value), tf.shape(masked_lm_positions),
                    message=f"{name} must have the shape of masked_lm_positions"),
                tf.debugging.assert_equal(
                    tf.shape(value)[0], tf.shape(input_word_ids)[0],
                    message=f"{name} must have the batch size of input_word_ids"),
                tf.debugging.assert_non_negative(value, message=f"{name} must be >= 0"),
                tf.debugging.assert_less(value, seq, message=f"{name} must be < the sequence length"),
            ]
        checks += [
            tf.debugging.assert_equal(
                tf.shape(span_relative_positions), tf.shape(masked_lm_positions),
                message="span_relative_positions must have the shape of masked_lm_positions"),
            tf.debugging.assert_non_negative(
                span_relative_positions, message="span_relative_positions must be >= 0"),
            tf.debugging.assert_less(
                span_relative_positions, tf.constant(self._max_pair_targets, tf.int32),
                message=f"span_relative_positions must be < max_pair_targets ({self._max_pair_targets})"),
        ]
        with tf.control_dependencies(checks):
            ones = tf.ones(tf.shape(masked_lm_positions), tf.float32)
            features = {
                "input_ids": tf.identity(input_word_ids),
                "input_mask": input_mask,
                "segment_ids": input_type_ids,
                "masked_lm_positions": masked_lm_positions,
                "masked_lm_ids": tf.zeros_like(masked_lm_positions),
                "masked_lm_weights": ones,
                "span_left_positions": span_left_positions,
                "span_right_positions": span_right_positions,
                "span_relative_positions": span_relative_positions,
                "sbo_weights": ones,
            }
            outputs = self.pretrainer(features, training=False)
        return {
            "mlm_log_probs": tf.nn.log_softmax(tf.cast(outputs["mlm_logits"], tf.float32)),
            "sbo_log_probs": tf.nn.log_softmax(tf.cast(outputs["sbo_logits"], tf.float32)),
        }


def _save_atomically(module, signatures, export_base, version, overwrite):
    """Saves to a hidden temp dir next to `<export_base>/<version>`, then renames.

    TF Serving polls for numeric version dirs, so it never sees a partial export, nor
    one with ops its model server lacks (`serving_ops.check_serving_ops`).
    """
    export_base = pathlib.Path(export_base)
    export_base.mkdir(parents=True, exist_ok=True)
    final = export_base / str(version)
    if final.exists():
        if not overwrite:
            raise FileExistsError(f"{final} exists; choose another --version or pass --overwrite")
    tmp = tempfile.mkdtemp(dir=export_base, prefix=f".tmp-{version}-")
    try:
        tf.saved_model.save(module, tmp, signatures=signatures)
        check_serving_ops(tmp, name=str(final))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return str(final)


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


def export_pretrainer(pretrainer, export_base, version=1, overwrite=False):
    """Writes the MLM + SBO SavedModel to `<export_base>/<version>`; returns its path."""
    module = PretrainerModule(pretrainer)
    return _save_atomically(
        module, {"serving_default": module.serve.get_concrete_function()}, export_base, version, overwrite)


def export_saved_models(model_dir, export_dir, checkpoint=None, version=1, seq_length=128,
                        exports=EXPORTS, overwrite=False, progress=None):
    """Exports a model dir's checkpoint as SavedModels; returns {name: path}.

    Args:
        model_dir: a model dir (config.json + vocab.txt + checkpoints).
        export_dir: base directory; writes `<export_dir>/<name>/<version>/`.
        checkpoint: checkpoint prefix; default the latest in `model_dir`.
        version: TF Serving version number (positive int).
        seq_length: the preprocessor's output length (≤ max_position_embeddings).
        exports: any of "encoder", "preprocessor", "pretrainer".
        overwrite: replace an existing `<name>/<version>`.
        progress: optional callable given one line per step (e.g. `print`).
    """
    progress = progress or (lambda line: None)
    from spanbert_tf.modeling import model_dir as model_dir_lib
    from spanbert_tf.modeling.pretrainer import build_pretrainer
    from spanbert_tf.tokenization import BertWordpieceTokenizer

    unknown = sorted(set(exports) - set(EXPORTS))
    if unknown or not exports:
        raise ValueError(f"exports must be a non-empty subset of {EXPORTS}, got {list(exports)}")
    if int(version) < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    info = model_dir_lib.read_model_dir(model_dir, require_checkpoint=checkpoint is None)
    max_positions = info.config.model.max_position_embeddings
    if not 3 <= seq_length <= max_positions:
        raise ValueError(
            f"seq_length must be in [3, {max_positions}] (max_position_embeddings of "
            f"{info.model_dir}/config.json), got {seq_length}")
    for name in exports:
        existing = os.path.join(export_dir, name, str(version))
        if os.path.exists(existing) and not overwrite:
            raise FileExistsError(f"{existing} exists; choose another --version or pass --overwrite")
    paths = {}
    if "encoder" in exports or "pretrainer" in exports:
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
            progress("writing pretrainer")
            paths["pretrainer"] = export_pretrainer(
                model, os.path.join(export_dir, "pretrainer"), version, overwrite)
    if "preprocessor" in exports:
        progress(f"writing preprocessor (seq_length={seq_length}, do_lower_case={info.do_lower_case})")
        tokenizer = BertWordpieceTokenizer(info.vocab_file, info.do_lower_case)
        paths["preprocessor"] = export_preprocessor(
            tokenizer, os.path.join(export_dir, "preprocessor"), seq_length, version, overwrite)
    write_model_server_config(export_dir)
    return paths


def write_model_server_config(export_dir, mount="/models"):
    """Writes `<export_dir>/models.config` for `tensorflow_model_server --model_config_file`.

    Lists every exported model found in `export_dir`, with base paths as seen
    inside a container that mounts `export_dir` at `mount`.
    """
    from spanbert_tf.io_utils import write_text_atomic

    entries = [
        f'  config {{ name: "{name}" base_path: "{mount}/{name}" model_platform: "tensorflow" }}'
        for name in EXPORTS
        if os.path.isdir(os.path.join(export_dir, name))
    ]
    path = os.path.join(export_dir, "models.config")
    write_text_atomic(path, "model_config_list {\n" + "\n".join(entries) + "\n}\n")
    return path
