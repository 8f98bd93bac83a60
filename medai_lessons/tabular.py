"""Helpers for clinical tables (pandas DataFrames): what is missing, before anything is fitted.

Chapter 1 looks at the "messy EHR" export of :func:`medai_lessons.data.load_messy_ehr` with
:func:`missingness_report`; chapter 6 cleans such a table for a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

REPORT_COLUMNS: tuple[str, ...] = ("n_missing", "fraction_missing")


def missingness_report(df: pd.DataFrame) -> pd.DataFrame:
    """How many values each column is missing.

    A value is missing when pandas' ``isna()`` says so (NaN, None, NaT, ``pd.NA``); an empty
    or misspelt string is a value. Returns a DataFrame **indexed by column name** with

    - ``n_missing`` (int): the number of missing values in that column;
    - ``fraction_missing`` (float): ``n_missing / len(df)``, the share of the *rows* (not of
      all cells) that lack a value in that column;

    holding **only the columns with at least one missing value**, sorted by ``n_missing``,
    largest first (ties keep the table's column order). A table without gaps gives an empty
    report with the same two columns. ``df`` itself is not changed.
    """
    import pandas as pd

    counts = df.isna().sum()
    counts = counts[counts > 0].sort_values(ascending=False, kind="stable").astype("int64")
    fraction = counts / len(df) if len(df) else counts.astype(float)
    return pd.DataFrame({"n_missing": counts, "fraction_missing": fraction.astype(float)},
                        columns=list(REPORT_COLUMNS))


# --- chapter 6: a leakage-free diagnostic pipeline --------------------------------------------

#: what :func:`evaluate_classifier` returns, in this order
EVALUATION_KEYS: tuple[str, ...] = ("sensitivity", "specificity", "ppv", "npv", "accuracy",
                                    "roc_auc")


def stratified_split(X, y, test_size=0.2, val_size=0.2, seed=0):
    """Split patients into training, validation and test parts, each with the class shares of
    ``y`` (stratified), reproducibly for ``seed``.

    ``test_size`` and ``val_size`` are fractions **of the whole** (0.2 and 0.2 leave 60 % for
    training; their sum must be below 1). Part sizes are those of scikit-learn's
    ``train_test_split``: the test part is ``ceil(test_size * n)``, the validation part
    ``ceil(val_size / (1 - test_size) * (n - n_test))``, so each is within one patient of the
    fraction. Rows of ``X`` and ``y`` stay paired; DataFrames and Series stay DataFrames and
    Series (with their index); the inputs are not changed.

    Returns ``(X_train, X_val, X_test, y_train, y_val, y_test)``.
    """
    from sklearn.model_selection import train_test_split

    if not (0 < test_size < 1 and 0 < val_size < 1 and test_size + val_size < 1):
        raise ValueError("test_size and val_size are fractions of the whole, each in (0, 1), "
                         f"with a sum below 1; got {test_size} and {val_size}")
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=test_size, stratify=y,
                                                      random_state=seed)
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=val_size / (1 - test_size), stratify=y_rest,
        random_state=seed)
    return X_train, X_val, X_test, y_train, y_val, y_test


def fit_preprocessor(X_train):
    """A scikit-learn transformer fitted on the training features only: missing values
    replaced by the training **median** of their column (robust to outliers such as a unit
    error), then every column standardised with the training mean and standard deviation
    (``(x - mean) / sd``). The label is never an input.

    Apply the result with ``.transform`` to every part (training, validation, test, a new
    patient): it uses the training statistics and never refits.
    """
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(SimpleImputer(strategy="median"), StandardScaler()).fit(X_train)


def choose_threshold(y_true, scores, min_sensitivity):
    """The threshold for a screening setting: among the thresholds whose sensitivity is at
    least ``min_sensitivity``, the one with the **best specificity**; of those tied on
    specificity, the one with the best sensitivity (the lowest such threshold).

    Candidate thresholds are the distinct values of ``scores``; a score >= threshold counts as
    positive, so the result is one of the scores. Every requirement in (0, 1] can be met (the
    lowest score calls everyone positive: sensitivity 1). Raises ``ValueError`` when
    ``min_sensitivity`` is outside (0, 1] or when ``y_true`` lacks diseased or healthy patients
    (sensitivity or specificity would be undefined).
    """
    import numpy as np

    from medai_lessons import metrics

    if not 0 < min_sensitivity <= 1:
        raise ValueError(f"min_sensitivity is a fraction in (0, 1], got {min_sensitivity}")
    points = metrics.operating_points(y_true, scores)
    if points.thresholds.size == 0 or np.isnan(points.sensitivity).any() \
            or np.isnan(points.specificity).any():
        raise ValueError("choose_threshold needs diseased (1) and healthy (0) patients in "
                         "y_true: otherwise sensitivity or specificity is undefined")
    reaching = points.sensitivity >= min_sensitivity
    best = reaching & (points.specificity == points.specificity[reaching].max())
    return float(points.thresholds[np.flatnonzero(best)[-1]])


def evaluate_classifier(y_true, scores, threshold=0.5):
    """Sensitivity, specificity, PPV, NPV and accuracy at ``threshold`` (a score >= threshold
    counts as positive) and the ROC AUC of the scores themselves, as a dict with the keys of
    :data:`EVALUATION_KEYS`. A metric whose denominator is 0 is ``nan`` (as in
    :mod:`medai_lessons.metrics`)."""
    from medai_lessons import metrics

    report = metrics.binary_report(y_true, scores, threshold)
    return {key: report[key] for key in EVALUATION_KEYS}
