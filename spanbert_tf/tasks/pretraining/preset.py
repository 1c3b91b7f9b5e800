"""The keras-hub preset a pretraining run leaves in its model dir (`MODEL_DIR/preset`).

Written at the end of a run on a Keras backend (JAX, PyTorch): the backbone, the MLM and SBO
heads and the tokenizer, which the fine-tuning programs load on any backend. Training
(`training.keras_fit`) calls it through its `write_preset` argument, so that the training
layer imports no preset code.

Example:
```python
path = write_model_dir_preset(pretrainer, "runs/jax", "vocab.txt", do_lower_case=False)
keras_hub.models.Backbone.from_preset(path)
```
"""

import os
import shutil

from spanbert_tf.modeling import preset_dir
from spanbert_tf.presets.preset_io import save_pretrainer_preset

PRESET_DIR = preset_dir.MODEL_DIR_PRESET


def write_model_dir_preset(model, model_dir, vocab_file, do_lower_case):
    """Replaces `model_dir/preset` by the model's keras-hub preset (backbone, MLM/SBO heads,
    tokenizer), staged beside it and renamed into place. Returns its path."""
    target = os.path.join(str(model_dir), PRESET_DIR)
    staging = os.path.join(str(model_dir), f".{PRESET_DIR}.new-{os.getpid()}")
    old = os.path.join(str(model_dir), f".{PRESET_DIR}.old-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    save_pretrainer_preset(staging, model, vocab_file, do_lower_case, with_heads=True)
    if os.path.exists(target):
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
    return os.path.abspath(target)
