"""The entity SavedModel: raw text in, entities out, served in a fresh process without our
package, equal to the Python path (`predict_text`).

The serving test is benchmark-marked (`make test-benchmark`): it trains a tiny span model (~100 steps), exports
it and starts a second Python process, about 60-80 s on this 2-core machine, more than the
NER tests' share of `make test`.
"""

import dataclasses
import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from spanbert_tf.errors import OutputExistsError
from spanbert_tf.modeling.backbone import build_backbone
from spanbert_tf.modeling.config import load_config
from spanbert_tf.modeling.model_dir import write_model_dir_metadata
from spanbert_tf.tasks.ner import formats
from spanbert_tf.tasks.ner.export import export_ner, load_ner_model, predict_text
from spanbert_tf.tasks.ner.run import NerSettings, run_ner

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def pride(shared_data):
    doc = formats.read_ner_files(
        str(shared_data / "ner" / "litbank" / "tsv" / "1342_pride_and_prejudice_brat.tsv"))[0]
    return dataclasses.replace(doc, sentences=doc.sentences[:30], entities=doc.entities[:30])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, cased_vocab, pride):
    """A span model trained (memorizing) on the first 30 sentences of Pride and Prejudice."""
    root = tmp_path_factory.mktemp("ner-export")
    init = str(root / "init")
    config = load_config("tiny")
    write_model_dir_metadata(init, config, cased_vocab, do_lower_case=False)
    checkpoint = tf.train.Checkpoint(model=tf.train.Checkpoint(backbone=build_backbone(
        config.model)))
    tf.train.CheckpointManager(checkpoint, init, 1, checkpoint_name="ckpt").save(1)
    data = str(root / "pride.tsv")
    formats.write_layered_tsv(data, pride)
    run_ner(NerSettings(output_dir=str(root / "ner"), init_checkpoint=init, config="ner_tiny",
                        train_file=data, num_train_epochs=100, log_every=50,
                        show_progress=False))
    return str(root / "ner")


@pytest.mark.benchmark
def test_served_in_a_fresh_process_equals_the_python_path(model_dir, pride, tmp_path):
    texts = [" ".join(" ".join(s) for s in pride.sentences[:12] if len(s) <= 25),
             "\u201cMy dear Mr. Bennet,\u201d said his lady to him one day, \u201chave you "
             "heard that Netherfield Park is let at last?\u201d"]
    export_dir = export_ner(model_dir, str(tmp_path / "export"))
    job = {"texts": texts, "bad": {"empty": " \n", "long": "word " * 70}}
    (tmp_path / "job.json").write_text(json.dumps(job))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, os.path.join(HERE, "fresh_process_serve.py"), export_dir,
                    str(tmp_path / "job.json"), str(tmp_path / "out.json")],
                   check=True, env=env, cwd=str(tmp_path), timeout=300)
    served = json.loads((tmp_path / "out.json").read_text())
    assert "spanbert_tf" not in served["modules"]
    model, tokenizer, config, types = load_ner_model(model_dir)
    found = 0
    for text, got in zip(texts, served["results"]):
        expected = predict_text(model, tokenizer, config, types, text)
        assert [g[:3] + g[4:] for g in got] == [list(e[:3]) + [e[4]] for e in expected]
        assert [g[3] for g in got] == pytest.approx([e[3] for e in expected], abs=1e-5)
        for start, end, _, _, span in got:
            assert text[start:end] == span
        found += len(got)
    assert found >= 5                        # the memorized entities come back
    assert "text: no words" in served["errors"]["empty"]
    assert "a sentence has more than 62 wordpieces" in served["errors"]["long"]


@pytest.mark.benchmark
def test_an_existing_export_dir_is_refused(model_dir):
    with pytest.raises(OutputExistsError, match="exists; choose another"):
        export_ner(model_dir, model_dir)


def test_sentences_end_at_stops_but_not_after_titles(cased_vocab):
    from spanbert_tf.tasks.ner.export import text_words
    from spanbert_tf.tokenization import BertWordpieceTokenizer

    tokenizer = BertWordpieceTokenizer(cased_vocab).tf_tokenizer()
    text = "\u201cMy dear Mr. Bennet,\u201d said she. \u201cIs it let?\u201d He went"
    _, words, sentence = text_words(tokenizer, tf.constant(text))
    words = [w.decode() for w in words.numpy()]
    assert words[:6] == ["\u201c", "My", "dear", "Mr", ".", "Bennet"]
    by_sentence = [" ".join(w for w, s in zip(words, sentence.numpy()) if s == k)
                   for k in range(3)]
    assert by_sentence == ["\u201c My dear Mr . Bennet , \u201d said she .",
                           "\u201c Is it let ?", "\u201d He went"]
