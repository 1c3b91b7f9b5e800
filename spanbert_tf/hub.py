"""Every SpanBERT keras-hub class, registered: the core (`spanbert_tf.presets`) and the keras-hub
Tasks that live beside their fine-tuning tasks.

This is the top floor of the house (beside `programs`): it may import every task. keras-hub
finds a preset's Task class among the subclasses already imported, so all of them must be
imported before `keras_hub.models.TextClassifier.from_preset(...)` reads a SpanBERT preset;
`import spanbert_tf` arranges that (`keras_hub_hook` imports this module right after keras-hub).
A new task with keras-hub classes adds its `preset` module to `TASK_PRESET_MODULES`, and to
`TASK_PRESETS` the function that builds its Task from a fine-tuned model dir
(`convert_checkpoint.py --input_format=keras --output_format=keras_hub_preset` calls it).

Example:
```python
import spanbert_tf.hub as hub
hub.SpanBertQuestionAnswerer.from_preset("presets/squad2")
hub.TASK_PRESETS["classification"]("runs/mrpc")     # a SpanBertTextClassifier
```
"""

import spanbert_tf.presets  # noqa: F401  (the core classes, registered)
from spanbert_tf.presets import *  # noqa: F401,F403
from spanbert_tf.presets import __all__ as _core_names
from spanbert_tf.tasks.classification.preset import (SpanBertTextClassifier,
                                                     SpanBertTextClassifierPreprocessor,
                                                     text_classifier_from_model_dir)
from spanbert_tf.tasks.classification.relation_preset import SpanBertRelationClassifierPreprocessor
from spanbert_tf.tasks.ner.preset import (SpanBertTokenClassifier,
                                          SpanBertTokenClassifierPreprocessor,
                                          token_classifier_from_model_dir)
from spanbert_tf.tasks.squad.preset import (SpanBertQuestionAnswerer,
                                            SpanBertQuestionAnswererPreprocessor,
                                            question_answerer_from_model_dir)

TASK_PRESET_MODULES = (
    "spanbert_tf.tasks.classification.preset",
    "spanbert_tf.tasks.classification.relation_preset",
    "spanbert_tf.tasks.squad.preset",
    "spanbert_tf.tasks.ner.preset",
)


def _text_classifier(model_dir):
    return text_classifier_from_model_dir(model_dir)[0]


# model-dir task kind -> fn(model dir) -> the keras-hub Task holding its weights and settings.
TASK_PRESETS = {
    "classification": _text_classifier,
    "squad": question_answerer_from_model_dir,
    "ner": token_classifier_from_model_dir,
}

__all__ = list(_core_names) + [
    "SpanBertQuestionAnswerer",
    "SpanBertQuestionAnswererPreprocessor",
    "SpanBertRelationClassifierPreprocessor",
    "SpanBertTextClassifier",
    "SpanBertTextClassifierPreprocessor",
    "SpanBertTokenClassifier",
    "SpanBertTokenClassifierPreprocessor",
    "TASK_PRESETS",
    "TASK_PRESET_MODULES",
]
