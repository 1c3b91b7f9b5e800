"""Pretraining from `.npy` block dirs on JAX or PyTorch, with no TensorFlow installed.

`run_pretraining.py --backend=jax|torch --input_files=DIR --dynamic_masking` comes here when
DIR was written by `create_pretraining_data.py --masking=none --output_format=npy`
(`block_files.is_block_input`): the same config, checks, model dir and Keras `fit` loop as
the TFRecord run on JAX (`run._run_keras_fit`), fed by `block_loader.BlockBatches` (numpy
span masking, bit-identical to the tf.data masks for the same seed and epoch, worker
processes, sharded per host, resumed at the exact batch). Nothing here imports TensorFlow.

Differences from the tf.data input: the order of the examples (a seeded permutation per
epoch instead of shard interleave + shuffle buffer; the masks of each example are the same);
TensorBoard events are written only when TensorFlow is importable (train_log.jsonl always).

Example:
```python
summary = run_from_blocks(PretrainingSettings(backend="jax", input_files="runs/blocks",
                                              dynamic_masking=True, num_train_steps=100))
```
"""

import dataclasses
import os

import keras

from spanbert_tf.data.blocks.block_files import find_block_files
from spanbert_tf.data.blocks.block_loader import BlockBatches
from spanbert_tf.data.input.records_metadata import check_metadata
from spanbert_tf.data.masking.numpy_dynamic import NumpyDynamicMasker, reference_masker_for_records
from spanbert_tf.errors import InputError
from spanbert_tf.modeling.model_dir import write_model_dir_metadata
from spanbert_tf.tasks.pretraining import run as run_lib
from spanbert_tf.tasks.pretraining import run_checks
from spanbert_tf.training import backends, keras_fit

NO_PRESET_WITHOUT_TF = (
    "preset not written: spanbert_tf.presets imports TensorFlow (presets/masked_lm.py); "
    "the checkpoint MODEL_DIR/ckpt-N.weights.h5 holds the weights: rerun with "
    "--num_train_steps=N where TensorFlow is installed to write MODEL_DIR/preset")


def input_workers(requested=None):
    """Masking processes: `requested`, else half the cores (at most 8; 0 on one core)."""
    if requested is not None:
        return int(requested)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return 0 if cores < 2 else min(8, cores // 2)


def local_devices():
    """The devices `fit` trains on: JAX's (DataParallel over them), else torch's one."""
    if keras.backend.backend() == "jax":
        return keras.distribution.list_devices()
    import torch

    return ["cuda:0"] if torch.cuda.is_available() else ["cpu:0"]


def block_masker(params, metadata, model, vocab_file, do_lower_case):
    source = metadata["metadata_path"]
    if params.dynamic_masking is False:
        raise InputError(f"{source}: the blocks are unmasked (--output_format=npy): train "
                         "them with --dynamic_masking")
    if params.max_pair_targets > model.max_pair_targets:
        raise InputError(f"--max_pair_targets {params.max_pair_targets} exceeds the model's "
                         f"max_pair_targets {model.max_pair_targets}")
    reference = reference_masker_for_records(metadata, params.masking_config(), vocab_file,
                                             do_lower_case, params.random_token_source)
    return NumpyDynamicMasker(reference, metadata["max_seq_length"])


def run_from_blocks(params):
    """The run of `run_pretraining` on block dirs (Keras backend already selected)."""
    backend = keras.backend.backend()
    tf_only = {"--strategy": params.strategy != "default", "--tpu": bool(params.tpu),
               "--grad_accum_steps": params.grad_accum_steps != 1,
               "--jit_compile": params.jit_compile,
               "--skip_corrupt_records": params.skip_corrupt_records}
    refused = [flag for flag, given in tf_only.items() if given]
    if refused:
        raise InputError(f"{', '.join(refused)}: not for --backend={backend} on .npy blocks "
                         "(one jitted step over all local devices; shards are checked "
                         "against metadata.json and refused whole when damaged)")
    devices = local_devices()[:params.num_gpus or None]
    kind = devices[0].split(":")[0].upper()
    device_kind = "GPU" if kind in ("CUDA", "GPU") else kind
    run_checks.refuse_hf_init_checkpoint(params)
    files, metadata = find_block_files(params.input_files)
    config = run_checks.vocab_size_from_data(run_checks.effective_config(params), metadata)
    model = config.model
    check_metadata(metadata, vocab_size=model.vocab_size,
                   max_position_embeddings=model.max_position_embeddings)
    vocab_file, do_lower_case = run_checks.vocab_for_model_dir(metadata, params.model_dir)
    masker = block_masker(params, metadata, model, vocab_file, do_lower_case)
    backends.check_checkpoint_backend(params.model_dir, backend)
    run_checks.check_model_dir_config(params.model_dir, config)
    global_batch = config.optimizer.train_batch_size
    run_checks.check_step_memory(params, config, metadata, len(devices), device_kind)
    hosts, host = _hosts()
    batches = BlockBatches(files, metadata, masker, global_batch, seed=params.seed,
                           num_hosts=hosts, host_index=host,
                           num_workers=input_workers(params.input_workers))
    print(f"run_pretraining: {len(files)} block shard(s), {batches.rows_per_epoch} rows per "
          f"epoch{f' on host {host} of {hosts}' if hosts > 1 else ''}, masked by "
          f"{batches.num_workers or 'no'} worker process(es)", flush=True)
    if host == 0:
        write_model_dir_metadata(params.model_dir, config, vocab_file, do_lower_case)
    settings = keras_fit.FitSettings(**{
        f.name: getattr(params, f.name) for f in dataclasses.fields(keras_fit.FitSettings)
        if hasattr(params, f.name)})
    settings.num_train_steps = config.optimizer.num_train_steps
    settings.num_devices = len(devices)
    summary = keras_fit.train_with_keras_fit(
        config, batches, params.model_dir, vocab_file, do_lower_case, settings,
        write_preset=lambda m: _write_preset(m, params.model_dir, vocab_file, do_lower_case),
        devices=devices)
    summary["strategy"] = (f"{backend} DataParallel" if backend == "jax"
                           else f"{backend} {devices[0]}")
    run = dict(config=config, files=files, metadata=metadata, masker=masker,
               shard_report={"dropped_records": 0, "corrupt_shards": []})
    return run_lib._finish_summary(summary, params, run, is_chief=host == 0)


def _hosts():
    """(process count, index) of a multi-host JAX run; (1, 0) otherwise."""
    if keras.backend.backend() != "jax":
        return 1, 0
    import jax

    return jax.process_count(), jax.process_index()


def _write_preset(model, model_dir, vocab_file, do_lower_case):
    try:
        from spanbert_tf.tasks.pretraining.preset import write_model_dir_preset
    except ImportError as e:
        if "tensorflow" not in str(e):
            raise
        print(f"run_pretraining: {NO_PRESET_WITHOUT_TF}", flush=True)
        return None
    return write_model_dir_preset(model, model_dir, vocab_file, do_lower_case)
