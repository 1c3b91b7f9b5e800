"""Serving SavedModels: raw text in, label out; reloaded and checked in a fresh process."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from spanbert_tf.serving.ops import ops_outside_model_server
from spanbert_tf.modeling.config import load_config
from spanbert_tf.modeling.model_dir import write_model_dir_metadata
from spanbert_tf.tasks.classification import model as classification
from spanbert_tf.tasks.classification.task import ClassificationTask
from spanbert_tf.tasks.classification import glue
from spanbert_tf.tasks.classification import tacred
from spanbert_tf.tasks.classification.export import export_classifier
from spanbert_tf.tokenization import BertWordpieceTokenizer

LONG_TOKENS = ("The company , founded by Maria Gonzalez in -LRB- 1987 -RRB- , is based in "
               "San Francisco and employs many people across several countries today .").split()
TACRED_RECORDS = [
    {"id": "a", "relation": "org:founded_by", "token": LONG_TOKENS, "subj_start": 1,
     "subj_end": 1, "subj_type": "ORGANIZATION", "obj_start": 5, "obj_end": 6,
     "obj_type": "PERSON"},
    {"id": "b", "relation": "no_relation", "token": LONG_TOKENS, "subj_start": 17,
     "subj_end": 18, "subj_type": "LOCATION", "obj_start": 5, "obj_end": 6,
     "obj_type": "PERSON"},     # object before subject, [SEP] cut off at 20 pieces
    {"id": "c", "relation": "per:title", "token": ["Mayor", "Smith", "spoke"],
     "subj_start": 1, "subj_end": 1, "subj_type": "PERSON", "obj_start": 0, "obj_end": 0,
     "obj_type": "NEWTYPE"},    # a type the model never saw: untyped fallback
]


def make_model_dir(path, vocab, meta, seed):
    """A fine-tuned-classifier model dir without training (random head)."""
    import keras
    keras.utils.set_random_seed(seed)
    config = load_config("tiny")
    labels = meta["labels"]
    task = ClassificationTask(
        config.model, 1 if labels is None else len(labels), is_regression=labels is None)
    model = task.build_model()
    write_model_dir_metadata(path, config, vocab, do_lower_case=False, task=meta)
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), path, 1,
                               checkpoint_name="ckpt").save(checkpoint_number=7)
    return model


@pytest.mark.slow
def test_exports_match_python_in_a_fresh_process(tmp_path, shared_data, cased_vocab):
    tokenizer = BertWordpieceTokenizer(cased_vocab)
    rte = glue.read_glue_tsv("rte", shared_data / "glue" / "RTE" / "dev.tsv")[:24]
    sst = glue.read_glue_tsv("sst-2", shared_data / "glue" / "SST-2" / "dev.tsv")[:16]
    (tmp_path / "tac.json").write_text(json.dumps(TACRED_RECORDS))
    tac = tacred.read_tacred_json(tmp_path / "tac.json")
    markers = tacred.TacredMarkers.build([tac[:2]], tokenizer.vocab)
    markers.add("[SUBJ]")
    markers.add("[OBJ]")
    cases = {
        "sst-2": (sst, {"kind": "classification", "name": "sst-2", "max_seq_length": 16,
                        "labels": ["0", "1"]}),
        # Sentence pairs (cut longest-first) through the regression output.
        "sts-b": (rte, {"kind": "classification", "name": "sts-b",
                        "max_seq_length": 48, "labels": None}),
        "tacred": (tac, {"kind": "classification", "name": "tacred", "max_seq_length": 20,
                         "labels": ["no_relation", "org:founded_by", "per:title"],
                         "markers": markers.to_json(), "negative_label": "no_relation"}),
    }
    expected = {}
    for i, (name, (examples, meta)) in enumerate(cases.items()):
        model = make_model_dir(tmp_path / name, cased_vocab, meta, seed=i)
        if name == "tacred":
            feats = tacred.encode_tacred(examples, tokenizer, markers, meta["max_seq_length"])
        else:
            texts_b = None if examples[0].text_b is None else [e.text_b for e in examples]
            feats = classification.encode_pairs(
                tokenizer, [e.text_a for e in examples], texts_b, meta["max_seq_length"])
        logits = model({k: feats[k] for k in classification.MODEL_INPUTS})["logits"].numpy()
        expected[name] = (feats, logits, meta)
        assert export_classifier(str(tmp_path / name), str(tmp_path / f"{name}_export"))
        # Servable by TF Serving's model server (TF core + tensorflow-text 2.12.1 ops).
        assert ops_outside_model_server(str(tmp_path / f"{name}_export")) == [], name
    assert expected["tacred"][0]["num_truncated"] == 2
    assert expected["sts-b"][0]["num_truncated"] > 0

    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        from spanbert_tf.tasks.classification import glue
        from spanbert_tf.tasks.classification import tacred
        from spanbert_tf.tasks.classification.export import serve_examples
        root = {str(tmp_path)!r}
        rte = glue.read_glue_tsv("rte", {str(shared_data / 'glue' / 'RTE' / 'dev.tsv')!r})[:24]
        sst = glue.read_glue_tsv("sst-2", {str(shared_data / 'glue' / 'SST-2' / 'dev.tsv')!r})[:16]
        tac = tacred.read_tacred_json(root + "/tac.json")
        out = {{}}
        for name, ex in [("sst-2", sst), ("sts-b", rte), ("tacred", tac)]:
            for k, v in serve_examples(root + "/" + name + "_export", ex, name).items():
                out[name + "/" + k] = v
        np.savez(root + "/served.npz", **out)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = np.load(tmp_path / "served.npz", allow_pickle=True)
    for name, (feats, logits, meta) in expected.items():
        for key in classification.MODEL_INPUTS:
            np.testing.assert_array_equal(served[f"{name}/{key}"], feats[key], err_msg=name)
        if meta["labels"] is None:
            np.testing.assert_allclose(served[f"{name}/score"], logits[:, 0], atol=1e-5)
            continue
        probs = classification.softmax(logits)
        np.testing.assert_allclose(served[f"{name}/probabilities"], probs, atol=1e-5)
        names = [s.decode() for s in served[f"{name}/label"]]
        assert names == [meta["labels"][i] for i in probs.argmax(-1)]
        np.testing.assert_array_equal(served[f"{name}/label_id"], probs.argmax(-1))
    # The unseen type fell back to the untyped markers.
    tokens = tokenizer.convert_ids_to_tokens(served["tacred/token_ids"][2][:5])
    assert tokens == ["[CLS]", markers.mapping["[OBJ]"], markers.mapping["[SUBJ]"],
                      "spoke", "[SEP]"]


def test_export_needs_a_classifier_model_dir(tmp_path, cased_vocab):
    write_model_dir_metadata(tmp_path / "m", load_config("tiny"), cased_vocab)
    tf.train.CheckpointManager(tf.train.Checkpoint(step=tf.Variable(1)), str(tmp_path / "m"), 1,
                               checkpoint_name="ckpt").save()
    with pytest.raises(ValueError, match="no classification 'task'"):
        export_classifier(str(tmp_path / "m"), str(tmp_path / "e"))
