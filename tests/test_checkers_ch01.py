"""The chapter-1 checkers: confusion_counts, diagnostic_metrics, ppv_from_prevalence and
missingness_report.

Each checker accepts the reference and other right answers (visible and strict cases), and
rejects the mistakes learners make, written the way a learner would write them, with a message
that names the exercise and the case and carries the hint for that mistake.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from checker_cases import accepts_variants, has_wrong_versions, rejects_mistakes
from sklearn.metrics import confusion_matrix, recall_score

from medai_lessons import metrics, tabular
from medai_lessons.grading import (
    EXERCISES,
    assert_own_implementation,
    check_confusion_counts,
    check_diagnostic_metrics,
    check_missingness_report,
    check_ppv_from_prevalence,
)
from medai_lessons.grading.core import SAMPLE_ARGS
from medai_lessons.notebook import learner_or_reference
from nbtools import notebook

CHAPTER_1 = ["confusion_counts", "diagnostic_metrics", "ppv_from_prevalence",
             "missingness_report"]
HAND = "10 hand-counted patients (tp 3, fp 2, tn 4, fn 1)"
NO_DISEASE = "no patient has the disease (sensitivity is 0/0: nan)"
NO_POSITIVE = "no positive prediction (PPV is 0/0: nan)"
SCREENING = "a screening test: sensitivity 0.9, specificity 0.99, prevalence 0.5 %"
SMALL_TABLE = "a 6-patient table: numbers with NaN, text with None"


def _counts(y_true, y_pred):
    y_true, y_pred = np.asarray(y_true).astype(int), np.asarray(y_pred).astype(int)
    return (int(np.sum((y_true == 1) & (y_pred == 1))), int(np.sum((y_true == 0) & (y_pred == 1))),
            int(np.sum((y_true == 0) & (y_pred == 0))), int(np.sum((y_true == 1) & (y_pred == 0))))


def _nan_ratio(a, b):
    return a / b if b else float("nan")


# --- the registry and the references ---------------------------------------------------------


def test_chapter_1_exercises_are_registered_with_their_references_and_sample_arguments():
    for name in CHAPTER_1:
        checker, reference = EXERCISES[name]
        assert checker.__name__ == f"check_{name}"
        assert name in SAMPLE_ARGS
        reference(*SAMPLE_ARGS[name]())                 # the sample arguments are valid
    assert EXERCISES["confusion_counts"][1] is metrics.confusion_counts
    assert EXERCISES["diagnostic_metrics"][1] is metrics.diagnostic_metrics
    assert EXERCISES["ppv_from_prevalence"][1] is metrics.ppv_from_prevalence
    assert EXERCISES["missingness_report"][1] is tabular.missingness_report


@pytest.mark.parametrize("strict", [False, True], ids=["visible", "strict"])
@pytest.mark.parametrize("name", CHAPTER_1)
def test_checker_accepts_reference(name, strict):
    checker, reference = EXERCISES[name]
    assert checker(reference, strict=strict) is None


# --- realistic wrong versions ----------------------------------------------------------------
# confusion_counts


def cc_swapped_fp_fn(y_true, y_pred):
    tp, fp, tn, fn = _counts(y_true, y_pred)
    return tp, fn, tn, fp


def cc_arguments_swapped(y_true, y_pred):
    return _counts(y_pred, y_true)          # prediction taken as the truth: fp and fn trade places


def cc_sklearn_order(y_true, y_pred):
    return tuple(confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel())   # (tn, fp, fn, tp)


def cc_sklearn_without_labels(y_true, y_pred):
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred).ravel()   # 1x1 when one class only
    return tp, fp, tn, fn


def cc_correct_counted_as_tp(y_true, y_pred):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred).astype(int)
    _, fp, tn, fn = _counts(y_true, y_pred)
    return int(np.sum(y_true == y_pred)), fp, tn, fn


def cc_as_dict(y_true, y_pred):
    tp, fp, tn, fn = _counts(y_true, y_pred)
    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn}


# diagnostic_metrics


def _metrics(y_true, y_pred, **override):
    tp, fp, tn, fn = _counts(y_true, y_pred)
    out = {"sensitivity": _nan_ratio(tp, tp + fn), "specificity": _nan_ratio(tn, tn + fp),
           "ppv": _nan_ratio(tp, tp + fp), "npv": _nan_ratio(tn, tn + fn),
           "accuracy": _nan_ratio(tp + tn, tp + fp + tn + fn),
           "f1": _nan_ratio(2 * tp, 2 * tp + fp + fn)}
    for key, formula in override.items():
        out[key] = formula(tp, fp, tn, fn)
    return out


def dm_sensitivity_is_ppv(y_true, y_pred):
    return _metrics(y_true, y_pred, sensitivity=lambda tp, fp, tn, fn: _nan_ratio(tp, tp + fp))


def dm_specificity_is_npv(y_true, y_pred):
    return _metrics(y_true, y_pred, specificity=lambda tp, fp, tn, fn: _nan_ratio(tn, tn + fn))


def dm_accuracy_ignores_negatives(y_true, y_pred):
    return _metrics(y_true, y_pred, accuracy=lambda tp, fp, tn, fn: tp / (tp + fp + tn + fn))


def dm_f1_arithmetic_mean(y_true, y_pred):
    return _metrics(y_true, y_pred, f1=lambda tp, fp, tn, fn: (_nan_ratio(tp, tp + fp)
                                                               + _nan_ratio(tp, tp + fn)) / 2)


def dm_f1_from_rates(y_true, y_pred):
    def harmonic(tp, fp, tn, fn):
        p, r = _nan_ratio(tp, tp + fp), _nan_ratio(tp, tp + fn)
        return 2 * p * r / (p + r) if p + r > 0 else float("nan")

    return _metrics(y_true, y_pred, f1=harmonic)


def dm_zero_instead_of_nan(y_true, y_pred):
    out = _metrics(y_true, y_pred)
    return {k: 0.0 if np.isnan(v) else v for k, v in out.items()}


def dm_plain_division(y_true, y_pred):
    tp, fp, tn, fn = _counts(y_true, y_pred)    # Python ints: 0 / 0 raises ZeroDivisionError
    return {"sensitivity": tp / (tp + fn), "specificity": tn / (tn + fp), "ppv": tp / (tp + fp),
            "npv": tn / (tn + fn), "accuracy": (tp + tn) / (tp + fp + tn + fn),
            "f1": 2 * tp / (2 * tp + fp + fn)}


def dm_guards_only_the_rates(y_true, y_pred):
    tp, fp, tn, fn = _counts(y_true, y_pred)
    out = _metrics(y_true, y_pred)
    out["ppv"], out["npv"] = tp / (tp + fp), tn / (tn + fn)     # 0 / 0 when nothing is predicted
    return out


def dm_recall_key(y_true, y_pred):
    out = _metrics(y_true, y_pred)
    out["recall"] = out.pop("sensitivity")
    return out


# ppv_from_prevalence


def ppv_ignores_prevalence(sensitivity, specificity, prevalence):
    return sensitivity / (sensitivity + (1 - specificity))


def ppv_specificity_for_false_positives(sensitivity, specificity, prevalence):
    return sensitivity * prevalence / (sensitivity * prevalence + specificity * (1 - prevalence))


def ppv_is_npv(sensitivity, specificity, prevalence):
    return specificity * (1 - prevalence) / (specificity * (1 - prevalence)
                                             + (1 - sensitivity) * prevalence)


def ppv_numerator_only(sensitivity, specificity, prevalence):
    return sensitivity * prevalence


def ppv_scalar_if(sensitivity, specificity, prevalence):
    if prevalence == 0:                     # ambiguous for an array of prevalences
        return 0.0
    tp = sensitivity * prevalence
    return tp / (tp + (1 - specificity) * (1 - prevalence))


# missingness_report


def mr_fraction_of_all_cells(df):
    counts = df.isna().sum()
    counts = counts[counts > 0].sort_values(ascending=False)
    return pd.DataFrame({"n_missing": counts, "fraction_missing": counts / df.size})


def mr_counts_values_present(df):
    counts = df.count()
    counts = counts[counts > 0].sort_values(ascending=False)
    return pd.DataFrame({"n_missing": counts, "fraction_missing": counts / len(df)})


def mr_keeps_complete_columns(df):
    counts = df.isna().sum().sort_values(ascending=False)
    return pd.DataFrame({"n_missing": counts, "fraction_missing": counts / len(df)})


def mr_ascending(df):
    counts = df.isna().sum()
    counts = counts[counts > 0].sort_values()
    return pd.DataFrame({"n_missing": counts, "fraction_missing": counts / len(df)})


def mr_np_isnan(df):
    counts = pd.Series(np.isnan(df).sum(), index=df.columns)     # fails on text columns
    counts = counts[counts > 0].sort_values(ascending=False)
    return pd.DataFrame({"n_missing": counts, "fraction_missing": counts / len(df)})


def mr_series(df):
    counts = df.isna().sum()
    return counts[counts > 0].sort_values(ascending=False)


def mr_percent(df):
    counts = df.isna().sum()
    counts = counts[counts > 0].sort_values(ascending=False)
    return pd.DataFrame({"n_missing": counts, "fraction_missing": 100 * counts / len(df)})


def mr_reset_index(df):
    counts = df.isna().sum()
    counts = counts[counts > 0].sort_values(ascending=False)
    report = pd.DataFrame({"n_missing": counts, "fraction_missing": counts / len(df)})
    return report.reset_index().rename(columns={"index": "column"})


def mr_fills_the_input(df):
    counts = df.isna().sum()
    counts = counts[counts > 0].sort_values(ascending=False)
    numbers = df.select_dtypes("number").columns
    df[numbers] = df[numbers].fillna(df[numbers].median())    # "cleans" the caller's table
    return pd.DataFrame({"n_missing": counts, "fraction_missing": counts / len(df)})


TOL = " (tolerance"
WRONG_VERSIONS = [
    # (checker, wrong version, the case it must fail on, a fragment of the message)
    (check_confusion_counts, cc_swapped_fp_fn, HAND + "'", "fp and fn are swapped"),
    (check_confusion_counts, cc_arguments_swapped, HAND + "'", "fp and fn are swapped"),
    (check_confusion_counts, cc_sklearn_order, HAND + "'", r"\(tn, fp, fn, tp\)"),
    (check_confusion_counts, cc_sklearn_without_labels,
     "every patient healthy and predicted healthy (one class only)'", r"labels=\[0, 1\]"),
    (check_confusion_counts, cc_correct_counted_as_tp, HAND + "'", "add up to"),
    (check_confusion_counts, cc_as_dict, HAND + "'", "return tp, fp, tn, fn"),
    (check_diagnostic_metrics, dm_sensitivity_is_ppv, HAND + ": sensitivity" + TOL, "that is PPV"),
    (check_diagnostic_metrics, dm_specificity_is_npv, HAND + ": specificity" + TOL, "that is NPV"),
    (check_diagnostic_metrics, dm_accuracy_ignores_negatives, HAND + ": accuracy" + TOL,
     "ignores the negatives"),
    (check_diagnostic_metrics, dm_f1_arithmetic_mean, HAND + ": f1" + TOL, "harmonic mean"),
    (check_diagnostic_metrics, dm_f1_from_rates, NO_DISEASE + ": f1" + TOL, "is 0 here"),
    (check_diagnostic_metrics, dm_zero_instead_of_nan, NO_DISEASE + ": sensitivity" + TOL,
     r"float\('nan'\), not 0"),
    (check_diagnostic_metrics, dm_plain_division, NO_DISEASE + "'", "denominator can be 0"),
    (check_diagnostic_metrics, dm_guards_only_the_rates, NO_POSITIVE + "'", "ZeroDivisionError"),
    (check_diagnostic_metrics, dm_recall_key, HAND + "'", r"add \['sensitivity'\]"),
    (check_ppv_from_prevalence, ppv_ignores_prevalence, SCREENING + TOL,
     "prevalence is left out"),
    (check_ppv_from_prevalence, ppv_specificity_for_false_positives, SCREENING + TOL,
     r"\(1 - specificity\)"),
    (check_ppv_from_prevalence, ppv_is_npv, SCREENING + TOL, "that is NPV"),
    (check_ppv_from_prevalence, ppv_numerator_only, SCREENING + TOL, "P\\(positive\\)"),
    (check_ppv_from_prevalence, ppv_scalar_if, "a NumPy array of prevalences'", "ValueError"),
    (check_missingness_report, mr_fraction_of_all_cells,
     SMALL_TABLE + ": fraction_missing of 'sbp_mmHg'", r"df\.size"),
    (check_missingness_report, mr_counts_values_present, SMALL_TABLE + "'", "values present"),
    (check_missingness_report, mr_keeps_complete_columns, SMALL_TABLE + "'",
     "at least one missing value"),
    (check_missingness_report, mr_ascending, SMALL_TABLE + ": order'", "ascending=False"),
    (check_missingness_report, mr_np_isnan, SMALL_TABLE + "'", r"df\.isna\(\)"),
    (check_missingness_report, mr_series, SMALL_TABLE + "'", "DataFrame"),
    (check_missingness_report, mr_percent, SMALL_TABLE + ": fraction_missing of 'sbp_mmHg'",
     "not a percentage"),
    (check_missingness_report, mr_reset_index, SMALL_TABLE + "'", "index the report"),
    (check_missingness_report, mr_fills_the_input, SMALL_TABLE + "'", "input table was changed"),
]


test_checker_rejects_realistic_mistake = pytest.mark.filterwarnings(
    "ignore:A single label was found:UserWarning")(rejects_mistakes(WRONG_VERSIONS))
test_every_chapter_1_exercise_has_at_least_three_wrong_versions = has_wrong_versions(
    CHAPTER_1, WRONG_VERSIONS)


def test_a_failure_says_what_was_expected_and_what_came_back():
    with pytest.raises(AssertionError) as info:
        check_confusion_counts(cc_swapped_fp_fn)
    message = str(info.value)
    assert "expected: (tp, fp, tn, fn) = (3, 2, 4, 1)" in message
    assert "got:      (3, 1, 4, 2)" in message


# --- correct variants must pass --------------------------------------------------------------


def cc_loop(y_true, y_pred):
    tp = fp = tn = fn = 0
    for t, p in zip(y_true, y_pred, strict=True):
        if t == 1 and p:
            tp += 1
        elif t == 0 and p:
            fp += 1
        elif t == 0:
            tn += 1
        else:
            fn += 1
    return tp, fp, tn, fn


def cc_sklearn_labels_list(y_true, y_pred):
    tn, fp, fn, tp = confusion_matrix(y_true, np.asarray(y_pred, int), labels=[0, 1]).ravel()
    return [tp, fp, tn, fn]


def cc_products_array(y_true, y_pred):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return np.array([np.sum(y_true * y_pred), np.sum((1 - y_true) * y_pred),
                     np.sum((1 - y_true) * (1 - y_pred)), np.sum(y_true * (1 - y_pred))])


def dm_numpy_divide_with_counts(y_true, y_pred):
    tp, fp, tn, fn = (np.float64(c) for c in _counts(y_true, y_pred))
    with np.errstate(invalid="ignore"):
        return {"sensitivity": tp / (tp + fn), "specificity": tn / (tn + fp),
                "ppv": tp / (tp + fp), "npv": tn / (tn + fn),
                "accuracy": (tp + tn) / (tp + fp + tn + fn), "f1": 2 * tp / (2 * tp + fp + fn),
                "tp": tp, "fn": fn}


def dm_sklearn_recall(y_true, y_pred):
    out = _metrics(y_true, y_pred)
    if np.any(np.asarray(y_true) == 1):
        out["sensitivity"] = recall_score(y_true, np.asarray(y_pred, int))
    return out


def ppv_odds_form(sensitivity, specificity, prevalence):
    sensitivity, specificity, prevalence = (np.asarray(v, dtype=float)
                                            for v in (sensitivity, specificity, prevalence))
    diseased = sensitivity * prevalence
    return diseased / (diseased + (1 - specificity) * (1 - prevalence))


def mr_mean_of_isna(df):
    report = pd.DataFrame({"n_missing": df.isna().sum(), "fraction_missing": df.isna().mean()})
    report = report[report["n_missing"] > 0]
    return report.sort_values("n_missing", ascending=False, kind="mergesort")


def mr_loop_with_extra_column(df):
    rows = {c: (int(df[c].isna().sum()), str(df[c].dtype)) for c in df.columns}
    report = pd.DataFrame.from_dict(rows, orient="index", columns=["n_missing", "dtype"])
    report = report[report["n_missing"] > 0].sort_values("n_missing", ascending=False)
    report["fraction_missing"] = report["n_missing"] / len(df)
    return report


CORRECT_VARIANTS = [
    (check_confusion_counts, cc_loop),
    (check_confusion_counts, cc_sklearn_labels_list),
    (check_confusion_counts, cc_products_array),
    (check_diagnostic_metrics, dm_numpy_divide_with_counts),
    (check_diagnostic_metrics, dm_sklearn_recall),
    (check_ppv_from_prevalence, ppv_odds_form),
    (check_missingness_report, mr_mean_of_isna),
    (check_missingness_report, mr_loop_with_extra_column),
]


test_checker_accepts_correct_variant = accepts_variants(CORRECT_VARIANTS)


# --- the notebook's own answers, as a learner writes them ------------------------------------

TEXTBOOK = """
    import numpy as np
    import pandas as pd

    def confusion_counts(y_true, y_pred):
        y_true = np.asarray(y_true).astype(int)
        y_pred = np.asarray(y_pred).astype(int)
        tp = int(np.sum((y_true == 1) & (y_pred == 1)))
        fp = int(np.sum((y_true == 0) & (y_pred == 1)))
        tn = int(np.sum((y_true == 0) & (y_pred == 0)))
        fn = int(np.sum((y_true == 1) & (y_pred == 0)))
        return tp, fp, tn, fn

    def diagnostic_metrics(y_true, y_pred):
        tp, fp, tn, fn = confusion_counts(y_true, y_pred)

        def ratio(numerator, denominator):
            return numerator / denominator if denominator > 0 else float("nan")

        return {"sensitivity": ratio(tp, tp + fn), "specificity": ratio(tn, tn + fp),
                "ppv": ratio(tp, tp + fp), "npv": ratio(tn, tn + fn),
                "accuracy": ratio(tp + tn, tp + fp + tn + fn),
                "f1": ratio(2 * tp, 2 * tp + fp + fn)}

    def ppv_from_prevalence(sensitivity, specificity, prevalence):
        true_positive_share = sensitivity * prevalence
        false_positive_share = (1 - specificity) * (1 - prevalence)
        return true_positive_share / (true_positive_share + false_positive_share)

    def missingness_report(df):
        counts = df.isna().sum()
        counts = counts[counts > 0].sort_values(ascending=False)
        return pd.DataFrame({"n_missing": counts, "fraction_missing": counts / len(df)})
"""


@pytest.mark.parametrize("strict", [False, True], ids=["visible", "strict"])
@pytest.mark.parametrize("name", CHAPTER_1)
def test_textbook_answer_passes_and_is_the_learners_own(name, strict):
    learner = notebook(TEXTBOOK)[name]
    EXERCISES[name][0](learner, strict=strict)
    if strict:
        assert assert_own_implementation(learner, name) is None


def test_the_notebook_holds_the_textbook_answers():
    """The answers above are the chapter's solutions, so that this file tests what the
    autograder will see."""
    from conftest import SOURCE
    from nbtools import assert_notebook_holds, read

    nb = read(SOURCE / "ch01_background" / "ch01_background.ipynb")
    assert_notebook_holds(nb, TEXTBOOK, CHAPTER_1)


@pytest.mark.parametrize("name", CHAPTER_1)
def test_own_implementation_rejects_the_reference(name):
    with pytest.raises(AssertionError, match=rf"^{name}: failed on case 'own implementation'"):
        assert_own_implementation(EXERCISES[name][1], name)


CHEATS = {
    "confusion_counts": """
        from medai_lessons.metrics import confusion_counts as counts

        def confusion_counts(y_true, y_pred):
            return counts(y_true, y_pred)
    """,
    "diagnostic_metrics": """
        from medai_lessons import metrics

        def diagnostic_metrics(y_true, y_pred):
            return metrics.metrics_from_counts(*metrics.confusion_counts(y_true, y_pred))
    """,
    "missingness_report": """
        import importlib

        def missingness_report(df):
            module = importlib.import_module("medai_" + "lessons.tabular")  # no name to scan
            return getattr(module, "missingness_" + "report")(df)
    """,
}


@pytest.mark.parametrize("name", sorted(CHEATS))
def test_own_implementation_rejects_calls_into_the_course_code(name):
    learner = notebook(CHEATS[name])[name]
    EXERCISES[name][0](learner)                          # right values ...
    with pytest.raises(AssertionError, match=rf"^{name}: failed on case 'own implementation'"):
        assert_own_implementation(learner, name)         # ... but not the learner's own
    EXERCISES[name][0](EXERCISES[name][1])               # the trap is gone afterwards


def test_learner_or_reference_falls_back_on_a_wrong_confusion_counts(capsys):
    assert learner_or_reference("confusion_counts",
                                {"confusion_counts": cc_swapped_fp_fn}) is metrics.confusion_counts
    out = capsys.readouterr().out
    assert f"does not pass its check yet (confusion_counts: failed on case '{HAND}'" in out
