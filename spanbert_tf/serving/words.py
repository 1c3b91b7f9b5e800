"""Words and wordpieces of raw sentences inside a TensorFlow graph, with byte offsets.

Each sentence is split on the basic tokenizer's whitespace (`tokenization.WHITESPACE_RANGES`),
then each piece goes through the model's in-graph BERT tokenizer
(`BertWordpieceTokenizer.tf_tokenizer()`): its basic-tokenizer words (punctuation split off)
are the words, its wordpieces the subtokens, the same rule the Python paths apply to
`basic_tokenize` words. Used by the coreference and entity SavedModels.

Example:
```python
doc = words_with_offsets(tokenizer.tf_tokenizer(), tf.constant(["Anna met Tom."]))
doc["ids"], doc["word"], doc["word_begin"], doc["word_end"]
```
"""

import tensorflow as tf
import tensorflow_text as tf_text

from spanbert_tf.tokenization import WHITESPACE_RANGES, _regex_class

WHITESPACE_PATTERN = _regex_class(WHITESPACE_RANGES) + "+"


def words_with_offsets(tokenizer, sentences):
    """Subtokens and words of the document (all int32 but the byte offsets, int64).

    Returns a dict: `ids` [n] wordpiece ids, `word` [n] word of each subtoken,
    `word_sentence`, `word_begin`, `word_end` [num_words] (sentence index, byte
    offsets into it).
    """
    pieces_ws, ws_begin, ws_end = tf_text.regex_split_with_offsets(
        sentences, WHITESPACE_PATTERN)
    ws_sentence = pieces_ws.value_rowids()
    pieces, begin, end = tokenizer.tokenize_with_offsets(pieces_ws.flat_values)
    words = pieces.values                                   # [num_words, (pieces)]
    word_ws = pieces.value_rowids()                         # whitespace piece of each word
    ws_b = tf.gather(ws_begin.flat_values, word_ws)
    ws_e = tf.gather(ws_end.flat_values, word_ws)
    first_piece, last_piece = words.row_starts(), words.row_limits() - 1
    in_b = tf.gather(begin.flat_values, first_piece)
    in_e = tf.gather(end.flat_values, last_piece)
    word_index = tf.range(tf.size(word_ws, out_type=tf.int64))
    first_of_ws = tf.equal(word_index, tf.gather(pieces.row_starts(), word_ws))
    last_of_ws = tf.equal(word_index, tf.gather(pieces.row_limits() - 1, word_ws))
    return {
        "ids": tf.cast(words.flat_values, tf.int32),
        "word": tf.cast(words.value_rowids(), tf.int32),
        "word_sentence": tf.cast(tf.gather(ws_sentence, word_ws), tf.int32),
        "word_begin": tf.where(first_of_ws, ws_b, tf.minimum(ws_b + in_b, ws_e)),
        "word_end": tf.where(last_of_ws, ws_e, tf.minimum(ws_b + in_e, ws_e)),
    }

