"""Benchmark (parity): the official SpanBERT heads vs ours, weights converted from the official
layout.

Given the official `pretraining/fairseq/models/pair_bert.py` (facebookresearch/SpanBERT), its
model classes (`BertLayerNorm` ... `BertModel`, `BertLMPredictionHead`, `MLPWithLayerNorm`,
`BertPairTargetPredictionHead`, `BertPreTrainingHeads`, `BertForPreTraining`) are loaded from
the file's syntax tree (the file imports fairseq relatively: its fairseq-bound classes and the
registered architectures are left out), then:

1. an official `BertForPreTraining(config, max_pair_targets=15, pair_pos_embedding_size=200,
   no_nsp=True)` is built with random weights (the official `init_bert_weights`, then random
   biases / LayerNorm parameters / output biases so nothing is trivially 0 or 1);
2. its `state_dict()` is written as an HF folder (`config.json` + `pytorch_model.bin`: the key
   layout of `spanbert_large_with_head`, `bert.*` + `cls.predictions.*` +
   `cls.pair_target_predictions.*`, BertLayerNorm `gamma`/`beta`);
3. that folder is loaded into our `SpanBertPretrainer` by what
   `run_pretraining.py --init_checkpoint=HF_DIR` runs (`load_hf_into_pretrainer`);
4. MLM and SBO logits of both on the same random hidden states and span pairs (max |diff|,
   goal <= 1e-5) and their top-k candidates (span fill: equal ids);
5. the MLM and SBO losses of the whole model on the first batch of the demo data (the
   records `make demo` writes: embedded WikiText, seq 128, 20 predictions), official model in
   PyTorch vs ours (relative difference, goal <= 1e-4). Dropout is off in both (eval mode;
   the first training step's forward is this forward when dropout is 0).

    python bench/official_heads_parity.py --pair_bert=/path/to/SpanBERT/pretraining/fairseq/models/pair_bert.py

Needs torch (the test extra). Prints one line per figure and a JSON summary as the last line.
"""

import argparse
import ast
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# Classes of pair_bert.py that subclass fairseq's (not loadable without fairseq).
FAIRSEQ_BOUND = {"BertHF"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair_bert", required=True, help="path of the official pair_bert.py")
    parser.add_argument("--hidden_size", type=int, default=64)
    parser.add_argument("--num_layers", type=int, default=2)
    parser.add_argument("--num_heads", type=int, default=4)
    parser.add_argument("--max_pair_targets", type=int, default=15)
    parser.add_argument("--records", default=None, help="demo records dir (default: written)")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--top_k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def load_official_classes(path):
    """The model classes and helpers of pair_bert.py, exec'd without its fairseq imports."""
    import torch
    from torch import nn
    from torch.nn import CrossEntropyLoss

    tree = ast.parse(open(path, encoding="utf-8").read(), filename=path)
    kept = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
            if node.name in FAIRSEQ_BOUND or any(b.startswith("Fairseq") for b in bases):
                continue
            kept.append(node)
        elif isinstance(node, ast.FunctionDef) and not node.decorator_list:
            kept.append(node)
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "ACT2FN"
                                                  for t in node.targets):
            kept.append(node)
    module = ast.Module(body=kept, type_ignores=[])
    namespace = {"torch": torch, "nn": nn, "math": math, "CrossEntropyLoss": CrossEntropyLoss,
                 "logger": __import__("logging").getLogger("pair_bert"), "copy": __import__("copy"),
                 "json": json, "os": os, "__name__": "pair_bert"}
    exec(compile(module, path, "exec"), namespace)  # noqa: S102 - the official file, on purpose
    needed = ("BertConfig", "BertForPreTraining", "BertLMPredictionHead",
              "BertPairTargetPredictionHead", "MLPWithLayerNorm")
    missing = [n for n in needed if n not in namespace]
    if missing:
        raise SystemExit(f"{path}: no {missing} in the file")
    return namespace


def build_official(ns, vocab_size, args):
    import torch

    torch.manual_seed(args.seed)
    config = ns["BertConfig"](vocab_size, hidden_size=args.hidden_size,
                              num_hidden_layers=args.num_layers,
                              num_attention_heads=args.num_heads,
                              intermediate_size=4 * args.hidden_size, hidden_act="gelu",
                              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                              max_position_embeddings=512)
    model = ns["BertForPreTraining"](config, max_pair_targets=args.max_pair_targets,
                                     pair_pos_embedding_size=200, no_nsp=True)
    with torch.no_grad():  # biases and LayerNorm parameters off their 0 / 1 start
        for name, p in model.named_parameters():
            if name.endswith(("bias", "beta")):
                p.normal_(0, 0.05)
            elif name.endswith("gamma"):
                p.normal_(1, 0.05)
    return config, model.eval()


def write_hf_folder(model, config, folder):
    import torch

    os.makedirs(folder, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(folder, "pytorch_model.bin"))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"model_type": "bert", "architectures": ["BertForPreTraining"],
                   "vocab_size": config.vocab_size, "hidden_size": config.hidden_size,
                   "num_hidden_layers": config.num_hidden_layers,
                   "num_attention_heads": config.num_attention_heads,
                   "intermediate_size": config.intermediate_size, "hidden_act": "gelu",
                   "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
                   "max_position_embeddings": config.max_position_embeddings,
                   "type_vocab_size": config.type_vocab_size,
                   "initializer_range": config.initializer_range}, f)
    return sorted(model.state_dict())


def demo_batch(records, batch_size):
    from spanbert_tf.data.input import input_pipeline

    files, metadata = input_pipeline.find_pretraining_files(records)
    ds = input_pipeline.pretraining_dataset(files, metadata["max_seq_length"],
                                            metadata["max_predictions_per_seq"], batch_size,
                                            is_training=False)
    return {k: v.numpy() for k, v in next(iter(ds)).items()}


def official_losses(model, batch):
    """Weighted mean MLM and SBO cross-entropies of the official model on our batch."""
    import torch
    import torch.nn.functional as F

    ids = torch.tensor(batch["input_ids"], dtype=torch.long)
    with torch.no_grad():
        seq, _ = model.bert(ids, torch.tensor(batch["segment_ids"], dtype=torch.long),
                            torch.tensor(batch["input_mask"], dtype=torch.long),
                            output_all_encoded_layers=True)
        hidden = seq[-1]
        mlm_all = model.cls.predictions(hidden)
        pos = torch.tensor(batch["masked_lm_positions"], dtype=torch.long)
        mlm = torch.gather(mlm_all, 1, pos[..., None].expand(-1, -1, mlm_all.shape[-1]))
        left = torch.tensor(batch["span_left_positions"], dtype=torch.long)
        right = torch.tensor(batch["span_right_positions"], dtype=torch.long)
        rel = torch.tensor(batch["span_relative_positions"], dtype=torch.long)
        head = model.cls.pair_target_predictions
        # The official head scores every (pair, offset): one pair per slot, its offset picked.
        pairs = torch.stack([left, right], -1)
        scores = head(seq[model.cls.pair_target_layer], pairs)     # [B*P, T, V]
        b, p = left.shape
        scores = scores.view(b, p, head.max_targets, -1)
        sbo = torch.gather(scores, 2, rel.clamp(0, head.max_targets - 1)[..., None, None]
                           .expand(-1, -1, 1, scores.shape[-1]))[:, :, 0]
    labels = torch.tensor(batch["masked_lm_ids"], dtype=torch.long)

    def mean_ce(logits, weights):
        w = torch.tensor(weights, dtype=torch.float32)
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                             reduction="none").view(w.shape)
        return float((ce * w).sum() / w.sum())

    return {"mlm_loss": mean_ce(mlm, batch["masked_lm_weights"]),
            "sbo_loss": mean_ce(sbo, batch["sbo_weights"])}, mlm.numpy(), sbo.numpy()


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, REPO)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import torch

    from spanbert_tf.convert.pretrainer_init import load_hf_into_pretrainer
    from spanbert_tf.modeling.config import ModelConfig, OptimizerConfig, SpanBertConfig
    from spanbert_tf.modeling.pretrainer import build_pretrainer, MLM_LOGITS, SBO_LOGITS
    from spanbert_tf.tokenization import load_vocab

    vocab_file = os.path.join(REPO, "spanbert_tf", "resources", "bert-base-cased-vocab.txt")
    vocab_size = len(load_vocab(vocab_file))
    ns = load_official_classes(args.pair_bert)
    official_config, official = build_official(ns, vocab_size, args)
    tmp = tempfile.mkdtemp(prefix="official_heads_")
    folder = os.path.join(tmp, "official_with_head")
    keys = write_hf_folder(official, official_config, folder)
    print(f"official checkpoint: {len(keys)} tensors, e.g. "
          + ", ".join(k for k in keys if k.startswith("cls.pair_target_predictions"))[:400])

    model_config = ModelConfig(vocab_size=vocab_size, hidden_size=args.hidden_size,
                               num_layers=args.num_layers, num_heads=args.num_heads,
                               intermediate_size=4 * args.hidden_size, dropout=0.0,
                               hidden_act="gelu", max_pair_targets=args.max_pair_targets,
                               sbo_position_embedding_size=200)
    ours = build_pretrainer(SpanBertConfig(name="parity", model=model_config,
                                           optimizer=OptimizerConfig()), dtype="float32")
    for line in load_hf_into_pretrainer(ours, folder, model_config):
        print(line)

    # 4. The heads alone on the same hidden states and pairs.
    rng = np.random.default_rng(args.seed)
    b, length, pairs_per = 3, 40, 6
    hidden = rng.normal(size=(b, length, args.hidden_size)).astype(np.float32)
    left = rng.integers(0, length - 12, size=(b, pairs_per))
    right = left + rng.integers(2, 12, size=(b, pairs_per))
    positions = rng.integers(0, length, size=(b, 10))
    with torch.no_grad():
        h = torch.tensor(hidden)
        mlm_official = torch.gather(official.cls.predictions(h), 1, torch.tensor(positions)[..., None]
                                    .expand(-1, -1, vocab_size)).numpy()
        sbo_official = official.cls.pair_target_predictions(
            h, torch.tensor(np.stack([left, right], -1))).numpy()       # [b*pairs, T, V]
    T = args.max_pair_targets
    mlm_ours = np.asarray(ours.mlm_head(hidden, positions))
    rep = lambda x: np.repeat(x, T, axis=1)  # noqa: E731  slot (pair, offset)
    rel = np.tile(np.arange(T), (b, pairs_per))
    sbo_ours = np.asarray(ours.sbo_head(hidden, rep(left), rep(right), rel))
    sbo_ours = sbo_ours.reshape(b * pairs_per, T, vocab_size)
    mlm_diff = float(np.abs(mlm_ours - mlm_official).max())
    sbo_diff = float(np.abs(sbo_ours - sbo_official).max())
    k = args.top_k
    top = lambda x: np.argsort(-x, axis=-1)[..., :k]  # noqa: E731
    sbo_top_equal = bool((top(sbo_ours) == top(sbo_official)).all())
    mlm_top_equal = bool((top(mlm_ours) == top(mlm_official)).all())
    print(f"MLM logits: max |ours - official| = {mlm_diff:.2e} (goal <= 1e-5); top-{k} ids equal: "
          f"{mlm_top_equal}")
    print(f"SBO logits: max |ours - official| = {sbo_diff:.2e} (goal <= 1e-5) over "
          f"{b * pairs_per} pairs x {T} offsets; top-{k} ids equal: {sbo_top_equal}")

    # 5. Whole model, first batch of the demo data.
    records = args.records
    if records is None:
        records = os.path.join(tmp, "tfrecords")
        subprocess.run([sys.executable, os.path.join(REPO, "create_pretraining_data.py"),
                        f"--output_dir={records}", "--max_seq_length=128",
                        "--max_predictions_per_seq=20", "--dupe_factor=1", "--num_shards=1",
                        "--num_workers=1", "--noprogress"], check=True, capture_output=True,
                       env=dict(os.environ, PYTHONPATH=REPO))
    batch = demo_batch(records, args.batch_size)
    want, _, _ = official_losses(official, batch)
    outputs = ours(batch, training=False)
    terms = ours.loss_terms(batch, outputs)
    got = {name: float(terms[name][0]) / float(terms[name][1]) for name in want}
    rel_diff = {name: abs(got[name] - want[name]) / abs(want[name]) for name in want}
    for name in want:
        print(f"{name}: ours {got[name]:.6f}  official {want[name]:.6f}  relative diff "
              f"{rel_diff[name]:.2e} (goal <= 1e-4)")
    del outputs[MLM_LOGITS], outputs[SBO_LOGITS]
    summary = {"mlm_logits_max_abs_diff": mlm_diff, "sbo_logits_max_abs_diff": sbo_diff,
               "mlm_top_k_equal": mlm_top_equal, "sbo_top_k_equal": sbo_top_equal,
               "losses_ours": got, "losses_official": want, "losses_relative_diff": rel_diff,
               "ok": mlm_diff <= 1e-5 and sbo_diff <= 1e-5 and max(rel_diff.values()) <= 1e-4}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
