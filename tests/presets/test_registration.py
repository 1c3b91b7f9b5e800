"""SpanBERT presets load through keras-hub after `import spanbert_tf`, whichever of keras-hub and
spanbert_tf is imported first (spanbert_tf/keras_hub_hook.py), and `import spanbert_tf` alone
loads neither keras-hub nor TensorFlow."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ORDERS = {
    "spanbert_tf first": "import spanbert_tf\nimport keras_hub\n",
    "keras_hub first": "import keras_hub\nimport spanbert_tf\n",
    "a submodule first": "from spanbert_tf.modeling import backbone\nimport keras_hub\n",
}


def _run(code):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", PYTHONPATH=REPO)
    env.pop("KERAS_BACKEND", None)
    return subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", code],
                          capture_output=True, text=True, env=env, timeout=300, cwd="/")


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_from_preset_finds_spanbert_in_either_import_order(tiny_cased_preset, order):
    code = (ORDERS[order] + f"backbone = keras_hub.models.Backbone.from_preset({tiny_cased_preset[0]!r})\n"
            "tokenizer = keras_hub.models.Tokenizer.from_preset("
            f"{tiny_cased_preset[0]!r})\n"
            "print(type(backbone).__name__, type(tokenizer).__name__)\n")
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["SpanBertBackbone", "SpanBertTokenizer"]


def test_import_spanbert_tf_loads_neither_keras_hub_nor_tensorflow():
    proc = _run("import sys, spanbert_tf\n"
                "print(sorted(m for m in ('keras_hub', 'tensorflow', 'keras') if m in sys.modules))")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]"
