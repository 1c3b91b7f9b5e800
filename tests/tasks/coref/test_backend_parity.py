"""The coreference model gives the same outputs on TensorFlow, JAX and PyTorch (issue #15).

This process runs on TensorFlow: it turns the start of a real LitBank document
into model inputs (tokenizer + `segments.py`), saves seeded weights and their
outputs; one fresh process per other backend (`coref_backend_check.py`, both
started at once) loads the weights, runs the same document and writes weights of
its own, loaded back here. Same weights → same outputs: every index output
equal, every score within 1e-5 (float32; the loss, a sum over the kept spans,
within 1e-5 relative).
"""

import keras
import numpy as np
import pytest

from spanbert_tf.tasks.coref import conll, segments
from spanbert_tf.tokenization import BertWordpieceTokenizer

from . import coref_backend_check as check
from modeling_test_utils import run_on_other_backends  # noqa: E402  (put on sys.path by check)

OTHER_BACKENDS = ("jax", "torch")
TOLERANCE = 1e-5
LITBANK_DOC = "158_emma_brat"
MAX_SEGMENT_LEN = 32
NUM_SEGMENTS = 3
# Two fresh processes, each importing TensorFlow (keras-hub does) plus JAX or PyTorch, and JAX
# compiling each eager op once: ~40 s.
pytestmark = pytest.mark.slow


def litbank_features(shared_data, cased_vocab):
    """The first `NUM_SEGMENTS` segments of a LitBank document as model inputs + gold."""
    document = conll.read_conll(
        str(shared_data / "coref" / "litbank" / "conll" / f"{LITBANK_DOC}.conll"))[0]
    tokenizer = BertWordpieceTokenizer(cased_vocab)
    features = segments.document_to_features(
        segments.minimize(document, tokenizer, MAX_SEGMENT_LEN), MAX_SEGMENT_LEN)
    num_tokens = int(features["input_mask"][:NUM_SEGMENTS].sum())
    inside = features["gold_ends"] < num_tokens
    out = {name: features[name][:NUM_SEGMENTS]
           for name in ("input_ids", "input_mask", "speaker_ids")}
    out.update(sentence_map=features["sentence_map"][:num_tokens], genre=features["genre"])
    out.update({name: features[name][inside]
                for name in ("gold_starts", "gold_ends", "cluster_ids")})
    return out


@pytest.fixture(scope="module")
def parity_run(tmp_path_factory, shared_data, cased_vocab):
    assert keras.backend.backend() == "tensorflow"
    work_dir = tmp_path_factory.mktemp("coref_backend_parity")
    features = litbank_features(shared_data, cased_vocab)
    assert len(np.unique(features["cluster_ids"])) >= 3           # real gold clusters inside
    np.savez(work_dir / check.FEATURES_FILE, **features)
    reference = check.write_reference(work_dir)
    run_on_other_backends(check.__file__, work_dir, OTHER_BACKENDS, timeout=600)
    return work_dir, reference


def _assert_close(got, want, where):
    assert set(got) == set(want), where
    for key in want:
        assert got[key].shape == want[key].shape, f"{where}: {key}"
        if want[key].dtype.kind == "i":
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"{where}: {key}")
            continue
        got_value, want_value = got[key].astype(np.float64), want[key].astype(np.float64)
        if key.endswith("top_antecedent_scores"):
            # Masked antecedents score -1e9 + a fine score: compare where they are, not
            # their float32 rounding.
            masked = want_value < -1e8
            assert (masked == (got_value < -1e8)).all(), f"{where}: {key} mask"
            got_value, want_value = got_value[~masked], want_value[~masked]
        scale = np.maximum(1.0, np.abs(want_value)) if key.endswith("loss") else 1.0
        error = float(np.max(np.abs(got_value - want_value) / scale, initial=0.0))
        assert error <= TOLERANCE, f"{where}: {key} differs by {error:.2e}"


def _assert_non_trivial(outputs):
    for mode in ("predict", "train")[:1 + ("train/loss" in outputs)]:
        assert np.std(outputs[f"{mode}/candidate_mention_scores"]) > 0.01
        scores = outputs[f"{mode}/top_antecedent_scores"][:, 1:]
        assert np.std(scores[scores > -1e8]) > 0.1
        assert len(np.unique(outputs[f"{mode}/top_antecedents"])) > 10
        assert outputs[f"{mode}/loss"] > 1.0


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_tensorflow_weights_give_the_same_outputs(parity_run, backend):
    work_dir, reference = parity_run
    got = dict(np.load(work_dir / backend / "from_tensorflow.npz"))
    # Both modes (chunked prediction, training) and every output, with non-trivial values.
    assert {key.split("/")[0] for key in got} == set(check.MODES) | {"pruning"}
    assert "predict/loss" in got and "train/top_antecedent_scores" in got
    assert len(got["pruning/kept"]) == 25
    _assert_non_trivial(reference)
    _assert_close(got, reference, f"tensorflow weights on {backend}")


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_weights_written_on_another_backend_load_here(parity_run, backend):
    work_dir, reference = parity_run
    want = dict(np.load(work_dir / backend / "own.npz"))
    got = check.run_model(check.load_model(work_dir / backend),
                          check.load_features(work_dir), modes=("predict",))
    # Different weights from the reference: the file was really written there.
    assert not np.allclose(want["predict/candidate_mention_scores"],
                           reference["predict/candidate_mention_scores"], atol=0.1)
    _assert_non_trivial(want)
    _assert_close(got, want, f"{backend} weights on tensorflow")
