"""BERT WordPiece tokenization on tensorflow-text's C++ kernels, batched.

The semantics equal the reference BERT tokenizer (Hugging Face `BertTokenizerFast`
with the same vocabulary; `tests/test_tokenization.py` checks every wordpiece of
the WikiText corpus):

1. text cleaning: NUL, U+FFFD, control (Cc except tab/newline/CR), format (Cf) and
   private-use (Co) characters are removed; Unicode whitespace becomes a space;
2. CJK ideographs become words of their own;
3. with `do_lower_case` only: NFD, combining marks (Mn) removed, lower-cased;
4. split on whitespace; every punctuation character (ASCII or Unicode P*) is a word;
5. greedy longest-match-first WordPiece ("##" continuation); a word of more than
   100 characters, or one WordPiece cannot cover, becomes `[UNK]`.

Steps 1-4 are a `tensorflow_text` basic-tokenizer class (`HFCompatibleBasicTokenizer`)
plugged into `tensorflow_text.BertTokenizer`, so `tf_tokenizer()` gives the same
tokenization in a TensorFlow graph (SavedModel export). For speed, the batched
`tokenize_to_ids*` methods send cased text through tensorflow-text's linear-time
`FastBertTokenizer` (7-10x faster) and only the lines where its normalization can
differ (control/format/private-use characters, line separators, a CJK Extension E
boundary, runs of over 100 non-space characters) through `tf_tokenizer()`.

Example:
```python
tokenizer = BertWordpieceTokenizer("vocab.txt", do_lower_case=False)
ids = tokenizer.tokenize_to_ids(["SpanBERT masks spans.", "Second line"])
tokenizer.convert_ids_to_tokens(ids[0])   # ['Spa', '##n', '##BE', '##RT', 'masks', ...]
```
"""

import functools
import os
import unicodedata

import numpy as np

from spanbert_tf.errors import InputError, MissingFileError

SPECIAL_TOKENS = ("[CLS]", "[SEP]", "[MASK]", "[UNK]", "[PAD]")
MAX_CHARS_PER_WORD = 100
UNK_TOKEN = "[UNK]"

# One table per rule of the basic tokenizer. The TensorFlow regexes below (training, serving)
# and the pure-Python `basic_tokenize` (SQuAD answer-text recovery, where a TF call per
# candidate span would be slow) are both built from these tables;
# tests/test_tokenization.py runs both over the real SQuAD and GLUE files and requires
# identical words.
# Text cleaning (BERT `_clean_text` as in HF tokenizers): NUL, U+FFFD, C0/C1 controls
# except \t \n \r, and every format (Cf) and private-use (Co) character are removed.
REMOVED_RANGES = ((0x00, 0x08), (0x0B, 0x0C), (0x0E, 0x1F), (0x7F, 0x9F), (0xFFFD, 0xFFFD))
REMOVED_CATEGORIES = ("Cf", "Co")
# Unicode White_Space characters that survive the removal: mapped to " ".
WHITESPACE_RANGES = ((0x09, 0x0A), (0x0D, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680),
                     (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F),
                     (0x3000, 0x3000))
# Punctuation: the ASCII non-alphanumeric symbols and every Unicode P* character.
ASCII_PUNCTUATION_RANGES = ((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E))
# CJK Unified Ideographs blocks, as the reference tokenizer (HF tokenizers) lists them
# (its Extension E range starts at U+2B920; google-research/bert's at U+2B820).
CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def _regex_class(ranges, extra=""):
    """An RE2 character class of code-point ranges (plus `extra` class items)."""
    items = "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}"
                    for a, b in ranges)
    return f"[{items}{extra}]"


def _in_ranges(cp, ranges):
    return any(a <= cp <= b for a, b in ranges)


_REMOVE_PATTERN = _regex_class(REMOVED_RANGES, "".join(f"\\p{{{c}}}" for c in REMOVED_CATEGORIES))
_WHITESPACE_PATTERN = _regex_class([r for r in WHITESPACE_RANGES if r != (0x20, 0x20)])
_PUNCTUATION_PATTERN = _regex_class(ASCII_PUNCTUATION_RANGES, "\\p{P}")
_CJK_PATTERN = _regex_class(CJK_RANGES)
# Lines where FastBertTokenizer's normalization may differ from the reference.
_EXACT_PATH_PATTERN = (
    r"(?s).*(?:[\x00-\x08\x0B-\x1F\x7F-\x{9F}\p{Cf}\p{Co}\x{2028}\x{2029}\x{FFFD}"
    r"\x{2B820}-\x{2B91F}]|[^\s]{101}).*"
)
_KEEP_PATTERN = _PUNCTUATION_PATTERN + "|" + _CJK_PATTERN
_DELIM_PATTERN = r"\s+|" + _KEEP_PATTERN


def truncated_pair_lengths(len_a, len_b, budget, ops=np):
    """google-research/bert's `_truncate_seq_pair` on lengths, elementwise.

    Tokens go from the end of the longer segment (b on ties) until the pair fits
    `budget`, so a keeps min(len_a, max(ceil(budget / 2), budget - len_b)) and b
    the rest. The one definition of the rule: the Python packing passes NumPy
    arrays (`ops=np`), the in-graph serving preprocessors tensors (`ops=tf`).
    Returns (kept_a, kept_b).

    Example:
    ```python
    truncated_pair_lengths(np.array([9, 2]), np.array([4, 9]), 6)   # ([3, 2], [3, 4])
    ```
    """
    keep_a = ops.minimum(len_a, ops.maximum((budget + 1) // 2, budget - len_b))
    return keep_a, ops.minimum(len_b, budget - keep_a)


def load_vocab(vocab_file):
    """Reads a WordPiece vocabulary (one token per line) into a list of tokens.

    Raises `FileNotFoundError` / `ValueError` naming the file when it is missing,
    unreadable as UTF-8, or empty.
    """
    vocab_file = os.fspath(vocab_file)
    if os.path.isdir(vocab_file):
        raise InputError(f"vocab file {vocab_file} is a directory; expected a vocab.txt file "
                         "(one wordpiece a line)")
    if not os.path.isfile(vocab_file):
        raise MissingFileError(f"vocab file not found: {vocab_file}")
    try:
        with open(vocab_file, encoding="utf-8") as f:
            vocab = [line.rstrip("\r\n") for line in f]
    except UnicodeDecodeError as e:
        raise InputError(f"vocab file {vocab_file} is not valid UTF-8: {e}") from None
    while vocab and not vocab[-1]:
        vocab.pop()
    if not vocab:
        raise InputError(f"vocab file {vocab_file} is empty")
    return vocab


_KEEP, _REMOVE, _SPACE, _CJK, _PUNCT = range(5)


@functools.lru_cache(maxsize=None)
def _char_class(ch):
    """What the basic tokenizer does with one character (from the tables above)."""
    cp = ord(ch)
    if _in_ranges(cp, REMOVED_RANGES) or unicodedata.category(ch) in REMOVED_CATEGORIES:
        return _REMOVE
    if _in_ranges(cp, WHITESPACE_RANGES):
        return _SPACE
    if _in_ranges(cp, CJK_RANGES):
        return _CJK
    if _in_ranges(cp, ASCII_PUNCTUATION_RANGES) or unicodedata.category(ch).startswith("P"):
        return _PUNCT
    return _KEEP


def basic_tokenize(text, do_lower_case=False):
    """The words of `text` by the basic tokenizer's rules, in pure Python.

    The twin of the TensorFlow basic tokenizer inside `BertWordpieceTokenizer` (steps
    1-4 of the module docstring and the 100-character `[UNK]` rule), from the same
    tables; for per-string calls where a TF call would cost more than the work.

    Example:
    ```python
    basic_tokenize("Crème brûlée, 東京!", do_lower_case=True)
    # ['creme', 'brulee', ',', '東', '京', '!']
    ```
    """
    chars = []
    for ch in text:
        kind = _char_class(ch)
        if kind == _REMOVE:
            continue
        if kind == _SPACE:
            chars.append(" ")
        elif kind == _CJK:
            chars.extend((" ", ch, " "))
        else:
            chars.append(ch)
    text = "".join(chars)
    if do_lower_case:  # (NFD and lower-casing leave CJK ideographs as they are)
        text = unicodedata.normalize("NFD", text)
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
        # Per-character lower-casing, as the reference: no final-sigma rule.
        text = "".join(c.lower() for c in text)
    words = []
    for word in text.split(" "):
        current = []
        for ch in word:
            if _char_class(ch) == _PUNCT:
                if current:
                    words.append("".join(current))
                    current = []
                words.append(ch)
            else:
                current.append(ch)
        if current:
            words.append("".join(current))
    return [UNK_TOKEN if len(w) > MAX_CHARS_PER_WORD else w for w in words]


def basic_tokenizer_tf(do_lower_case=False):
    """The TensorFlow basic tokenizer (a `tensorflow_text` tokenizer: `.tokenize(strings)` →
    ragged words), as inside `BertWordpieceTokenizer.tf_tokenizer()`."""
    return _hf_compatible_basic_tokenizer_class()(lower_case=do_lower_case)


def basic_tokenize_tf(texts, do_lower_case=False):
    """The words of each text by the TensorFlow basic tokenizer (one batched call)."""
    import tensorflow as tf

    tokenizer = basic_tokenizer_tf(do_lower_case)
    words = tokenizer.tokenize(tf.constant([t.encode("utf-8") for t in texts], tf.string))
    return [[w.decode("utf-8") for w in row] for row in words.to_list()]


def _hf_compatible_basic_tokenizer_class():
    """Builds the basic-tokenizer class lazily (tensorflow_text imports TF)."""
    import tensorflow as tf
    from tensorflow_text.python.ops import (
        bert_tokenizer, normalize_ops, regex_split_ops)

    class HFCompatibleBasicTokenizer(bert_tokenizer.BasicTokenizer):
        """BERT basic tokenization with the reference tokenizer's exact rules.

        Offsets refer to the cleaned (and, if lower-casing, normalized) text.
        """

        def __init__(self, lower_case=False, keep_whitespace=False,
                     normalization_form=None, preserve_unused_token=False):
            super().__init__(lower_case, keep_whitespace, normalization_form,
                             preserve_unused_token)
            self._hf_lower_case = lower_case

        def tokenize_with_offsets(self, text_input):
            text = tf.strings.regex_replace(text_input, _REMOVE_PATTERN, "")
            text = tf.strings.regex_replace(text, _WHITESPACE_PATTERN, " ")
            if self._hf_lower_case:
                text = normalize_ops.normalize_utf8(text, "NFD")
                text = tf.strings.regex_replace(text, r"\p{Mn}", "")
                # Per-character lower-casing as the reference: no final-sigma rule.
                text = tf.strings.regex_replace(text, "\u03a3", "\u03c3")
                text = tf.strings.lower(text, encoding="utf-8")
            words, begin, end = regex_split_ops.regex_split_with_offsets(
                text, _DELIM_PATTERN, _KEEP_PATTERN, "HFCompatibleBasicTokenizer")
            # Words over 100 characters: the literal "[UNK]" (never produced by the
            # split, "[" being punctuation) looks up as the unknown token.
            flat = words.flat_values
            too_long = tf.strings.length(flat, unit="UTF8_CHAR") > MAX_CHARS_PER_WORD
            flat = tf.where(too_long, tf.constant(UNK_TOKEN), flat)
            return words.with_flat_values(flat), begin, end

    return HFCompatibleBasicTokenizer


class BertWordpieceTokenizer:
    """BERT WordPiece tokenizer (tensorflow-text C++ kernels, batched).

    Args:
        vocab_file: path of the vocabulary, one token per line.
        do_lower_case: lower-case and strip accents (uncased vocabularies).

    Example:
    ```python
    tok = BertWordpieceTokenizer("bert-base-cased-vocab.txt")
    tok.tokenize("Hello, world!")                  # ['Hello', ',', 'world', '!']
    tok.tokenize_to_ids(["Hello", "a b"])          # [array([8667]), array([170, 171])]
    ```
    """

    def __init__(self, vocab_file, do_lower_case=False):
        self.vocab_file = os.fspath(vocab_file)
        self.do_lower_case = bool(do_lower_case)
        self.vocab = load_vocab(self.vocab_file)
        self.vocab_size = len(self.vocab)
        self._token_to_id = {}
        for i, token in enumerate(self.vocab):
            self._token_to_id.setdefault(token, i)
        missing = [t for t in SPECIAL_TOKENS if t not in self._token_to_id]
        if missing:
            raise InputError(
                f"vocab file {self.vocab_file} lacks the special tokens "
                f"{' '.join(missing)}")
        self.cls_id = self._token_to_id["[CLS]"]
        self.sep_id = self._token_to_id["[SEP]"]
        self.mask_id = self._token_to_id["[MASK]"]
        self.unk_id = self._token_to_id["[UNK]"]
        self.pad_id = self._token_to_id["[PAD]"]
        self.special_ids = np.array(
            [self.cls_id, self.sep_id, self.mask_id, self.unk_id, self.pad_id],
            dtype=np.int32)
        self.word_start_table = np.array(
            [not t.startswith("##") for t in self.vocab], dtype=bool)
        self._tf_tokenizer = None
        self._fast_tokenizer = None

    def tf_tokenizer(self):
        """A `tensorflow_text.BertTokenizer` with exactly these settings."""
        if self._tf_tokenizer is None:
            import tensorflow as tf
            import tensorflow_text as tf_text

            table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(list(self._token_to_id)),
                    tf.constant(list(self._token_to_id.values()), dtype=tf.int64)),
                default_value=-1)
            self._tf_tokenizer = tf_text.BertTokenizer(
                table,
                suffix_indicator="##",
                # Words over 100 characters are [UNK] already; 4 bytes a character.
                max_bytes_per_word=4 * MAX_CHARS_PER_WORD + 4,
                token_out_type=tf.int64,
                unknown_token=UNK_TOKEN,
                lower_case=self.do_lower_case,
                basic_tokenizer_class=_hf_compatible_basic_tokenizer_class(),
            )
        return self._tf_tokenizer

    def _get_fast_tokenizer(self):
        """tensorflow-text's linear-time FastBertTokenizer (cased only), or None."""
        if self._fast_tokenizer is None:
            import tensorflow as tf
            import tensorflow_text as tf_text

            self._fast_tokenizer = tf_text.FastBertTokenizer(
                vocab=self.vocab, suffix_indicator="##",
                max_bytes_per_word=4 * MAX_CHARS_PER_WORD + 4,
                token_out_type=tf.int64, unknown_token=UNK_TOKEN)
        return self._fast_tokenizer

    def tokenize_to_ids_flat(self, texts):
        """Tokenizes a batch: returns (flat int32 ids, int64 row_splits [len+1]).

        Cased text goes through tensorflow-text's FastBertTokenizer, except the
        lines where its normalization differs from the reference (control, format
        or private-use characters, line/paragraph separators, CJK Extension E
        boundaries, runs of over 100 non-space characters): those, and all text
        when lower-casing, go through `tf_tokenizer()`. One eager call each.
        """
        if not len(texts):
            return np.zeros([0], np.int32), np.zeros([1], np.int64)
        import tensorflow as tf

        encoded = tf.constant([t.encode("utf-8", "replace") if isinstance(t, str) else t
                               for t in texts], tf.string)
        if self.do_lower_case:
            return self._exact_flat(encoded)
        exact = tf.strings.regex_full_match(encoded, _EXACT_PATH_PATTERN).numpy()
        if not exact.any():
            return self._fast_flat(encoded)
        fast_rows = np.flatnonzero(~exact)
        exact_rows = np.flatnonzero(exact)
        parts = [(exact_rows, self._exact_flat(tf.gather(encoded, exact_rows)))]
        if fast_rows.size:
            parts.append((fast_rows, self._fast_flat(tf.gather(encoded, fast_rows))))
        lengths = np.zeros(len(texts), np.int64)
        for rows, (_, splits) in parts:
            lengths[rows] = np.diff(splits)
        row_splits = np.concatenate([[0], np.cumsum(lengths)])
        flat = np.empty(int(row_splits[-1]), np.int32)
        for rows, (ids, splits) in parts:
            n = np.diff(splits)
            offset = np.arange(ids.size) - np.repeat(splits[:-1], n)
            flat[np.repeat(row_splits[rows], n) + offset] = ids
        return flat, row_splits

    def _fast_flat(self, encoded):
        pieces = self._get_fast_tokenizer().tokenize(encoded)
        return (pieces.flat_values.numpy().astype(np.int32),
                pieces.row_splits.numpy().astype(np.int64))

    def _exact_flat(self, encoded):
        pieces = self.tf_tokenizer().tokenize(encoded).merge_dims(1, 2)
        return (pieces.flat_values.numpy().astype(np.int32),
                pieces.row_splits.numpy().astype(np.int64))

    def tokenize_to_ids(self, texts):
        """Tokenizes a batch of strings: a list of int32 id arrays, one per text."""
        flat, splits = self.tokenize_to_ids_flat(texts)
        return [flat[splits[i]:splits[i + 1]] for i in range(len(splits) - 1)]

    def tokenize(self, text):
        """The wordpieces of one string (for debugging and tests)."""
        return self.convert_ids_to_tokens(self.tokenize_to_ids([text])[0])

    def convert_tokens_to_ids(self, tokens):
        """Token strings → ids; unknown strings map to `[UNK]`'s id."""
        return [self._token_to_id.get(t, self.unk_id) for t in tokens]

    def convert_ids_to_tokens(self, ids):
        """Ids → token strings; raises `ValueError` on an id outside the vocab."""
        out = []
        for i in np.asarray(ids).reshape(-1).tolist():
            if not 0 <= i < self.vocab_size:
                raise InputError(f"token id {i} is outside the vocabulary "
                                 f"({self.vocab_size} entries, {self.vocab_file})")
            out.append(self.vocab[i])
        return out
