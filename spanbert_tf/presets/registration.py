"""How SpanBERT's keras-hub classes are named inside preset files.

keras-hub finds a preset's classes by the `registered_name` in its JSON files
(`config.json`, `tokenizer.json`, `task.json`, `preprocessor.json`). When the
class is not registered (spanbert_tf not imported) the user sees keras-hub's
error, which quotes that name. So our classes are registered under names that
say what to do:

    spanbert_tf>SpanBertTokenizer (pip install spanbert-tf; import spanbert_tf.presets)

`register` registers a class of this package under that name (serialization
then writes it); `relabel_preset_files` rewrites the backbone's plain name
(`spanbert_tf>SpanBertBackbone`, registered in `spanbert_tf.modeling.backbone`)
in a saved preset, and `register_backbone_alias` makes that name loadable.

Example:
```python
@register
class SpanBertTokenizer(keras_hub.models.BertTokenizer): ...
keras.saving.get_registered_name(SpanBertTokenizer)
# 'spanbert_tf>SpanBertTokenizer (pip install spanbert-tf; import spanbert_tf.presets)'
```
"""

import json
import os

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

import keras

from spanbert_tf.io_utils import write_text_atomic

PACKAGE = "spanbert_tf"
HINT = "(pip install spanbert-tf; import spanbert_tf.presets)"


def registered_name(class_name):
    """The name a SpanBERT class carries in preset files."""
    return f"{PACKAGE}>{class_name} {HINT}"


def register(cls):
    """Class decorator: `register_keras_serializable` under the self-explaining name."""
    return keras.saving.register_keras_serializable(package=PACKAGE, name=f"{cls.__name__} {HINT}")(cls)


def register_backbone_alias(backbone_cls):
    """Makes `registered_name(backbone_cls.__name__)` resolve to `backbone_cls` (loading only).

    The class keeps its own name for every other Keras serialization.
    """
    keras.saving.get_custom_objects()[registered_name(backbone_cls.__name__)] = backbone_cls


def _relabel(node, plain, alias):
    if isinstance(node, dict):
        if node.get("registered_name") == plain:
            node["registered_name"] = alias
        for value in node.values():
            _relabel(value, plain, alias)
    elif isinstance(node, list):
        for value in node:
            _relabel(value, plain, alias)


def relabel_preset_files(preset_dir, backbone_cls):
    """Rewrites the backbone's plain registered name in every JSON file of a preset."""
    plain = keras.saving.get_registered_name(backbone_cls)
    alias = registered_name(backbone_cls.__name__)
    for file_name in sorted(os.listdir(preset_dir)):
        path = os.path.join(preset_dir, file_name)
        if not file_name.endswith(".json") or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        _relabel(data, plain, alias)
        write_text_atomic(path, json.dumps(data, indent=4))
