"""SpanBERT as a keras-hub model, the core: backbone, tokenizer, masked LM, preset I/O.

Importing this package registers, with `backbone_cls = SpanBertBackbone`:
`SpanBertTokenizer` and `SpanBertMaskedLMPreprocessor` + `SpanBertMaskedLM` (span masking and
the SBO head), so that keras-hub's generic `Backbone / Tokenizer / MaskedLM .from_preset(dir)`
return ours for a SpanBERT preset. It imports no task: the keras-hub Tasks of the fine-tuning
tasks live beside them (`tasks/squad/preset.py`: `SpanBertQuestionAnswerer`;
`tasks/classification/preset.py`: `SpanBertTextClassifier`; `tasks/classification/
relation_preset.py`: TACRED's preprocessor; ...) and `spanbert_tf.hub` imports them all.
You rarely import either yourself: `import spanbert_tf` installs a hook (`keras_hub_hook`)
that imports `spanbert_tf.hub` as soon as keras-hub is imported, in either order.

Presets are written by `convert_checkpoint.py --output_format=keras_hub_preset`
(`save_preset` here); a preset dir is accepted as `--init_checkpoint` by our programs.
`spanbert_tf.presets.export.export_task` writes a keras-hub Task as a TF Serving SavedModel
(raw strings in).

Example:
```python
import spanbert_tf, keras_hub
backbone = keras_hub.models.Backbone.from_preset("presets/spanbert_base")   # SpanBertBackbone
classifier = keras_hub.models.TextClassifier.from_preset("presets/spanbert_base", num_classes=2)
classifier.fit(x=(["A man sleeps."], ["Nobody sleeps."]), y=[0], batch_size=1)
```
"""

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

from spanbert_tf.modeling.backbone import SpanBertBackbone
from spanbert_tf.presets.masked_lm import SpanBertMaskedLM, SpanBertMaskedLMPreprocessor
from spanbert_tf.presets.preset_io import build_tokenizer, save_preset, save_pretrainer_preset
from spanbert_tf.presets.registration import register_backbone_alias
from spanbert_tf.presets.tokenizer import SpanBertTokenizer

register_backbone_alias(SpanBertBackbone)

__all__ = [
    "SpanBertBackbone",
    "SpanBertMaskedLM",
    "SpanBertMaskedLMPreprocessor",
    "SpanBertTokenizer",
    "build_tokenizer",
    "save_preset",
    "save_pretrainer_preset",
]
