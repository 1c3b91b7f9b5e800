"""The pretrainer SavedModel's signatures: MLM + SBO predictions at masked positions.

- `serving_default(input_word_ids, input_mask, input_type_ids, masked_lm_positions,
  span_left_positions, span_right_positions, span_relative_positions)` →
  `mlm_log_probs`, `sbo_log_probs` float32 `[batch, num_predictions, vocab]`: every
  position, every wordpiece (the training-time inputs; large answers).
- `top_k(input_word_ids, input_mask, input_type_ids, span_start, span_end)`: the masked span
  is given by its first and last position (int32 `[batch]`, inclusive); every position of
  it is predicted, from the whole context (MLM) and from the span's two boundary tokens
  `span_start - 1`, `span_end + 1` and the offset inside the span (SBO). Returns the k
  best wordpieces per position: `positions` int32 `[batch, P]` (P = the longest span of
  the batch; -1 pads shorter spans), `mlm_top_ids` int32, `mlm_top_tokens` string,
  `mlm_top_log_probs` float32 `[batch, P, k]`, and the same for `sbo_` (padding: id -1,
  token "", log-prob 0). k is fixed at export (`top_k`, default 5).

Example:
```python
module = PretrainerModule(pretrainer, vocab_file="vocab.txt", top_k=5)
# "The [MASK] [MASK] is red": the span is positions 2..3.
out = module.top_k(input_word_ids=ids, input_mask=mask, input_type_ids=types,
                   span_start=tf.constant([2]), span_end=tf.constant([3]))
out["sbo_top_tokens"]   # [1, 2, 5]
```
"""

import tensorflow as tf

from spanbert_tf.errors import InputError
from spanbert_tf.serving.inputs import check_encoder_inputs, ids_spec

PRETRAINER_INPUTS = (
    "masked_lm_positions",
    "span_left_positions",
    "span_right_positions",
    "span_relative_positions",
)
DEFAULT_TOP_K = 5


def read_vocab(vocab_file):
    """The wordpieces of a vocab.txt, one a line, in id order."""
    with open(vocab_file, encoding="utf-8") as f:
        return [line.rstrip("\r\n") for line in f]


class PretrainerModule(tf.Module):
    """MLM + SBO predictions at given positions (span filling), two signatures.

    Args:
        pretrainer: a `spanbert_tf.modeling.pretrainer` model (backbone + MLM + SBO heads).
        vocab_file: its vocab.txt (ids → tokens in `top_k`; shipped as `assets/vocab.txt`).
        top_k: how many predictions `top_k` returns per position.

    Example:
    ```python
    module = PretrainerModule(pretrainer, "vocab.txt")
    out = module.serve(input_word_ids=ids, input_mask=mask, input_type_ids=types,
                       masked_lm_positions=pos, span_left_positions=left,
                       span_right_positions=right, span_relative_positions=rel)
    out["sbo_log_probs"]   # [batch, num_predictions, vocab]
    ```
    """

    def __init__(self, pretrainer, vocab_file, top_k=DEFAULT_TOP_K):
        super().__init__(name="spanbert_pretrainer")
        self.pretrainer = pretrainer
        backbone = pretrainer.backbone
        self._max_positions = int(backbone.max_sequence_length)
        self._vocab_size = int(backbone.vocabulary_size)
        self._type_vocab_size = int(backbone.num_segments)
        self._max_pair_targets = int(pretrainer.max_pair_targets)
        vocab = read_vocab(vocab_file)
        if len(vocab) != self._vocab_size:
            raise InputError(f"{vocab_file}: {len(vocab)} wordpieces, but the model's vocab_size "
                             f"is {self._vocab_size}")
        if not 1 <= int(top_k) <= self._vocab_size:
            raise InputError(f"top_k must be in [1, {self._vocab_size}] (the vocabulary), got {top_k}")
        self._k = int(top_k)
        self.vocab_file = tf.saved_model.Asset(vocab_file)
        self._tokens = tf.constant(vocab, tf.string)

    def _encoder_checks(self, input_word_ids, input_mask, input_type_ids):
        return check_encoder_inputs(input_word_ids, input_mask, input_type_ids,
                                    self._max_positions, self._vocab_size, self._type_vocab_size)

    def _log_probs(self, input_word_ids, input_mask, input_type_ids, positions, left, right,
                   relative):
        ones = tf.ones(tf.shape(positions), tf.float32)
        features = {
            "input_ids": tf.identity(input_word_ids),
            "input_mask": input_mask,
            "segment_ids": input_type_ids,
            "masked_lm_positions": positions,
            "masked_lm_ids": tf.zeros_like(positions),
            "masked_lm_weights": ones,
            "span_left_positions": left,
            "span_right_positions": right,
            "span_relative_positions": relative,
            "sbo_weights": ones,
        }
        outputs = self.pretrainer(features, training=False)
        return {
            "mlm_log_probs": tf.nn.log_softmax(tf.cast(outputs["mlm_logits"], tf.float32)),
            "sbo_log_probs": tf.nn.log_softmax(tf.cast(outputs["sbo_logits"], tf.float32)),
        }

    @tf.function(
        input_signature=[ids_spec(n) for n in ("input_word_ids", "input_mask", "input_type_ids")]
        + [ids_spec(n) for n in PRETRAINER_INPUTS]
    )
    def serve(self, input_word_ids, input_mask, input_type_ids, masked_lm_positions,
              span_left_positions, span_right_positions, span_relative_positions):
        seq = tf.shape(input_word_ids)[1]
        checks = self._encoder_checks(input_word_ids, input_mask, input_type_ids)
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
            return self._log_probs(input_word_ids, input_mask, input_type_ids, masked_lm_positions,
                                   span_left_positions, span_right_positions,
                                   span_relative_positions)

    @tf.function(
        input_signature=[ids_spec(n) for n in ("input_word_ids", "input_mask", "input_type_ids")]
        + [tf.TensorSpec([None], tf.int32, name="span_start"),
           tf.TensorSpec([None], tf.int32, name="span_end")]
    )
    def top_k(self, input_word_ids, input_mask, input_type_ids, span_start, span_end):
        seq = tf.shape(input_word_ids)[1]
        length = span_end - span_start + 1
        checks = self._encoder_checks(input_word_ids, input_mask, input_type_ids) + [
            tf.debugging.assert_equal(
                tf.shape(span_start), tf.shape(input_word_ids)[:1],
                message="span_start must have one entry per row of input_word_ids"),
            tf.debugging.assert_equal(
                tf.shape(span_end), tf.shape(span_start),
                message="span_end must have the shape of span_start"),
            tf.debugging.assert_greater_equal(
                span_start, 1, message="span_start must be >= 1 (its left boundary, "
                                       "span_start - 1, must be inside the sequence)"),
            tf.debugging.assert_less(
                span_end, seq - 1, message="span_end must be < the sequence length - 1 (its right "
                                           "boundary, span_end + 1, must be inside the sequence)"),
            tf.debugging.assert_positive(length, message="span_end must be >= span_start"),
            tf.debugging.assert_less_equal(
                length, self._max_pair_targets,
                message=f"a span may have at most max_pair_targets ({self._max_pair_targets}) "
                        "positions"),
        ]
        with tf.control_dependencies(checks):
            width = tf.reduce_max(tf.concat([length, [1]], axis=0))
            offsets = tf.range(width)[None, :]
            valid = offsets < length[:, None]
            # Padding slots repeat the span's last position (valid inputs); masked on output.
            relative = tf.minimum(offsets, length[:, None] - 1)
            positions = span_start[:, None] + relative
            left = tf.broadcast_to((span_start - 1)[:, None], tf.shape(positions))
            right = tf.broadcast_to((span_end + 1)[:, None], tf.shape(positions))
            log_probs = self._log_probs(input_word_ids, input_mask, input_type_ids, positions,
                                        left, right, relative)
        result = {"positions": tf.where(valid, positions, -1)}
        keep = valid[:, :, None]
        for head in ("mlm", "sbo"):
            best = tf.math.top_k(log_probs[f"{head}_log_probs"], k=self._k)
            ids = tf.cast(best.indices, tf.int32)
            result[f"{head}_top_ids"] = tf.where(keep, ids, -1)
            result[f"{head}_top_tokens"] = tf.where(keep, tf.gather(self._tokens, ids), "")
            result[f"{head}_top_log_probs"] = tf.where(keep, best.values, 0.0)
        return result
