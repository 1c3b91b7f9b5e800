"""The named-entity configs: `configs/ner_{tiny,spanbert_base}.json`.

Each names the backbone config (used when no model dir is given) and holds two sections:
`ner` (`NerHeadConfig`: the head, the windows, the batch) and `optimizer`
(`modeling.config.TwoGroupOptimizerConfig`: the backbone and head parameter groups, as
coreference's).
Unknown or missing keys fail with the file's name.

Example:
```python
config = load_ner_config("ner_tiny")          # or a path
config.ner.model_type, config.ner.max_span_width    # "span", 8
```
"""

import dataclasses

from spanbert_tf.errors import InputError
from spanbert_tf.modeling.config import (TwoGroupOptimizerConfig, _section_from_dict, config_path,
                                         read_json_file)

MODEL_TYPES = ("span", "token")


@dataclasses.dataclass
class NerHeadConfig:
    """The head ("span": nested span classification; "token": flat BIO) and the windows."""

    model_type: str = "span"
    max_seq_length: int = 256
    doc_stride: int = 128
    max_span_width: int = 8
    feature_size: int = 20
    ffnn_size: int = 150
    ffnn_depth: int = 1
    dropout_rate: float = 0.2
    train_batch_size: int = 8
    eval_batch_size: int = 16

    def validate(self, source="config"):
        if self.model_type not in MODEL_TYPES:
            raise InputError(f"{source}: ner.model_type must be one of {MODEL_TYPES}, "
                             f"got {self.model_type!r}")
        for name, field in self.__dataclass_fields__.items():
            if field.type is int and getattr(self, name) < (0 if name == "ffnn_depth" else 1):
                raise InputError(f"{source}: ner.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_seq_length < 3:
            raise InputError(f"{source}: ner.max_seq_length must be >= 3 ([CLS] w [SEP])")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise InputError(f"{source}: ner.dropout_rate must be in [0, 1), "
                             f"got {self.dropout_rate}")


@dataclasses.dataclass
class NerConfig:
    """One `configs/ner_*.json`: backbone config name, head, optimizer."""

    name: str
    backbone: str
    ner: NerHeadConfig
    optimizer: TwoGroupOptimizerConfig

    def to_dict(self):
        return {"name": self.name, "backbone": self.backbone,
                "ner": dataclasses.asdict(self.ner),
                "optimizer": dataclasses.asdict(self.optimizer)}


def ner_config_from_dict(data, source):
    expected = {"name", "backbone", "ner", "optimizer"}
    if set(data) != expected:
        raise InputError(f"{source}: expected top-level keys {sorted(expected)}, "
                         f"got {sorted(data)}")
    for key in ("name", "backbone"):
        if not isinstance(data[key], str) or not data[key]:
            raise InputError(f"{source}: '{key}' must be a non-empty string, got {data[key]!r}")
    return NerConfig(
        name=data["name"], backbone=data["backbone"],
        ner=_section_from_dict(NerHeadConfig, data["ner"], "ner", source),
        optimizer=_section_from_dict(TwoGroupOptimizerConfig, data["optimizer"], "optimizer",
                                     source))


def load_ner_config(name_or_path):
    """Loads `configs/<name>.json` ("ner_tiny", ...) or a path; unknown or missing keys fail."""
    path = config_path(name_or_path)
    return ner_config_from_dict(read_json_file(path, what="NER config"), str(path))
