"""Our Keras models' variables ⇄ canonical (Hugging Face layout) weights.

`weight_bindings(backbone, mlm_head=None)` lists, for every canonical name
(see `convert_hf`), the Keras variable that holds it and the two layout
transforms: PyTorch `[out, in]` Linear weights become `[in, out]` Dense kernels,
and the attention projections are split per head (`[hidden, heads, head_dim]`,
as keras-hub's `MultiHeadAttention` stores them).

Example:
```python
assign_weights(backbone, weights, mlm_head=pretrainer.mlm_head)   # canonical -> Keras
weights = extract_weights(backbone, mlm_head=pretrainer.mlm_head)  # Keras -> canonical
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


def weight_bindings(backbone, mlm_head=None):
    """All bindings: the backbone's, plus the MLM head's when given."""
    out = backbone_bindings(backbone)
    if mlm_head is not None:
        out += mlm_head_bindings(mlm_head)
    return out


def assign_weights(backbone, weights, mlm_head=None, source="checkpoint"):
    """Copies canonical weights into the Keras variables; returns the names assigned.

    Names absent from `weights` are left as initialised. Raises `ValueError`
    listing every shape mismatch (e.g. a config that does not fit the tensors).
    """
    assigned, errors = [], []
    for b in weight_bindings(backbone, mlm_head):
        if b.name not in weights:
            continue
        value = np.asarray(b.to_keras(np.asarray(weights[b.name], np.float32)))
        if tuple(value.shape) != tuple(b.variable.shape):
            errors.append(
                f"{b.name}: tensor {tuple(np.shape(weights[b.name]))} does not fit "
                f"variable {b.variable.path} {tuple(b.variable.shape)}"
            )
            continue
        b.variable.assign(value.astype(b.variable.dtype))
        assigned.append(b.name)
    if errors:
        raise InputError(f"{source}: shape mismatch(es):\n  " + "\n  ".join(errors))
    return assigned


def extract_weights(backbone, mlm_head=None):
    """Reads the Keras variables back into canonical float32 weights."""
    return {
        b.name: np.asarray(b.from_keras(np.asarray(b.variable.numpy(), np.float32)))
        for b in weight_bindings(backbone, mlm_head)
    }
