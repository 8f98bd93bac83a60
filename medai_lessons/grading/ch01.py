"""Checkers for chapter 1: confusion counts, diagnostic metrics, PPV and prevalence, and a
missingness report of a clinical table.

Each ``check_*`` takes the learner's function and raises ``AssertionError`` on the first case
that fails, naming the case, what was expected and what came back, with a hint aimed at the
usual mistake (fp and fn swapped, PPV computed for sensitivity, prevalence left out of
Bayes' rule, missing values counted over all cells...). ``strict=True`` adds more cases of the
kinds the visible ones show (more seeded random patients, other seeds of the messy table).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from medai_lessons import metrics as ref
from medai_lessons import tabular
from medai_lessons.grading.core import (
    SAMPLE_ARGS,
    _short,
    assert_close,
    call,
    case_rng,
    fail,
    metric_dict,
    same_metric,
)

# 10 patients counted by hand: tp 3 (patients 0, 2, 7), fp 2 (4, 5), tn 4 (3, 6, 8, 9), fn 1 (1)
HAND_TRUE = np.array([1, 1, 1, 0, 0, 0, 0, 1, 0, 0])
HAND_PRED = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 0])
HAND = "10 hand-counted patients (tp 3, fp 2, tn 4, fn 1)"
COUNT_DEFINITIONS = ("tp: y_true 1 and y_pred 1; fp: y_true 0 and y_pred 1; tn: both 0; "
                     "fn: y_true 1 and y_pred 0.")


def _patients(seed: int, n: int, prevalence: float, error_rate: float = 0.2):
    """Seeded labels and the predictions of a model that is wrong on ~error_rate of them."""
    rng = case_rng(seed)
    y_true = (rng.random(n) < prevalence).astype(np.int64)
    wrong = rng.random(n) < error_rate
    return y_true, np.where(wrong, 1 - y_true, y_true)


def _label_cases(strict: bool):
    """(case, y_true, y_pred) shared by confusion_counts and diagnostic_metrics."""
    y50, p50 = _patients(11, 50, 0.4)
    yb, pb = _patients(12, 30, 0.3)
    cases = [
        (HAND, HAND_TRUE, HAND_PRED),
        ("50 seeded random patients", y50, p50),
        ("predictions as booleans (scores >= 0.5)", yb, pb.astype(bool)),
    ]
    if strict:
        y7, p7 = _patients(13, 7, 0.5)
        y_big, p_big = _patients(14, 10_000, 0.01, error_rate=0.05)
        cases += [("7 seeded random patients", y7, p7),
                  ("10,000 seeded patients, 1 % diseased", y_big, p_big)]
    return cases


def _inputs(y_true, y_pred) -> str:
    return f"y_true={_short(np.asarray(y_true), 70)}, y_pred={_short(np.asarray(y_pred), 70)}"


# --- confusion_counts ------------------------------------------------------------------------


def _counts_hint(got: tuple, expected: tuple, n: int) -> str:
    tp, fp, tn, fn = expected
    if got == (tp, fn, tn, fp):
        return ("fp and fn are swapped: a false positive is a healthy patient (y_true 0) "
                "predicted diseased (y_pred 1); a false negative is a diseased patient "
                "predicted healthy.")
    if got == (tn, fp, fn, tp):
        return ("that is the order of scikit-learn's confusion_matrix(...).ravel(), "
                "(tn, fp, fn, tp); this exercise returns (tp, fp, tn, fn).")
    if sorted(got) == sorted(expected):
        return "the right four numbers in the wrong order: return (tp, fp, tn, fn)."
    if sum(got) != n:
        return f"the four counts should add up to the number of patients ({n}). " + \
            COUNT_DEFINITIONS
    return COUNT_DEFINITIONS


def check_confusion_counts(confusion_counts, strict: bool = False) -> None:
    """``confusion_counts(y_true, y_pred)`` returns ``(tp, fp, tn, fn)`` for 0/1 labels
    (predictions may be booleans), also when only one class occurs."""
    exercise = "confusion_counts"
    cases = _label_cases(strict) + [
        ("every patient healthy and predicted healthy (one class only)",
         np.zeros(6, dtype=np.int64), np.zeros(6, dtype=np.int64)),
        ("every prediction positive", np.array([1, 0, 0, 1, 0]), np.ones(5, dtype=np.int64)),
    ]
    if strict:
        cases.append(("every patient diseased and predicted diseased (one class only)",
                      np.ones(4, dtype=np.int64), np.ones(4, dtype=np.int64)))
    for case, y_true, y_pred in cases:
        got = call(confusion_counts, y_true, y_pred, exercise=exercise, case=case,
                   hint="with scikit-learn's confusion_matrix pass labels=[0, 1], or count "
                        "with NumPy: np.sum((y_true == 1) & (y_pred == 1)) and so on.")
        expected = ref.confusion_counts(y_true, y_pred)
        inputs = _inputs(y_true, y_pred)
        try:
            n_values = len(got)
        except TypeError:
            n_values = None
        if isinstance(got, dict) or n_values != 4:
            fail(exercise, case, inputs=inputs, expected="a tuple (tp, fp, tn, fn)",
                 got=repr(got), hint="end with `return tp, fp, tn, fn`.")
        try:
            values = np.asarray([float(v) for v in got])
        except (TypeError, ValueError):
            fail(exercise, case, inputs=inputs, expected="four numbers (tp, fp, tn, fn)",
                 got=repr(got), hint="each count is one whole number, e.g. int(np.sum(...)).")
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            fail(exercise, case, inputs=inputs, expected=f"whole numbers {expected}",
                 got=repr(got), hint="counts are whole numbers: sum booleans, don't average.")
        got_counts = tuple(int(v) for v in values)
        if got_counts != expected:
            fail(exercise, case, inputs=inputs, expected=f"(tp, fp, tn, fn) = {expected}",
                 got=f"{got_counts}", hint=_counts_hint(got_counts, expected, len(y_true)))


# --- diagnostic_metrics ----------------------------------------------------------------------

FORMULAS = {
    "sensitivity": "sensitivity = tp / (tp + fn), the share of the diseased that the test finds.",
    "specificity": "specificity = tn / (tn + fp), the share of the healthy that the test clears.",
    "ppv": "ppv = tp / (tp + fp), the share of positive results that are right.",
    "npv": "npv = tn / (tn + fn), the share of negative results that are right.",
    "accuracy": "accuracy = (tp + tn) / n counts the correct negatives too.",
    "f1": "f1 = 2 tp / (2 tp + fp + fn), the harmonic mean of PPV and sensitivity.",
}
CONFUSIONS = {
    # key -> [(name of what the learner computed, its formula from the counts, the hint)]
    "sensitivity": [
        ("ppv", lambda tp, fp, tn, fn: tp / (tp + fp),
         "that is PPV, tp / (tp + fp). Sensitivity divides by the diseased: tp / (tp + fn)."),
        ("specificity", lambda tp, fp, tn, fn: tn / (tn + fp),
         "that is specificity. Sensitivity = tp / (tp + fn)."),
    ],
    "specificity": [
        ("npv", lambda tp, fp, tn, fn: tn / (tn + fn),
         "that is NPV, tn / (tn + fn). Specificity divides by the healthy: tn / (tn + fp)."),
        ("false-positive rate", lambda tp, fp, tn, fn: fp / (tn + fp),
         "that is the false-positive rate fp / (tn + fp) = 1 - specificity."),
    ],
    "ppv": [
        ("sensitivity", lambda tp, fp, tn, fn: tp / (tp + fn),
         "that is sensitivity. PPV divides by the positive results: tp / (tp + fp)."),
    ],
    "npv": [
        ("specificity", lambda tp, fp, tn, fn: tn / (tn + fp),
         "that is specificity. NPV divides by the negative results: tn / (tn + fn)."),
    ],
    "accuracy": [
        ("tp / n", lambda tp, fp, tn, fn: tp / (tp + fp + tn + fn),
         "accuracy that ignores the negatives: (tp + tn) / n counts the correct negatives too."),
        ("sensitivity", lambda tp, fp, tn, fn: tp / (tp + fn),
         "that is sensitivity. Accuracy = (tp + tn) / n, over every patient."),
    ],
    "f1": [
        ("the arithmetic mean", lambda tp, fp, tn, fn: (tp / (tp + fp) + tp / (tp + fn)) / 2,
         "F1 is the harmonic mean 2 tp / (2 tp + fp + fn), not the arithmetic mean of PPV and "
         "sensitivity."),
    ],
}


def _metric_hint(key: str, got: float, counts: tuple[int, int, int, int], expected: float) -> str:
    if np.isnan(expected):
        return (f"{key}'s denominator is 0 here, so it is undefined: return float('nan'), "
                f"not {got:g}. (0 or 1 would be a claim that the data cannot support.)")
    if np.isnan(got):
        if key == "f1" and expected == 0:
            return ("F1 = 2 tp / (2 tp + fp + fn) is 0 here: its denominator is not 0 even "
                    "though PPV or sensitivity is undefined. Compute it from the counts.")
        return f"nan, but the denominator is not 0 here. {FORMULAS[key]}"
    with np.errstate(divide="ignore", invalid="ignore"):
        for _, formula, hint in CONFUSIONS.get(key, []):
            alternative = float(formula(*(np.float64(c) for c in counts)))
            if np.isfinite(alternative) and np.isclose(got, alternative, rtol=1e-9, atol=1e-12):
                return hint
    return FORMULAS[key]


def _metric_cases(strict: bool):
    cases = _label_cases(strict) + [
        ("no patient has the disease (sensitivity is 0/0: nan)",
         np.zeros(8, dtype=np.int64), np.array([0, 1, 0, 0, 1, 0, 0, 0])),
        ("no positive prediction (PPV is 0/0: nan)",
         np.array([1, 0, 0, 1, 0, 0]), np.zeros(6, dtype=np.int64)),
    ]
    if strict:
        cases.append(("every patient has the disease (specificity is 0/0: nan)",
                      np.ones(7, dtype=np.int64), np.array([1, 1, 0, 1, 1, 1, 0])))
    return cases


def check_diagnostic_metrics(diagnostic_metrics, strict: bool = False) -> None:
    """``diagnostic_metrics(y_true, y_pred)`` returns a dict with ``sensitivity``,
    ``specificity``, ``ppv``, ``npv``, ``accuracy`` and ``f1`` (floats; extra keys are
    allowed); a metric whose denominator is 0 is ``nan``."""
    exercise = "diagnostic_metrics"
    for case, y_true, y_pred in _metric_cases(strict):
        got = call(diagnostic_metrics, y_true, y_pred, exercise=exercise, case=case,
                   hint="a denominator can be 0 here: return float('nan') for that metric "
                        "instead of dividing (e.g. `tp / (tp + fn) if tp + fn > 0 else "
                        "float('nan')`).")
        counts = ref.confusion_counts(y_true, y_pred)
        expected = ref.metrics_from_counts(*counts)
        inputs = _inputs(y_true, y_pred) + f" (tp, fp, tn, fn) = {counts}"
        values = metric_dict(
            got, {k: expected[k] for k in ref.METRIC_NAMES}, exercise=exercise, case=case,
            inputs=inputs, missing_hint=" (lower-case names exactly as listed)",
            names='{"sensitivity": ..., "specificity": ..., "ppv": ..., "npv": ..., '
                  '"accuracy": ..., "f1": ...}')
        for key, value in values.items():
            want = expected[key]
            if not same_metric(value, want):
                fail(exercise, f"{case}: {key} (tolerance: rtol=1e-09)", inputs=inputs,
                     expected=f"{want:.6g}", got=f"{value:.6g}",
                     hint=_metric_hint(key, value, counts, want))


# --- ppv_from_prevalence ---------------------------------------------------------------------

PPV_MISTAKES = [
    (lambda se, sp, p: se / (se + (1 - sp)),
     "the prevalence is left out: weight the sick by p and the healthy by 1 - p, "
     "PPV = sens·p / (sens·p + (1 - spec)·(1 - p))."),
    (lambda se, sp, p: se * p / (se * p + sp * (1 - p)),
     "false positives come from the healthy who test positive: (1 - specificity)·(1 - p), "
     "not specificity·(1 - p)."),
    (lambda se, sp, p: sp * (1 - p) / (sp * (1 - p) + (1 - se) * p),
     "that is NPV, the chance that a negative result is right."),
    (lambda se, sp, p: se * p,
     "that is P(diseased and positive); divide it by P(positive) = sens·p + (1 - spec)·(1 - p)."),
    (lambda se, sp, p: (1 - sp) * (1 - p) / (se * p + (1 - sp) * (1 - p)),
     "that is 1 - PPV, the share of positive results that are false alarms."),
]


def _ppv_hint(got, se, sp, p) -> str:
    arr = np.asarray(got, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        for formula, hint in PPV_MISTAKES:
            alternative = np.asarray(formula(np.asarray(se, float), np.asarray(sp, float),
                                             np.asarray(p, float)), dtype=float)
            if alternative.shape == arr.shape and np.allclose(arr, alternative, rtol=1e-9,
                                                              atol=1e-12):
                return hint
    return "Bayes' rule: PPV = sens·p / (sens·p + (1 - spec)·(1 - p))."


def check_ppv_from_prevalence(ppv_from_prevalence, strict: bool = False) -> None:
    """``ppv_from_prevalence(sensitivity, specificity, prevalence)``: Bayes' rule, on numbers
    and element-wise on NumPy arrays (fractions in [0, 1])."""
    exercise = "ppv_from_prevalence"
    cases = [
        ("a screening test: sensitivity 0.9, specificity 0.99, prevalence 0.5 %",
         0.9, 0.99, 0.005),
        ("prevalence 50 %", 0.8, 0.9, 0.5),
        ("a perfectly specific test (specificity 1: PPV 1)", 0.7, 1.0, 0.01),
        ("prevalence 0 (PPV 0)", 0.9, 0.95, 0.0),
        ("a NumPy array of prevalences", 0.9, 0.99, np.array([0.001, 0.01, 0.1, 0.5])),
    ]
    if strict:
        rng = case_rng(21)
        cases += [
            ("a weak test: sensitivity 0.6, specificity 0.7, prevalence 20 %", 0.6, 0.7, 0.2),
            ("prevalence 1 (PPV 1)", 0.6, 0.7, 1.0),
            ("seeded random arrays of all three", rng.uniform(0.5, 1.0, 20),
             rng.uniform(0.5, 0.999, 20), rng.uniform(0.0, 0.6, 20)),
        ]
    for case, se, sp, p in cases:
        got = call(ppv_from_prevalence, se, sp, p, exercise=exercise, case=case)
        expected = ref.ppv_from_prevalence(se, sp, p)
        inputs = (f"sensitivity={_short(np.asarray(se), 60)}, "
                  f"specificity={_short(np.asarray(sp), 60)}, "
                  f"prevalence={_short(np.asarray(p), 60)}")
        try:
            hint = _ppv_hint(got, se, sp, p) if got is not None else ""
        except (TypeError, ValueError):
            hint = ""
        assert_close(got, expected, exercise=exercise, case=case, inputs=inputs, rtol=1e-9,
                     atol=1e-12, hint=hint)


# --- missingness_report ----------------------------------------------------------------------


@lru_cache(maxsize=8)
def _messy_frame(seed: int):
    from medai_lessons.data.tables import load_messy_ehr

    return load_messy_ehr(seed=seed, verbose=False).frame


def _small_table():
    import pandas as pd

    return pd.DataFrame({
        "age": [64, 51, np.nan, 72, 58, 49],
        "sex": ["F", "M", "F", "F", "M", "M"],
        "site": ["North", None, "North", None, "Valley", "North"],
        "sbp_mmHg": [np.nan, 128.0, np.nan, 141.0, np.nan, 119.0],
        "hba1c": [6.1, 7.4, 5.8, 8.2, 6.5, 5.9],
    })


def _table_cases(strict: bool):
    import pandas as pd

    cases = [
        ("a 6-patient table: numbers with NaN, text with None", _small_table),
        ("a table without gaps (the report is empty)",
         lambda: pd.DataFrame({"age": [64, 51, 70], "sex": ["F", "M", "F"]})),
        ("the messy EHR export (seed 0)", lambda: _messy_frame(0).copy()),
    ]
    if strict:
        def random_table():
            rng = case_rng(31)
            values = rng.normal(size=(40, 8))
            values[rng.random((40, 8)) < rng.uniform(0, 0.3, size=8)] = np.nan
            values[:4, 2] = values[:4, 5] = np.nan  # likely ties in the counts
            return pd.DataFrame(values, columns=[f"lab_{i}" for i in range(8)])

        cases += [
            ("the messy EHR export (seed 1)", lambda: _messy_frame(1).copy()),
            ("the messy EHR export (seed 7)", lambda: _messy_frame(7).copy()),
            ("a seeded random 40 x 8 table of lab values with gaps", random_table),
        ]
    return cases


def check_missingness_report(missingness_report, strict: bool = False) -> None:
    """``missingness_report(df)`` returns a DataFrame indexed by column name with ``n_missing``
    and ``fraction_missing`` (= n_missing / number of rows), only for columns with at least one
    missing value, sorted by ``n_missing`` largest first (any order among ties); ``df`` is not
    changed."""
    import pandas as pd

    exercise = "missingness_report"
    for case, make in _table_cases(strict):
        df = make()
        before = df.copy(deep=True)
        got = call(missingness_report, df, exercise=exercise, case=case, inputs_unchanged=False,
                   hint="df.isna() finds the gaps in columns of every type; np.isnan works on "
                        "numbers only.")
        expected = tabular.missingness_report(before)
        inputs = f"a table of {df.shape[0]} rows x {df.shape[1]} columns"
        if not (df.shape == before.shape and df.equals(before)):
            fail(exercise, case, inputs=inputs, got="the input table was changed",
                 hint="report on df.isna(); do not fill, drop or add columns in df itself.")
        if not isinstance(got, pd.DataFrame):
            fail(exercise, case, inputs=inputs,
                 expected="a DataFrame with columns n_missing and fraction_missing",
                 got=type(got).__name__,
                 hint="build it with pd.DataFrame({'n_missing': counts, 'fraction_missing': "
                      "counts / len(df)}).")
        absent = [c for c in tabular.REPORT_COLUMNS if c not in got.columns]
        if absent:
            fail(exercise, case, inputs=inputs, expected=f"columns {list(tabular.REPORT_COLUMNS)}",
                 got=f"columns {list(map(str, got.columns))}", hint=f"add {absent}.")
        present = df.notna().sum()
        counted_present = [c for c in got.index if c in present.index]
        if counted_present and all(
                np.isclose(float(got.loc[c, "n_missing"]), present[c]) for c in counted_present
        ) and any(present[c] != df[c].isna().sum() for c in counted_present):
            fail(exercise, case, inputs=inputs, expected=expected["n_missing"].to_dict(),
                 got=got["n_missing"].to_dict(),
                 hint="those are the values present (df.count()); count the gaps with "
                      "df.isna().sum().")
        want, have = set(expected.index), set(got.index)
        if want != have:
            extra, lacking = sorted(map(str, have - want)), sorted(map(str, want - have))
            if extra and set(extra) <= set(map(str, df.columns)):
                hint = ("keep only the columns with at least one missing value, e.g. "
                        "report[report['n_missing'] > 0].")
            elif lacking and not (have & set(df.columns)):
                hint = ("index the report by the table's column names (df.isna().sum() is "
                        "indexed that way); don't reset_index().")
            else:
                hint = ("count every kind of gap: df.isna() sees NaN in numbers and None in "
                        "text columns.")
            fail(exercise, case, inputs=inputs,
                 expected=f"rows for the columns with gaps {list(expected.index)}",
                 got=f"rows {list(got.index)} (extra: {extra}, missing: {lacking})", hint=hint)
        n_rows = len(df)
        for column in expected.index:
            n_want = int(expected.loc[column, "n_missing"])
            n_got = got.loc[column, "n_missing"]
            if not np.isclose(float(n_got), n_want):
                hint = ("df.count() counts the values present; count the gaps with "
                        "df.isna().sum()." if np.isclose(float(n_got), n_rows - n_want) else
                        "n_missing is the number of missing values in that column.")
                fail(exercise, f"{case}: n_missing of '{column}'", inputs=inputs,
                     expected=n_want, got=n_got, hint=hint)
            f_want = float(expected.loc[column, "fraction_missing"])
            f_got = float(got.loc[column, "fraction_missing"])
            if not np.isclose(f_got, f_want, rtol=1e-9, atol=1e-12):
                if np.isclose(f_got, n_want / df.size):
                    hint = ("that is a fraction of all cells (df.size); divide by the number "
                            "of rows, len(df).")
                elif np.isclose(f_got, 100 * f_want):
                    hint = "a fraction in [0, 1], not a percentage."
                else:
                    hint = "fraction_missing = n_missing / len(df)."
                fail(exercise, f"{case}: fraction_missing of '{column}'", inputs=inputs,
                     expected=f_want, got=f_got, hint=hint)
        order = np.asarray(got["n_missing"], dtype=float)
        if np.any(np.diff(order) > 0):
            fail(exercise, f"{case}: order", inputs=inputs,
                 expected=f"n_missing largest first {list(expected['n_missing'])}",
                 got=list(order.astype(int)),
                 hint="sort with .sort_values('n_missing', ascending=False).")


def _register_samples() -> None:
    SAMPLE_ARGS["confusion_counts"] = lambda: (HAND_TRUE.copy(), HAND_PRED.copy())
    SAMPLE_ARGS["diagnostic_metrics"] = lambda: (HAND_TRUE.copy(), HAND_PRED.copy())
    SAMPLE_ARGS["ppv_from_prevalence"] = lambda: (0.9, 0.99, 0.01)
    SAMPLE_ARGS["missingness_report"] = lambda: (_small_table(),)


_register_samples()
