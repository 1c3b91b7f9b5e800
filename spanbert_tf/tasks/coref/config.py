"""The coreference configs: `configs/coref_{tiny,spanbert_base,spanbert_large}.json`.

Each names the backbone config (used when no model dir is given) and holds two
sections: `coref` (`CorefHeadConfig`: the head and the document windows) and
`optimizer` (`modeling.config.TwoGroupOptimizerConfig`: the two parameter groups). Unknown or
missing keys fail with the file's name.

Example:
```python
config = load_coref_config("coref_spanbert_base")     # or a path
config.coref.max_segment_len, config.optimizer.task_learning_rate    # 384, 1e-4
```
"""

import dataclasses

from spanbert_tf.errors import InputError
from spanbert_tf.modeling.config import (
    TwoGroupOptimizerConfig, _section_from_dict, config_path, read_json_file)


@dataclasses.dataclass
class CorefHeadConfig:
    """Hyperparameters of the coreference head and of the document windows."""

    max_segment_len: int = 384
    max_training_segments: int = 3
    max_span_width: int = 30
    feature_size: int = 20
    ffnn_size: int = 3000
    ffnn_depth: int = 1
    max_top_spans: int = 3900
    top_span_ratio: float = 0.4
    max_top_antecedents: int = 50
    coref_depth: int = 2
    num_genres: int = 7
    dropout_rate: float = 0.3
    candidate_chunk_size: int = 256
    antecedent_chunk_size: int = 256

    def validate(self, source="config"):
        for name, field in self.__dataclass_fields__.items():
            if field.type is int and getattr(self, name) < (0 if name == "ffnn_depth" else 1):
                raise InputError(f"{source}: coref.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.top_span_ratio <= 1.0:
            raise InputError(f"{source}: coref.top_span_ratio must be in (0, 1], "
                             f"got {self.top_span_ratio}")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise InputError(f"{source}: coref.dropout_rate must be in [0, 1), "
                             f"got {self.dropout_rate}")


@dataclasses.dataclass
class CorefConfig:
    """One `configs/coref_*.json`: the backbone config name (used when no
    model dir is given), the head and the optimizer settings."""

    name: str
    backbone: str
    coref: CorefHeadConfig
    optimizer: TwoGroupOptimizerConfig

    def to_dict(self):
        return {"name": self.name, "backbone": self.backbone,
                "coref": dataclasses.asdict(self.coref),
                "optimizer": dataclasses.asdict(self.optimizer)}


def load_coref_config(name_or_path):
    """Loads `configs/<name>.json` ("coref_tiny", ...) or a path; unknown or missing keys fail."""
    path = config_path(name_or_path)
    data = read_json_file(path, what="coref config")
    expected = {"name", "backbone", "coref", "optimizer"}
    if set(data) != expected:
        raise InputError(f"{path}: expected top-level keys {sorted(expected)}, got {sorted(data)}")
    for key in ("name", "backbone"):
        if not isinstance(data[key], str) or not data[key]:
            raise InputError(f"{path}: '{key}' must be a non-empty string, got {data[key]!r}")
    return CorefConfig(
        name=data["name"], backbone=data["backbone"],
        coref=_section_from_dict(CorefHeadConfig, data["coref"], "coref", str(path)),
        optimizer=_section_from_dict(TwoGroupOptimizerConfig, data["optimizer"], "optimizer",
                                     str(path)))
