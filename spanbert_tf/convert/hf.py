"""Hugging Face BERT/SpanBERT checkpoint folders ⇄ canonical weight dicts.

The converters in this package meet in one neutral representation, the
*canonical weights*: a `dict[str, np.ndarray]` (float32) named and laid out as
Hugging Face's `BertModel` / `BertLMPredictionHead` without the `bert.` prefix
(PyTorch layout: a Linear weight is `[out, in]`; LayerNorm `weight`/`bias`):

```
embeddings.word_embeddings.weight                  [vocab, hidden]
embeddings.{position,token_type}_embeddings.weight
embeddings.LayerNorm.{weight,bias}
encoder.layer.N.attention.self.{query,key,value}.{weight,bias}
encoder.layer.N.attention.output.dense.{weight,bias}
encoder.layer.N.attention.output.LayerNorm.{weight,bias}
encoder.layer.N.{intermediate,output}.dense.{weight,bias}
encoder.layer.N.output.LayerNorm.{weight,bias}
pooler.dense.{weight,bias}                         (optional)
cls.predictions.transform.dense.{weight,bias}      (optional MLM head, all or none)
cls.predictions.transform.LayerNorm.{weight,bias}
cls.predictions.bias
cls.pair_target_predictions.position_embeddings.weight          [max_targets, 200]
cls.pair_target_predictions.mlp_layer_norm.linear{1,2}.{weight,bias}
cls.pair_target_predictions.mlp_layer_norm.layer_norm{1,2}.{weight,bias}
cls.pair_target_predictions.bias    (optional SBO head, all or none)
```

The SBO names are those of the official `BertPairTargetPredictionHead` / `MLPWithLayerNorm`
(facebookresearch/SpanBERT `pretraining/fairseq/models/pair_bert.py`), whose `BertLayerNorm`
calls its parameters `gamma`/`beta`: read as `weight`/`bias` (as the MLM head's are), and
written back as `gamma`/`beta` (`official_sbo_name`), so the official module loads them with
`load_state_dict`. A fairseq checkpoint's `decoder.` prefix is removed.

This module reads an HF folder (`config.json` + `model.safetensors`, sharded
safetensors, or `pytorch_model.bin`), classifies its tensors (NSP head: reported
and dropped; tied decoder copies and buffers: checked and skipped; anything else
unknown: an error listing them) and writes an HF folder back.

Example:
```python
model_config, hf_config = read_hf_config("spanbert-base-cased")
tensors = read_hf_tensors("spanbert-base-cased")          # fp16 -> float32
weights, report = canonicalize_hf_tensors(tensors, model_config.num_layers)
write_hf_folder("out", weights, model_config, "vocab.txt", do_lower_case=False)
```
"""

import json
import os
import pathlib
import re

import numpy as np

from spanbert_tf.errors import InputError, MissingFileError
from spanbert_tf.io_utils import atomic_path, copy_file_atomic, write_text_atomic
from spanbert_tf.modeling.config import ModelConfig, read_json_file

SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX_FILE = "model.safetensors.index.json"
PYTORCH_FILE = "pytorch_model.bin"

# HF activation name -> ours. gelu_new / gelu_pytorch_tanh / gelu_fast are the tanh form.
_HF_TO_OUR_ACT = {
    "gelu": "gelu",
    "gelu_new": "gelu_approximate",
    "gelu_pytorch_tanh": "gelu_approximate",
    "gelu_fast": "gelu_approximate",
}
_OUR_TO_HF_ACT = {"gelu": "gelu", "gelu_approximate": "gelu_new"}

# Tensors HF checkpoints carry that are not weights (registered buffers).
_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")
NSP_KEYS = ("cls.seq_relationship.weight", "cls.seq_relationship.bias")
POOLER_KEYS = ("pooler.dense.weight", "pooler.dense.bias")
MLM_KEYS = (
    "cls.predictions.transform.dense.weight",
    "cls.predictions.transform.dense.bias",
    "cls.predictions.transform.LayerNorm.weight",
    "cls.predictions.transform.LayerNorm.bias",
    "cls.predictions.bias",
)
SBO_PREFIX = "cls.pair_target_predictions."
SBO_POSITION_KEY = SBO_PREFIX + "position_embeddings.weight"
SBO_KEYS = (SBO_POSITION_KEY,) + tuple(
    f"{SBO_PREFIX}mlp_layer_norm.{module}.{param}"
    for module in ("linear1", "layer_norm1", "linear2", "layer_norm2")
    for param in ("weight", "bias")
) + (SBO_PREFIX + "bias",)
_TIED_DECODERS = ("cls.predictions.decoder.weight", SBO_PREFIX + "decoder.weight")
_LAYER_SUFFIXES = tuple(
    f"{module}.{param}"
    for module in (
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.output.dense",
        "attention.output.LayerNorm",
        "intermediate.dense",
        "output.dense",
        "output.LayerNorm",
    )
    for param in ("weight", "bias")
)


def backbone_keys(num_layers):
    """The canonical names every encoder must provide (pooler excluded)."""
    keys = [
        "embeddings.word_embeddings.weight",
        "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight",
        "embeddings.LayerNorm.weight",
        "embeddings.LayerNorm.bias",
    ]
    for i in range(num_layers):
        keys += [f"encoder.layer.{i}.{suffix}" for suffix in _LAYER_SUFFIXES]
    return keys


def read_hf_config(folder):
    """Reads `folder/config.json` → (ModelConfig, the raw HF dict)."""
    if not pathlib.Path(folder).is_dir():
        raise MissingFileError(f"Hugging Face checkpoint folder not found: {folder}")
    return read_bert_config(pathlib.Path(folder) / "config.json")


def read_bert_config(path):
    """Reads an HF `config.json` or a google-research `bert_config.json`.

    Returns (ModelConfig, the raw dict). Raises `ValueError` naming the file for a
    missing key, a non-BERT model type, a non-absolute position embedding or an
    activation we cannot reproduce.
    """
    path = pathlib.Path(path)
    hf = read_json_file(path, what="BERT config")
    model_type = hf.get("model_type", "bert")
    if model_type != "bert":
        raise InputError(f"{path}: model_type {model_type!r} is not 'bert'")
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise InputError(
            f"{path}: position_embedding_type {hf['position_embedding_type']!r} is not "
            "supported (only 'absolute')"
        )
    required = (
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "max_position_embeddings",
    )
    missing = [k for k in required if k not in hf]
    if missing:
        raise InputError(f"{path}: missing key(s) {missing}")
    act = hf.get("hidden_act", "gelu")
    if act not in _HF_TO_OUR_ACT:
        raise InputError(
            f"{path}: hidden_act {act!r} is not supported; expected one of "
            f"{sorted(_HF_TO_OUR_ACT)}"
        )
    defaults = ModelConfig()
    config = ModelConfig(
        vocab_size=int(hf["vocab_size"]),
        hidden_size=int(hf["hidden_size"]),
        num_layers=int(hf["num_hidden_layers"]),
        num_heads=int(hf["num_attention_heads"]),
        intermediate_size=int(hf["intermediate_size"]),
        max_position_embeddings=int(hf["max_position_embeddings"]),
        type_vocab_size=int(hf.get("type_vocab_size", 2)),
        dropout=float(hf.get("hidden_dropout_prob", defaults.dropout)),
        hidden_act=_HF_TO_OUR_ACT[act],
        initializer_range=float(hf.get("initializer_range", defaults.initializer_range)),
        layer_norm_epsilon=float(hf.get("layer_norm_eps", defaults.layer_norm_epsilon)),
    )
    config.validate(str(path))
    return config, hf


def hf_config_dict(model_config, pad_token_id=0):
    """Our ModelConfig → a transformers `BertConfig` JSON dict (BertForMaskedLM)."""
    return {
        "architectures": ["BertForMaskedLM"],
        "model_type": "bert",
        "vocab_size": model_config.vocab_size,
        "hidden_size": model_config.hidden_size,
        "num_hidden_layers": model_config.num_layers,
        "num_attention_heads": model_config.num_heads,
        "intermediate_size": model_config.intermediate_size,
        "hidden_act": _OUR_TO_HF_ACT[model_config.hidden_act],
        "hidden_dropout_prob": model_config.dropout,
        "attention_probs_dropout_prob": model_config.dropout,
        "max_position_embeddings": model_config.max_position_embeddings,
        "type_vocab_size": model_config.type_vocab_size,
        "initializer_range": model_config.initializer_range,
        "layer_norm_eps": model_config.layer_norm_epsilon,
        "position_embedding_type": "absolute",
        "pad_token_id": int(pad_token_id),
        "tie_word_embeddings": True,
    }


def _to_float32(name, array, source):
    array = np.asarray(array)
    if array.dtype.kind == "f":
        return array.astype(np.float32, copy=False)
    if name.endswith(_BUFFERS):
        return array
    raise InputError(f"{source}: tensor {name} has non-float dtype {array.dtype}")


def _read_safetensors(path):
    from safetensors import safe_open

    out = {}
    try:
        with safe_open(str(path), framework="np") as f:
            for name in f.keys():
                out[name] = _to_float32(name, f.get_tensor(name), path)
        return out
    except TypeError:
        # numpy has no bfloat16: read through torch when it is installed.
        try:
            import torch  # noqa: F401
        except ImportError:
            raise InputError(
                f"{path}: holds bfloat16 tensors, which need torch to read"
            ) from None
    with safe_open(str(path), framework="pt") as f:
        for name in f.keys():
            t = f.get_tensor(name)
            t = t.float() if t.is_floating_point() else t
            out[name] = _to_float32(name, t.numpy(), path)
    return out


def read_hf_tensors(folder):
    """Reads every tensor of an HF folder as float32 numpy arrays (fp16/bf16 upcast).

    Looks for `model.safetensors`, then a sharded `model.safetensors.index.json`,
    then `pytorch_model.bin` (needs torch).
    """
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise MissingFileError(f"Hugging Face checkpoint folder not found: {folder}")
    if (folder / SAFETENSORS_FILE).is_file():
        return _read_safetensors(folder / SAFETENSORS_FILE)
    if (folder / SAFETENSORS_INDEX_FILE).is_file():
        index = read_json_file(folder / SAFETENSORS_INDEX_FILE, what="safetensors index")
        tensors = {}
        for shard in sorted(set(index.get("weight_map", {}).values())):
            if not (folder / shard).is_file():
                raise MissingFileError(f"{folder / SAFETENSORS_INDEX_FILE}: shard {shard} missing")
            tensors.update(_read_safetensors(folder / shard))
        return tensors
    if (folder / PYTORCH_FILE).is_file():
        try:
            import torch
        except ImportError:
            raise InputError(
                f"{folder / PYTORCH_FILE}: reading pytorch_model.bin needs torch "
                "(pip install torch), or convert it to model.safetensors"
            ) from None
        state = torch.load(folder / PYTORCH_FILE, map_location="cpu", weights_only=True)
        return {
            name: _to_float32(
                name,
                (t.float() if t.is_floating_point() else t).numpy(),
                folder / PYTORCH_FILE,
            )
            for name, t in state.items()
        }
    raise MissingFileError(
        f"{folder}: no {SAFETENSORS_FILE}, {SAFETENSORS_INDEX_FILE} or {PYTORCH_FILE}"
    )


def _strip_name(name):
    """`bert.` prefix removed, old LayerNorm gamma/beta names → weight/bias."""
    if name.startswith(("decoder.bert.", "decoder.cls.")):  # a fairseq checkpoint's model
        name = name[len("decoder."):]
    if name.startswith("bert."):
        name = name[len("bert.") :]
    name = re.sub(r"(LayerNorm|layer_norm\d)\.beta$", r"\1.bias", name)
    return re.sub(r"(LayerNorm|layer_norm\d)\.gamma$", r"\1.weight", name)


def official_sbo_name(name):
    """Canonical SBO name → the official state-dict name (`BertLayerNorm` gamma/beta)."""
    return re.sub(r"(layer_norm\d)\.weight$", r"\1.gamma",
                  re.sub(r"(layer_norm\d)\.bias$", r"\1.beta", name))


def canonicalize_hf_tensors(tensors, num_layers, source="checkpoint", display_names=None):
    """Sorts HF tensors into canonical weights; returns (weights, report).

    `report` is a dict: "dropped" (NSP head), "skipped" (buffers, tied decoder
    copies), "missing_pooler" / "missing_mlm_head" / "missing_sbo_head" (bool). Raises `ValueError`
    listing any unknown tensor, any missing encoder tensor, a partial MLM head or
    a decoder not tied to the word embeddings. `display_names` maps a tensor
    name to the name reports and errors show (e.g. the original TF1 name).
    """
    show = (lambda n: display_names.get(n, n)) if display_names else (lambda n: n)
    weights, dropped, skipped, unknown = {}, [], [], []
    decoder = {}
    known = set(backbone_keys(num_layers)) | set(POOLER_KEYS) | set(MLM_KEYS) | set(SBO_KEYS)
    for raw_name, value in tensors.items():
        name = _strip_name(raw_name)
        if name in known:
            if name in weights:
                raise InputError(f"{source}: tensor {name} appears twice (as {show(raw_name)})")
            weights[name] = value
        elif name in NSP_KEYS:
            dropped.append(show(raw_name))
        elif name.endswith(_BUFFERS):
            skipped.append(show(raw_name))
        elif name in _TIED_DECODERS + ("cls.predictions.decoder.bias",):
            decoder[name] = value
            skipped.append(show(raw_name))
        else:
            unknown.append(show(raw_name))
    if unknown:
        raise InputError(
            f"{source}: {len(unknown)} unknown tensor(s) that map to nothing in SpanBERT: "
            + ", ".join(sorted(unknown))
        )
    missing = [k for k in backbone_keys(num_layers) if k not in weights]
    if missing:
        raise InputError(
            f"{source}: missing encoder tensor(s) for a {num_layers}-layer config: "
            + ", ".join(missing)
        )
    if "cls.predictions.decoder.bias" in decoder and "cls.predictions.bias" not in weights:
        weights["cls.predictions.bias"] = decoder["cls.predictions.decoder.bias"]
    present_mlm = [k for k in MLM_KEYS if k in weights]
    if present_mlm and len(present_mlm) != len(MLM_KEYS):
        raise InputError(
            f"{source}: partial MLM head, missing "
            + ", ".join(k for k in MLM_KEYS if k not in weights)
        )
    present_sbo = [k for k in SBO_KEYS if k in weights]
    if present_sbo and len(present_sbo) != len(SBO_KEYS):
        raise InputError(
            f"{source}: partial SBO head, missing "
            + ", ".join(k for k in SBO_KEYS if k not in weights)
        )
    for name in _TIED_DECODERS:
        tied = decoder.get(name)
        if tied is not None and not np.array_equal(tied, weights["embeddings.word_embeddings.weight"]):
            raise InputError(
                f"{source}: {name} differs from the word embeddings; "
                "SpanBERT ties them, an untied decoder cannot be converted"
            )
    present_pooler = [k for k in POOLER_KEYS if k in weights]
    if len(present_pooler) == 1:
        raise InputError(f"{source}: pooler has only {present_pooler[0]}")
    report = {
        "dropped": sorted(dropped),
        "skipped": sorted(skipped),
        "missing_pooler": not present_pooler,
        "missing_mlm_head": not present_mlm,
        "missing_sbo_head": not present_sbo,
    }
    return weights, report


def write_hf_folder(folder, weights, model_config, vocab_file, do_lower_case, pad_token_id=0):
    """Writes `config.json`, `model.safetensors`, `vocab.txt`, `tokenizer_config.json`.

    Encoder and pooler tensors get the `bert.` prefix, the MLM head its
    `cls.predictions.` names and the SBO head (when given) the official
    `cls.pair_target_predictions.` names (`official_sbo_name`), so `transformers.BertForMaskedLM` and `BertModel`
    load the folder with no missing keys. Every file is written atomically.
    """
    from safetensors.numpy import save_file

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    def stored_name(name):
        if name.startswith(SBO_PREFIX):
            return official_sbo_name(name)
        return name if name.startswith("cls.") else f"bert.{name}"

    tensors = {
        stored_name(name): np.ascontiguousarray(
            value, dtype=np.float32
        )
        for name, value in weights.items()
    }
    with atomic_path(folder / SAFETENSORS_FILE) as tmp:
        save_file(tensors, tmp, metadata={"format": "pt"})
    write_text_atomic(
        folder / "config.json",
        json.dumps(hf_config_dict(model_config, pad_token_id), indent=2) + "\n",
    )
    tokenizer_config = {
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": bool(do_lower_case),
        "model_max_length": model_config.max_position_embeddings,
    }
    write_text_atomic(folder / "tokenizer_config.json", json.dumps(tokenizer_config, indent=2) + "\n")
    if os.path.abspath(vocab_file) != os.path.abspath(folder / "vocab.txt"):
        copy_file_atomic(vocab_file, folder / "vocab.txt")
    return folder
