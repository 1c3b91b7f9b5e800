"""Subprocess entry of the exact-accumulation test (needs 2 logical CPUs from the start).

    python training_accumulation_worker.py OUT.npz DATA.json

DATA.json names the real data files (resolved by the test's data fixture):
{"corpus": google-research/bert's sample text, "squad_v1": the answerable SQuAD subset,
 "squad_v2": the SQuAD 2.0 dev subset, "vocab": the BERT cased vocabulary}.

For SpanBERT pretraining (MLM + SBO on TFRecords made from the real
google-research/bert sample text: the two terms have different denominators),
SQuAD (real dev windows) and classification (real question / paragraph pairs of the SQuAD 2.0
dev subset, labelled answerable or not),
computes the gradients ONE optimizer step applies to the same 16 examples laid out
as: 1 batch of 16 (`default`), 2 micro-batches of 8 (`accum`), 2 replicas x 8
(`mirrored`), 2 replicas x 2 micro-batches of 4 (`mirrored_accum`). Writes them as
`<task>/<layout>/<i>` arrays, plus the logged loss `<task>/<layout>/loss` and
`<task>/denominators`: [loss_denominators, loss_terms' denominator] per weighted term.
"""

import json
import os
import sys
import tempfile

from spanbert_tf.training import distribute, exact_gradients

GLOBAL_BATCH = 16
LAYOUTS = {"default": (("default", 1), ("accum", 2)),
           "mirrored": (("mirrored", 1), ("mirrored_accum", 2))}


def _micro_config(tmp):
    from spanbert_tf.modeling.config import load_config

    data = load_config("tiny").to_dict()
    data["name"] = "micro"
    data["model"].update(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                         dropout=0.0, sbo_position_embedding_size=16)
    path = os.path.join(tmp, "micro.json")
    with open(path, "w") as f:
        json.dump(data, f)
    return load_config(path)


def _pretraining(tmp, data, config):
    import numpy as np

    from spanbert_tf.data.input.input_pipeline import pretraining_dataset
    from spanbert_tf.data.writing.pipeline import PretrainingDataConfig, create_pretraining_data
    from spanbert_tf.tasks.pretraining.task import PretrainingTask

    out = os.path.join(tmp, "records")
    create_pretraining_data(PretrainingDataConfig(
        input_file=data["corpus"], output_dir=out,
        max_seq_length=64, max_predictions_per_seq=10, dupe_factor=2, num_shards=1,
        num_workers=1, progress=False))
    files = [os.path.join(out, n) for n in os.listdir(out) if ".tfrecord" in n]
    batch = next(iter(pretraining_dataset(files, 64, 10, GLOBAL_BATCH, is_training=False)))
    arrays = {k: v.numpy() for k, v in batch.items()}
    mlm, sbo = arrays["masked_lm_weights"].sum(1), arrays["sbo_weights"].sum(1)
    assert len(np.unique(mlm)) > 1 and (sbo != mlm).any()  # the SBO/MLM ratio varies
    return PretrainingTask(config, sbo_loss_weight=0.7), arrays


def _squad(data, config):
    from spanbert_tf.tasks.squad.features import convert_examples_to_features
    from spanbert_tf.tasks.squad.task import SquadTask
    from spanbert_tf.tasks.squad.reader import read_squad_json
    from spanbert_tf.tokenization import BertWordpieceTokenizer

    examples = read_squad_json(data["squad_v1"], True, False, first_answer_only=True)[0][:12]
    tokenizer = BertWordpieceTokenizer(data["vocab"])
    features = convert_examples_to_features(examples, tokenizer, 64, 32, 16, is_training=True)
    arrays = {k: v[:GLOBAL_BATCH] for k, v in features.training_inputs().items()}
    return SquadTask(config.model), arrays


def _classification(data, config):
    import numpy as np

    from spanbert_tf.tasks.classification import model as classification
    from spanbert_tf.tasks.classification.task import ClassificationTask
    from spanbert_tf.tokenization import BertWordpieceTokenizer

    # Real sentence pairs with both labels: (question, paragraph), answerable or not.
    with open(data["squad_v2"], encoding="utf-8") as f:
        paragraphs = [p for a in json.load(f)["data"] for p in a["paragraphs"]]
    pairs = [(q["question"], p["context"], int(not q.get("is_impossible", False)))
             for p in paragraphs for q in p["qas"]][:GLOBAL_BATCH]
    assert len({label for _, _, label in pairs}) == 2
    tokenizer = BertWordpieceTokenizer(data["vocab"])
    f = classification.encode_pairs(tokenizer, [q for q, _, _ in pairs],
                                    [c for _, c, _ in pairs], 48)
    arrays = {k: f[k] for k in classification.MODEL_INPUTS}
    arrays["label"] = np.array([label for _, _, label in pairs], np.int32)
    return ClassificationTask(config.model, num_classes=2), arrays


def _trainer(task, arrays, strategy, config, reference):
    import tensorflow as tf

    from spanbert_tf.training.trainer import Trainer

    def dataset_fn(input_context):
        return tf.data.Dataset.from_tensor_slices(arrays).repeat().batch(4, drop_remainder=True)

    trainer = Trainer(task, strategy, tempfile.mkdtemp(), config.optimizer, dataset_fn, 1,
                      grad_accum_steps=2, show_progress=False, seed=1)
    if reference is not None:
        trainer.model.set_weights(reference)
    return trainer


def _step_gradients(trainer, arrays, accum):
    """Gradients + loss of one step on `arrays` laid out over the trainer's replicas x `accum`."""
    import tensorflow as tf

    strategy = trainer.strategy
    replicas = strategy.num_replicas_in_sync
    size = GLOBAL_BATCH // (replicas * accum)

    def chunk(j):
        def value_fn(ctx):
            start = (j * replicas + ctx.replica_id_in_sync_group) * size
            return {k: tf.constant(v[start:start + size]) for k, v in arrays.items()}
        return strategy.experimental_distribute_values_from_function(value_fn)

    @tf.function
    def step(micro):
        def replica_fn(micro):
            grads, _, metrics = exact_gradients.replica_gradients(trainer, micro)
            return grads, metrics["loss"]
        return strategy.run(replica_fn, args=(micro,))

    grads, loss = step(tuple(chunk(j) for j in range(accum)))
    first = strategy.experimental_local_results
    return [first(g)[0].numpy() for g in grads], float(first(loss)[0])


def main(out_path, data_json):
    import numpy as np

    with open(data_json, encoding="utf-8") as f:
        data = json.load(f)
    strategies = {"default": distribute.get_strategy("default"),
                  "mirrored": distribute.get_strategy("mirrored", cpu_devices=2)}
    tmp = tempfile.mkdtemp()
    config = _micro_config(tmp)
    tasks = {"pretraining": _pretraining(tmp, data, config),
             "squad": _squad(data, config), "classification": _classification(data, config)}
    out = {"num_replicas": np.array(strategies["mirrored"].num_replicas_in_sync)}
    for name, (task, arrays) in tasks.items():
        reference = None
        for strategy_name in ("default", "mirrored"):
            trainer = _trainer(task, arrays, strategies[strategy_name], config, reference)
            if reference is None:
                reference = trainer.model.get_weights()
                # loss_denominators agree with the denominators loss_terms divides by.
                terms = task.loss_terms(trainer.model, arrays, training=False)
                dens = task.loss_denominators(arrays)
                out[f"{name}/denominators"] = np.array(
                    [[float(dens[t]), float(terms[t][1])] for t in sorted(task.loss_weights)])
            for layout, accum in LAYOUTS[strategy_name]:
                grads, loss = _step_gradients(trainer, arrays, accum)
                out[f"{name}/{layout}/loss"] = np.array(loss)
                for i, g in enumerate(grads):
                    out[f"{name}/{layout}/{i}"] = g
    np.savez(out_path, **out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
