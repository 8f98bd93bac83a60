"""The chapter-7 checkers: kaplan_meier, concordance_index, cox_partial_likelihood_loss,
restricted_mean_survival_time and treatment_effect_t_learner. (That every checker accepts its
reference, visible and strict, and that the own-work check rejects the reference itself, is
tested for every registered exercise in test_checkers.py.)

Each checker accepts right answers written another way and rejects the mistakes learners make,
written the way a learner would write them, with a message naming the exercise and the case
and carrying the hint for that mistake. The checkers pass only plain data (arrays, numbers)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sksurv", reason="scikit-survival (chapter 7) is not installed")

from checker_cases import accepts_variants, has_wrong_versions, rejects_mistakes  # noqa: E402
from scipy.special import logsumexp  # noqa: E402
from sksurv.linear_model import CoxPHSurvivalAnalysis  # noqa: E402
from sksurv.metrics import concordance_index_censored  # noqa: E402
from sksurv.nonparametric import kaplan_meier_estimator  # noqa: E402
from sksurv.util import Surv  # noqa: E402

from medai_lessons import survival  # noqa: E402
from medai_lessons.grading import (  # noqa: E402
    EXERCISES,
    assert_own_implementation,
    check_concordance_index,
    check_cox_partial_likelihood_loss,
    check_kaplan_meier,
    check_restricted_mean_survival_time,
    check_treatment_effect_t_learner,
)
from medai_lessons.grading.core import SAMPLE_ARGS  # noqa: E402

CHAPTER_7 = ["kaplan_meier", "concordance_index", "cox_partial_likelihood_loss",
             "restricted_mean_survival_time", "treatment_effect_t_learner"]
HAND = "6 patients by hand, an event and a censoring at t = 2"


def test_chapter_7_exercises_are_registered_with_their_references_and_sample_arguments():
    for name in CHAPTER_7:
        checker, reference = EXERCISES[name]
        assert checker.__name__ == f"check_{name}"
        assert reference is getattr(survival, name)
        reference(*SAMPLE_ARGS[name]())


# --- kaplan_meier ----------------------------------------------------------------------------


def km_drops_censored(time, event):
    time, event = np.asarray(time, float), np.asarray(event)
    time = time[event == 1]                       # "patients who left the study" removed
    times = np.unique(time)
    surv, s = [], 1.0
    for t in times:
        s *= 1 - np.sum(time == t) / np.sum(time >= t)
        surv.append(s)
    return times, np.array(surv)


def km_risk_set_strict(time, event):
    time, event = np.asarray(time, float), np.asarray(event)
    times = np.unique(time[event == 1])
    surv, s = [], 1.0
    for t in times:
        d = np.sum((time == t) & (event == 1))
        n = np.sum(time > t) + d                  # those censored at t left out
        s *= 1 - d / n
        surv.append(s)
    return times, np.array(surv)


def km_every_time(time, event):
    time, event = np.asarray(time, float), np.asarray(event)
    times = np.unique(time)
    surv, s = [], 1.0
    for t in times:
        s *= 1 - np.sum((time == t) & (event == 1)) / np.sum(time >= t)
        surv.append(s)
    return times, np.array(surv)


def km_censored_as_events(time, event):
    time, event = np.asarray(time, float), np.asarray(event)
    times = np.unique(time[event == 1])
    surv = np.cumprod([1 - np.sum(time == t) / np.sum(time >= t) for t in times])
    return times, surv


def km_library(time, event):
    x, y = kaplan_meier_estimator(np.asarray(event).astype(bool), np.asarray(time, float))
    event_times = np.unique(np.asarray(time, float)[np.asarray(event) == 1])
    return event_times, y[np.searchsorted(x, event_times)]


def km_sorted_loop(time, event):
    order = np.argsort(time, kind="stable")
    time, event = np.asarray(time, float)[order], np.asarray(event)[order]
    times, surv, s, i, n = [], [], 1.0, 0, len(time)
    while i < n:
        j = i
        while j < n and time[j] == time[i]:
            j += 1
        d = int(event[i:j].sum())
        if d:
            s *= 1 - d / (n - i)
            times.append(time[i])
            surv.append(s)
        i = j
    return np.array(times), np.array(surv)


# --- concordance_index -----------------------------------------------------------------------


def _pairs(time, event, risk, comparable_rule, tie=0.5, sign=1):
    time, event, risk = np.asarray(time, float), np.asarray(event), np.asarray(risk, float)
    num = den = 0.0
    for i in range(len(time)):
        for j in range(len(time)):
            if i != j and comparable_rule(time[i], event[i], time[j], event[j]):
                den += 1
                if risk[i] == risk[j]:
                    num += tie
                elif sign * (risk[i] - risk[j]) > 0:
                    num += 1
    return num / den


def c_counts_censored_pairs(time, event, risk):
    return _pairs(time, event, risk, lambda ti, ei, tj, ej: ti < tj)


def c_ties_count_zero(time, event, risk):
    return _pairs(time, event, risk,
                  lambda ti, ei, tj, ej: ei == 1 and (ti < tj or (ti == tj and ej == 0)), tie=0)


def c_reversed(time, event, risk):
    return _pairs(time, event, risk,
                  lambda ti, ei, tj, ej: ei == 1 and (ti < tj or (ti == tj and ej == 0)),
                  sign=-1)


def c_strictly_later_only(time, event, risk):
    return _pairs(time, event, risk, lambda ti, ei, tj, ej: ei == 1 and ti < tj)


def c_library(time, event, risk):
    return concordance_index_censored(np.asarray(event).astype(bool), np.asarray(time, float),
                                      np.asarray(risk, float))[0]


def c_double_loop(time, event, risk):
    return _pairs(time, event, risk,
                  lambda ti, ei, tj, ej: ei == 1 and (ti < tj or (ti == tj and ej == 0)))


# --- cox_partial_likelihood_loss --------------------------------------------------------------


def _flat(time, event, log_risk):
    return (np.asarray(time, float).ravel(), np.asarray(event, float).ravel(),
            np.asarray(log_risk, float).ravel())


def cox_summed(time, event, log_risk):
    t, e, r = _flat(time, event, log_risk)
    denom = np.array([logsumexp(r[t >= ti]) for ti in t])
    return -np.sum(e * (r - denom))


def cox_mean_over_patients(time, event, log_risk):
    t, e, r = _flat(time, event, log_risk)
    denom = np.array([logsumexp(r[t >= ti]) for ti in t])
    return -np.mean(e * (r - denom))


def cox_no_risk_set(time, event, log_risk):
    t, e, r = _flat(time, event, log_risk)
    return -np.sum(e * (r - logsumexp(r))) / max(e.sum(), 1)


def cox_overflows(time, event, log_risk):
    t, e, r = _flat(time, event, log_risk)
    denom = np.array([np.log(np.sum(np.exp(r[t >= ti]))) for ti in t])
    return -np.sum(e * (r - denom)) / max(e.sum(), 1)


def cox_keras_ops(time, event, log_risk):
    from keras import ops

    r = ops.reshape(ops.convert_to_tensor(np.asarray(log_risk, "float64")), (-1,))
    t = ops.reshape(ops.cast(ops.convert_to_tensor(time), "float64"), (-1,))
    e = ops.reshape(ops.cast(ops.convert_to_tensor(event), "float64"), (-1,))
    mask = ops.expand_dims(t, 0) >= ops.expand_dims(t, 1)
    scores = ops.where(mask, ops.expand_dims(r, 0), -np.inf)
    return -ops.sum(e * (r - ops.logsumexp(scores, axis=1))) / ops.maximum(ops.sum(e), 1.0)


def cox_sorted_cumsum(time, event, log_risk):
    t, e, r = _flat(time, event, log_risk)
    if e.sum() == 0:
        return 0.0
    order = np.argsort(-t, kind="stable")
    t, e, r = t[order], e[order], r[order]
    running = np.logaddexp.accumulate(r)
    # for tied times the risk set is everyone up to the last of the tie
    last = np.searchsorted(-t, -t, side="right") - 1
    return float(-np.sum(e * (r - running[last])) / e.sum())


# --- restricted_mean_survival_time ------------------------------------------------------------


def _km(time, event):
    time, event = np.asarray(time, float), np.asarray(event)
    times = np.unique(time[event == 1])
    surv = np.cumprod([1 - np.sum((time == t) & (event == 1)) / np.sum(time >= t)
                       for t in times])
    return times, np.asarray(surv, float)


def rmst_naive_mean(time, event, tau):
    return float(np.mean(np.minimum(time, tau)))


def rmst_trapezoid(time, event, tau):
    times, surv = _km(time, event)
    x = np.concatenate([[0.0], times[times < tau], [tau]])
    y = np.interp(x, np.concatenate([[0.0], times]), np.concatenate([[1.0], surv]))
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))  # np.trapezoid: NumPy 2 only


def rmst_drops_censored(time, event, tau):
    time = np.asarray(time, float)[np.asarray(event) == 1]
    times, surv = _km(time, np.ones_like(time))
    b = times < tau
    return float(np.sum(np.concatenate([[1.0], surv[b]])
                        * np.diff(np.concatenate([[0.0], times[b], [tau]]))))


def rmst_stops_at_last_event(time, event, tau):
    times, surv = _km(time, event)
    b = times < tau
    knots = np.concatenate([[0.0], times[b]])
    if not b.any():
        return float(tau)
    return float(np.sum(np.concatenate([[1.0], surv[b]])[:-1] * np.diff(knots)))


def rmst_library(time, event, tau):
    x, y = kaplan_meier_estimator(np.asarray(event).astype(bool), np.asarray(time, float))
    keep = x < tau
    knots = np.concatenate([[0.0], x[keep], [tau]])
    return float(np.sum(np.concatenate([[1.0], y[keep]]) * np.diff(knots)))


# --- treatment_effect_t_learner ---------------------------------------------------------------


def _arm_survival(X, time, event, rows, X_new, horizon, alpha):
    model = CoxPHSurvivalAnalysis(alpha=alpha).fit(
        X[rows], Surv.from_arrays(event[rows] == 1, time[rows]))
    return np.array([fn(horizon) for fn in model.predict_survival_function(X_new)])


def t_sign_reversed(X, time, event, treated, X_new, horizon, alpha=0.1):
    t = np.asarray(treated) == 1
    return (_arm_survival(X, time, event, ~t, X_new, horizon, alpha)
            - _arm_survival(X, time, event, t, X_new, horizon, alpha))


def t_s_learner(X, time, event, treated, X_new, horizon, alpha=0.1):
    both = np.column_stack([X, treated])
    rows = np.ones(len(X), bool)
    on = _arm_survival(both, time, event, rows, np.column_stack([X_new, np.ones(len(X_new))]),
                       horizon, alpha)
    off = _arm_survival(both, time, event, rows, np.column_stack([X_new, np.zeros(len(X_new))]),
                        horizon, alpha)
    return on - off


def t_predicts_training_rows(X, time, event, treated, X_new, horizon, alpha=0.1):
    t = np.asarray(treated) == 1
    return (_arm_survival(X, time, event, t, X, horizon, alpha)
            - _arm_survival(X, time, event, ~t, X, horizon, alpha))


def t_ignores_alpha(X, time, event, treated, X_new, horizon, alpha=0.1):
    t = np.asarray(treated) == 1
    return (_arm_survival(X, time, event, t, X_new, horizon, 0.0)
            - _arm_survival(X, time, event, ~t, X_new, horizon, 0.0))


def t_return_array(X, time, event, treated, X_new, horizon, alpha=0.1):
    curves = {}
    for arm in (0, 1):
        rows = np.asarray(treated) == arm
        model = CoxPHSurvivalAnalysis(alpha=alpha).fit(
            np.asarray(X)[rows], Surv.from_arrays(np.asarray(event)[rows] == 1,
                                                  np.asarray(time)[rows]))
        grid = model.unique_times_
        surv = model.predict_survival_function(X_new, return_array=True)
        k = np.searchsorted(grid, horizon, side="right") - 1
        curves[arm] = surv[:, k] if k >= 0 else np.ones(len(X_new))
    return curves[1] - curves[0]


WRONG_VERSIONS = [
    (check_kaplan_meier, km_drops_censored, HAND, r"censored patients were dropped"),
    (check_kaplan_meier, km_risk_set_strict, HAND, r"time >= t, not time > t plus"),
    (check_kaplan_meier, km_every_time, HAND, r"only the times at which an event"),
    (check_kaplan_meier, km_censored_as_events, HAND, r"not an event"),
    (check_concordance_index, c_counts_censored_pairs, "6 patients by hand, one tie in risk",
     r"earlier time is a censoring cannot be ordered"),
    (check_concordance_index, c_ties_count_zero, "6 patients by hand, one tie in risk",
     r"counts 1/2"),
    (check_concordance_index, c_reversed, "6 patients by hand, one tie in risk",
     r"HIGHER risk"),
    (check_concordance_index, c_strictly_later_only, "6 patients by hand, one tie in risk",
     r"censored at exactly the time"),
    (check_cox_partial_likelihood_loss, cox_summed, HAND, r"divide by the number of events"),
    (check_cox_partial_likelihood_loss, cox_mean_over_patients, HAND,
     r"number of EVENTS"),
    (check_cox_partial_likelihood_loss, cox_no_risk_set, HAND, r"only over the risk set"),
    (check_cox_partial_likelihood_loss, cox_overflows,
     "large log-risks (a network's raw output), up to 800", r"log-sum-exp"),
    (check_restricted_mean_survival_time, rmst_naive_mean, "6 patients by hand, tau = 3.7",
     r"treats a censoring as the end of life"),
    (check_restricted_mean_survival_time, rmst_trapezoid, "6 patients by hand, tau = 3.7",
     r"rectangles, not trapezoids"),
    (check_restricted_mean_survival_time, rmst_drops_censored, "6 patients by hand, tau = 3.7",
     r"censored patients were dropped"),
    (check_restricted_mean_survival_time, rmst_stops_at_last_event,
     "6 patients by hand, tau = 3.7", r"carry it on up to tau"),
    (check_treatment_effect_t_learner, t_sign_reversed,
     "a seeded trial of 300 patients, 2 covariates, horizon 300", r"MINUS"),
    (check_treatment_effect_t_learner, t_s_learner,
     "a seeded trial of 300 patients, 2 covariates, horizon 300", r"S-learner"),
    (check_treatment_effect_t_learner, t_predicts_training_rows,
     "a seeded trial of 300 patients, 2 covariates, horizon 300", r"predict on X_new"),
    (check_treatment_effect_t_learner, t_ignores_alpha,
     "a seeded trial of 300 patients, 2 covariates, horizon 300", r"pass alpha on"),
]

CORRECT_VARIANTS = [
    (check_kaplan_meier, km_library),
    (check_kaplan_meier, km_sorted_loop),
    (check_concordance_index, c_library),
    (check_concordance_index, c_double_loop),
    (check_cox_partial_likelihood_loss, cox_keras_ops),
    (check_cox_partial_likelihood_loss, cox_sorted_cumsum),
    (check_restricted_mean_survival_time, rmst_library),
    (check_treatment_effect_t_learner, t_return_array),
]

test_checker_rejects_realistic_mistake = rejects_mistakes(WRONG_VERSIONS)
test_every_chapter_7_exercise_has_at_least_three_wrong_versions = has_wrong_versions(
    CHAPTER_7, WRONG_VERSIONS)
test_checker_accepts_correct_variant = accepts_variants(CORRECT_VARIANTS)


def test_a_stub_raises_not_implemented_through_the_checker():
    def stub(time, event):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        check_kaplan_meier(stub)


def test_a_loss_that_changes_its_inputs_in_place_fails():
    def sorts_in_place(time, event, log_risk):
        time.sort()
        return cox_keras_ops(time, event, log_risk)

    with pytest.raises(AssertionError, match="changed in place"):
        check_cox_partial_likelihood_loss(sorts_in_place)


@pytest.mark.parametrize("name", CHAPTER_7)
def test_own_implementation_rejects_calls_into_the_course_code(name):
    reference = getattr(survival, name)

    def wrapper(*args):
        return reference(*args)

    with pytest.raises(AssertionError, match="reference"):
        assert_own_implementation(wrapper, name)


def test_rmst_checker_needs_no_numpy_2_function(monkeypatch):
    """NumPy 1.26 (allowed by pyproject.toml) has no np.trapezoid: the checker, which computes
    the trapezoid mistake itself, must neither crash on a right answer nor lose that hint."""
    if hasattr(np, "trapezoid"):
        x, y = np.array([0.0, 1.0, 2.5, 3.7]), np.array([1.0, 0.8, 0.5, 0.5])
        assert np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2) == pytest.approx(np.trapezoid(y, x))
        monkeypatch.delattr(np, "trapezoid")
    check_restricted_mean_survival_time(survival.restricted_mean_survival_time, strict=True)
    with pytest.raises(AssertionError, match="rectangles, not trapezoids"):
        check_restricted_mean_survival_time(rmst_trapezoid)
