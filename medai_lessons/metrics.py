"""Clinical metrics for binary classifiers (1 = disease present, 0 = healthy).

Chapter 1 introduces them; every later chapter reports its models with them.

- **Counts** (:func:`confusion_counts`): ``(tp, fp, tn, fn)`` of predictions against truth.
- **Threshold metrics** (:func:`metrics_from_counts`, :func:`diagnostic_metrics` and the
  one-metric helpers :func:`sensitivity`, :func:`specificity`, :func:`ppv`, :func:`npv`,
  :func:`f1`): sensitivity (recall of the diseased), specificity (recall of the healthy), PPV
  and NPV (how often a positive / negative result is right), accuracy and F1. **A metric
  whose denominator is 0 is** ``nan`` (e.g. sensitivity when no patient has the disease): the
  data cannot tell, and 0 or 1 would be a claim. :func:`metrics_from_counts` is the one place
  where each formula is written.
- **Prevalence** (:func:`ppv_from_prevalence`, :func:`npv_from_prevalence`): Bayes' rule
  turns a test's sensitivity and specificity into PPV and NPV in a population.
- **Ranking** (:func:`roc_curve`, :func:`roc_auc`, :func:`bootstrap_auc_ci`): the ROC curve
  and its area do not depend on a threshold. scikit-learn does the counting.
- **Calibration** (:func:`calibration`): do predicted probabilities match observed rates?
- **Reports** (:func:`binary_report`, :func:`format_report`): everything above at one
  threshold, as a dict and as one readable line. Throughout the course a score **at or
  above** the threshold counts as positive (``scores >= threshold``, as scikit-learn's
  ``roc_curve`` counts); MedMNIST's evaluator counts a probability **above** 0.5 as positive
  (``> 0.5``), so accuracies compared with MedMNIST's published ones differ only for scores
  of exactly 0.5 (chapter 3 says so where it compares them).
- **Choosing a threshold** (:func:`youden_threshold`): the one with the largest
  sensitivity + specificity, on a validation split. It weighs the two error *rates* alike,
  not the two kinds of error; a clinical target (a sensitivity the service must reach) is
  chosen with :func:`medai_lessons.tabular.choose_threshold`.

Plots of a confusion matrix, ROC curves and calibration live in :mod:`medai_lessons.plotting`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix, roc_auc_score
from sklearn.metrics import roc_curve as _sk_roc_curve

METRIC_NAMES: tuple[str, ...] = ("sensitivity", "specificity", "ppv", "npv", "accuracy", "f1")


def _labels(values, name: str) -> np.ndarray:
    """A flat int array of 0/1 labels (booleans allowed); anything else is a ValueError."""
    arr = np.asarray(values).reshape(-1)
    if arr.dtype == bool:
        return arr.astype(np.int64)
    if arr.size and not np.all(np.isin(arr, (0, 1))):
        bad = np.unique(arr[~np.isin(arr, (0, 1))])[:5]
        raise ValueError(f"{name} must hold only 0 and 1 (1 = disease); found {bad}")
    return arr.astype(np.int64)


def _pair(y_true, y_other, other_name: str) -> tuple[np.ndarray, np.ndarray]:
    y_true = _labels(y_true, "y_true")
    given = np.asarray(y_other)
    other = given.reshape(-1)
    if other.shape != y_true.shape:
        if given.ndim == 2 and len(given) == y_true.size and given.shape[1] > 1:
            # one column per class, e.g. a softmax output or one-hot predictions
            what = ("one 0/1 prediction per patient, e.g. p[:, 1] >= 0.5" if other_name == "y_pred"
                    else "the probability of disease, p[:, 1]")
            raise ValueError(f"{other_name} has shape {given.shape}, one column per class: "
                             f"pass {what}.")
        raise ValueError(f"y_true has {y_true.size} values but {other_name} has {other.size}.")
    return y_true, other


def _scores(y_true, scores, name: str = "scores") -> tuple[np.ndarray, np.ndarray]:
    """0/1 labels and one finite float score per patient; anything else is a ValueError."""
    y_true, scores = _pair(y_true, scores, name)
    try:
        scores = scores.astype(float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers, one per patient (e.g. predicted "
                         f"probabilities); got {scores[:3].tolist()}...") from None
    bad = ~np.isfinite(scores)
    if bad.any():
        raise ValueError(f"{name} must be finite numbers; {bad.sum()} of {scores.size} are nan or "
                         "inf. Did training diverge (try a lower learning rate), or do the "
                         "model's inputs hold nan?")
    return y_true, scores


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, or nan when the denominator is 0 (the metric is undefined)."""
    return float(numerator / denominator) if denominator else float("nan")


# --- counts and threshold metrics ------------------------------------------------------------


def confusion_counts(y_true, y_pred) -> tuple[int, int, int, int]:
    """``(tp, fp, tn, fn)``: true positives (diseased, predicted diseased), false positives
    (healthy, predicted diseased), true negatives and false negatives (diseased, predicted
    healthy). Labels are 0/1 (or booleans), 1 = disease."""
    y_true, y_pred = _pair(y_true, y_pred, "y_pred")
    y_pred = _labels(y_pred, "y_pred")
    if y_true.size == 0:
        return 0, 0, 0, 0
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    return int(tp), int(fp), int(tn), int(fn)


def metrics_from_counts(tp: int, fp: int, tn: int, fn: int) -> dict[str, float]:
    """Sensitivity, specificity, PPV, NPV, accuracy and F1 from the four counts.

    - sensitivity = tp / (tp + fn)   (of the diseased, the share the test finds)
    - specificity = tn / (tn + fp)   (of the healthy, the share the test clears)
    - ppv = tp / (tp + fp)           (of the positive results, the share that are right)
    - npv = tn / (tn + fn)           (of the negative results, the share that are right)
    - accuracy = (tp + tn) / n
    - f1 = 2 tp / (2 tp + fp + fn)   (the harmonic mean of PPV and sensitivity; 0 when tp = 0)

    A metric whose denominator is 0 is ``nan``.
    """
    return {
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "ppv": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
        "accuracy": _ratio(tp + tn, tp + fp + tn + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def diagnostic_metrics(y_true, y_pred) -> dict[str, float]:
    """The six metrics of :func:`metrics_from_counts` for 0/1 predictions (the exercise of
    chapter 1 has this name and signature)."""
    return metrics_from_counts(*confusion_counts(y_true, y_pred))


def sensitivity(y_true, y_pred) -> float:
    """tp / (tp + fn); nan when no patient has the disease."""
    return diagnostic_metrics(y_true, y_pred)["sensitivity"]


def specificity(y_true, y_pred) -> float:
    """tn / (tn + fp); nan when every patient has the disease."""
    return diagnostic_metrics(y_true, y_pred)["specificity"]


def ppv(y_true, y_pred) -> float:
    """Positive predictive value tp / (tp + fp); nan when no prediction is positive."""
    return diagnostic_metrics(y_true, y_pred)["ppv"]


def npv(y_true, y_pred) -> float:
    """Negative predictive value tn / (tn + fn); nan when no prediction is negative."""
    return diagnostic_metrics(y_true, y_pred)["npv"]


def f1(y_true, y_pred) -> float:
    """F1 = 2 tp / (2 tp + fp + fn); nan only when there is no positive at all."""
    return diagnostic_metrics(y_true, y_pred)["f1"]


# --- prevalence ------------------------------------------------------------------------------


def _probabilities(**values):
    arrays = {}
    for name, value in values.items():
        try:
            if np.asarray(value).dtype == object:      # None, or a list holding None
                raise TypeError
            arrays[name] = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a number or an array of numbers in [0, 1]; "
                            f"got {value!r}") from None
    for name, arr in arrays.items():
        if np.any((arr < 0) | (arr > 1)):
            raise ValueError(f"{name} must lie in [0, 1] (a fraction, not a percentage)")
    return arrays.values()


def _bayes(numerator: np.ndarray, other: np.ndarray, scalar: bool):
    """numerator / (numerator + other), nan where both are 0; a float for scalar inputs."""
    total = numerator + other
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, numerator / np.where(total > 0, total, 1.0), np.nan)
    return float(out) if scalar else out


def ppv_from_prevalence(sensitivity, specificity, prevalence):
    """PPV in a population with the given prevalence (Bayes' rule), element-wise:

        PPV = sens * p / (sens * p + (1 - spec) * (1 - p))

    Numbers or NumPy arrays (broadcast), all fractions in [0, 1]; a float for scalar inputs.
    nan where nobody would test positive (0/0). The exercise of chapter 1 has this name.
    """
    sens, spec, p = _probabilities(sensitivity=sensitivity, specificity=specificity,
                                   prevalence=prevalence)
    scalar = sens.ndim == spec.ndim == p.ndim == 0
    return _bayes(sens * p, (1 - spec) * (1 - p), scalar)


def npv_from_prevalence(sensitivity, specificity, prevalence):
    """NPV in a population with the given prevalence (Bayes' rule), element-wise:

        NPV = spec * (1 - p) / (spec * (1 - p) + (1 - sens) * p)
    """
    sens, spec, p = _probabilities(sensitivity=sensitivity, specificity=specificity,
                                   prevalence=prevalence)
    scalar = sens.ndim == spec.ndim == p.ndim == 0
    return _bayes(spec * (1 - p), (1 - sens) * p, scalar)


# --- ranking: ROC and AUC --------------------------------------------------------------------


def roc_curve(y_true, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` of the ROC curve (scikit-learn's ``roc_curve``):
    fpr = 1 - specificity and tpr = sensitivity at every distinct threshold."""
    y_true, scores = _scores(y_true, scores)
    return _sk_roc_curve(y_true, scores)


def roc_auc(y_true, scores) -> float:
    """Area under the ROC curve (scikit-learn's ``roc_auc_score``): the probability that a
    randomly chosen diseased patient scores higher than a randomly chosen healthy one (ties
    count one half). nan when ``y_true`` holds only one class."""
    y_true, scores = _scores(y_true, scores)
    if len(np.unique(y_true)) < 2:
        return float("nan")
    return float(roc_auc_score(y_true, scores))


#: 0.01, 0.02, ..., 0.99: a grid of thresholds for plots of metrics against the threshold
THRESHOLD_GRID = np.linspace(0.01, 0.99, 99)


def youden_threshold(y_true, scores, grid=None) -> float:
    """The threshold with the largest Youden index J = sensitivity + specificity - 1 of
    ``scores >= threshold``; of tied thresholds, the lowest. J weighs the two error *rates*
    alike, not the two kinds of error: with n_pos diseased and n_neg healthy cases, one false
    alarm costs J as much as n_pos / n_neg missed cases (on chapter 3's validation split,
    389 / 135: about 2.9 missed pneumonias). Where a missed case costs more than a false
    alarm, choose the threshold for a target sensitivity instead
    (:func:`medai_lessons.tabular.choose_threshold`). Choose it on a validation split, never on
    the test split. ``y_true`` needs both classes (J is undefined otherwise).

    By default the thresholds tried are the ROC curve's own (every distinct score, as
    scikit-learn's ``roc_curve`` gives them), so the best one is found wherever the scores
    lie: probabilities crowded above 0.99 or below 0.01, percentages or logits. ``grid=`` tries
    only the thresholds given (e.g. :data:`THRESHOLD_GRID`)."""
    y_true, scores = _scores(y_true, scores)
    if len(np.unique(y_true)) < 2:
        raise ValueError("youden_threshold needs diseased (1) and healthy (0) cases in y_true")
    if grid is None:
        fpr, tpr, thresholds = _sk_roc_curve(y_true, scores, drop_intermediate=False)
        finite = np.isfinite(thresholds)  # the first, above every score, calls no one ill
        j, thresholds = (tpr - fpr)[finite], thresholds[finite]
        return float(thresholds[j >= j.max() - 1e-12].min())  # ties, whatever the rounding
    if grid is THRESHOLD_GRID and (scores.min() < 0 or scores.max() > 1):
        raise ValueError(f"scores run from {scores.min():g} to {scores.max():g}, but the "
                         "thresholds of THRESHOLD_GRID are probabilities (0.01 to 0.99): pass "
                         "probabilities in [0, 1] (not percentages or logits), or no grid to "
                         "try every score")
    grid = np.asarray(grid, dtype=float)
    if grid.ndim != 1 or grid.size == 0:
        raise ValueError("grid must be a non-empty 1-D sequence of thresholds")
    positive, negative = y_true == 1, y_true == 0
    called = scores[None, :] >= grid[:, None]
    j = called[:, positive].mean(axis=1) + (~called[:, negative]).mean(axis=1) - 1
    return float(grid[j >= j.max() - 1e-12].min())


class AUCInterval(NamedTuple):
    """ROC AUC with a bootstrap confidence interval: ``auc, low, high = bootstrap_auc_ci(...)``."""

    auc: float
    low: float
    high: float
    level: float
    n_boot: int


def bootstrap_auc_ci(y_true, scores, n_boot: int = 1000, level: float = 0.95,
                     seed: int = 0) -> AUCInterval:
    """ROC AUC and its percentile bootstrap confidence interval.

    Each of ``n_boot`` resamples draws, with replacement, as many diseased patients as there
    are diseased and as many healthy as there are healthy (**stratified** resampling): every
    resample holds both classes, so its AUC is always defined and no resample is skipped.
    The interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles of the
    resampled AUCs (the percentile method). The same ``seed`` gives the same interval.

    Raises ``ValueError`` when ``y_true`` lacks one of the classes.
    """
    y_true, scores = _scores(y_true, scores)
    try:
        whole = not isinstance(n_boot, bool) and float(n_boot).is_integer() and n_boot >= 1
    except (TypeError, ValueError):
        whole = False
    if not whole:
        raise ValueError(f"n_boot is the number of resamples, a whole number >= 1 (e.g. 1000); "
                         f"got {n_boot!r}")
    n_boot = int(n_boot)
    pos, neg = np.flatnonzero(y_true == 1), np.flatnonzero(y_true == 0)
    if pos.size == 0 or neg.size == 0:
        raise ValueError("the AUC needs both diseased (1) and healthy (0) patients in y_true")
    if not 0 < level < 1:
        raise ValueError("level is a fraction in (0, 1), e.g. 0.95")
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(pos.size, int), np.zeros(neg.size, int)]
    aucs = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.r_[rng.choice(pos, pos.size), rng.choice(neg, neg.size)]
        aucs[b] = roc_auc_score(labels, scores[idx])
    low, high = np.percentile(aucs, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return AUCInterval(roc_auc(y_true, scores), float(low), float(high), level, n_boot)


# --- calibration -----------------------------------------------------------------------------


class CalibrationCurve(NamedTuple):
    """Per bin of predicted probability: the mean prediction and the observed share of
    diseased patients (only bins that hold at least one prediction)."""

    mean_predicted: np.ndarray
    fraction_positive: np.ndarray


def calibration(y_true, probabilities, n_bins: int = 10,
                strategy: str = "uniform") -> CalibrationCurve:
    """Reliability curve of predicted probabilities (scikit-learn's ``calibration_curve``).

    ``strategy="uniform"`` cuts [0, 1] into ``n_bins`` equal bins; ``"quantile"`` gives each
    bin the same number of patients. A well calibrated model's points lie on the diagonal:
    of the patients given 0.8, about 80 % have the disease.
    """
    y_true, probabilities = _scores(y_true, probabilities, "probabilities")
    if probabilities.size and (probabilities.min() < 0 or probabilities.max() > 1):
        raise ValueError(f"probabilities must lie in [0, 1]; got values from "
                         f"{probabilities.min():g} to {probabilities.max():g}: pass probabilities "
                         "(after the sigmoid or softmax), not logits or percentages.")
    observed, predicted = calibration_curve(y_true, probabilities, n_bins=n_bins,
                                            strategy=strategy)
    return CalibrationCurve(predicted, observed)


# --- reports ---------------------------------------------------------------------------------


def binary_report(y_true, scores, threshold: float = 0.5) -> dict[str, float]:
    """Every metric at ``threshold`` (a score >= threshold counts as positive), ROC AUC, and
    the four counts."""
    y_true, scores = _scores(y_true, scores)
    tp, fp, tn, fn = confusion_counts(y_true, scores >= threshold)
    return {**metrics_from_counts(tp, fp, tn, fn), "roc_auc": roc_auc(y_true, scores),
            "tp": tp, "fp": fp, "tn": tn, "fn": fn}


#: the metrics :func:`format_report` shows, in order, with their labels
_REPORT_LABELS = {"sensitivity": "sensitivity", "specificity": "specificity", "ppv": "PPV",
                  "npv": "NPV", "accuracy": "accuracy", "roc_auc": "ROC AUC"}


def format_report(report: dict[str, float], name: str = "") -> str:
    """One readable line of :func:`binary_report`'s result (or of :func:`diagnostic_metrics`'s,
    which has no ROC AUC and no counts: those parts are then left out)."""
    shown = [key for key in _REPORT_LABELS if key in report] if hasattr(report, "keys") else []
    if not shown:
        raise TypeError("format_report takes the dict of binary_report(y_true, scores) (or of "
                        f"diagnostic_metrics(y_true, y_pred)); got {_short_repr(report)}")
    head = f"{name}: " if name else ""
    line = " | ".join(f"{_REPORT_LABELS[key]} {report[key]:.3f}" for key in shown)
    if "fn" in report and "fp" in report:
        line += f" (missed: {report['fn']}, false alarms: {report['fp']})"
    return head + line


def _short_repr(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def proportion_ci(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) confidence interval of a proportion ``k / n``, e.g. a
    sensitivity of ``tp`` out of ``tp + fn`` patients (scipy's ``binomtest``)."""
    from scipy.stats import binomtest

    if not (float(k).is_integer() and float(n).is_integer() and 0 <= k <= n and n > 0):
        raise ValueError(f"k and n are counts with 0 <= k <= n and n > 0; got k={k}, n={n}")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level)
    return float(ci.low), float(ci.high)


# --- operating points (chapter 6) ------------------------------------------------------------


class OperatingPoints(NamedTuple):
    """Sensitivity and specificity at each candidate threshold, highest threshold first."""

    thresholds: np.ndarray
    sensitivity: np.ndarray
    specificity: np.ndarray


def operating_points(y_true, scores) -> OperatingPoints:
    """Every way to cut ``scores`` into positive and negative: each distinct score used as the
    threshold (a score >= threshold counts as positive), **highest threshold first**, with the
    sensitivity and specificity there.

    As the threshold falls, sensitivity can only rise and specificity only fall; the lowest
    threshold calls every patient positive (sensitivity 1). Scores must be finite. Sensitivity
    is ``nan`` everywhere when no patient has the disease, specificity when every patient has
    it. Each value is an exact ratio of counts (``tp / (tp + fn)``), so a comparison with a
    required sensitivity such as 0.9 is exact.
    """
    y_true, scores = _scores(y_true, scores)
    thresholds = np.unique(scores)[::-1]
    diseased, healthy = np.sort(scores[y_true == 1]), np.sort(scores[y_true == 0])
    # patients at or above each threshold: all but those sorted below it
    tp = diseased.size - np.searchsorted(diseased, thresholds, side="left")
    fp = healthy.size - np.searchsorted(healthy, thresholds, side="left")
    with np.errstate(invalid="ignore", divide="ignore"):
        sens = tp / diseased.size if diseased.size else np.full(thresholds.size, np.nan)
        spec = (healthy.size - fp) / healthy.size if healthy.size else np.full(thresholds.size,
                                                                                np.nan)
    return OperatingPoints(thresholds, np.asarray(sens, float), np.asarray(spec, float))


# --- temperature scaling (chapter 3) ---------------------------------------------------------


def log_loss(y_true, probabilities, eps: float = 1e-12) -> float:
    """Mean binary log-loss (cross-entropy) of probabilities, clipped to [eps, 1 - eps]."""
    y_true, probabilities = _scores(y_true, probabilities, "probabilities")
    p = np.clip(probabilities, eps, 1.0 - eps)
    return float(-np.mean(y_true * np.log(p) + (1.0 - y_true) * np.log(1.0 - p)))


def logits_from_probabilities(probabilities, eps: float = 1e-7) -> np.ndarray:
    """The log-odds log(p / (1 - p)) of probabilities, clipped to [eps, 1 - eps] first."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), eps, 1.0 - eps)
    return np.log(p) - np.log1p(-p)


def sigmoid_of(logits, temperature: float = 1.0) -> np.ndarray:
    """sigmoid(logits / temperature), computed without overflow."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    return np.exp(-np.logaddexp(0.0, -z))


def temperature_scale(logits_val, y_val) -> float:
    """The temperature T > 0 that minimises the validation log-loss of
    ``sigmoid(logits_val / T)`` (chapter 3): T > 1 softens an over-confident model, T < 1
    sharpens an under-confident one; the ranking (ROC AUC) does not change. The log-loss is
    convex in 1/T, so a bounded 1-D search over 1/T in [0.01, 100] finds the minimum. Fit it on
    a validation split, never on the test split."""
    from scipy.optimize import minimize_scalar

    y_val, logits = _scores(y_val, logits_val, "logits_val")
    if len(np.unique(y_val)) < 2:
        raise ValueError("temperature_scale needs positive (1) and negative (0) cases in y_val")

    def loss(inverse_t):
        z = logits * inverse_t
        return float(np.mean(np.logaddexp(0.0, -z) * y_val + np.logaddexp(0.0, z) * (1 - y_val)))

    best = minimize_scalar(loss, bounds=(0.01, 100.0), method="bounded",
                           options={"xatol": 1e-10})
    return float(1.0 / best.x)
