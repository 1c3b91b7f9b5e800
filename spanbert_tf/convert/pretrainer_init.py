"""`run_pretraining.py --init_checkpoint=HF_DIR`: continue pretraining from released weights.

An HF BERT/SpanBERT folder (`config.json` + `model.safetensors` / `pytorch_model.bin`) loads
into the whole `SpanBertPretrainer`: the encoder always, the MLM head when the folder has
`cls.predictions.*`, the SBO head when it has the official `cls.pair_target_predictions.*`
(the layout of the released `spanbert_large_with_head`; see `convert_hf`). What the folder
lacks stays initialised and is said so; an NSP head is dropped and said so; a tensor that does
not fit the model (another vocabulary, `max_targets`, width, depth) stops the run with one
clause per tensor, naming both shapes.

Example:
```python
if is_hf_folder(path):
    for line in load_hf_into_pretrainer(pretrainer, path):
        print(line)
```
"""

import os

from spanbert_tf.convert import hf as convert_hf, keras_weights
from spanbert_tf.errors import InputError

_CONFIG_FIELDS = ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                  "max_position_embeddings", "type_vocab_size", "hidden_act")


def is_hf_folder(path):
    """Whether `path` is a Hugging Face checkpoint folder (not one of our model dirs)."""
    path = str(path)
    if not os.path.isdir(path) or not os.path.isfile(os.path.join(path, "config.json")):
        return False
    return any(os.path.isfile(os.path.join(path, f)) for f in (
        convert_hf.SAFETENSORS_FILE, convert_hf.SAFETENSORS_INDEX_FILE, convert_hf.PYTORCH_FILE))


def config_mismatches(model_config, hf_config, folder):
    """One clause per architecture field where the folder's config.json and the run differ."""
    return [f"{name} is {getattr(hf_config, name)} in {folder}/config.json but "
            f"{getattr(model_config, name)} in --config"
            for name in _CONFIG_FIELDS if getattr(hf_config, name) != getattr(model_config, name)]


def load_hf_into_pretrainer(model, folder, model_config=None):
    """Loads an HF folder into `model` (a SpanBertPretrainer); returns the report lines."""
    hf_config, _ = convert_hf.read_hf_config(folder)
    problems = config_mismatches(model_config, hf_config, folder) if model_config else []
    if problems:
        raise InputError(f"--init_checkpoint={folder} does not fit the model: "
                         + "; ".join(problems))
    tensors = convert_hf.read_hf_tensors(folder)
    weights, found = convert_hf.canonicalize_hf_tensors(tensors, hf_config.num_layers, str(folder))
    sbo = None if found["missing_sbo_head"] else model.sbo_head
    mlm = None if found["missing_mlm_head"] else model.mlm_head
    misfits = keras_weights.mismatch_lines(model.backbone, weights, mlm, sbo)
    if misfits:
        raise InputError(f"--init_checkpoint={folder}: {len(misfits)} tensor(s) do not fit the "
                         "model: " + "; ".join(misfits))
    assigned = keras_weights.assign_weights(model.backbone, weights, mlm_head=mlm,
                                            source=str(folder), sbo_head=sbo)
    loaded = ["encoder"] + (["pooler"] if not found["missing_pooler"] else [])
    if mlm is not None:
        loaded.append("MLM head (cls.predictions.*)")
    if sbo is not None:
        rows, width = weights[convert_hf.SBO_POSITION_KEY].shape
        loaded.append(f"SBO head (cls.pair_target_predictions.*, max_targets {rows} x {width})")
    lines = [f"init_checkpoint: {len(assigned)} tensors from {folder}: " + ", ".join(loaded)]
    fresh = [name for name, missing in (("pooler", found["missing_pooler"]),
                                        ("MLM head", found["missing_mlm_head"]),
                                        ("SBO head", found["missing_sbo_head"])) if missing]
    if fresh:
        lines.append(f"init_checkpoint: not in {folder}, initialised: {', '.join(fresh)}")
    if found["dropped"]:
        lines.append(f"init_checkpoint: dropped (no SpanBERT counterpart): "
                     f"{', '.join(found['dropped'])}")
    return lines

