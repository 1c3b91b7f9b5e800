"""Benchmark: SpanBERT pretraining step vs keras-hub BertMaskedLM, and input throughput.

Both models share the backbone size (4 layers, 256 hidden, 4 heads, 1024
intermediate, the 28,996-piece cased vocabulary), batch 16, sequence 128,
20 predictions per sequence, and the same training step (GradientTape +
AdamW from `create_optimizer`, one `tf.function`). Steps of the two models are
timed alternately (A B A B ...) so that load from other processes on a shared
machine hits both alike; the medians are reported. Also timed: the same
SpanBERT step inside the project's Trainer (steps_per_loop=10), and the tf.data
pipeline alone (examples/s) against what the model consumes.

Goals: SpanBERT step <= 1.10 x BertMaskedLM step; input >= 10 x consumption.
Run through `pretraining_step.py` (TensorFlow, without `--synthetic`):

    python bench/pretraining_step.py [--steps=20] [--input_files=DIR]
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import spanbert_tf  # noqa: E402,F401
import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from spanbert_tf.data.input import input_pipeline  # noqa: E402
from spanbert_tf.modeling.config import load_config  # noqa: E402
from spanbert_tf.modeling.pretrainer import build_pretrainer  # noqa: E402
from spanbert_tf.training.optimization import create_optimizer  # noqa: E402
from model_flops import analytic_macs  # noqa: E402
from synthetic_step import load_bench_config  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH, SEQ, PRED = 16, 128, 20


def make_records(out_dir):
    corpus = os.path.join(REPO, "spanbert_tf", "resources", "wikitext-2-raw-test.txt")
    subprocess.run(
        [sys.executable, os.path.join(REPO, "create_pretraining_data.py"),
         f"--input_file={corpus}", f"--output_dir={out_dir}", f"--max_seq_length={SEQ}",
         f"--max_predictions_per_seq={PRED}", "--dupe_factor=1", "--noprogress"],
        check=True, capture_output=True,
    )
    return out_dir


def spanbert_step_fn(config, batch):
    model = build_pretrainer(config)
    opt = create_optimizer(config.optimizer)

    @tf.function
    def step(features):
        with tf.GradientTape() as tape:
            terms = model.loss_terms(features, model(features, training=True))
            loss = sum(w * terms[k][0] / terms[k][1] for k, w in model.loss_weights.items())
        variables = model.trainable_variables
        grads = tape.gradient(loss, variables)
        used = [(g, v) for g, v in zip(grads, variables) if g is not None]
        opt.apply([g for g, _ in used], [v for _, v in used])
        return loss

    return step


def bert_mlm_step_fn(config, batch):
    m = config.model
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=m.vocab_size, num_layers=m.num_layers, num_heads=m.num_heads,
        hidden_dim=m.hidden_size, intermediate_dim=m.intermediate_size, dropout=m.dropout,
        max_sequence_length=m.max_position_embeddings,
    )
    model = keras_hub.models.BertMaskedLM(backbone=backbone, preprocessor=None)
    opt = create_optimizer(config.optimizer)

    @tf.function
    def step(features):
        inputs = {"token_ids": features["input_ids"], "segment_ids": features["segment_ids"],
                  "padding_mask": features["input_mask"],
                  "mask_positions": features["masked_lm_positions"]}
        with tf.GradientTape() as tape:
            logits = tf.cast(model(inputs, training=True), tf.float32)
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=features["masked_lm_ids"], logits=logits)
            w = features["masked_lm_weights"]
            loss = tf.reduce_sum(ce * w) / tf.reduce_sum(w)
        variables = model.trainable_variables
        grads = tape.gradient(loss, variables)
        used = [(g, v) for g, v in zip(grads, variables) if g is not None]  # no pooler
        opt.apply([g for g, _ in used], [v for _, v in used])
        return loss

    return step


def time_alternating(fns, batches, steps):
    times = {name: [] for name in fns}
    for name, fn in fns.items():  # trace + warm up
        for b in batches[:3]:
            fn(b).numpy()
    for i in range(steps):
        b = batches[i % len(batches)]
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn(b).numpy()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def trainer_step_time(config, files, metadata, steps):
    from spanbert_tf.tasks.pretraining.task import PretrainingTask
    from spanbert_tf.training.trainer import Trainer

    fn = input_pipeline.make_pretraining_dataset_fn(files, metadata, BATCH, seed=1)
    with tempfile.TemporaryDirectory() as d:
        trainer = Trainer(PretrainingTask(config), tf.distribute.get_strategy(), d,
                          config.optimizer, fn, 10 + steps, steps_per_loop=10,
                          log_every=10_000, save_checkpoints_steps=10_000, show_progress=False)
        trainer.train(until_step=10)  # trace + warm up
        t0 = time.perf_counter()
        trainer.train(until_step=10 + steps)
        return (time.perf_counter() - t0) / steps


def input_throughput(files, metadata, seconds=5.0):
    ds = input_pipeline.make_pretraining_dataset_fn(files, metadata, BATCH, seed=1)()
    it = iter(ds)
    for _ in range(5):
        next(it)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        next(it)
        n += BATCH
    return n / (time.perf_counter() - t0)


def run(steps=20, input_files=None):
    """Times both models, the Trainer and the input pipeline; prints the figures.

    Args:
        steps: timed steps per model.
        input_files: TFRecords (seq 128, 20 predictions); None: made from the
            embedded WikiText-2 test split.
    """
    keras.utils.set_random_seed(0)
    tmp = tempfile.mkdtemp()
    records = input_files or make_records(os.path.join(tmp, "tfrecords"))
    files, metadata = input_pipeline.find_pretraining_files(records)
    input_pipeline.check_metadata(metadata, max_seq_length=SEQ, max_predictions_per_seq=PRED)
    config = load_bench_config("bench")
    ds = input_pipeline.make_pretraining_dataset_fn(files, metadata, BATCH, seed=1)()
    batches = [b for b in ds.take(8)]

    medians = time_alternating(
        {"spanbert": spanbert_step_fn(config, batches[0]),
         "bert_mlm": bert_mlm_step_fn(config, batches[0])},
        batches, steps,
    )
    trainer_s = trainer_step_time(config, files, metadata, steps)
    input_eps = input_throughput(files, metadata)
    tokens = float(np.mean([b["input_mask"].numpy().sum() for b in batches]))

    span, bert = medians["spanbert"], medians["bert_mlm"]
    consume = BATCH / span
    print(f"pretraining step benchmark: 4 layers x 256 hidden, vocab {config.model.vocab_size}, "
          f"batch {BATCH}, seq {SEQ}, {PRED} predictions, CPU "
          f"({os.cpu_count()} cores, shared: numbers are noisy), {steps} steps each")
    print(f"  SpanBertPretrainer (MLM+SBO) step  median {span * 1e3:8.1f} ms  "
          f"{BATCH / span:7.1f} examples/s  {tokens / span:9.0f} tokens/s")
    print(f"  keras_hub BertMaskedLM step        median {bert * 1e3:8.1f} ms  "
          f"{BATCH / bert:7.1f} examples/s  {tokens / bert:9.0f} tokens/s")
    print(f"  ratio SpanBERT / BertMaskedLM      {span / bert:.3f}   (goal <= 1.10)")
    bert_macs, sbo_macs = analytic_macs(config.model, SEQ, PRED)
    base = load_config("base").model
    base_bert, base_sbo = analytic_macs(base, 512, 80)
    print(f"  analytic FLOP ratio (SBO head's extra decoder over the vocabulary): "
          f"{(bert_macs + sbo_macs) / bert_macs:.3f} at this size; "
          f"{(base_bert + base_sbo) / base_bert:.3f} for BERT-base, seq 512, 80 predictions")
    print(f"  SpanBERT step inside the Trainer   {trainer_s * 1e3:8.1f} ms "
          f"(loop overhead included, steps_per_loop=10)")
    print(f"  tf.data input                      {input_eps:9.0f} examples/s vs model consumption "
          f"{consume:.1f} examples/s: ratio {input_eps / consume:.1f} (goal >= 10)")

