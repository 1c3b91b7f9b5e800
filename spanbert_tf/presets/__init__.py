"""SpanBERT as a first-class keras-hub model: presets, tokenizer, preprocessors, Tasks.

Importing this package registers, with `backbone_cls = SpanBertBackbone`:
`SpanBertTokenizer`, `SpanBertTextClassifierPreprocessor` +
`SpanBertTextClassifier`, `SpanBertMaskedLMPreprocessor` + `SpanBertMaskedLM`
(span masking and the SBO head), `SpanBertQuestionAnswererPreprocessor` +
`SpanBertQuestionAnswerer` (extractive QA, `run_squad.py`'s model and rules),
`SpanBertRelationClassifierPreprocessor` (TACRED entity markers, for
`SpanBertTextClassifier`), so that keras-hub's generic
`Backbone / Tokenizer / TextClassifier / MaskedLM .from_preset(dir)` return ours for a
SpanBERT preset. `import spanbert_tf` does it too when keras_hub is already
imported. Presets are written by `convert_checkpoint.py
--output_format=keras_hub_preset` (`save_preset` here); a preset dir is
accepted as `--init_checkpoint` by our programs. `spanbert_tf.presets.export.export_task`
writes a TextClassifier or QuestionAnswerer as a TF Serving SavedModel (raw strings in).

Example:
```python
import keras_hub
import spanbert_tf.presets
backbone = keras_hub.models.Backbone.from_preset("presets/spanbert_base")   # SpanBertBackbone
classifier = keras_hub.models.TextClassifier.from_preset("presets/spanbert_base", num_classes=2)
classifier.fit(x=(["A man sleeps."], ["Nobody sleeps."]), y=[0], batch_size=1)
```
"""

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

from spanbert_tf.modeling.backbone import SpanBertBackbone
from spanbert_tf.presets.masked_lm import SpanBertMaskedLM, SpanBertMaskedLMPreprocessor
from spanbert_tf.presets.preset_io import build_tokenizer, save_preset, save_pretrainer_preset
from spanbert_tf.presets.question_answerer import (SpanBertQuestionAnswerer,
                                                   SpanBertQuestionAnswererPreprocessor)
from spanbert_tf.presets.registration import register_backbone_alias
from spanbert_tf.presets.relation_classifier import SpanBertRelationClassifierPreprocessor
from spanbert_tf.presets.text_classifier import (SpanBertTextClassifier,
                                                 SpanBertTextClassifierPreprocessor)
from spanbert_tf.presets.tokenizer import SpanBertTokenizer

register_backbone_alias(SpanBertBackbone)

__all__ = [
    "SpanBertBackbone",
    "SpanBertMaskedLM",
    "SpanBertMaskedLMPreprocessor",
    "SpanBertQuestionAnswerer",
    "SpanBertQuestionAnswererPreprocessor",
    "SpanBertRelationClassifierPreprocessor",
    "SpanBertTextClassifier",
    "SpanBertTextClassifierPreprocessor",
    "SpanBertTokenizer",
    "build_tokenizer",
    "save_preset",
    "save_pretrainer_preset",
]
