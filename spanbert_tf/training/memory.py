"""What a pretraining step will need, before it runs: parameters and memory.

`step_plan` estimates, from the model config and the batch settings alone (no
model is built), the parameter count and the memory one training step needs on
one device; `available_memory_bytes` says what the device has. A run whose
estimate exceeds that stops at start-up with one line instead of being killed by
the kernel half an hour later.

The activation estimate follows Korthikanti et al. 2022 ("Reducing Activation
Recomputation in Large Transformer Models"): s·b·h·(34 + 5·a·s/h) bytes per layer
in 16-bit, doubled for float32; plus the MLM and SBO logits over the vocabulary
(kept for the backward pass, with their softmax and gradient) and four copies of
the parameters (weights, gradients, two Adam moments). It is an estimate, meant
to catch settings that are off by a large factor.

Example:
```python
plan = step_plan(config.model, global_batch=256, seq_length=128, predictions=20)
plan["parameters"], plan["step_bytes"]     # 1.1e8, 3.2e10
```
"""

import os
import subprocess

GB = 1024 ** 3


def parameter_count(model):
    """Parameters of backbone (with pooler) + MLM head + SBO head, from a ModelConfig."""
    H, I, V = model.hidden_size, model.intermediate_size, model.vocab_size
    embeddings = (V + model.max_position_embeddings + model.type_vocab_size) * H + 2 * H
    layer = 4 * (H * H + H) + H * I + I + I * H + H + 4 * H
    pooler = H * H + H
    mlm = H * H + H + 2 * H + V
    Ps = model.sbo_position_embedding_size
    sbo = (model.max_pair_targets * Ps + (2 * H + Ps) * H + H + 2 * H
           + H * H + H + 2 * H + V)
    return embeddings + model.num_layers * layer + pooler + mlm + sbo


def step_plan(model, global_batch, seq_length, predictions, replicas=1, grad_accum_steps=1,
              mixed_precision="float32"):
    """{"parameters", "micro_batch" (per replica), "step_bytes" (per device)}."""
    params = parameter_count(model)
    micro = max(1, global_batch // max(1, replicas * grad_accum_steps))
    H, a, s = model.hidden_size, model.num_heads, seq_length
    act_bytes = 2 if mixed_precision != "float32" else 4
    per_layer = s * micro * H * (34 + 5 * a * s / H) * act_bytes / 2
    activations = model.num_layers * per_layer
    # MLM and SBO logits (+ softmax + gradient) over the vocabulary.
    logits = 2 * 3 * micro * predictions * model.vocab_size * 4
    state = 4 * params * 4
    return {"parameters": params, "micro_batch": micro,
            "step_bytes": int(state + activations + logits)}


def _cgroup_available():
    for limit_path, usage_path in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_path) as f:
                limit = f.read().strip()
            with open(usage_path) as f:
                usage = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:
            return int(limit) - usage
    return None


def host_available_bytes():
    """MemAvailable of /proc/meminfo, lowered to the cgroup's limit; None if unknown."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    cgroup = _cgroup_available()
    if cgroup is not None:
        available = cgroup if available is None else min(available, cgroup)
    return available


def gpu_total_bytes():
    """Memory of the smallest visible GPU (nvidia-smi), or None."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=20, check=True).stdout
        values = [int(v) * 1024 * 1024 for v in out.split() if v.strip().isdigit()]
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        ids = [int(v) for v in visible.split(",") if v.strip().isdigit()]
        values = [values[i] for i in ids if i < len(values)] or values
    return min(values) if values else None


def available_memory_bytes(device_kind):
    """(bytes, description) for "CPU" or "GPU"; bytes is None where unknown (TPU)."""
    if device_kind == "GPU":
        total = gpu_total_bytes()
        return total, "the GPU has"
    if device_kind == "CPU":
        return host_available_bytes(), "the host has available"
    return None, ""
