"""Model dirs → keras-hub presets (`save_preset`), written atomically.

A preset dir is what `keras_hub.models.Backbone.from_preset` (and the Task /
Tokenizer / Preprocessor `from_preset`) read:

```
PRESET/config.json                      the SpanBertBackbone (exact GeLU kept)
PRESET/model.weights.h5                 its weights
PRESET/tokenizer.json                   SpanBertTokenizer (lowercase = do_lower_case)
PRESET/assets/tokenizer/vocabulary.txt  the vocabulary
PRESET/metadata.json                    versions, parameter count, the Tasks that fit
PRESET/task.json, task.weights.h5, preprocessor.json   when a task is saved
```

The preset is written into a temporary sibling folder and renamed into place,
so a crash never leaves a half-written preset.

Example:
```python
from spanbert_tf.convert.checkpoint import convert_checkpoint
convert_checkpoint("keras", "runs/pretrain", "keras_hub_preset", "presets/spanbert_tiny")
import spanbert_tf.presets
backbone = keras_hub.models.Backbone.from_preset("presets/spanbert_tiny")
```
"""

import os
import shutil
import tempfile

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

from spanbert_tf.errors import OutputExistsError
from spanbert_tf.modeling.backbone import SpanBertBackbone
from spanbert_tf.presets.registration import relabel_preset_files
from spanbert_tf.presets.tokenizer import SpanBertTokenizer


def build_tokenizer(vocab_file, do_lower_case):
    """`SpanBertTokenizer` for a model dir's vocabulary and casing (BERT: lowercasing strips accents)."""
    return SpanBertTokenizer(vocabulary=str(vocab_file), lowercase=bool(do_lower_case),
                             strip_accents=bool(do_lower_case))


def _check_output(preset_dir):
    if os.path.exists(preset_dir) and (not os.path.isdir(preset_dir) or os.listdir(preset_dir)):
        raise OutputExistsError(
            f"{preset_dir} already exists and is not an empty folder; choose a new --output")


def save_preset(preset_dir, backbone, tokenizer, task=None):
    """Writes `backbone` + `tokenizer` (or the whole `task`) as a keras-hub preset dir.

    Args:
        preset_dir: the folder to create (must not exist or be empty).
        backbone: a `SpanBertBackbone`.
        tokenizer: a `SpanBertTokenizer`.
        task: optional keras-hub Task on `backbone` (e.g. `SpanBertMaskedLM`);
            adds task.json, task.weights.h5 and preprocessor.json.
    """
    preset_dir = os.path.abspath(str(preset_dir))
    _check_output(preset_dir)
    parent = os.path.dirname(preset_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(preset_dir)}.tmp-", dir=parent)
    try:
        if task is not None:
            task.save_to_preset(staging)
            if task.preprocessor is None:
                tokenizer.save_to_preset(staging)
        else:
            backbone.save_to_preset(staging)
            tokenizer.save_to_preset(staging)
        relabel_preset_files(staging, SpanBertBackbone)
        os.chmod(staging, 0o755)
        if os.path.isdir(preset_dir):
            os.rmdir(preset_dir)  # empty (checked above)
        os.replace(staging, preset_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return preset_dir


def save_pretrainer_preset(preset_dir, pretrainer, vocab_file, do_lower_case, with_heads=True):
    """Writes a `SpanBertPretrainer` as a preset (what `convert_checkpoint` calls).

    With `with_heads` (trained MLM and SBO heads), the preset also holds a
    `SpanBertMaskedLM` task with those heads, so that
    `keras_hub.models.MaskedLM.from_preset` gets them; otherwise only the
    encoder and the tokenizer are written. Returns the preset dir.
    """
    tokenizer = build_tokenizer(vocab_file, do_lower_case)
    task = None
    if with_heads:
        from spanbert_tf.presets.masked_lm import masked_lm_from_pretrainer

        task = masked_lm_from_pretrainer(pretrainer, tokenizer)
    return save_preset(preset_dir, pretrainer.backbone, tokenizer, task=task)
