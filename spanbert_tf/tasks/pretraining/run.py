"""SpanBERT pretraining: `run_pretraining` (the body of run_pretraining.py).

The Task it hands to the one training loop is `spanbert_tf.tasks.pretraining.task.PretrainingTask`.
`run_pretraining(params)` is everything `run_pretraining.py` does: strategy,
config + flag overrides, input files checked against the config, model dir
metadata (config.json, vocab.txt), training with resume, a summary.

Example:
```python
summary = run_pretraining(PretrainingSettings(config="tiny", input_files="tfrecords",
                                            model_dir="runs/pretrain", num_train_steps=300))
summary["checkpoint"]   # runs/pretrain/ckpt-300
```
With `backend="jax"` (or KERAS_BACKEND=jax) the same run trains with Keras `fit` over all local
devices (`spanbert_tf.training.keras_fit`); the backend is chosen before keras is imported.
"""

import dataclasses
import os

from spanbert_tf.convert import pretrainer_init
from spanbert_tf.data.blocks.block_files import is_block_input
from spanbert_tf.data.masking.masking_types import MaskingConfig
from spanbert_tf.errors import InputError
from spanbert_tf.modeling.model_dir import write_model_dir_metadata
from spanbert_tf.plotting.train_log_plot import write_train_log_plot
from spanbert_tf.tasks.pretraining import run_checks
from spanbert_tf.tasks.pretraining.task import PretrainingTask
from spanbert_tf.training import backends

# input_pipeline, shard_check, distribute and the models import TensorFlow: they are imported
# inside the functions that use them, so that `run_pretraining.py --help` (which reads the
# defaults of PretrainingSettings) answers without loading TensorFlow.


# The masking defaults are MaskingConfig's (§3.1), written once.
_MASKING_DEFAULTS = MaskingConfig()


@dataclasses.dataclass
class PretrainingSettings:
    """Settings of one pretraining run (the flags of run_pretraining.py).

    None means "the config's value" for the optimizer settings.
    """

    config: str = "tiny"
    input_files: str = "tfrecords"
    model_dir: str = "runs/pretrain"
    strategy: str = "default"
    tpu: str = None
    num_gpus: int = None
    cpu_devices: int = None
    train_batch_size: int = None
    num_train_steps: int = None
    num_warmup_steps: int = None
    learning_rate: float = None
    weight_decay: float = None
    optimizer: str = None
    clip_norm: float = None
    grad_accum_steps: int = 1
    steps_per_loop: int = 10
    mixed_precision: str = "float32"
    jit_compile: bool = False
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 5
    init_checkpoint: str = None
    sbo_loss_weight: float = 1.0
    seed: int = 12345
    log_every: int = 10
    force: bool = False
    shuffle_buffer: int = 10000
    show_progress: bool = True
    skip_corrupt_records: bool = False
    # Dynamic masking (records written with --masking=none); None: on iff they are unmasked.
    dynamic_masking: bool = None
    masking: str = _MASKING_DEFAULTS.scheme
    masked_lm_prob: float = _MASKING_DEFAULTS.masked_lm_prob
    max_predictions_per_seq: int = _MASKING_DEFAULTS.max_predictions_per_seq
    geometric_p: float = _MASKING_DEFAULTS.geometric_p
    max_span_length: int = _MASKING_DEFAULTS.max_span_length
    replacement: str = _MASKING_DEFAULTS.replacement
    max_pair_targets: int = _MASKING_DEFAULTS.max_pair_targets
    mask_prob: float = _MASKING_DEFAULTS.mask_prob
    random_prob: float = _MASKING_DEFAULTS.random_prob
    random_token_source: str = "uniform"
    # Keras backend: tensorflow (the Trainer, tf.distribute) or jax (Keras fit, DataParallel);
    # None: $KERAS_BACKEND, else tensorflow.
    backend: str = None
    # A whole pretrainer's .weights.h5 (written on any backend) to start from.
    init_weights: str = None
    # Processes masking .npy blocks (block_run.py); None: half the cores, at most 8.
    input_workers: int = None

    def masking_config(self):
        return MaskingConfig.from_flags(self)


def dynamic_masker(params, metadata, model, vocab_file, do_lower_case):
    """The `DynamicMasker` when the run masks on the fly, else None.

    Dynamic masking is on when `params.dynamic_masking` says so, or (None)
    when the records are unmasked; flags and records that disagree raise
    `InputError` naming the metadata file.
    """
    from spanbert_tf.data.input import input_pipeline
    from spanbert_tf.data.masking.dynamic_masking import masker_for_records

    source = metadata.get("metadata_path")
    unmasked = input_pipeline.records_kind(metadata) == "unmasked"
    dynamic = unmasked if params.dynamic_masking is None else bool(params.dynamic_masking)
    if dynamic and not unmasked:
        raise InputError(
            f"{source}: --dynamic_masking needs unmasked records, but these are masked "
            "offline; write them with create_pretraining_data.py --masking=none, or drop "
            "--dynamic_masking")
    if unmasked and not dynamic:
        raise InputError(
            f"{source}: the records are unmasked (--masking=none): train them with "
            "--dynamic_masking")
    if not dynamic:
        return None
    if params.max_pair_targets > model.max_pair_targets:
        raise InputError(f"--max_pair_targets {params.max_pair_targets} exceeds the model's "
                         f"max_pair_targets {model.max_pair_targets}")
    try:
        return masker_for_records(metadata, params.masking_config(), vocab_file,
                                  do_lower_case, params.random_token_source)
    except ValueError as e:
        raise InputError(str(e)) from None


def run_pretraining(params):
    """Runs (or resumes) one pretraining run; returns the Trainer's summary dict."""
    backend = backends.select_backend(params.backend, params.cpu_devices)
    if params.init_weights and params.init_checkpoint:
        raise InputError("give --init_weights (the whole pretrainer) or --init_checkpoint "
                         "(the encoder), not both")
    if backend != "tensorflow":
        if is_block_input(params.input_files):  # .npy blocks: no TensorFlow needed
            from spanbert_tf.tasks.pretraining.block_run import run_from_blocks

            return run_from_blocks(params)
        if backend == "torch":
            raise InputError(f"--backend=torch trains from .npy blocks only ({params.input_files} "
                             "holds TFRecords): write them with create_pretraining_data.py "
                             "--masking=none --output_format=npy")
        return _run_keras_fit(params)
    from spanbert_tf.training import distribute
    from spanbert_tf.training.trainer import Trainer

    # First: --cpu_devices must split the CPU before TensorFlow initialises it.
    strategy = distribute.get_strategy(params.strategy, tpu=params.tpu,
                                       num_gpus=params.num_gpus, cpu_devices=params.cpu_devices)
    run = _prepare_run(params, strategy.num_replicas_in_sync, run_checks.device_kind(strategy),
                       distribute.is_chief(strategy))
    config = run["config"]
    hf_init = params.init_checkpoint if pretrainer_init.is_hf_folder(
        params.init_checkpoint or "") else None
    trainer = Trainer(
        PretrainingTask(config, params.sbo_loss_weight), strategy, params.model_dir,
        config.optimizer, run["dataset_fn"], config.optimizer.num_train_steps,
        steps_per_loop=params.steps_per_loop, grad_accum_steps=params.grad_accum_steps,
        save_checkpoints_steps=params.save_checkpoints_steps,
        keep_checkpoint_max=params.keep_checkpoint_max, log_every=params.log_every,
        init_checkpoint=None if hf_init else params.init_checkpoint,
        jit_compile=params.jit_compile,
        seed=params.seed, mixed_precision=params.mixed_precision,
        show_progress=params.show_progress,
    )
    start_step = int(trainer.global_step.numpy())
    if start_step:
        print(f"run_pretraining: resuming {params.model_dir} from step {start_step} "
              f"({trainer.manager.latest_checkpoint})", flush=True)
    elif params.init_weights:
        _load_init_weights(trainer.model, params.init_weights)
    elif hf_init:  # an HF BERT/SpanBERT folder: the encoder, and the heads it has
        for line in pretrainer_init.load_hf_into_pretrainer(trainer.model, hf_init, config.model):
            print(f"run_pretraining: {line}", flush=True)
    summary = _train_naming_corrupt_shards(trainer.train, run["files"], run["compression"])
    summary["resumed_from_step"] = start_step
    summary.update(strategy=params.strategy, num_replicas=strategy.num_replicas_in_sync)
    return _finish_summary(summary, params, run, is_chief=distribute.is_chief(strategy))


def _run_keras_fit(params):
    """The run on JAX: Keras `fit` with DataParallel over all local devices (keras_fit.py)."""
    tf_only = {"--strategy": params.strategy != "default", "--tpu": bool(params.tpu),
               "--grad_accum_steps": params.grad_accum_steps != 1,
               "--jit_compile": params.jit_compile}
    refused = [flag for flag, given in tf_only.items() if given]
    if refused:
        raise InputError(f"{', '.join(refused)}: TensorFlow-only; on --backend="
                         f"{os.environ['KERAS_BACKEND']} training runs one jitted step over all "
                         "local devices (keras.distribution.DataParallel; --num_gpus limits "
                         "them, --cpu_devices splits the CPU)")
    run_checks.refuse_hf_init_checkpoint(params)
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")  # tf.data only: the accelerators are JAX's
    import keras

    from spanbert_tf.tasks.pretraining.preset import write_model_dir_preset
    from spanbert_tf.training import keras_fit

    devices = keras.distribution.list_devices()[:params.num_gpus or None]
    kind = devices[0].split(":")[0].upper()
    run = _prepare_run(params, len(devices), "GPU" if kind == "CUDA" else kind, True)
    settings = keras_fit.FitSettings(**{
        f.name: getattr(params, f.name) for f in dataclasses.fields(keras_fit.FitSettings)
        if hasattr(params, f.name)})
    settings.num_train_steps = run["config"].optimizer.num_train_steps
    settings.num_devices = len(devices)
    summary = _train_naming_corrupt_shards(
        lambda: keras_fit.train_with_keras_fit(
            run["config"], run["dataset_fn"], params.model_dir, run["vocab_file"],
            run["do_lower_case"], settings,
            write_preset=lambda model: write_model_dir_preset(
                model, params.model_dir, run["vocab_file"], run["do_lower_case"])),
        run["files"], run["compression"])
    summary["strategy"] = f"{keras.backend.backend()} DataParallel"
    return _finish_summary(summary, params, run)


def _load_init_weights(model, path):
    try:
        model.load_weights(path)
    except (ValueError, KeyError, FileNotFoundError, OSError) as e:
        raise InputError(f"--init_weights={path} does not hold this pretrainer's weights "
                         f"(a .weights.h5 of the same config): {str(e).splitlines()[0][:300]}"
                         ) from None


def _prepare_run(params, replicas, device_kind, is_chief):
    """Config, input files checked against it, vocabulary, masking, model dir metadata and
    the dataset function: everything both backends do before training."""
    from spanbert_tf.data.input import input_pipeline, shard_check

    config = run_checks.effective_config(params)
    files, metadata = input_pipeline.find_pretraining_files(params.input_files)
    config = run_checks.vocab_size_from_data(config, metadata, is_chief)
    model = config.model
    input_pipeline.check_metadata(
        metadata, vocab_size=model.vocab_size,
        max_position_embeddings=model.max_position_embeddings,
        max_pair_targets=(model.max_pair_targets
                          if input_pipeline.records_kind(metadata) == "masked" else None),
    )
    compression = input_pipeline.compression_of(metadata, files)
    shard_report = shard_check.check_shards(
        files, input_pipeline.metadata_by_dir(files),
        skip_corrupt_records=params.skip_corrupt_records, compression=compression)
    instances = shard_check.check_record_count(files, metadata, shard_report)
    vocab_file, do_lower_case = run_checks.vocab_for_model_dir(metadata, params.model_dir)
    masker = dynamic_masker(params, metadata, model, vocab_file, do_lower_case)
    backends.check_checkpoint_backend(params.model_dir, backends.select_backend(params.backend))
    run_checks.check_model_dir_config(params.model_dir, config)

    global_batch = config.optimizer.train_batch_size
    if global_batch % (replicas * params.grad_accum_steps):
        raise InputError(
            f"--train_batch_size {global_batch} is not divisible by replicas ({replicas}) x "
            f"--grad_accum_steps ({params.grad_accum_steps})"
        )
    run_checks.check_step_memory(params, config, metadata, replicas, device_kind)
    note = shard_check.data_passes_note(instances, config.optimizer.num_train_steps, global_batch,
                            dynamic=masker is not None)
    if note:
        print(note, flush=True)
    if is_chief:
        write_model_dir_metadata(params.model_dir, config, vocab_file, do_lower_case)
    dataset_fn = input_pipeline.make_pretraining_dataset_fn(
        files, metadata, global_batch // params.grad_accum_steps,
        seed=params.seed, shuffle_buffer=params.shuffle_buffer, masker=masker,
        grad_accum_steps=params.grad_accum_steps,
        skip_corrupt_records=params.skip_corrupt_records,
    )
    return dict(config=config, files=files, metadata=metadata, compression=compression,
                shard_report=shard_report, vocab_file=vocab_file, do_lower_case=do_lower_case,
                masker=masker, dataset_fn=dataset_fn)


def _finish_summary(summary, params, run, is_chief=True):
    if summary.get("checkpoint"):
        summary["checkpoint"] = os.path.abspath(summary["checkpoint"])
    summary.update(
        train_batch_size=run["config"].optimizer.train_batch_size,
        max_seq_length=run["metadata"]["max_seq_length"],
        model_dir=os.path.abspath(params.model_dir), input_files=len(run["files"]),
        dynamic_masking=run["masker"] is not None,
        dropped_records=run["shard_report"]["dropped_records"],
        corrupt_shards=[c["path"] for c in run["shard_report"]["corrupt_shards"]],
        train_log_png=write_train_log_plot("run_pretraining", os.path.abspath(params.model_dir),
                                           is_chief),
    )
    return summary


def _train_naming_corrupt_shards(train, files, compression):
    """`train()`; a DataLossError becomes an InputError naming the bad shard.

    Nothing is saved on the way out: the last checkpoint written stays the latest.
    """
    import tensorflow as tf

    from spanbert_tf.data.input import shard_check

    try:
        return train()
    except tf.errors.DataLossError as e:
        found = shard_check.find_corrupt_shard(files, compression)
        if found:
            raise shard_check.corrupt_shard_error(*found) from None
        detail = shard_check.data_loss_detail(e)
        raise InputError(
            f"corrupt input record ({detail}); {shard_check.WHAT_TO_DO}") from None


def format_summary(summary):
    """A short human-readable end-of-run summary."""
    lines = [
        "run_pretraining: done",
        f"  step        {summary['step']} ({summary['strategy']}, {summary['num_replicas']} "
        f"replica(s), global batch {summary['train_batch_size']}, seq {summary['max_seq_length']})",
    ]
    losses = ", ".join(
        f"{k}={summary[k]:.4f}" for k in ("loss", "mlm_loss", "sbo_loss", "mlm_accuracy",
                                          "sbo_accuracy") if k in summary
    )
    if losses:
        lines.append(f"  last log    {losses}")
    if summary.get("dropped_records") or summary.get("corrupt_shards"):
        lines.append(f"  skipped     {summary['dropped_records']} corrupt record(s) in "
                     f"{len(summary['corrupt_shards'])} shard(s) (--skip_corrupt_records)")
    if summary["train_seconds"]:
        lines.append(f"  speed       {summary['examples_per_sec']:.1f} examples/s over "
                     f"{summary['train_seconds']:.1f} s of training")
    else:
        lines.append(f"  nothing to train: the model dir is already at step {summary['step']}")
    lines.append(f"  checkpoint  {summary['checkpoint']}")
    lines.append(f"  model dir   {summary['model_dir']} (config.json, vocab.txt, "
                 "train_log.jsonl, TensorBoard train/)")
    if summary.get("train_log_png"):
        lines.append(f"  plot        {summary['train_log_png']} (losses, learning rate, "
                     "accuracies)")
    if summary.get("preset"):
        lines.append(f"  preset      {summary['preset']} (keras-hub; --init_checkpoint of "
                     "run_squad.py / run_classifier.py)")
    if summary.get("resumed_from_step"):
        lines.append(f"  resumed     from step {summary['resumed_from_step']}")
    return "\n".join(lines)
