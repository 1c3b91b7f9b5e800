"""Reads a keras-hub preset dir as a model dir (for `--init_checkpoint`).

A keras-hub preset (what `convert_checkpoint.py --output_format=keras_hub_preset`
or `backbone.save_to_preset` writes) holds:

```
PRESET/config.json                  the serialized backbone ("registered_name", "config")
PRESET/model.weights.h5             the backbone weights (Keras H5)
PRESET/tokenizer.json               the serialized tokenizer ("lowercase", ...)
PRESET/assets/tokenizer/vocabulary.txt
PRESET/metadata.json
```

`read_preset_dir` turns it into the same `ModelDirInfo` as `read_model_dir`,
with `checkpoint_path` = the `model.weights.h5` file, which `restore_backbone`
loads with `backbone.load_weights`. Pure JSON: keras-hub is not imported, so a
model dir reader never pays for it.

Example:
```python
if is_preset_dir("presets/spanbert_base"):
    info = read_preset_dir("presets/spanbert_base")
    info.config.model.hidden_act          # "gelu" (SpanBertBackbone) or "gelu_approximate"
```
"""

import os

from spanbert_tf.errors import InputError, MissingFileError
from spanbert_tf.modeling.config import (ModelConfig, ModelDirInfo, OptimizerConfig, SpanBertConfig,
                                         read_json_file)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
TOKENIZER_FILE = "tokenizer.json"
VOCAB_ASSET = os.path.join("assets", "tokenizer", "vocabulary.txt")
WEIGHTS_SUFFIX = ".weights.h5"
# A model dir trained on a Keras backend (`run_pretraining.py --backend=jax`) keeps its
# trained backbone and heads as a keras-hub preset in this subfolder.
MODEL_DIR_PRESET = "preset"
# Backbone classes a preset may hold, by the class name in its registered_name.
SPANBERT_CLASS = "SpanBertBackbone"
BERT_CLASS = "BertBackbone"


def is_preset_dir(path):
    """True if `path` is a directory holding a keras-hub (Keras-serialized) preset."""
    config_file = os.path.join(str(path), CONFIG_FILE)
    if not (os.path.isdir(str(path)) and os.path.isfile(config_file)):
        return False
    try:
        return "registered_name" in read_json_file(config_file)
    except ValueError:
        return False


def backbone_class_name(registered_name):
    """The class name in a registered name.

    'spanbert_tf>SpanBertBackbone (...)' → 'SpanBertBackbone'; 'keras_hub>BertBackbone' → 'BertBackbone'.
    """
    name = str(registered_name).split(">")[-1]
    return name.split(" ")[0]


def read_preset_dir(path):
    """Reads a keras-hub preset of a `SpanBertBackbone` or `BertBackbone`.

    Returns a `ModelDirInfo` whose `checkpoint_path` is the preset's
    `model.weights.h5` (a keras-hub `BertBackbone` preset gets
    `hidden_act="gelu_approximate"`, the tanh GeLU it was trained with).
    Raises ValueError / FileNotFoundError naming the file and field.
    """
    path = str(path)
    config_file = os.path.join(path, CONFIG_FILE)
    data = read_json_file(config_file, what="preset config")
    name = backbone_class_name(data.get("registered_name", ""))
    if name not in (SPANBERT_CLASS, BERT_CLASS):
        raise InputError(
            f"{config_file}: registered_name {data.get('registered_name')!r} is not a "
            f"{SPANBERT_CLASS} or {BERT_CLASS} preset"
        )
    fields = data.get("config")
    if not isinstance(fields, dict):
        raise InputError(f"{config_file}: 'config' must be a JSON object")
    required = ("vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim",
                "max_sequence_length", "num_segments")
    missing = [k for k in required if k not in fields]
    if missing:
        raise InputError(f"{config_file}: missing config key(s) {missing}")
    model = ModelConfig(
        vocab_size=fields["vocabulary_size"],
        hidden_size=fields["hidden_dim"],
        num_layers=fields["num_layers"],
        num_heads=fields["num_heads"],
        intermediate_size=fields["intermediate_dim"],
        max_position_embeddings=fields["max_sequence_length"],
        type_vocab_size=fields["num_segments"],
        dropout=float(fields.get("dropout", 0.1)),
        hidden_act=fields.get("hidden_act", "gelu" if name == SPANBERT_CLASS else "gelu_approximate"),
        initializer_range=float(fields.get("initializer_range", 0.02)),
        layer_norm_epsilon=float(fields.get("layer_norm_epsilon", 1e-12)),
    )
    if name == BERT_CLASS:
        model.hidden_act = "gelu_approximate"
    model.validate(config_file)
    vocab_file = os.path.join(path, VOCAB_ASSET)
    if not os.path.isfile(vocab_file):
        raise MissingFileError(f"preset {path} has no vocabulary ({vocab_file})")
    tokenizer_file = os.path.join(path, TOKENIZER_FILE)
    tokenizer = read_json_file(tokenizer_file, what="preset tokenizer").get("config", {})
    lowercase = tokenizer.get("lowercase")
    if not isinstance(lowercase, bool):
        raise InputError(f"{tokenizer_file}: config.lowercase must be true or false, got {lowercase!r}")
    weights = os.path.join(path, WEIGHTS_FILE)
    if not os.path.isfile(weights):
        raise MissingFileError(f"preset {path} has no {WEIGHTS_FILE} (sharded presets are not supported)")
    config = SpanBertConfig(name=f"preset-{os.path.basename(os.path.normpath(path))}",
                            model=model, optimizer=OptimizerConfig())
    return ModelDirInfo(config=config, vocab_file=vocab_file, do_lower_case=lowercase,
                        checkpoint_path=weights, task=None, model_dir=path)


def load_preset_weights(backbone, weights_file):
    """Loads a preset's `model.weights.h5` into `backbone`, with a clear error on mismatch."""
    try:
        backbone.load_weights(weights_file)
    except (ValueError, KeyError) as e:
        raise InputError(
            f"{weights_file} does not fit this backbone (different config?): "
            f"{str(e).splitlines()[0][:300] if str(e) else type(e).__name__}"
        ) from None
