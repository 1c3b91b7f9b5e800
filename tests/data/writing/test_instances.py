"""Worker side of create_pretraining_data: lean TensorFlow import, candidates."""

import json
import os
import subprocess
import sys

import numpy as np

from spanbert_tf.data.writing import instances
from spanbert_tf.tokenization import BertWordpieceTokenizer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_random_token_candidates_exclude_special_and_unused(cased_vocab):
    tok = BertWordpieceTokenizer(cased_vocab)
    candidates = instances.random_token_candidates(tok)
    tokens = set(tok.convert_ids_to_tokens(candidates))
    assert not tokens & {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused1]", "[unused101]"}
    assert len(candidates) == tok.vocab_size - 5 - 101
    assert candidates.dtype == np.int32 and (np.diff(candidates) > 0).all()


def test_lean_tensorflow_import_tokenizes_identically(cased_vocab, shared_data):
    """Workers import TensorFlow without Keras or JAX: same wordpieces on both code paths."""
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from test_tokenization import EDGE_CASES, _fuzz_texts

    texts = EDGE_CASES + _fuzz_texts(300, seed=5)
    uncased = str(shared_data / "vocab" / "bert-base-uncased-vocab.txt")
    script = (
        "import json, sys\n"
        "from spanbert_tf.data.writing import instances\n"
        "instances.import_tensorflow_lean()\n"
        "from spanbert_tf.tokenization import BertWordpieceTokenizer\n"
        "texts = json.loads(sys.stdin.read())\n"
        f"out = [[a.tolist() for a in BertWordpieceTokenizer(v, low).tokenize_to_ids(texts)]\n"
        f"       for v, low in (({cased_vocab!r}, False), ({uncased!r}, True))]\n"
        "print(json.dumps([out, 'keras' in sys.modules or 'jax' in sys.modules]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], input=json.dumps(texts),
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lean, keras_or_jax_loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not keras_or_jax_loaded
    for (vocab, lower), got in zip(((cased_vocab, False), (uncased, True)), lean):
        expected = BertWordpieceTokenizer(vocab, lower).tokenize_to_ids(texts)
        assert got == [e.tolist() for e in expected]
