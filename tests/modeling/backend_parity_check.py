"""Runs the SpanBERT models on one Keras backend; used by test_backend_parity.py.

Not a test module itself. The test process (TensorFlow) calls `write_reference`;
for each other backend it runs, in a fresh process,

    KERAS_BACKEND=jax python tests/modeling/backend_parity_check.py WORK_DIR

which, with the models every backend builds the same way (`build_models`):
1. loads the weights the TensorFlow process saved (`WORK_DIR/tensorflow/<model>.weights.h5`)
   and the backbone preset (`WORK_DIR/tensorflow/backbone_preset`), runs the fixed
   inputs and writes `WORK_DIR/<backend>/from_tensorflow.npz`;
2. draws its own weights (another seed), saves them as `WORK_DIR/<backend>/<model>.weights.h5`
   and its outputs as `WORK_DIR/<backend>/own.npz`, for the test to load back on TensorFlow.

Only the modeling code and the task models' modules are imported (no data pipeline).
"""

import os
import pathlib
import sys

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from modeling_test_utils import random_features, randomize, small_config  # noqa: E402
from spanbert_tf.modeling.backbone import build_backbone  # noqa: E402
from spanbert_tf.modeling.pretrainer import SpanBertPretrainer  # noqa: E402
from spanbert_tf.tasks.classification.model import SpanBertClassifier  # noqa: E402
from spanbert_tf.tasks.squad.model import SpanBertQuestionAnswering  # noqa: E402

MODEL_NAMES = ("pretrainer", "question_answering", "classifier")
PRESET_DIR = "backbone_preset"
REFERENCE_SEED = 1
OWN_SEED = 2


def build_models():
    """{name: model} with fresh weights, built the same way on every backend."""
    config = small_config(hidden_act="gelu")
    model = config.model
    return {
        "pretrainer": SpanBertPretrainer(
            build_backbone(model), max_pair_targets=model.max_pair_targets,
            sbo_position_embedding_size=model.sbo_position_embedding_size),
        "question_answering": SpanBertQuestionAnswering(build_backbone(model)),
        "classifier": SpanBertClassifier(build_backbone(model), num_classes=3, dropout=0.0),
    }


def model_inputs():
    """Fixed numpy inputs: pretraining features and the task models' inputs."""
    features = random_features(batch=2, seq_len=12, slots=4, seed=3)
    features["segment_ids"][:, 6:] = 1
    task_inputs = {
        "token_ids": features["input_ids"],
        "segment_ids": features["segment_ids"],
        "padding_mask": features["input_mask"].astype("int32"),
    }
    return {"pretrainer": features, "question_answering": task_inputs,
            "classifier": task_inputs}


def run_models(models, inputs):
    """{"<model>/<output>": float32 array} for the fixed inputs (inference mode)."""
    outputs = {}
    for name, model in models.items():
        result = model(inputs[name], training=False)
        for key, value in result.items():
            outputs[f"{name}/{key}"] = keras.ops.convert_to_numpy(value).astype("float32")
    return outputs


def run_backbone(backbone, inputs):
    result = backbone(inputs["question_answering"], training=False)
    return {f"backbone/{k}": keras.ops.convert_to_numpy(v).astype("float32")
            for k, v in result.items()}


def save_models(models, directory):
    directory.mkdir(parents=True, exist_ok=True)
    for name, model in models.items():
        model.save_weights(str(directory / f"{name}.weights.h5"))


def load_models(directory):
    models = build_models()
    for name, model in models.items():
        model.load_weights(str(directory / f"{name}.weights.h5"))
    return models


def write_reference(work_dir):
    """On the test's backend: seeded weights, a backbone preset and their outputs."""
    directory = pathlib.Path(work_dir) / keras.backend.backend()
    models = build_models()
    for model in models.values():
        randomize(model, REFERENCE_SEED)
    save_models(models, directory)
    backbone = models["question_answering"].backbone
    backbone.save_to_preset(str(directory / PRESET_DIR))
    outputs = run_models(models, model_inputs())
    outputs.update(run_backbone(backbone, model_inputs()))
    return outputs


def main(work_dir):
    import keras_hub

    work_dir = pathlib.Path(work_dir)
    directory = work_dir / keras.backend.backend()
    inputs = model_inputs()
    # 1. TensorFlow-written weights and preset, run here.
    outputs = run_models(load_models(work_dir / "tensorflow"), inputs)
    preset_backbone = keras_hub.models.Backbone.from_preset(
        str(work_dir / "tensorflow" / PRESET_DIR))
    outputs.update(run_backbone(preset_backbone, inputs))
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / "from_tensorflow.npz", **outputs)
    # 2. Weights drawn here, for TensorFlow to load.
    models = build_models()
    for model in models.values():
        randomize(model, OWN_SEED)
    save_models(models, directory)
    np.savez(directory / "own.npz", **run_models(models, inputs))
    print(f"backend {keras.backend.backend()}: wrote {directory}")


if __name__ == "__main__":
    main(sys.argv[1])
