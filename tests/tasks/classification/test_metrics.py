"""Our metrics equal scikit-learn / scipy on the same predictions."""

import numpy as np
import pytest
import scipy.stats
from sklearn import metrics as skm

from spanbert_tf.tasks.classification import metrics as cm


@pytest.fixture
def binary():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    preds = np.where(rng.random(500) < 0.7, labels, 1 - labels)
    return preds, labels


def test_accuracy_and_f1(binary):
    preds, labels = binary
    assert cm.accuracy(preds, labels) == pytest.approx(skm.accuracy_score(labels, preds))
    assert cm.binary_f1(preds, labels) == pytest.approx(skm.f1_score(labels, preds))
    assert cm.binary_f1(np.zeros(4, int), np.array([0, 1, 0, 1])) == 0.0


@pytest.mark.parametrize("num_classes", [2, 3])
def test_matthews(binary, num_classes):
    rng = np.random.default_rng(num_classes)
    labels = rng.integers(0, num_classes, 300)
    preds = np.where(rng.random(300) < 0.6, labels, rng.integers(0, num_classes, 300))
    assert cm.matthews_corrcoef(preds, labels) == pytest.approx(
        skm.matthews_corrcoef(labels, preds), abs=1e-12)
    # Constant predictions: undefined -> 0, as scikit-learn.
    assert cm.matthews_corrcoef(np.ones(10, int), labels[:10]) == pytest.approx(
        skm.matthews_corrcoef(labels[:10], np.ones(10, int)))


def test_pearson_spearman_with_ties():
    rng = np.random.default_rng(1)
    labels = np.round(rng.uniform(0, 5, 400) * 5) / 5      # STS-B style, many ties
    preds = labels + rng.normal(0, 1.0, 400)
    preds[:50] = np.round(preds[:50])                          # ties in the predictions too
    assert cm.pearson(preds, labels) == pytest.approx(scipy.stats.pearsonr(preds, labels)[0])
    assert cm.spearman(preds, labels) == pytest.approx(
        scipy.stats.spearmanr(preds, labels)[0])
    np.testing.assert_allclose(cm.average_ranks(preds), scipy.stats.rankdata(preds))


def test_tacred_micro_prf():
    rng = np.random.default_rng(2)
    labels = np.where(rng.random(600) < 0.6, 0, rng.integers(1, 8, 600))
    preds = np.where(rng.random(600) < 0.5, labels, rng.integers(0, 8, 600))
    got = cm.micro_prf(preds, labels, negative=0)
    relations = list(range(1, 8))
    assert got["precision"] == pytest.approx(
        skm.precision_score(labels, preds, labels=relations, average="micro"))
    assert got["recall"] == pytest.approx(
        skm.recall_score(labels, preds, labels=relations, average="micro"))
    assert got["f1"] == pytest.approx(
        skm.f1_score(labels, preds, labels=relations, average="micro"))
    assert cm.micro_prf([0, 0], [1, 2]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_compute_metrics_names(binary):
    preds, labels = binary
    out = cm.compute_metrics(("accuracy", "f1", "acc_and_f1"), preds, labels)
    assert list(out) == ["accuracy", "f1", "acc_and_f1"]
    assert out["acc_and_f1"] == pytest.approx((out["accuracy"] + out["f1"]) / 2)
    tac = cm.compute_metrics(("precision", "recall", "f1", "accuracy"), preds, labels)
    assert tac["f1"] == pytest.approx(cm.micro_prf(preds, labels)["f1"])
    corr = cm.compute_metrics(("pearson", "spearmanr", "corr"), preds * 1.0, labels * 1.0)
    assert corr["corr"] == pytest.approx((corr["pearson"] + corr["spearmanr"]) / 2)
    with pytest.raises(ValueError, match="unknown metric"):
        cm.compute_metrics(("bleu",), preds, labels)
    with pytest.raises(ValueError, match="same length"):
        cm.accuracy([1, 0], [1])
