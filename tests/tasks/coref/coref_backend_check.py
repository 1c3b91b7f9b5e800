"""Runs the coreference model on one Keras backend; used by test_backend_parity.py.

Not a test module itself. The test process (TensorFlow) writes a real LitBank
document's features (`WORK_DIR/features.npz`) and calls `write_reference`; for
each other backend it runs, in a fresh process,

    KERAS_BACKEND=jax python tests/tasks/coref/coref_backend_check.py WORK_DIR

which, with the model every backend builds the same way (`build_model`):
1. loads the weights the TensorFlow process saved (`WORK_DIR/tensorflow/coref.weights.h5`),
   runs the document and writes `WORK_DIR/<backend>/from_tensorflow.npz`;
2. draws its own weights (another seed), saves them as `WORK_DIR/<backend>/coref.weights.h5`
   and its outputs as `WORK_DIR/<backend>/own.npz`, for the test to load back on TensorFlow.

Outputs: everything `CorefModel.call` returns (with the gold mentions: "loss"),
at prediction (chunked scoring: several chunks) and in training mode (dropout 0:
the unchunked path), as "<mode>/<name>"; and the spans the pruning keeps when
many scores tie ("pruning/kept"). Only the model's modules are imported
(no tokenizer, no data pipeline): JAX and PyTorch run the model eagerly.
"""

import dataclasses
import pathlib
import sys

import keras
import numpy as np

# The modeling tests' helpers (also when run as a script in a fresh process).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "modeling"))

from modeling_test_utils import randomize  # noqa: E402
from spanbert_tf.modeling.backbone import build_backbone  # noqa: E402
from spanbert_tf.modeling.config import load_config  # noqa: E402
from spanbert_tf.modeling.span_layers import select_non_crossing_spans  # noqa: E402
from spanbert_tf.tasks.coref.model import CorefModel  # noqa: E402

FEATURES_FILE = "features.npz"
WEIGHTS_FILE = "coref.weights.h5"
REFERENCE_SEED = 1
OWN_SEED = 2
MODES = {"predict": False, "train": True}


def build_model():
    """A small coref model (1-layer 16-wide backbone, small heads, no dropout), fresh weights."""
    backbone_config = dataclasses.replace(
        load_config("tiny").model, hidden_size=16, num_layers=1, num_heads=2,
        intermediate_size=32, max_position_embeddings=64, dropout=0.0)
    # Small chunks: prediction scores the candidates and antecedents in several chunks.
    return CorefModel(build_backbone(backbone_config), max_span_width=8, feature_size=8,
                      ffnn_size=24, max_top_antecedents=12, dropout_rate=0.0,
                      candidate_chunk_size=24, antecedent_chunk_size=8)


def run_model(model, features, modes=tuple(MODES)):
    """{"<mode>/<output>": numpy array} of one document in `modes` (both by default)."""
    outputs = {}
    for mode in modes:
        result = model(features, training=MODES[mode])
        for key, value in result.items():
            outputs[f"{mode}/{key}"] = keras.ops.convert_to_numpy(value)
    return outputs


def pruning_with_ties():
    """{"pruning/kept": indices} of `select_non_crossing_spans` on spans with many tied scores
    (rounded): the visiting order of ties (lower index first) must not depend on the backend."""
    rng = np.random.default_rng(4)
    grid = [(s, s + w) for s in range(40) for w in range(6) if s + w < 40]
    starts, ends = (np.array(column, np.int32) for column in zip(*grid))
    scores = np.round(rng.normal(size=len(grid))).astype(np.float32)
    kept = select_non_crossing_spans(scores, starts, ends, 25, 6)
    return {"pruning/kept": keras.ops.convert_to_numpy(kept)}


def load_features(work_dir):
    with np.load(pathlib.Path(work_dir) / FEATURES_FILE) as data:
        return {name: data[name] for name in data.files}


def load_model(directory):
    model = build_model()
    model.load_weights(str(pathlib.Path(directory) / WEIGHTS_FILE))
    return model


def write_reference(work_dir):
    """On the test's backend: seeded weights saved, and their outputs."""
    directory = pathlib.Path(work_dir) / keras.backend.backend()
    directory.mkdir(parents=True, exist_ok=True)
    model = build_model()
    randomize(model, REFERENCE_SEED)
    model.save_weights(str(directory / WEIGHTS_FILE))
    return {**run_model(model, load_features(work_dir)), **pruning_with_ties()}


def main(work_dir):
    work_dir = pathlib.Path(work_dir)
    directory = work_dir / keras.backend.backend()
    directory.mkdir(parents=True, exist_ok=True)
    features = load_features(work_dir)
    # 1. TensorFlow-written weights, run here.
    model = load_model(work_dir / "tensorflow")
    np.savez(directory / "from_tensorflow.npz",
             **run_model(model, features), **pruning_with_ties())
    # 2. Weights drawn here (the same model, re-drawn: JAX builds slowly), for TensorFlow to load.
    randomize(model, OWN_SEED)
    model.save_weights(str(directory / WEIGHTS_FILE))
    np.savez(directory / "own.npz", **run_model(model, features, modes=("predict",)))
    print(f"backend {keras.backend.backend()}: wrote {directory}")


if __name__ == "__main__":
    main(sys.argv[1])
