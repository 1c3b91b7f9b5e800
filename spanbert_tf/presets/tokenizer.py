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

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

import keras_hub

from spanbert_tf.modeling.backbone import SpanBertBackbone
from spanbert_tf.presets.registration import register


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
