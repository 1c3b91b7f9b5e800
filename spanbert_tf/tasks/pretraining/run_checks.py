"""What a pretraining run settles before its first step: the effective config (flags over the
config file, vocab_size from the data), the model dir's vocabulary and config, the init
checkpoint's kind, and whether one step fits the device. Shared by both runners
(`run.py`: TensorFlow Trainer / Keras fit on TFRecords; `block_run.py`: .npy blocks)."""

import dataclasses
import os

from spanbert_tf.convert import pretrainer_init
from spanbert_tf.errors import InputError
from spanbert_tf.io_utils import sha256_file
from spanbert_tf.modeling.config import load_config, read_json_file
from spanbert_tf.training import backends, memory


def effective_config(params):
    """The config file with the optimizer flags applied (what model_dir/config.json holds)."""
    config = load_config(params.config)
    overrides = {
        name: getattr(params, name)
        for name in ("train_batch_size", "num_train_steps", "num_warmup_steps",
                     "learning_rate", "weight_decay", "optimizer", "clip_norm")
        if getattr(params, name) is not None
    }
    if overrides:
        optimizer = dataclasses.replace(config.optimizer, **overrides)
        optimizer.validate("flags")
        config = dataclasses.replace(config, optimizer=optimizer)
    return config


def vocab_size_from_data(config, metadata, verbose=True):
    """The model's vocab_size follows the vocabulary the records were written with (their
    metadata.json), whatever the --config file says (its 28996 is BERT cased's)."""
    size = (metadata.get("vocab") or {}).get("size")
    if not size or int(size) == config.model.vocab_size:
        return config
    if verbose:
        print(f"run_pretraining: vocab_size {int(size)} from the data's vocabulary "
              f"{(metadata.get('vocab') or {}).get('path')} (--config {config.name} says "
              f"{config.model.vocab_size})", flush=True)
    return dataclasses.replace(config, model=dataclasses.replace(config.model,
                                                                 vocab_size=int(size)))


def refuse_hf_init_checkpoint(params):
    """A Hugging Face folder as --init_checkpoint loads on the TensorFlow backend only."""
    if params.init_checkpoint and pretrainer_init.is_hf_folder(params.init_checkpoint):
        raise InputError(f"--init_checkpoint={params.init_checkpoint} is a Hugging Face folder: "
                         "it loads on --backend=tensorflow; for this backend convert it first "
                         "(convert_checkpoint.py --input_format=hf --output_format=keras_hub_preset)")


def has_checkpoint(model_dir):
    """Whether `model_dir` holds a checkpoint (of any backend). A model dir without one (a run
    that died before its first checkpoint) holds nothing to resume and never blocks a new run."""
    return backends.checkpoint_format(model_dir) is not None


def vocab_for_model_dir(metadata, model_dir):
    """The vocabulary the shards were written with, checked by sha256."""
    vocab = metadata.get("vocab") or {}
    expected, source = vocab.get("sha256"), metadata.get("metadata_path")
    existing = os.path.join(model_dir, "vocab.txt")
    if (os.path.isfile(existing) and expected and has_checkpoint(model_dir)
            and sha256_file(existing) != expected):
        raise InputError(
            f"{existing} is not the vocabulary of the input data (sha256 differs from "
            f"{source}): this model dir was trained on other data; use another --model_dir"
        )
    for candidate in (vocab.get("path"), existing):
        if candidate and os.path.isfile(candidate):
            if expected and sha256_file(candidate) != expected:
                continue
            return candidate, bool(vocab.get("do_lower_case", False))
    raise InputError(
        f"{source}: the vocabulary {vocab.get('path')!r} is missing or changed (sha256 "
        f"{expected}); recreate the data or copy that vocab.txt into {model_dir}"
    )


def check_model_dir_config(model_dir, config):
    path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(path) or not has_checkpoint(model_dir):
        return
    existing = read_json_file(path).get("model")
    if existing is not None and existing != config.to_dict()["model"]:
        diff = sorted(k for k in existing if existing.get(k) != config.to_dict()["model"].get(k))
        raise InputError(
            f"{path} holds another model config (differs in {diff}); resume with the same "
            "--config or use another --model_dir"
        )


def device_kind(strategy):
    import tensorflow as tf

    try:
        devices = " ".join(strategy.extended.worker_devices).upper()
    except RuntimeError:  # the default strategy: TensorFlow's first device
        devices = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    return "TPU" if "TPU" in devices else "GPU" if "GPU" in devices else "CPU"


def check_step_memory(params, config, metadata, replicas, device_kind):
    """Prints batch, length, parameters and the step's memory; stops when it cannot fit."""
    global_batch = config.optimizer.train_batch_size
    L, P = metadata["max_seq_length"], metadata["max_predictions_per_seq"]

    def plan_for(accum):
        return memory.step_plan(config.model, global_batch, L, P, replicas, accum,
                                params.mixed_precision)

    plan = plan_for(params.grad_accum_steps)
    available, where = memory.available_memory_bytes(device_kind)
    need = plan["step_bytes"] / memory.GB
    line = (f"run_pretraining: global batch {global_batch} ({plan['micro_batch']} per replica x "
            f"{params.grad_accum_steps} accumulation step(s) x {replicas} replica(s)), seq {L}, "
            f"{plan['parameters'] / 1e6:.1f} M parameters, step memory ~{need:.1f} GB")
    if available:
        line += f" ({where} {available / memory.GB:.1f} GB)"
    print(line, flush=True)
    if not available or plan["step_bytes"] <= available or params.force:
        return
    accum = params.grad_accum_steps
    suggestion = ""
    while accum * 2 * replicas <= global_batch and not global_batch % (accum * 2 * replicas):
        accum *= 2
        if plan_for(accum)["step_bytes"] <= available:
            suggestion = f" (e.g. --grad_accum_steps={accum})"
            break
    raise InputError(
        f"a training step needs about {need:.1f} GB but {where} {available / memory.GB:.1f} GB: "
        f"lower --train_batch_size (now {global_batch}) or raise --grad_accum_steps{suggestion}; "
        "--force tries anyway")
