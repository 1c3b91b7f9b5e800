"""Subprocess entry of the trainer tests that need a fresh TensorFlow runtime.

    python training_toy_worker.py equivalence OUT.json
        splits the CPU into 2 logical devices, trains the toy task with
        default / mirrored / grad-accumulation layouts of the same global batch,
        writes their losses and final weights.
    python training_toy_worker.py mwms OUT.npz MODEL_DIR
        one worker of a MultiWorkerMirroredStrategy cluster (TF_CONFIG set by
        the caller); writes its final weights.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from spanbert_tf.training import distribute  # noqa: E402


def _train(strategy, model_dir, global_batch, accum, steps=12, seed=1):
    from spanbert_tf.modeling.config import OptimizerConfig
    from spanbert_tf.training.trainer import Trainer
    from training_toy_task import ToyTask, toy_dataset_fn

    opt = OptimizerConfig(
        learning_rate=0.05, num_warmup_steps=3, num_train_steps=steps, weight_decay=0.01,
        clip_norm=0.5,
    )
    trainer = Trainer(
        ToyTask(second_term_weight=0.5), strategy, model_dir, opt,
        toy_dataset_fn(global_batch), steps, steps_per_loop=4,
        log_every=1, save_checkpoints_steps=steps, grad_accum_steps=accum,
        show_progress=False, seed=seed,
    )
    summary = trainer.train()
    return trainer, summary


def equivalence(out_path):
    import tempfile

    mirrored = distribute.get_strategy("mirrored", cpu_devices=2)
    default = distribute.get_strategy("default")
    results = {"num_replicas": mirrored.num_replicas_in_sync}
    for name, strategy, batch, accum in (
        ("default", default, 32, 1),
        ("mirrored", mirrored, 32, 1),
        ("accum", default, 16, 2),
        ("mirrored_accum", mirrored, 16, 2),
    ):
        model_dir = tempfile.mkdtemp()
        trainer, _ = _train(strategy, model_dir, batch, accum)
        with open(os.path.join(model_dir, "train_log.jsonl")) as f:
            losses = [json.loads(line)["loss"] for line in f]
        weights = [v.numpy().tolist() for v in trainer.model.trainable_variables]
        results[name] = {"losses": losses, "weights": weights}
        if name in ("default", "mirrored"):
            import tensorflow as tf
            from training_toy_task import toy_arrays

            x = {"x": toy_arrays(49, seed=5)["x"]}
            out = trainer.predict(tf.data.Dataset.from_tensor_slices(x).batch(16))
            results[name]["predict"] = out["logits"].tolist()
    with open(out_path, "w") as f:
        json.dump(results, f)


def mwms(out_path, model_dir):
    import numpy as np

    strategy = distribute.get_strategy("multi_worker_mirrored")
    trainer, summary = _train(strategy, model_dir, 16, 1, steps=4)
    weights = {str(i): v.numpy() for i, v in enumerate(trainer.model.trainable_variables)}
    np.savez(out_path, replicas=strategy.num_replicas_in_sync,
             chief=distribute.is_chief(strategy), **weights)


if __name__ == "__main__":
    if sys.argv[1] == "equivalence":
        equivalence(sys.argv[2])
    elif sys.argv[1] == "mwms":
        mwms(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]!r}")
