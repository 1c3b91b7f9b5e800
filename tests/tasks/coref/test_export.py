"""The coreference SavedModel (`tasks/coref/export.py`) against the Python prediction path: a
tiny model dir exported and served in a fresh process (TensorFlow + tensorflow-text only) on
real LitBank text, and bad requests."""

import json
import os
import shutil
import subprocess
import sys

import keras
import pytest
import tensorflow as tf

from spanbert_tf.io_utils import write_json_atomic
from spanbert_tf.modeling import model_dir as model_dir_lib
from spanbert_tf.modeling.backbone import build_backbone
from spanbert_tf.modeling.config import load_config
from spanbert_tf.tasks.coref import conll, segments
from spanbert_tf.tasks.coref import demo_clusters
from spanbert_tf.tasks.coref.export import export_coref, load_coref_model, model_info
from spanbert_tf.tasks.coref.clusters import predicted_clusters
from spanbert_tf.tasks.coref.config import load_coref_config
from spanbert_tf.tasks.coref.model import MODEL_INPUT_NAMES, build_coref_model
from spanbert_tf.tasks.coref.run import CONFIG_FILE, word_clusters
from spanbert_tf.tokenization import basic_tokenize
from spanbert_tf.training import finetune

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
LITBANK_DOC = "158_emma_brat"     # committed in tests/data_files too
NUM_SENTENCES = 8
README_TEXT = "Emma met George in the garden. She told him that he was right."


def python_path(model, tokenizer, sentences, max_segment_len, speakers=None, genre="",
                singletons=False):
    """The Python prediction path on raw sentences: basic-tokenizer words -> `minimize` ->
    the model -> `predicted_clusters` -> `word_clusters`, as (sentence, start char, end
    char, cluster id) rows."""
    words = [basic_tokenize(s, tokenizer.do_lower_case) for s in sentences]
    spans = []                              # (sentence, begin, end) of each word
    for i, (sentence, row) in enumerate(zip(sentences, words)):
        position = 0
        for word in row:
            begin = sentence.index(word, position)
            position = begin + len(word)
            spans.append((i, begin, position))
    speakers = speakers or [""] * len(sentences)
    n = len(spans)
    doc = conll.ConllDocument(
        path="request", line_number=1, doc_id=f"{genre}/request", part=None, sentences=words,
        speakers=[[speaker or None] * len(row) for speaker, row in zip(speakers, words)],
        clusters=[], rows=[""] * n, coref_column_offsets=[0] * n, header="", footer="")
    minimized = segments.minimize(doc, tokenizer, max_segment_len)
    features = segments.document_to_features(minimized, max_segment_len)
    outputs = model({k: features[k] for k in MODEL_INPUT_NAMES}, training=False)
    clusters, _ = word_clusters(predicted_clusters({k: v.numpy() for k, v in outputs.items()},
                                                   singletons),
                                minimized.subtoken_map, singletons)
    # (A mention whose last word is in a later sentence ends with its first sentence.)
    rows = [(spans[s][0], spans[s][1],
             spans[e][2] if spans[e][0] == spans[s][0] else len(sentences[spans[s][0]]), i)
            for i, cluster in enumerate(clusters) for s, e in cluster]
    return rows, len(features["input_ids"])


@pytest.fixture(scope="module")
def coref_model_dir(tmp_path_factory, cased_vocab):
    """A run_coref.py-style model dir: tiny backbone + coref head (seeded init) + checkpoint."""
    path = str(tmp_path_factory.mktemp("coref_model"))
    keras.utils.set_random_seed(3)
    config = load_config("tiny")
    coref_config = load_coref_config("coref_tiny")
    model = build_coref_model(coref_config, build_backbone(config.model))
    model_dir_lib.write_model_dir_metadata(
        path, config, cased_vocab, do_lower_case=False,
        task=model_dir_lib.task_entry("coref", "coref", config=coref_config.name))
    write_json_atomic(os.path.join(path, CONFIG_FILE), coref_config.to_dict())
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), path, 1,
                               checkpoint_name=model_dir_lib.CHECKPOINT_NAME).save(1)
    return path


def test_export_served_in_fresh_process_equals_python_path(tmp_path, coref_model_dir,
                                                           shared_data, capsys):
    document = conll.read_conll(
        str(shared_data / "coref" / "litbank" / "conll" / f"{LITBANK_DOC}.conll"))[0]
    sentences = [" ".join(words) for words in document.sentences[:NUM_SENTENCES]]
    speakers = ["Narrator" if i % 3 else "" for i in range(len(sentences))]
    # Through the export program (as a user runs it), then the library's overwrite guard.
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "export_saved_model.py"),
         f"--model_dir={coref_model_dir}", f"--export_dir={tmp_path / 'export'}",
         "--models=coref"], capture_output=True, text=True, cwd=str(tmp_path), timeout=600,
        env={**os.environ, "PYTHONPATH": REPO})
    export_dir = str(tmp_path / "export" / "coref" / "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"coref: {export_dir}" in proc.stdout.strip().splitlines()
    # TF Serving's --model_config_file lists the coref model (and only what was exported).
    models_config = (tmp_path / "export" / "models.config").read_text()
    assert models_config == ('model_config_list {\n  config { name: "coref" base_path: '
                             '"/models/coref" model_platform: "tensorflow" }\n}\n')
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_coref(coref_model_dir, export_dir)
    # The export says what model it holds; the demo prints it (and why a model finds nothing).
    info = json.loads(open(os.path.join(export_dir, demo_clusters.MODEL_INFO_FILE)).read())
    assert info == {"model_dir": os.path.abspath(coref_model_dir), "checkpoint": "ckpt-1",
                    "step": 1, "dev_metric": None, "dev_value": None, "evaluations": 0}
    demo_clusters.main(["--saved_model", export_dir, "--text", README_TEXT])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == (f"model: {os.path.abspath(coref_model_dir)} ckpt-1 (step 1), no dev "
                          "score recorded")
    assert printed[-1].startswith("cluster ") or printed[-1].startswith(
        "no clusters (the model dir records no dev score")
    kept = shutil.copytree(coref_model_dir, tmp_path / "kept")
    finetune.write_kept_record(str(kept), "ckpt-1", 1, "conll_f1", 12.5, {}, 3)
    assert model_info(str(kept)) == dict(info, model_dir=str(kept), dev_metric="conll_f1",
                                         dev_value=12.5, evaluations=3)

    model, tokenizer, config = load_coref_model(coref_model_dir)
    max_len = config.coref.max_segment_len
    want, num_segments = python_path(model, tokenizer, sentences, max_len)
    want_meta, _ = python_path(model, tokenizer, sentences, max_len, speakers, "nw")
    assert num_segments >= 2 and len(want) >= 10    # several 128-wordpiece segments

    job = {"requests": [
        {"signature": "serving_default", "inputs": {"sentences": sentences}},
        {"signature": "with_metadata",
         "inputs": {"sentences": sentences, "speakers": speakers, "genre": "nw"}}]}
    job_file, out_file = tmp_path / "job.json", tmp_path / "out.json"
    job_file.write_text(json.dumps(job))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, os.path.join(HERE, "fresh_process_serve.py"), export_dir,
                    str(job_file), str(out_file)], check=True, env=env, cwd=str(tmp_path))
    served = json.loads(out_file.read_text())
    assert "spanbert_tf" not in served["modules"]
    # Besides core TensorFlow, only tensorflow-text ops it has had since 2.12 (cased vocab:
    # no NormalizeUTF8).
    assert set(served["non_core_ops"]) == {"RegexSplitWithOffsets", "WordpieceTokenizeWithOffsets"}
    for result, expected in zip(served["results"], (want, want_meta)):
        rows = list(zip(*(result[k] for k in
                          ("sentence_index", "start_char", "end_char", "cluster_id"))))
        assert rows == expected
        assert result["text"] == [sentences[s][b:e] for s, b, e, _ in rows]
    errors = served["errors"]
    assert "at least one sentence" in errors["no_sentences"]
    assert "no words" in errors["no_words"]
    assert "one entry per sentence" in errors["speakers_mismatch"]
    assert errors["int_sentences"] is not None and errors["rank_2"] is not None
