"""`SpanBertTokenizer`: keras-hub's BERT WordPiece tokenizer, matched to `SpanBertBackbone`.

keras-hub's `Tokenizer.from_preset` picks the tokenizer class whose
`backbone_cls` is exactly the preset's backbone class, so a SpanBERT preset
needs its own sibling of `BertTokenizer`. Tokenization is keras-hub's
(`[CLS]`, `[SEP]`, `[PAD]`, `[MASK]` special tokens, `##` continuation).

Example:
```python
import spanbert_tf.presets
tokenizer = keras_hub.tokenizers.Tokenizer.from_preset("presets/spanbert_base")
tokenizer = SpanBertTokenizer(vocabulary="vocab.txt", lowercase=False)
tokenizer(["The quick brown fox."])            # ragged int32 ids
```
"""

import os
import tempfile

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

import keras_hub

from spanbert_tf.errors import InputError
from spanbert_tf.modeling.backbone import SpanBertBackbone
from spanbert_tf.presets.registration import register
from spanbert_tf.tokenization import BertWordpieceTokenizer


@register
class SpanBertTokenizer(keras_hub.models.BertTokenizer):
    """A BERT WordPiece tokenizer for `SpanBertBackbone` presets.

    Args:
        vocabulary: list of wordpieces or a vocabulary file path.
        lowercase: bool, lowercase (and strip accents) before splitting, as
            `do_lower_case` in our model dirs.
    """

    backbone_cls = SpanBertBackbone

    def save_to_preset(self, preset_dir):
        from spanbert_tf.presets.registration import relabel_preset_files

        super().save_to_preset(preset_dir)
        relabel_preset_files(preset_dir, SpanBertBackbone)


def wordpiece_tokenizer(tokenizer):
    """Our `BertWordpieceTokenizer` (what `run_squad.py` tokenizes with) for a `SpanBertTokenizer`.

    Same vocabulary; `do_lower_case` = `lowercase`, which in BERT also strips
    accents, so a tokenizer with `lowercase != strip_accents` is refused.
    """
    lowercase = bool(tokenizer.lowercase)
    if bool(getattr(tokenizer, "strip_accents", lowercase)) != lowercase:
        raise InputError(f"tokenizer {tokenizer.name!r}: lowercase={lowercase} with "
                         f"strip_accents={tokenizer.strip_accents}; BERT's do_lower_case sets both")
    vocabulary = tokenizer.get_vocabulary()
    if not vocabulary:
        raise InputError(f"tokenizer {tokenizer.name!r} has no vocabulary")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "vocab.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("".join(token + "\n" for token in vocabulary))
        wordpiece = BertWordpieceTokenizer(path, do_lower_case=lowercase)
    wordpiece.vocab_file = f"<vocabulary of tokenizer {tokenizer.name!r}>"
    return wordpiece


class WordpieceOfTokenizer:
    """Mixin of the preprocessors that tokenize with our `BertWordpieceTokenizer` (the
    fine-tuning programs' rules) over their keras-hub `self.tokenizer`'s vocabulary:
    `wordpiece()` builds it on first use and keeps it."""

    _wordpiece = None

    def wordpiece(self):
        if self._wordpiece is None:
            self._wordpiece = wordpiece_tokenizer(self.tokenizer)
        return self._wordpiece
