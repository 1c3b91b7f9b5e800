"""Which variables weight decay leaves alone: LayerNorm parameters and biases (any backend).

Shared by the TF optimizer (`optimization.py`) and the Keras `fit` loop (`keras_fit.py`,
which runs without TensorFlow).

Example:
```python
[v.path for v in model.trainable_variables if not uses_weight_decay(v)]   # biases, norms
```
"""

import re

NO_DECAY_PATTERN = r"(^|/|_)(bias|gamma|beta)(:\d+)?$|layer_?norm|LayerNorm"


def uses_weight_decay(variable):
    """False for LayerNorm parameters and biases (matched on name and path)."""
    name = getattr(variable, "path", None) or variable.name
    return re.search(NO_DECAY_PATTERN, name) is None and re.search(
        NO_DECAY_PATTERN, variable.name
    ) is None
