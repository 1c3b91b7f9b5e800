"""Our Keras models' variables ⇄ canonical (Hugging Face layout) weights.

`weight_bindings(backbone, mlm_head=None, sbo_head=None)` lists, for every canonical name
(see `convert_hf`), the Keras variable that holds it and the two layout
transforms: PyTorch `[out, in]` Linear weights become `[in, out]` Dense kernels,
and the attention projections are split per head (`[hidden, heads, head_dim]`,
as keras-hub's `MultiHeadAttention` stores them).

Example:
```python
assign_weights(backbone, weights, mlm_head=pretrainer.mlm_head,   # canonical -> Keras
               sbo_head=pretrainer.sbo_head)
weights = extract_weights(backbone, mlm_head=pretrainer.mlm_head)  # Keras -> canonical

The SBO head (official `BertPairTargetPredictionHead`): `position_embeddings` → our
`position_embedding` (max_targets × 200), `mlp_layer_norm.linear1/layer_norm1/linear2/
layer_norm2` → `dense_1/layer_norm_1/dense_2/layer_norm_2` (the official MLP applies the
activation after each linear, before its LayerNorm, as our Dense(activation) → LayerNorm),
`bias` → `output_bias`; the decoder is the tied word embedding in both.
```
"""

import dataclasses
from typing import Callable

import numpy as np

from spanbert_tf.errors import InputError


@dataclasses.dataclass
class Binding:
    """One canonical tensor ⇄ one Keras variable."""

    name: str
    variable: object
    to_keras: Callable
    from_keras: Callable


def _same(x):
    return x


def _linear():
    """[out, in] ⇄ [in, out]."""
    return (np.transpose, np.transpose)


def _qkv(hidden, heads):
    head_dim = hidden // heads
    return (
        lambda w: np.transpose(w).reshape(hidden, heads, head_dim),
        lambda k: np.transpose(k.reshape(hidden, hidden)),
    )


def _qkv_bias(hidden, heads):
    head_dim = hidden // heads
    return (lambda b: b.reshape(heads, head_dim), lambda b: b.reshape(hidden))


def _attention_output(hidden, heads):
    head_dim = hidden // heads
    return (
        lambda w: np.transpose(w).reshape(heads, head_dim, hidden),
        lambda k: np.transpose(k.reshape(hidden, hidden)),
    )


def backbone_bindings(backbone):
    """Bindings of every encoder + pooler variable of a (SpanBert|Bert)Backbone."""
    hidden, heads = backbone.hidden_dim, backbone.num_heads
    same = (_same, _same)
    out = []

    def bind(name, variable, transforms):
        out.append(Binding(name, variable, *transforms))

    bind("embeddings.word_embeddings.weight", backbone.token_embedding.embeddings, same)
    bind(
        "embeddings.position_embeddings.weight",
        backbone.position_embedding.position_embeddings,
        same,
    )
    bind("embeddings.token_type_embeddings.weight", backbone.segment_embedding.embeddings, same)
    bind("embeddings.LayerNorm.weight", backbone.embeddings_layer_norm.gamma, same)
    bind("embeddings.LayerNorm.bias", backbone.embeddings_layer_norm.beta, same)
    for i, layer in enumerate(backbone.transformer_layers):
        p = f"encoder.layer.{i}."
        attn = layer._self_attention_layer
        for part, dense in (
            ("query", attn.query_dense),
            ("key", attn.key_dense),
            ("value", attn.value_dense),
        ):
            bind(f"{p}attention.self.{part}.weight", dense.kernel, _qkv(hidden, heads))
            bind(f"{p}attention.self.{part}.bias", dense.bias, _qkv_bias(hidden, heads))
        bind(
            f"{p}attention.output.dense.weight",
            attn.output_dense.kernel,
            _attention_output(hidden, heads),
        )
        bind(f"{p}attention.output.dense.bias", attn.output_dense.bias, same)
        bind(f"{p}attention.output.LayerNorm.weight", layer._self_attention_layer_norm.gamma, same)
        bind(f"{p}attention.output.LayerNorm.bias", layer._self_attention_layer_norm.beta, same)
        bind(f"{p}intermediate.dense.weight", layer._feedforward_intermediate_dense.kernel, _linear())
        bind(f"{p}intermediate.dense.bias", layer._feedforward_intermediate_dense.bias, same)
        bind(f"{p}output.dense.weight", layer._feedforward_output_dense.kernel, _linear())
        bind(f"{p}output.dense.bias", layer._feedforward_output_dense.bias, same)
        bind(f"{p}output.LayerNorm.weight", layer._feedforward_layer_norm.gamma, same)
        bind(f"{p}output.LayerNorm.bias", layer._feedforward_layer_norm.beta, same)
    bind("pooler.dense.weight", backbone.pooled_dense.kernel, _linear())
    bind("pooler.dense.bias", backbone.pooled_dense.bias, same)
    return out


def mlm_head_bindings(mlm_head):
    """Bindings of the MLM head's transform + output bias (decoder tied to embeddings)."""
    same = (_same, _same)
    return [
        Binding("cls.predictions.transform.dense.weight", mlm_head.transform_dense.kernel, *_linear()),
        Binding("cls.predictions.transform.dense.bias", mlm_head.transform_dense.bias, *same),
        Binding("cls.predictions.transform.LayerNorm.weight", mlm_head.transform_layer_norm.gamma, *same),
        Binding("cls.predictions.transform.LayerNorm.bias", mlm_head.transform_layer_norm.beta, *same),
        Binding("cls.predictions.bias", mlm_head.output_bias, *same),
    ]


def sbo_head_bindings(sbo_head):
    """Bindings of the SBO head: position embedding, the two-layer MLP, the output bias."""
    same = (_same, _same)
    p = "cls.pair_target_predictions."
    m = p + "mlp_layer_norm."
    return [
        Binding(p + "position_embeddings.weight", sbo_head.position_embedding.embeddings, *same),
        Binding(m + "linear1.weight", sbo_head.dense_1.kernel, *_linear()),
        Binding(m + "linear1.bias", sbo_head.dense_1.bias, *same),
        Binding(m + "layer_norm1.weight", sbo_head.layer_norm_1.gamma, *same),
        Binding(m + "layer_norm1.bias", sbo_head.layer_norm_1.beta, *same),
        Binding(m + "linear2.weight", sbo_head.dense_2.kernel, *_linear()),
        Binding(m + "linear2.bias", sbo_head.dense_2.bias, *same),
        Binding(m + "layer_norm2.weight", sbo_head.layer_norm_2.gamma, *same),
        Binding(m + "layer_norm2.bias", sbo_head.layer_norm_2.beta, *same),
        Binding(p + "bias", sbo_head.output_bias, *same),
    ]


def weight_bindings(backbone, mlm_head=None, sbo_head=None):
    """All bindings: the backbone's, plus the heads' when given."""
    out = backbone_bindings(backbone)
    if mlm_head is not None:
        out += mlm_head_bindings(mlm_head)
    if sbo_head is not None:
        out += sbo_head_bindings(sbo_head)
    return out


def mismatch_lines(backbone, weights, mlm_head=None, sbo_head=None):
    """One line per canonical tensor that does not fit its variable (name, both shapes)."""
    lines = []
    for b in weight_bindings(backbone, mlm_head, sbo_head):
        if b.name not in weights:
            continue
        tensor = np.asarray(weights[b.name], np.float32)
        # The layout transforms reshape: only a tensor of the variable's size can fit.
        fits = tensor.size == int(np.prod(b.variable.shape)) and \
            tuple(np.shape(b.to_keras(tensor))) == tuple(b.variable.shape)
        if not fits:
            lines.append(f"{b.name}: tensor {tuple(np.shape(weights[b.name]))} does not fit "
                         f"variable {b.variable.path} {tuple(b.variable.shape)}")
    return lines


def assign_weights(backbone, weights, mlm_head=None, source="checkpoint", sbo_head=None):
    """Copies canonical weights into the Keras variables; returns the names assigned.

    Names absent from `weights` are left as initialised. Raises `ValueError`
    listing every shape mismatch (e.g. a config that does not fit the tensors).
    """
    errors = mismatch_lines(backbone, weights, mlm_head, sbo_head)
    if errors:
        raise InputError(f"{source}: {len(errors)} tensor(s) do not fit the model:\n  "
                         + "\n  ".join(errors))
    assigned = []
    for b in weight_bindings(backbone, mlm_head, sbo_head):
        if b.name not in weights:
            continue
        value = np.asarray(b.to_keras(np.asarray(weights[b.name], np.float32)))
        b.variable.assign(value.astype(b.variable.dtype))
        assigned.append(b.name)
    return assigned


def extract_weights(backbone, mlm_head=None, sbo_head=None):
    """Reads the Keras variables back into canonical float32 weights."""
    return {
        b.name: np.asarray(b.from_keras(np.asarray(b.variable.numpy(), np.float32)))
        for b in weight_bindings(backbone, mlm_head, sbo_head)
    }
