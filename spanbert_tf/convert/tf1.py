"""google-research/bert TF1 checkpoints → canonical weights.

A TF1 BERT release is a folder with `bert_config.json`, `vocab.txt` and
`bert_model.ckpt.{index,data-*}` whose variables are named
`bert/embeddings/word_embeddings`, `bert/encoder/layer_N/attention/self/query/kernel`,
`cls/predictions/transform/dense/kernel`, `cls/predictions/output_bias`,
`cls/seq_relationship/output_weights` ... Dense kernels are `[in, out]` there and
`[out, in]` in the canonical (Hugging Face) layout, so they are transposed;
`cls/seq_relationship/output_weights` is already `[out, in]`. Optimizer slots
(`*/adam_m`, `*/adam_v`) and `global_step` are skipped.

Example:
```python
model_config, tensors, prefix, names = read_tf1_checkpoint("uncased_L-12_H-768_A-12")
weights, report = canonicalize_hf_tensors(tensors, model_config.num_layers, prefix, names)
```
"""

import pathlib
import re

import numpy as np

from spanbert_tf.convert.hf import read_bert_config
from spanbert_tf.errors import InputError, MissingFileError
from spanbert_tf.modeling import model_dir as model_dir_lib

TF1_CONFIG_FILE = "bert_config.json"
TF1_CHECKPOINT_PREFIX = "bert_model.ckpt"
_SKIPPED = re.compile(r"(^|/)(adam_m|adam_v|Adam|Adam_1)$|^global_step$|^_CHECKPOINTABLE_OBJECT_GRAPH$")


def find_tf1_checkpoint(path):
    """Resolves a folder or checkpoint prefix → (checkpoint prefix, bert_config.json path)."""
    path = pathlib.Path(path)
    if path.is_dir():
        latest = model_dir_lib.latest_checkpoint(path)
        if (path / f"{TF1_CHECKPOINT_PREFIX}.index").is_file():
            prefix = path / TF1_CHECKPOINT_PREFIX
        elif latest:
            prefix = pathlib.Path(latest)
        else:
            raise MissingFileError(f"{path}: no {TF1_CHECKPOINT_PREFIX}.index and no checkpoint file")
        config_dir = path
    else:
        if not pathlib.Path(f"{path}.index").is_file():
            raise MissingFileError(f"TF1 checkpoint not found: {path}.index")
        prefix, config_dir = path, path.parent
    config_file = config_dir / TF1_CONFIG_FILE
    if not config_file.is_file():
        raise MissingFileError(f"{config_dir}: {TF1_CONFIG_FILE} not found next to the checkpoint")
    return str(prefix), config_file


def tf1_name_to_hf(name):
    """`bert/encoder/layer_3/output/dense/kernel` → (`bert.encoder.layer.3.output.dense.weight`, transpose?)."""
    parts = name.split("/")
    transpose = False
    if parts[-1] == "kernel":
        parts[-1], transpose = "weight", True
    elif parts[-1] == "gamma":
        parts[-1] = "weight"
    elif parts[-1] == "beta":
        parts[-1] = "bias"
    elif parts[-1] == "output_bias":
        parts[-1] = "bias"
    elif parts[-1] == "output_weights":
        parts[-1] = "weight"
    if parts[-1] != "weight" and parts[-1] != "bias" and "embeddings" in parts[-1]:
        parts.append("weight")
    parts = [re.sub(r"^layer_(\d+)$", r"layer.\1", p) for p in parts]
    return ".".join(parts), transpose


def read_tf1_checkpoint(path):
    """Reads a google-research/bert checkpoint → (ModelConfig, {hf_name: float32}, prefix, names).

    Names are translated to Hugging Face names (with the `bert.` prefix), ready
    for `canonicalize_hf_tensors`, which reports/drops the NSP head and rejects
    anything unknown. `names` maps each HF name back to the TF1 variable name.
    """
    import tensorflow as tf

    prefix, config_file = find_tf1_checkpoint(path)
    model_config, _ = read_bert_config(config_file)
    reader = tf.train.load_checkpoint(prefix)
    tensors, names = {}, {}
    for name in sorted(reader.get_variable_to_shape_map()):
        if _SKIPPED.search(name):
            continue
        hf_name, transpose = tf1_name_to_hf(name)
        value = np.asarray(reader.get_tensor(name))
        if value.dtype.kind != "f":
            raise InputError(f"{prefix}: variable {name} has non-float dtype {value.dtype}")
        value = value.astype(np.float32, copy=False)
        if transpose:
            if value.ndim != 2:
                raise InputError(f"{prefix}: kernel {name} has rank {value.ndim}, expected 2")
            value = np.ascontiguousarray(value.T)
        if hf_name in tensors:
            raise InputError(f"{prefix}: two variables map to {hf_name}")
        tensors[hf_name] = value
        names[hf_name] = name
    return model_config, tensors, prefix, names


def default_tf1_vocab(path):
    """`vocab.txt` next to a TF1 checkpoint, or None."""
    path = pathlib.Path(path)
    folder = path if path.is_dir() else path.parent
    vocab = folder / "vocab.txt"
    return str(vocab) if vocab.is_file() else None

