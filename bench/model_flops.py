"""Model FLOPs of a SpanBERT pretraining step and the bf16 peaks of known accelerators.

Shared by `pretraining_step.py` (synthetic MFU) and `keras_hub_comparison.py`
(the SBO head's share of the step). Standard library only.

Example:
```python
flops = training_flops_per_example(load_config("base").model, seq_length=512, predictions=80)
peak_tflops("NVIDIA H100 80GB HBM3")   # 989.0
```
"""

# Dense bf16 tensor-core peaks in TFLOP/s (vendor data sheets, no sparsity), matched
# as substrings of the device name, longest key first ("H100 PCIe" before "H100").
BF16_PEAK_TFLOPS = {
    "B200": 2250.0,
    "H200": 989.0,
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.0,
    "H800": 989.0,
    "A100": 312.0,
    "A800": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10": 125.0,
    # JAX device_kind strings of TPUs (per chip).
    "TPU v6 lite": 918.0,
    "TPU v5 lite": 197.0,
    "TPU v5p": 459.0,
    "TPU v5": 459.0,
    "TPU v4": 275.0,
}


def peak_tflops(device_name):
    """The bf16 peak of `device_name` from `BF16_PEAK_TFLOPS`, or None if unknown."""
    for key in sorted(BF16_PEAK_TFLOPS, key=len, reverse=True):
        if key.lower() in (device_name or "").lower():
            return BF16_PEAK_TFLOPS[key]
    return None


def analytic_macs(model_config, seq_length, predictions):
    """Forward multiply-accumulates per example: (BERT encoder + MLM head, SBO head extra).

    Encoder: per token and layer the Q/K/V/output projections (4·H²), the
    feed-forward block (2·H·I) and the attention scores and mix (2·L·H). Heads:
    per prediction the transform (H²) and the tied decoder (H·V); the SBO head
    has the 2H + position-width input layer and a second H² layer. Embedding
    lookups and the (untrained) pooler are left out.
    """
    h, i, v = model_config.hidden_size, model_config.intermediate_size, model_config.vocab_size
    sbo_position = model_config.sbo_position_embedding_size
    encoder = seq_length * model_config.num_layers * (4 * h * h + 2 * h * i + 2 * seq_length * h)
    mlm = predictions * (h * h + h * v)
    sbo = predictions * (h * (2 * h + sbo_position) + h * h + h * v)
    return encoder + mlm, sbo


def training_flops_per_example(model_config, seq_length, predictions, sbo=True):
    """Model FLOPs of one training example: 3 passes (forward, 2× backward) × 2 FLOPs per MAC
    (`sbo=False`: without the SBO head, an MLM-only step)."""
    bert, sbo_macs = analytic_macs(model_config, seq_length, predictions)
    return 6 * (bert + (sbo_macs if sbo else 0))
