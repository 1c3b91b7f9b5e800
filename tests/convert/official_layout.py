"""A checkpoint in the official SpanBERT with-head key layout, written by the tests, and a
NumPy reference of the official heads' forward (pair_bert.py: `BertLMPredictionHead`,
`BertPairTargetPredictionHead`, `MLPWithLayerNorm`, `BertLayerNorm` eps 1e-12, erf GeLU)."""

import json
import math
import os

import numpy as np


def _gelu(x):
    erf = np.vectorize(math.erf)
    return x * 0.5 * (1.0 + erf(x / math.sqrt(2.0)))


def _layer_norm(x, gamma, beta):
    u = x.mean(-1, keepdims=True)
    s = ((x - u) ** 2).mean(-1, keepdims=True)
    return gamma * (x - u) / np.sqrt(s + 1e-12) + beta


def official_tensors(vocab_size, hidden, layers, max_targets=15, width=200, seed=0,
                     intermediate=None, max_positions=512):
    """{official name: float32 array}: `bert.*` (LayerNorm gamma/beta), `cls.predictions.*`,
    `cls.pair_target_predictions.*`, tied decoder copies, as BertForPreTraining.state_dict()."""
    rng = np.random.default_rng(seed)
    intermediate = intermediate or 4 * hidden
    t = {}

    def w(*shape, scale=0.05):
        return rng.normal(0, scale, size=shape).astype(np.float32)

    t["bert.embeddings.word_embeddings.weight"] = w(vocab_size, hidden)
    t["bert.embeddings.position_embeddings.weight"] = w(max_positions, hidden)
    t["bert.embeddings.token_type_embeddings.weight"] = w(2, hidden)
    t["bert.embeddings.LayerNorm.gamma"] = 1 + w(hidden)
    t["bert.embeddings.LayerNorm.beta"] = w(hidden)
    for i in range(layers):
        p = f"bert.encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            t[p + name + ".weight"], t[p + name + ".bias"] = w(hidden, hidden), w(hidden)
        t[p + "intermediate.dense.weight"] = w(intermediate, hidden)
        t[p + "intermediate.dense.bias"] = w(intermediate)
        t[p + "output.dense.weight"], t[p + "output.dense.bias"] = w(hidden, intermediate), w(hidden)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + ln + ".gamma"], t[p + ln + ".beta"] = 1 + w(hidden), w(hidden)
    c = "cls.predictions."
    t[c + "transform.dense.weight"], t[c + "transform.dense.bias"] = w(hidden, hidden), w(hidden)
    t[c + "transform.LayerNorm.gamma"], t[c + "transform.LayerNorm.beta"] = 1 + w(hidden), w(hidden)
    t[c + "bias"] = w(vocab_size)
    t[c + "decoder.weight"] = t["bert.embeddings.word_embeddings.weight"]
    s = "cls.pair_target_predictions."
    t[s + "position_embeddings.weight"] = w(max_targets, width)
    m = s + "mlp_layer_norm."
    t[m + "linear1.weight"], t[m + "linear1.bias"] = w(hidden, 2 * hidden + width), w(hidden)
    t[m + "layer_norm1.gamma"], t[m + "layer_norm1.beta"] = 1 + w(hidden), w(hidden)
    t[m + "linear2.weight"], t[m + "linear2.bias"] = w(hidden, hidden), w(hidden)
    t[m + "layer_norm2.gamma"], t[m + "layer_norm2.beta"] = 1 + w(hidden), w(hidden)
    t[s + "bias"] = w(vocab_size)
    t[s + "decoder.weight"] = t["bert.embeddings.word_embeddings.weight"]
    return t


def write_official_folder(folder, tensors, vocab_file=None, max_positions=512):
    """config.json + model.safetensors in the official layout (and vocab.txt if given)."""
    from safetensors.numpy import save_file

    os.makedirs(folder, exist_ok=True)
    emb = tensors["bert.embeddings.word_embeddings.weight"]
    layers = len({k.split(".")[3] for k in tensors if k.startswith("bert.encoder.layer.")})
    config = {"model_type": "bert", "vocab_size": emb.shape[0], "hidden_size": emb.shape[1],
              "num_hidden_layers": layers, "num_attention_heads": 2,
              "intermediate_size": tensors["bert.encoder.layer.0.intermediate.dense.weight"].shape[0],
              "hidden_act": "gelu", "max_position_embeddings": max_positions,
              "type_vocab_size": 2, "hidden_dropout_prob": 0.0}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    # Tied copies are separate buffers in a safetensors file.
    save_file({k: np.ascontiguousarray(v).copy() for k, v in tensors.items()},
              os.path.join(folder, "model.safetensors"))
    if vocab_file:
        with open(vocab_file, encoding="utf-8") as src, \
                open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as dst:
            dst.write(src.read())
    return folder


def official_mlm_logits(t, hidden):
    """BertLMPredictionHead: transform (dense, gelu, LayerNorm) → decoder (tied) + bias."""
    c = "cls.predictions."
    x = _gelu(hidden @ t[c + "transform.dense.weight"].T + t[c + "transform.dense.bias"])
    x = _layer_norm(x, t[c + "transform.LayerNorm.gamma"], t[c + "transform.LayerNorm.beta"])
    return x @ t[c + "decoder.weight"].T + t[c + "bias"]


def official_sbo_logits(t, hidden, pairs):
    """BertPairTargetPredictionHead on pairs [B, N, 2] → [B*N, max_targets, V]."""
    s, m = "cls.pair_target_predictions.", "cls.pair_target_predictions.mlp_layer_norm."
    pos = t[s + "position_embeddings.weight"]
    out = []
    for b in range(pairs.shape[0]):
        for left, right in pairs[b]:
            x = np.concatenate([np.repeat(hidden[b, left][None], len(pos), 0),
                                np.repeat(hidden[b, right][None], len(pos), 0), pos], -1)
            x = _layer_norm(_gelu(x @ t[m + "linear1.weight"].T + t[m + "linear1.bias"]),
                            t[m + "layer_norm1.gamma"], t[m + "layer_norm1.beta"])
            x = _layer_norm(_gelu(x @ t[m + "linear2.weight"].T + t[m + "linear2.bias"]),
                            t[m + "layer_norm2.gamma"], t[m + "layer_norm2.beta"])
            out.append(x @ t[s + "decoder.weight"].T + t[s + "bias"])
    return np.stack(out)
