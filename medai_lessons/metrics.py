"""Clinical metrics for binary classifiers (1 = disease present).

Sensitivity (recall of the diseased), specificity (recall of the healthy), PPV and NPV
depend on a decision threshold; ROC AUC does not. scikit-learn does the counting.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, roc_auc_score


def binary_report(y_true, scores, threshold: float = 0.5) -> dict[str, float]:
    """Sensitivity, specificity, PPV, NPV, accuracy at ``threshold``, and ROC AUC."""
    y_true = np.asarray(y_true).astype(int).reshape(-1)
    scores = np.asarray(scores, dtype=float).reshape(-1)
    if y_true.shape != scores.shape:
        raise ValueError(f"y_true has {y_true.size} values but scores has {scores.size}.")
    y_pred = (scores >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()

    def ratio(a, b):
        return float(a / b) if b else float("nan")

    auc = roc_auc_score(y_true, scores) if len(np.unique(y_true)) == 2 else float("nan")
    return {
        "sensitivity": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
        "ppv": ratio(tp, tp + fp),
        "npv": ratio(tn, tn + fn),
        "accuracy": ratio(tp + tn, tp + tn + fp + fn),
        "roc_auc": float(auc),
        "tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn),
    }


def format_report(report: dict[str, float], name: str = "") -> str:
    """One readable line of :func:`binary_report`'s result."""
    head = f"{name}: " if name else ""
    return (head + f"sensitivity {report['sensitivity']:.3f} | specificity "
            f"{report['specificity']:.3f} | PPV {report['ppv']:.3f} | NPV {report['npv']:.3f} | "
            f"accuracy {report['accuracy']:.3f} | ROC AUC {report['roc_auc']:.3f} "
            f"(missed: {report['fn']}, false alarms: {report['fp']})")
