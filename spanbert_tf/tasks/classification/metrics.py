"""Classification metrics as the benchmarks define them (numpy only).

accuracy; binary F1 of the positive class (MRPC, QQP); Matthews correlation
(CoLA; the multiclass form, = scikit-learn's `matthews_corrcoef`); Pearson
and Spearman correlation (STS-B; Spearman with average ranks for ties, =
`scipy.stats.spearmanr`); TACRED micro precision / recall / F1 over the
relations other than the negative label (= SpanBERT's `run_tacred.py`).

Example:
```python
compute_metrics(("accuracy", "f1"), preds=[1, 0, 1], labels=[1, 1, 1])
# {'accuracy': 0.666..., 'f1': 0.8}
```
"""

import numpy as np

from spanbert_tf.errors import InputError


def _as_arrays(preds, labels):
    preds = np.asarray(preds)
    labels = np.asarray(labels)
    if preds.shape != labels.shape or preds.ndim != 1:
        raise ValueError(f"predictions {preds.shape} and labels {labels.shape} must be "
                         "1-D and of the same length")
    if preds.size == 0:
        raise InputError("cannot compute metrics on zero examples")
    return preds, labels


def accuracy(preds, labels):
    preds, labels = _as_arrays(preds, labels)
    return float(np.mean(preds == labels))


def binary_f1(preds, labels, positive=1):
    """F1 of the positive class; 0.0 when there are no true positives."""
    preds, labels = _as_arrays(preds, labels)
    tp = float(np.sum((preds == positive) & (labels == positive)))
    fp = float(np.sum((preds == positive) & (labels != positive)))
    fn = float(np.sum((preds != positive) & (labels == positive)))
    if tp == 0.0:
        return 0.0
    return 2.0 * tp / (2.0 * tp + fp + fn)


def matthews_corrcoef(preds, labels):
    """Matthews correlation (multiclass form, Gorodkin 2004); 0.0 when undefined."""
    preds, labels = _as_arrays(preds, labels)
    classes, inverse = np.unique(np.concatenate([labels, preds]), return_inverse=True)
    n = labels.size
    y_true, y_pred = inverse[:n], inverse[n:]
    k = classes.size
    confusion = np.zeros((k, k), dtype=np.float64)
    np.add.at(confusion, (y_true, y_pred), 1.0)
    t_sum = confusion.sum(axis=1)
    p_sum = confusion.sum(axis=0)
    correct = np.trace(confusion)
    s = confusion.sum()
    cov_ytyp = correct * s - np.dot(t_sum, p_sum)
    cov_ypyp = s * s - np.dot(p_sum, p_sum)
    cov_ytyt = s * s - np.dot(t_sum, t_sum)
    if cov_ypyp * cov_ytyt == 0.0:
        return 0.0
    return float(cov_ytyp / np.sqrt(cov_ytyt * cov_ypyp))


def pearson(preds, labels):
    """Pearson correlation; NaN when either side is constant (as scipy)."""
    preds, labels = _as_arrays(preds, labels)
    x = preds.astype(np.float64) - np.mean(preds, dtype=np.float64)
    y = labels.astype(np.float64) - np.mean(labels, dtype=np.float64)
    denom = np.sqrt(np.dot(x, x) * np.dot(y, y))
    if denom == 0.0:
        return float("nan")
    return float(np.clip(np.dot(x, y) / denom, -1.0, 1.0))


def average_ranks(values):
    """Ranks 1..n, ties sharing their average rank (scipy's rankdata 'average')."""
    values = np.asarray(values)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # Start index of each run of equal values.
    new_run = np.concatenate([[True], sorted_values[1:] != sorted_values[:-1]])
    run_id = np.cumsum(new_run) - 1
    run_start = np.flatnonzero(new_run)
    run_end = np.concatenate([run_start[1:], [values.size]])   # exclusive
    run_rank = (run_start + run_end + 1) / 2.0                 # mean of start+1 .. end
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = run_rank[run_id]
    return ranks


def spearman(preds, labels):
    """Spearman rank correlation: Pearson of the average ranks."""
    preds, labels = _as_arrays(preds, labels)
    return pearson(average_ranks(preds), average_ranks(labels))


def micro_prf(preds, labels, negative=0):
    """TACRED scoring: micro precision/recall/F1 over non-negative relations.

    A prediction counts when it is not `negative`; a gold relation counts when
    it is not `negative`; correct = both non-negative and equal.
    """
    preds, labels = _as_arrays(preds, labels)
    n_pred = float(np.sum(preds != negative))
    n_gold = float(np.sum(labels != negative))
    n_correct = float(np.sum((preds != negative) & (preds == labels)))
    if n_correct == 0.0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    precision = n_correct / n_pred
    recall = n_correct / n_gold
    return {"precision": precision, "recall": recall,
            "f1": 2.0 * precision * recall / (precision + recall)}


def compute_metrics(metric_names, preds, labels, negative=0):
    """Computes the named metrics.

    Args:
        metric_names: any of "accuracy", "f1", "matthews_corrcoef", "pearson",
            "spearmanr", "precision", "recall", and the selection metrics
            "acc_and_f1" (mean of accuracy and F1) and "corr" (mean of Pearson
            and Spearman). With "precision"/"recall" present, "f1" is the TACRED
            micro F1 (relations other than `negative`), else the binary F1.
        preds, labels: class ids (ints) or, for the correlations, floats.
        negative: the negative class id for the TACRED scores.
    Returns:
        dict name -> float, exactly the requested names in the requested order.
    """
    names = set(metric_names)
    out = {}
    tacred = bool(names & {"precision", "recall"})
    if tacred:
        out.update(micro_prf(preds, labels, negative=negative))
    if "accuracy" in names or "acc_and_f1" in names:
        out["accuracy"] = accuracy(preds, labels)
    if not tacred and ("f1" in names or "acc_and_f1" in names):
        out["f1"] = binary_f1(preds, labels)
    if "acc_and_f1" in names:
        out["acc_and_f1"] = (out["accuracy"] + out["f1"]) / 2.0
    if "matthews_corrcoef" in names:
        out["matthews_corrcoef"] = matthews_corrcoef(preds, labels)
    if "pearson" in names or "corr" in names:
        out["pearson"] = pearson(preds, labels)
    if "spearmanr" in names or "corr" in names:
        out["spearmanr"] = spearman(preds, labels)
    if "corr" in names:
        out["corr"] = (out["pearson"] + out["spearmanr"]) / 2.0
    unknown = names - set(out)
    if unknown:
        raise ValueError(f"unknown metric name(s): {sorted(unknown)}")
    return {name: out[name] for name in metric_names}
