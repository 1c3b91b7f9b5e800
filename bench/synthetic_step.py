"""The SpanBERT pretraining step on random batches, on any Keras backend.

Needs neither TensorFlow nor the tf.data pipeline: only keras, keras-hub, numpy
and `spanbert_tf.modeling` plus the pure-numpy span masker
(`spanbert_tf.data.masking.masker`). Batches have the real feature shapes: full
`[CLS] block [SEP]` rows of random wordpieces of the cased vocabulary, masked by
the project's `Masker` (SpanBERT span masking: geometric span lengths, 15 %,
SBO boundaries and offsets), so the SBO mask is the one training sees. The step
is Keras' own (`compile` + `train_on_batch`, `SpanBertPretrainer.compute_loss`)
with AdamW and global-norm clipping: `jax.jit` on JAX, `tf.function` on
TensorFlow (XLA on a GPU), eager (or `torch.compile` with `--jit_compile=true`)
on PyTorch.

Run through `pretraining_step.py --synthetic` (it sets KERAS_BACKEND first).
"""

import dataclasses
import os
import platform
import statistics
import time

import keras
import numpy as np

from model_flops import peak_tflops, training_flops_per_example
from spanbert_tf.data.masking.masker import Masker, MaskingConfig
from spanbert_tf.modeling.config import load_config
from spanbert_tf.modeling.pretrainer import (MLM_LOGITS, SpanBertPretrainer, backbone_inputs,
                                             build_pretrainer, weighted_cross_entropy_terms)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB_FILE = os.path.join(REPO, "spanbert_tf", "resources", "bert-base-cased-vocab.txt")
# Sizes: the configs of the project, and "bench": 4 layers x 256 hidden on the tiny config.
CONFIG_NAMES = ("bench", "tiny", "base", "large")


def load_bench_config(name):
    """A `SpanBertConfig` by name; "bench" is tiny widened to 4 layers x 256 hidden."""
    if name != "bench":
        return load_config(name)
    config = load_config("tiny")
    model = dataclasses.replace(config.model, num_layers=4, hidden_size=256, num_heads=4,
                                intermediate_size=1024)
    return dataclasses.replace(config, name="bench", model=model)


def read_vocab(vocab_file=VOCAB_FILE):
    with open(vocab_file, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def synthetic_batches(model_config, batch_size, seq_length, max_predictions, num_batches,
                      seed=0):
    """Feature dicts (numpy, the feature spec's names; ints as int32) of random masked rows.

    Every row is a full `[CLS] block [SEP]` of uniformly drawn non-special
    wordpieces, span-masked by `Masker` as `create_pretraining_data.py` does.
    """
    vocab = read_vocab()
    if len(vocab) != model_config.vocab_size:
        raise ValueError(f"{VOCAB_FILE} has {len(vocab)} pieces, the model config "
                         f"vocab_size={model_config.vocab_size}")
    index = {piece: i for i, piece in enumerate(vocab)}
    special = [index[p] for p in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")]
    candidates = np.array([i for i, p in enumerate(vocab)
                           if not (p.startswith("[") and p.endswith("]"))], np.int32)
    masker = Masker(
        MaskingConfig(max_predictions_per_seq=max_predictions,
                      max_pair_targets=model_config.max_pair_targets),
        mask_id=index["[MASK]"],
        word_start_table=np.array([not p.startswith("##") for p in vocab]),
        random_token_ids=candidates,
    )
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(num_batches):
        blocks = [np.concatenate([[special[2]], rng.choice(candidates, seq_length - 2),
                                  [special[3]]]).astype(np.int32)
                  for _ in range(batch_size)]
        masked = masker.mask_many([(blocks, rng)])
        f = {name: np.zeros((batch_size, max_predictions), np.int32)
             for name in ("masked_lm_positions", "masked_lm_ids", "span_left_positions",
                          "span_right_positions", "span_relative_positions")}
        f["masked_lm_weights"] = np.zeros((batch_size, max_predictions), np.float32)
        f["sbo_weights"] = np.zeros((batch_size, max_predictions), np.float32)
        f["input_ids"] = np.zeros((batch_size, seq_length), np.int32)
        for row in range(batch_size):
            inst = masked.instance(row)
            n = len(inst.masked_positions)
            f["input_ids"][row] = inst.input_ids
            f["masked_lm_positions"][row, :n] = inst.masked_positions
            f["masked_lm_ids"][row, :n] = inst.masked_ids
            f["masked_lm_weights"][row, :n] = 1.0
            f["span_left_positions"][row, :n] = inst.span_left_positions
            f["span_right_positions"][row, :n] = inst.span_right_positions
            f["span_relative_positions"][row, :n] = inst.span_relative_positions
            f["sbo_weights"][row, :n] = inst.sbo_weights
        f["input_mask"] = np.ones((batch_size, seq_length), np.int32)
        f["segment_ids"] = np.zeros((batch_size, seq_length), np.int32)
        batches.append(f)
    return batches


def device_name():
    """(platform, name) of the device Keras computes on, e.g. ("gpu", "NVIDIA H100 ...")."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            return device.platform, device.device_kind
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return "gpu", torch.cuda.get_device_name(0)
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return "gpu", details.get("device_name", gpus[0].name)
    return "cpu", f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


class MlmOnlyPretrainer(SpanBertPretrainer):
    """The pretrainer without its SBO head in the step: MLM logits and loss only (the BERT
    step of the same model, for the SBO head's cost; the unused SBO weights stay)."""

    def call(self, features, training=False):
        sequence = self.backbone(backbone_inputs(features), training=training)["sequence_output"]
        return {MLM_LOGITS: self.mlm_head(sequence, features["masked_lm_positions"])}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss, _ = weighted_cross_entropy_terms(x["masked_lm_ids"], y_pred[MLM_LOGITS],
                                               x["masked_lm_weights"])
        return keras.ops.divide_no_nan(*loss)


def build_training_model(config, mixed_precision, jit_compile, mlm_only=False):
    """The pretrainer compiled with AdamW (weight decay 0.01, clip-norm 1.0); `mlm_only`:
    `MlmOnlyPretrainer` (no SBO head in the step)."""
    model = build_pretrainer(config, dtype=mixed_precision)
    if mlm_only:
        model = MlmOnlyPretrainer(model.backbone,
                                  max_pair_targets=config.model.max_pair_targets,
                                  sbo_position_embedding_size=config.model.sbo_position_embedding_size)
    opt = config.optimizer
    optimizer = keras.optimizers.AdamW(
        learning_rate=opt.learning_rate, weight_decay=opt.weight_decay, beta_1=opt.beta_1,
        beta_2=opt.beta_2, epsilon=opt.epsilon, global_clipnorm=opt.clip_norm)
    optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    model.compile(optimizer=optimizer, jit_compile=jit_compile)
    return model


def run(config_name="bench", batch_size=16, seq_length=128, max_predictions=None,
        mixed_precision="float32", steps=20, warmup_steps=3, jit_compile="auto",
        peak=None, seed=0, mlm_only=False):
    """Times `steps` training steps after `warmup_steps`; prints and returns the figures."""
    keras.utils.set_random_seed(seed)
    config = load_bench_config(config_name)
    if max_predictions is None:
        max_predictions = max(1, 20 * seq_length // 128)  # the data defaults' ratio
    batches = synthetic_batches(config.model, batch_size, seq_length, max_predictions,
                                num_batches=4, seed=seed)
    slots = float(np.mean([b["masked_lm_weights"].sum(1).mean() for b in batches]))
    sbo = float(np.mean([b["sbo_weights"].sum() / b["masked_lm_weights"].sum()
                         for b in batches]))
    batches = [{k: keras.ops.convert_to_tensor(v) for k, v in b.items()} for b in batches]
    model = build_training_model(config, mixed_precision, jit_compile, mlm_only)
    for i in range(warmup_steps):  # compiles the step
        model.train_on_batch(batches[i % len(batches)])
    times, cpu_times = [], []
    for i in range(steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        loss = model.train_on_batch(batches[i % len(batches)])  # a float: waits for the step
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    step = statistics.median(times)
    cpu_step = statistics.median(cpu_times)
    kind, name = device_name()
    flops = training_flops_per_example(config.model, seq_length, max_predictions,
                                       sbo=not mlm_only) * batch_size
    peak = peak if peak is not None else peak_tflops(name)
    achieved = flops / step / 1e12
    mfu = f"{100 * achieved / peak:.1f} % of {peak:g} TFLOP/s" if peak else (
        "n/a (no bf16 peak known for this device: pass --peak_tflops)")
    m = config.model
    what = "MLM-only step" if mlm_only else "synthetic pretraining step"
    print(f"{what}: backend {keras.backend.backend()}, {kind} {name}; "
          f"config {config.name} ({m.num_layers} layers x {m.hidden_size} hidden), "
          f"batch {batch_size}, seq {seq_length}, {max_predictions} prediction slots "
          f"({slots:.1f} masked per row, {100 * sbo:.0f} % with an SBO target), "
          f"{mixed_precision}, jit_compile={model.jit_compile}, "
          f"{steps} steps after {warmup_steps} warm-up")
    print(f"  median step {step * 1e3:9.1f} ms   {batch_size / step:9.1f} examples/s   "
          f"{batch_size * seq_length / step:11.0f} tokens/s   loss {float(loss):.3f}")
    # Host CPU time of this process (all threads) per step: on a shared CPU it
    # moves less with other processes' load than the wall-clock step does.
    print(f"  process CPU time per step {cpu_step * 1e3:9.1f} ms")
    print(f"  model FLOPs {flops / 1e12:.4f} TFLOP/step   achieved {achieved:.3f} TFLOP/s   "
          f"MFU {mfu}")
    return {"step_seconds": step, "examples_per_second": batch_size / step,
            "tokens_per_second": batch_size * seq_length / step, "tflops": achieved,
            "process_cpu_seconds": cpu_step,
            "mfu": achieved / peak if peak else None, "loss": float(loss)}
