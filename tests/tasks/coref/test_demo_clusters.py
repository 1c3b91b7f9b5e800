"""The raw-paragraph demo's sentence splitting and cluster printing (the SavedModel itself is
checked in test_export.py)."""

import numpy as np
import pytest

from spanbert_tf.tasks.coref import demo_clusters


def test_split_sentences():
    text = "  Emma met George.  She told him!\nWas he right? yes  "
    assert demo_clusters.split_sentences(text) == [
        "Emma met George.", "She told him!", "Was he right?", "yes"]
    assert demo_clusters.split_sentences(" \n ") == []


def test_cluster_lines_groups_mentions_by_cluster():
    outputs = {"sentence_index": np.array([0, 1, 0, 1], np.int32),
               "start_char": np.array([0, 0, 9, 9], np.int32),
               "end_char": np.array([4, 3, 15, 12], np.int32),
               "cluster_id": np.array([0, 0, 1, 1], np.int32),
               "text": np.array([b"Emma", b"She", b"George", b"him"], object)}
    assert demo_clusters.cluster_lines(outputs) == [
        "cluster 0: Emma [0:0-4] | She [1:0-3]", "cluster 1: George [0:9-15] | him [1:9-12]"]


def test_missing_saved_model_is_one_error_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo_clusters.main(["--saved_model", str(tmp_path), "--text", "Emma came."])
    assert exit_info.value.code == 2
    assert "no SavedModel at" in capsys.readouterr().err


def test_model_line_and_why_no_clusters():
    scored = {"model_dir": "/runs/coref", "checkpoint": "ckpt-20", "step": 20,
              "dev_metric": "conll_f1", "dev_value": 3.25, "evaluations": 5}
    assert demo_clusters.model_line(scored) == (
        "model: /runs/coref ckpt-20 (step 20), dev conll_f1 3.25 (best of 5 evaluations)")
    assert demo_clusters.no_clusters_line(scored) == (
        "no clusters (from the model at step 20, dev conll_f1 3.25: a model with a low dev "
        "score links few or no mentions)")
    unscored = dict(scored, dev_metric=None, dev_value=None, evaluations=0)
    assert demo_clusters.model_line(unscored).endswith("(step 20), no dev score recorded")
    assert "records no dev score" in demo_clusters.no_clusters_line(unscored)
    # An export written before model_info.json existed.
    assert demo_clusters.model_line(None).startswith("model: unknown")
    assert demo_clusters.no_clusters_line(None) == "no clusters"
