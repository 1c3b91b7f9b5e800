"""Signature input specs and the in-graph checks of the encoder inputs, shared by the exports.

Example:
```python
@tf.function(input_signature=[ids_spec("input_word_ids"), ...])
def serve(self, input_word_ids, input_mask, input_type_ids):
    with tf.control_dependencies(check_encoder_inputs(input_word_ids, input_mask,
                                                      input_type_ids, 512, 28996, 2)):
        ...
```
"""

import tensorflow as tf


def ids_spec(name):
    """int32 `[batch, seq]` input of a signature, named `name`."""
    return tf.TensorSpec([None, None], tf.int32, name=name)


def check_encoder_inputs(input_word_ids, input_mask, input_type_ids, max_positions, vocab_size,
                         type_vocab_size):
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
