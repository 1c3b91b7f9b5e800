"""Model and optimizer settings: `configs/*.json` ⇄ dataclasses.

A config file holds three keys: `name`, `model` (the encoder and the SBO head)
and `optimizer` (the defaults `run_pretraining.py` uses unless a flag overrides
them). Every field is required and unknown fields are rejected, so a typo in a
config never silently falls back to a default.

Example:
```python
config = load_config("tiny")                 # or "base", "large", or a path
config.model.hidden_size                     # 128
config.save("/tmp/my_config.json")           # atomic write
assert load_config("/tmp/my_config.json") == config
```
"""

import dataclasses
import json
import pathlib

from spanbert_tf.errors import InputError, MissingFileError
from spanbert_tf.io_utils import write_text_atomic

CONFIGS_DIR = pathlib.Path(__file__).resolve().parent.parent.parent / "configs"
NAMED_CONFIGS = {
    "tiny": "tiny.json",
    "base": "spanbert_base.json",
    "large": "spanbert_large.json",
}
HIDDEN_ACTIVATIONS = ("gelu", "gelu_approximate")
OPTIMIZERS = ("adamw", "lamb")


@dataclasses.dataclass
class ModelConfig:
    """Encoder and pretraining-head hyperparameters (BERT names).

    `hidden_act="gelu"` is the exact erf GeLU used by BERT, SpanBERT and the
    released checkpoints; `"gelu_approximate"` is keras-hub's tanh form.
    """

    vocab_size: int = 28996
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    dropout: float = 0.1
    hidden_act: str = "gelu"
    initializer_range: float = 0.02
    layer_norm_epsilon: float = 1e-12
    max_pair_targets: int = 15
    sbo_position_embedding_size: int = 200

    def validate(self, source="config"):
        for name in (
            "vocab_size",
            "hidden_size",
            "num_layers",
            "num_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
            "max_pair_targets",
            "sbo_position_embedding_size",
        ):
            if getattr(self, name) < 1:
                raise InputError(f"{source}: model.{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_heads:
            raise InputError(
                f"{source}: model.hidden_size ({self.hidden_size}) must be a multiple of "
                f"model.num_heads ({self.num_heads})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"{source}: model.dropout must be in [0, 1), got {self.dropout}")
        if self.hidden_act not in HIDDEN_ACTIVATIONS:
            raise InputError(
                f"{source}: model.hidden_act must be one of {HIDDEN_ACTIVATIONS}, "
                f"got {self.hidden_act!r}"
            )
        for name in ("initializer_range", "layer_norm_epsilon"):
            if getattr(self, name) <= 0:
                raise InputError(f"{source}: model.{name} must be > 0, got {getattr(self, name)}")


@dataclasses.dataclass
class OptimizerConfig:
    """Optimizer defaults: AdamW/LAMB, linear warmup then linear decay."""

    optimizer: str = "adamw"
    learning_rate: float = 1e-4
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-6
    weight_decay: float = 0.01
    num_warmup_steps: int = 10000
    num_train_steps: int = 2400000
    clip_norm: float = 1.0
    train_batch_size: int = 256
    end_learning_rate: float = 0.0

    def validate(self, source="config"):
        """Raises ValueError naming the field: `<source>: optimizer.<name>`, or the flag
        `--<name>` when `source` is "flags" (values given on a command line)."""
        def name_of(field):
            return f"--{field}" if source == "flags" else f"{source}: optimizer.{field}"

        if self.optimizer not in OPTIMIZERS:
            raise InputError(
                f"{name_of('optimizer')} must be one of {OPTIMIZERS}, got {self.optimizer!r}"
            )
        if self.learning_rate <= 0:
            raise InputError(f"{name_of('learning_rate')} must be > 0, got {self.learning_rate}")
        for name in ("beta_1", "beta_2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise InputError(f"{name_of(name)} must be in [0, 1), got {getattr(self, name)}")
        for name in ("epsilon", "num_train_steps", "train_batch_size"):
            if getattr(self, name) <= 0:
                raise InputError(f"{name_of(name)} must be > 0, got {getattr(self, name)}")
        for name in ("weight_decay", "num_warmup_steps", "clip_norm", "end_learning_rate"):
            if getattr(self, name) < 0:
                raise InputError(f"{name_of(name)} must be >= 0, got {getattr(self, name)}")


@dataclasses.dataclass
class TwoGroupOptimizerConfig:
    """The fine-tuning optimizer of coreference and NER (their configs' `optimizer` section):
    two parameter groups, the backbone (AdamW, warmup) and the task layers (Adam)."""

    bert_learning_rate: float = 2e-5
    task_learning_rate: float = 1e-4
    num_epochs: int = 20
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    adam_epsilon: float = 1e-6
    clip_norm: float = 1.0

    def validate(self, source="config"):
        for name in ("bert_learning_rate", "task_learning_rate", "num_epochs", "adam_epsilon"):
            if getattr(self, name) <= 0:
                raise InputError(
                    f"{source}: optimizer.{name} must be > 0, got {getattr(self, name)}")
        for name in ("warmup_ratio", "weight_decay", "clip_norm"):
            if getattr(self, name) < 0:
                raise InputError(
                    f"{source}: optimizer.{name} must be >= 0, got {getattr(self, name)}")


def _section_from_dict(cls, data, section, source):
    """Builds dataclass `cls` from `data`, checking keys and value types."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: '{section}' must be a JSON object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InputError(
            f"{source}: unknown key(s) {unknown} in '{section}'; known keys: {sorted(fields)}"
        )
    missing = sorted(set(fields) - set(data))
    if missing:
        raise InputError(f"{source}: missing key(s) {missing} in '{section}'")
    values = {}
    for name, field in fields.items():
        value = data[name]
        kind = field.type
        ok = (
            isinstance(value, kind) and not isinstance(value, bool)
            if kind is not float
            else isinstance(value, (int, float)) and not isinstance(value, bool)
        )
        if not ok:
            raise InputError(
                f"{source}: {section}.{name} must be of type {kind.__name__}, got {value!r}"
            )
        values[name] = float(value) if kind is float else value
    obj = cls(**values)
    obj.validate(source)
    return obj


@dataclasses.dataclass
class SpanBertConfig:
    """A named pair of model and optimizer settings (one `configs/*.json` file)."""

    name: str
    model: ModelConfig
    optimizer: OptimizerConfig

    def to_dict(self):
        return {
            "name": self.name,
            "model": dataclasses.asdict(self.model),
            "optimizer": dataclasses.asdict(self.optimizer),
        }

    @classmethod
    def from_dict(cls, d, source="config"):
        """Builds a config from a dict; `source` (e.g. a file name) is named in errors."""
        if not isinstance(d, dict):
            raise InputError(f"{source}: a config must be a JSON object, got {type(d).__name__}")
        expected = {"name", "model", "optimizer"}
        unknown = sorted(set(d) - expected)
        if unknown:
            raise InputError(
                f"{source}: unknown top-level key(s) {unknown}; expected {sorted(expected)}"
            )
        missing = sorted(expected - set(d))
        if missing:
            raise InputError(f"{source}: missing top-level key(s) {missing}")
        if not isinstance(d["name"], str) or not d["name"]:
            raise InputError(f"{source}: 'name' must be a non-empty string, got {d['name']!r}")
        return cls(
            name=d["name"],
            model=_section_from_dict(ModelConfig, d["model"], "model", source),
            optimizer=_section_from_dict(OptimizerConfig, d["optimizer"], "optimizer", source),
        )

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def save(self, path):
        """Writes the config as JSON atomically (temp file + rename)."""
        write_text_atomic(path, self.to_json())


def read_json_file(path, what="config"):
    """Reads a JSON object from `path` with errors that name the file."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise MissingFileError(f"{what} file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: invalid JSON ({e})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def config_path(name_or_path):
    """Resolves "tiny" | "base" | "large" to `<repo>/configs/<file>.json`, else a path."""
    if name_or_path in NAMED_CONFIGS:
        return CONFIGS_DIR / NAMED_CONFIGS[name_or_path]
    path = pathlib.Path(name_or_path)
    if not path.exists() and not str(name_or_path).endswith(".json"):
        candidate = CONFIGS_DIR / f"{name_or_path}.json"
        if candidate.exists():
            return candidate
        raise MissingFileError(
            f"config {name_or_path!r} is neither one of {sorted(NAMED_CONFIGS)} nor an "
            f"existing file"
        )
    return path


def load_config(name_or_path):
    """Loads a `SpanBertConfig` by name ("tiny", "base", "large") or from a JSON path."""
    path = config_path(name_or_path)
    return SpanBertConfig.from_dict(read_json_file(path), source=str(path))


@dataclasses.dataclass
class ModelDirInfo:
    """What `model_dir.read_model_dir` (or `preset_dir.read_preset_dir`) found.

    Defined here, below both readers, so that neither imports the other.

    `checkpoint_path` is a checkpoint prefix (".../ckpt-N"), or None when
    `read_model_dir(..., require_checkpoint=False)` found no checkpoint.
    `task` is the optional "task" object written by fine-tuning programs (`task_entry`):
    its family under "kind", its name under "name" (older spellings are normalised).
    """

    config: SpanBertConfig
    vocab_file: str
    do_lower_case: bool
    checkpoint_path: str = None
    task: dict = None
    model_dir: str = None
