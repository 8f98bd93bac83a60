"""Checkers for chapter 7, prognosis and treatment decisions: Kaplan-Meier, Harrell's C, the
Cox partial likelihood as a loss, the restricted mean survival time and a T-learner of
treatment benefit.

Each ``check_*`` takes the learner's function, calls it on plain data only (NumPy arrays and
numbers: the grader may run in another process than the learner's kernel) and raises an
``AssertionError`` on the first case that fails, naming the case, the expected and the
returned value, and a hint. When the answer equals what a usual mistake computes (censored
patients dropped, censored pairs counted, a loss without its risk set, a sum instead of a
mean...) the hint names that mistake. ``strict=True`` adds more cases of the same kinds.
"""

from __future__ import annotations

import numpy as np

from medai_lessons import survival as ref
from medai_lessons.grading.core import SAMPLE_ARGS, _short, as_array, call, case_rng, fail

# --- data for the cases ----------------------------------------------------------------------


def _by_hand():
    """Six patients: an event and a censoring at t = 2."""
    return np.array([1.0, 2.0, 2.0, 3.0, 4.0, 5.0]), np.array([1, 1, 0, 1, 0, 1])


def _tied(n: int, seed: int, censored: float = 0.4, t_max: int = 12):
    """Integer follow-up times (many ties, events and censorings at the same times), shuffled."""
    rng = case_rng(700 + seed)
    time = rng.integers(1, t_max, n).astype(float)
    event = (rng.random(n) >= censored).astype(np.int64)
    return time, event


def _continuous(n: int, seed: int, censored: float = 0.3):
    rng = case_rng(800 + seed)
    return rng.exponential(365.0, n).round(1) + 1.0, (rng.random(n) >= censored).astype(np.int64)


def _inputs(time, event, *extra) -> str:
    parts = [f"time={_short(np.asarray(time), 70)}", f"event={_short(np.asarray(event), 70)}"]
    return ", ".join(parts + [_short(e, 70) if isinstance(e, np.ndarray) else str(e)
                              for e in extra])


# --- kaplan_meier ----------------------------------------------------------------------------


def _km_variants(time, event) -> dict[str, tuple[tuple[np.ndarray, np.ndarray], str]]:
    """What the usual mistakes return, with their hints."""
    time, event = np.asarray(time, float), np.asarray(event).astype(bool)
    times = np.unique(time[event])
    d = np.array([np.sum(event & (time == t)) for t in times])
    out = {}
    kept = time[event]
    at_risk_kept = np.array([np.sum(kept >= t) for t in times])
    out["censored dropped"] = (
        (times, np.cumprod(1 - d / at_risk_kept)),
        "censored patients were dropped: a patient censored at time c is still at risk at every "
        "event time up to and including c, so count them in n (the risk set), not in d.")
    strictly = np.array([np.sum(time > t) for t in times])
    out["censored at t left out"] = (
        (times, np.cumprod(1 - d / (strictly + d))),
        "a patient censored at an event time t was still followed at t: the risk set is "
        "every patient with time >= t, not time > t plus the events.")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["risk set after t"] = (
            (times, np.cumprod(1 - d / np.where(strictly > 0, strictly, np.nan))),
            "the risk set at t holds every patient with follow-up >= t (the patients who die "
            "at t were alive just before it): use time >= t, not time > t.")
    d_all = np.array([np.sum(time == t) for t in times])
    at_risk = np.array([np.sum(time >= t) for t in times])
    out["censored counted as events"] = (
        (times, np.cumprod(1 - d_all / at_risk)),
        "a censored patient is not an event: d counts only patients with event == 1 at t.")
    return out


EVERY_TIME_HINT = (
    "return only the times at which an event was observed (np.unique(time[event == 1])); the "
    "curve does not step at a censoring.")


def _km_cases(strict: bool):
    cases = [("6 patients by hand, an event and a censoring at t = 2", *_by_hand()),
             ("40 seeded patients, tied times, 40 % censored", *_tied(40, 0)),
             ("25 patients, nobody censored", *_tied(25, 1, censored=0.0)),
             ("no event at all (everyone censored)", np.array([3.0, 1.0, 2.0]),
              np.array([0, 0, 0]))]
    if strict:
        cases += [("300 seeded patients, tied times, 60 % censored", *_tied(300, 2, 0.6)),
                  ("80 patients with times in days, 30 % censored", *_continuous(80, 3)),
                  ("one event among censored patients", np.array([5.0, 2.0, 8.0, 2.0]),
                   np.array([0, 1, 0, 0]))]
    return cases


def _pair(out, exercise: str, case: str, names: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(out, dict) or not isinstance(out, tuple | list) or len(out) != 2:
        fail(exercise, case, expected=f"a tuple ({names})",
             got=type(out).__name__ if not isinstance(out, tuple | list) else
             f"{type(out).__name__} of {len(out)} items",
             hint=f"end with `return {names}`.")
    return (as_array(out[0], exercise, case).reshape(-1),
            as_array(out[1], exercise, case).reshape(-1))


def check_kaplan_meier(kaplan_meier, strict: bool = False) -> None:
    """``kaplan_meier(time, event)`` returns ``(times, survival)``: the distinct times at
    which an event was observed, ascending, and the Kaplan-Meier survival just after each
    (tolerance 1e-9). Censored patients stay in the risk set up to their censoring time;
    with no event, two empty arrays."""
    exercise = "kaplan_meier"
    for case, time, event in _km_cases(strict):
        times_got, surv_got = _pair(call(kaplan_meier, time, event, exercise=exercise,
                                         case=case), exercise, case, "times, survival")
        times_want, surv_want = ref.kaplan_meier(time, event)
        inputs = _inputs(time, event)
        if times_got.shape != times_want.shape or not np.allclose(times_got, times_want):
            hint = ("times: the distinct event times, ascending (np.unique(time[event == 1]))"
                    + ("; with no event, return two empty arrays." if times_want.size == 0
                       else "."))
            if times_got.shape == np.unique(time).shape and times_want.size:
                hint = EVERY_TIME_HINT
            fail(exercise, f"{case}: times", inputs=inputs, expected=times_want, got=times_got,
                 hint=hint)
        if surv_got.shape == surv_want.shape and np.allclose(surv_got, surv_want, rtol=1e-9,
                                                             atol=1e-12):
            continue
        hint = ("S(t) = S(t-) x (1 - d / n) at each event time: d events at t, n patients "
                "with follow-up >= t.")
        for (_, values), variant_hint in _km_variants(time, event).values():
            if values.shape == surv_got.shape and np.allclose(surv_got, values, rtol=1e-9,
                                                              equal_nan=True):
                hint = variant_hint
                break
        else:
            before = np.concatenate([[1.0], surv_want[:-1]])
            if surv_got.shape == before.shape and np.allclose(surv_got, before):
                hint = ("that is the survival just before each event time: multiply in the "
                        "factor (1 - d / n) of that time too.")
        fail(exercise, f"{case}: survival (tolerance: rtol=1e-09)", inputs=inputs,
             expected=surv_want, got=surv_got, hint=hint)


# --- concordance_index -----------------------------------------------------------------------


def _c_variants(time, event, risk) -> dict[str, tuple[float, str]]:
    time, event = np.asarray(time, float), np.asarray(event).astype(bool)
    risk = np.asarray(risk, float)
    earlier = time[:, None] < time[None, :]
    same = time[:, None] == time[None, :]
    diff = risk[:, None] - risk[None, :]
    tied, higher = diff == 0, diff > 0

    def c(comparable, tie_weight=0.5, sign=1):
        n = comparable.sum()
        if n == 0:
            return np.nan
        conc = (higher if sign > 0 else diff < 0) & ~tied
        return float(((conc & comparable).sum() + tie_weight * (tied & comparable).sum()) / n)

    right = event[:, None] & (earlier | (same & ~event[None, :]))
    return {
        "censored pairs counted": (
            c(earlier),
            "a pair whose earlier time is a censoring cannot be ordered (that patient might "
            "have lived longer than the other): only pairs where the earlier patient had the "
            "event count."),
        "censored pairs counted, ties kept": (
            c(earlier | (same & event[:, None] & ~event[None, :])),
            "a pair whose earlier time is a censoring cannot be ordered (that patient might "
            "have lived longer than the other): only pairs where the earlier patient had the "
            "event count."),
        "ties in risk as discordant": (
            c(right, 0.0), "a tie in risk counts 1/2 (neither right nor wrong), not 0."),
        "ties in risk as concordant": (
            c(right, 1.0), "a tie in risk counts 1/2, not 1."),
        "risk read the wrong way": (
            c(right, 0.5, sign=-1),
            "higher risk means an earlier event: the pair is concordant when the patient with "
            "the event has the HIGHER risk (a C of 1 - C means the sign is reversed)."),
        "tied event times counted": (
            c(event[:, None] & (earlier | (same & ~np.eye(len(time), dtype=bool)))),
            "two patients with events at the same time cannot be ordered; a patient censored "
            "at the time of an event counts as later (comparable), an event does not."),
        "censored at the same time left out": (
            c(event[:, None] & earlier),
            "a patient censored at exactly the time of another's event was still followed "
            "then: that pair is comparable (time_j >= time_i with j censored)."),
    }


def _c_cases(strict: bool):
    cases = [("6 patients by hand, one tie in risk", *_by_hand(),
              np.array([0.9, 0.5, 0.5, 0.7, 0.1, 0.2])),
             ("60 seeded patients, tied times and risks, 40 % censored", *_tied(60, 4),
              np.round(case_rng(4).normal(size=60), 1)),
             ("50 patients in days, continuous risks", *_continuous(50, 5),
              case_rng(5).normal(size=50))]
    if strict:
        cases += [("400 seeded patients, tied times and risks, 70 % censored",
                   *_tied(400, 6, 0.7), np.round(case_rng(6).normal(size=400), 1)),
                  ("8 patients, every risk equal", *_tied(8, 7, 0.3), np.zeros(8)),
                  ("120 patients in days, integer risk scores", *_continuous(120, 8),
                   case_rng(8).integers(0, 4, 120).astype(float))]
    return cases


def check_concordance_index(concordance_index, strict: bool = False) -> None:
    """``concordance_index(time, event, risk)`` returns Harrell's C as a float (tolerance
    1e-9): comparable pairs are (i, j) with an event for i and time_j > time_i, or time_j ==
    time_i with j censored; concordant when risk_i > risk_j; ties in risk count 1/2."""
    exercise = "concordance_index"
    for case, time, event, risk in _c_cases(strict):
        got = call(concordance_index, time, event, risk, exercise=exercise, case=case)
        want = ref.concordance_index(time, event, risk)
        value = float(as_array(got, exercise, case).reshape(-1)[0]) \
            if as_array(got, exercise, case).size == 1 else None
        inputs = _inputs(time, event, risk)
        if value is None:
            fail(exercise, case, inputs=inputs, expected=f"one number, {want:.6f}",
                 got=_short(np.asarray(got)), hint="return one float: the share of comparable "
                                                   "pairs that are concordant.")
        if np.isclose(value, want, rtol=1e-9, atol=1e-12):
            continue
        hint = ("C = (concordant + 0.5 x tied in risk) / comparable pairs; comparable: the "
                "earlier patient had the event.")
        for variant, variant_hint in _c_variants(time, event, risk).values():
            if np.isclose(value, variant, rtol=1e-9, atol=1e-12):
                hint = variant_hint
                break
        fail(exercise, f"{case} (tolerance: rtol=1e-09)", inputs=inputs, expected=f"{want:.9f}",
             got=f"{value:.9f}", hint=hint)


# --- cox_partial_likelihood_loss --------------------------------------------------------------


def _cox_variants(time, event, log_risk) -> dict[str, tuple[float, str]]:
    time, event = np.asarray(time, float).reshape(-1), np.asarray(event, float).reshape(-1)
    lr = np.asarray(log_risk, float).reshape(-1)
    n_events = max(event.sum(), 1.0)
    shift = lr.max()

    def lse(mask):
        return shift + np.log(np.sum(np.where(mask, np.exp(lr - shift), 0.0), axis=1))

    at_risk = time[None, :] >= time[:, None]
    terms = event * (lr - lse(at_risk))
    with np.errstate(divide="ignore"):
        strictly = lse((time[None, :] > time[:, None]) | np.eye(time.size, dtype=bool))
    everyone = lse(np.ones_like(at_risk))
    return {
        "summed": (-terms.sum(), "that is the sum over events: divide by the number of events "
                                 "(a mean), so the loss does not grow with the batch size."),
        "mean over patients": (-terms.sum() / time.size,
                               "that is a mean over all patients: divide by the number of "
                               "EVENTS (censored patients add no term)."),
        "no risk set": (-np.sum(event * (lr - everyone)) / n_events,
                        "the denominator sums over everyone: it must sum only over the risk "
                        "set, patients with time_j >= time_i (still followed at t_i)."),
        "ties left out of the risk set": (
            -np.sum(event * (lr - strictly)) / n_events,
            "Breslow's rule: every patient with time_j >= time_i is in the risk set, those "
            "with the same time included (use >=, not >)."),
        "censored patients as events": (
            -np.sum(lr - lse(at_risk)) / time.size,
            "only patients with event == 1 contribute a term (multiply by event)."),
        "sign": (np.sum(terms) / n_events,
                 "that is the mean partial log-likelihood: the loss is its NEGATIVE."),
    }


def _cox_cases(strict: bool):
    rng = case_rng(77)
    t6, e6 = _by_hand()
    t40, e40 = _tied(40, 9)
    t30, e30 = _tied(30, 10, 0.5)
    cases = [("6 patients by hand, an event and a censoring at t = 2", t6, e6,
              np.array([0.5, -0.2, 0.1, 0.3, -1.0, 0.0])),
             ("40 seeded patients, tied times, 40 % censored", t40, e40, rng.normal(size=40)),
             ("as a Keras batch gives them: float32, log-risk of shape (n, 1)",
              t30.astype(np.float32), e30.astype(np.float32),
              rng.normal(size=(30, 1)).astype(np.float32)),
             ("large log-risks (a network's raw output), up to 800", t40, e40,
              rng.uniform(-800, 800, 40)),
             ("no event in the batch: the loss is 0", np.array([2.0, 3.0, 1.0]),
              np.array([0, 0, 0]), np.array([0.3, -0.1, 2.0]))]
    if strict:
        t200, e200 = _tied(200, 11, 0.6)
        td, ed = _continuous(90, 12)
        cases += [("200 seeded patients, tied times, 60 % censored", t200, e200,
                   rng.normal(0, 2, size=200)),
                  ("90 patients in days, float32, log-risk of shape (n, 1)",
                   td.astype(np.float32), ed.astype(np.float32),
                   rng.normal(size=(90, 1)).astype(np.float32)),
                  ("every time tied", np.full(10, 4.0), np.array([1, 0] * 5),
                   rng.normal(size=10))]
    return cases


def check_cox_partial_likelihood_loss(cox_partial_likelihood_loss, strict: bool = False) -> None:
    """``cox_partial_likelihood_loss(time, event, log_risk)`` returns the negative mean (over
    events) Cox partial log-likelihood with Breslow ties, one number (rtol 1e-5: float32
    cases; 0 when there is no event), finite for log-risks up to +-800. Checked on values;
    the chapter's applied cell trains a Keras model with it."""
    exercise = "cox_partial_likelihood_loss"
    for case, time, event, log_risk in _cox_cases(strict):
        got = call(cox_partial_likelihood_loss, time, event, log_risk, exercise=exercise,
                   case=case, hint="use keras.ops (ops.where, ops.logsumexp, ops.sum...) or "
                                   "NumPy on the arrays; log_risk may have shape (n, 1): "
                                   "reshape it to (n,).")
        want = ref.cox_partial_likelihood_loss(time, event, log_risk)
        inputs = _inputs(time, event, np.asarray(log_risk))
        try:
            arr = np.asarray(got, dtype=np.float64)
        except (TypeError, ValueError):
            fail(exercise, case, inputs=inputs, got=repr(got)[:80],
                 hint="return one number (a float or a scalar tensor).")
        if arr.size != 1:
            fail(exercise, case, inputs=inputs, expected=f"one number, {want:.6g}",
                 got=f"shape {arr.shape}",
                 hint="reduce to one number: the loss is a mean over events. (A log-risk of "
                      "shape (n, 1) broadcast against time of shape (n,) gives an (n, n) "
                      "array: reshape it to (n,) first.)")
        value = float(arr.reshape(-1)[0])
        if np.isclose(value, want, rtol=1e-5, atol=1e-6):
            continue
        if not np.isfinite(value):
            hint = ("exp() overflowed: subtract the largest log-risk before exponentiating (a "
                    "log-sum-exp), or use ops.logsumexp / scipy.special.logsumexp.")
        else:
            hint = ("-(1 / events) x sum over events of [log_risk_i - log(sum over the risk set "
                    "of exp(log_risk_j))]; risk set: time_j >= time_i.")
            for variant, variant_hint in _cox_variants(time, event, log_risk).values():
                if np.isclose(value, variant, rtol=1e-5, atol=1e-6):
                    hint = variant_hint
                    break
        fail(exercise, f"{case} (tolerance: rtol=1e-05, atol=1e-06)", inputs=inputs,
             expected=f"{want:.8g}", got=f"{value:.8g}", hint=hint)


# --- restricted_mean_survival_time ------------------------------------------------------------


def _rmst_variants(time, event, tau) -> dict[str, tuple[float, str]]:
    time, event = np.asarray(time, float), np.asarray(event).astype(bool)
    times, surv = ref.kaplan_meier(time, event)

    def area(t, s, upto):
        b = t < upto
        knots = np.concatenate([[0.0], t[b], [upto]])
        level = np.concatenate([[1.0], s[b]])
        return float(np.sum(level * np.diff(knots)))

    kept_times, kept_surv = ref.kaplan_meier(time[event], np.ones(int(event.sum())))
    last = float(times.max()) if times.size else tau
    return {
        "censored dropped": (area(kept_times, kept_surv, tau),
                             "censored patients were dropped from the curve: use the "
                             "Kaplan-Meier curve of everyone (they are at risk until censored)."),
        "naive mean": (float(np.mean(np.minimum(time, tau))),
                       "the mean of min(time, tau) treats a censoring as the end of life: "
                       "integrate the Kaplan-Meier curve instead."),
        "trapezoid": (_trapezoid_area(times, surv, tau),
                      "the Kaplan-Meier curve is a step function: it stays level between "
                      "event times (rectangles, not trapezoids)."),
        "tau ignored": (area(times, surv, last),
                        "integrate from 0 to tau, not to the last event time."),
        "stops at the last event": (area(times, surv, float(times[times < tau].max()))
                                    if np.any(times < tau) else np.nan,
                                    "after the last event time the curve stays at its last "
                                    "level: carry it on up to tau."),
    }


def _rmst_cases(strict: bool):
    t6, e6 = _by_hand()
    cases = [("6 patients by hand, tau = 3.7", t6, e6, 3.7),
             ("40 seeded patients, tied times, tau = 8", *_tied(40, 13), 8.0),
             ("tau beyond the last event time", t6, e6, 9.0),
             ("tau before the first event", t6, e6, 0.5)]
    if strict:
        cases += [("300 patients in days, 30 % censored, tau = 365", *_continuous(300, 14),
                   365.0),
                  ("60 seeded patients, tau exactly an event time", *_tied(60, 15), 5.0),
                  ("no event: the area is tau", np.array([4.0, 6.0]), np.array([0, 0]), 3.0)]
    return cases


def check_restricted_mean_survival_time(restricted_mean_survival_time,
                                        strict: bool = False) -> None:
    """``restricted_mean_survival_time(time, event, tau)`` returns the area under the
    Kaplan-Meier step function from 0 to ``tau`` (one float, rtol 1e-9)."""
    exercise = "restricted_mean_survival_time"
    for case, time, event, tau in _rmst_cases(strict):
        got = call(restricted_mean_survival_time, time, event, tau, exercise=exercise, case=case)
        want = ref.restricted_mean_survival_time(time, event, tau)
        inputs = _inputs(time, event, f"tau={tau}")
        arr = as_array(got, exercise, case)
        if arr.size != 1:
            fail(exercise, case, inputs=inputs, expected=f"one number, {want:.6g}",
                 got=f"shape {arr.shape}", hint="return one float: the area up to tau.")
        value = float(arr.reshape(-1)[0])
        if np.isclose(value, want, rtol=1e-9, atol=1e-12):
            continue
        hint = ("the sum of rectangles: survival level x length of each interval between 0, "
                "the event times before tau, and tau.")
        for variant, variant_hint in _rmst_variants(time, event, tau).values():
            if np.isfinite(variant) and np.isclose(value, variant, rtol=1e-9, atol=1e-12):
                hint = variant_hint
                break
        fail(exercise, f"{case} (tolerance: rtol=1e-09)", inputs=inputs, expected=f"{want:.9g}",
             got=f"{value:.9g}", hint=hint)


# --- treatment_effect_t_learner ---------------------------------------------------------------


def _trial(n: int, d: int, seed: int, heterogeneous: bool = True):
    """A seeded randomised trial: the treatment lowers the hazard more when x0 > 0."""
    rng = case_rng(900 + seed)
    X = rng.normal(size=(n, d))
    treated = rng.permutation(np.arange(n) % 2)
    effect = np.where(X[:, 0] > 0, 0.35, 0.8) if heterogeneous else 0.6
    hazard = 0.002 * np.exp(0.5 * X[:, 1 % d]) * np.where(treated == 1, effect, 1.0)
    event_time = rng.exponential(1 / hazard)
    censor = rng.uniform(200, 1000, n)
    time = np.minimum(event_time, censor).round(0) + 1.0
    event = (event_time <= censor).astype(np.int64)
    X_new = rng.normal(size=(min(n // 5, 25), d))
    return X, time, event, treated, X_new


def _trapezoid_area(times, surv, tau) -> float:
    """The area under the Kaplan-Meier points joined by straight lines up to ``tau`` (a wrong
    RMST). Summed by hand: ``np.trapezoid`` is NumPy 2 only (1.26 has ``np.trapz``)."""
    x = np.concatenate([[0.0], times[times < tau], [tau]])
    y = np.interp(x, np.concatenate([[0.0], times]), np.concatenate([[1.0], surv]))
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def _t_cases(strict: bool):
    cases = [("a seeded trial of 300 patients, 2 covariates, horizon 300", 300, 2, 0, 300.0,
              {}),
             ("a seeded trial of 200 patients, 3 covariates, horizon 150, alpha 1.0", 200, 3, 1,
              150.0, {"alpha": 1.0})]
    if strict:
        cases += [("a seeded trial of 600 patients, 4 covariates, horizon 400", 600, 4, 2,
                   400.0, {}),
                  ("a seeded trial of 150 patients, 1 covariate, horizon 100, alpha 0.5", 150,
                   1, 3, 100.0, {"alpha": 0.5})]
    return cases


def _t_variants(X, time, event, treated, X_new, horizon, alpha):
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.util import Surv

    def surv(rows, features=X, new=X_new, a=alpha):
        model = CoxPHSurvivalAnalysis(alpha=a).fit(
            features[rows], Surv.from_arrays(event[rows].astype(bool), time[rows]))
        return np.array([fn(horizon) for fn in model.predict_survival_function(new)])

    t = treated.astype(bool)
    right = ref.treatment_effect_t_learner(X, time, event, treated, X_new, horizon, alpha)
    both = np.column_stack([X, treated])
    s_learner = surv(np.ones_like(t), both, np.column_stack([X_new, np.ones(len(X_new))])) - \
        surv(np.ones_like(t), both, np.column_stack([X_new, np.zeros(len(X_new))]))
    return {
        "sign": (-right, "benefit = survival if treated MINUS survival if not treated (positive "
                         "when the treatment helps)."),
        "S-learner": (s_learner, "that is one model for both arms with treatment as a "
                                 "covariate (an S-learner): fit one Cox model on the treated "
                                 "patients and another on the controls."),
        "arms swapped": (surv(~t) - surv(t), "the model of the treated arm is fitted on "
                                             "treated == 1 rows, the control model on "
                                             "treated == 0 rows."),
        "alpha ignored": (surv(t, a=0.0) - surv(~t, a=0.0),
                          "pass alpha on: CoxPHSurvivalAnalysis(alpha=alpha) (its own default "
                          "is 0, no penalty)."),
    }


def check_treatment_effect_t_learner(treatment_effect_t_learner, strict: bool = False) -> None:
    """``treatment_effect_t_learner(X, time, event, treated, X_new, horizon, alpha=0.1)``
    returns one predicted benefit per row of ``X_new`` (rtol 1e-4, atol 1e-5): survival at
    ``horizon`` predicted by scikit-survival's ``CoxPHSurvivalAnalysis(alpha=alpha)`` fitted
    on the treated patients, minus that of the same model fitted on the controls."""
    exercise = "treatment_effect_t_learner"
    for case, n, d, seed, horizon, kwargs in _t_cases(strict):
        X, time, event, treated, X_new = _trial(n, d, seed)
        got = call(treatment_effect_t_learner, X, time, event, treated, X_new, horizon,
                   exercise=exercise, case=case, **kwargs,
                   hint="fit CoxPHSurvivalAnalysis(alpha=alpha) on each arm with y = "
                        "Surv.from_arrays(event == 1, time); evaluate each row's survival "
                        "function at horizon: [fn(horizon) for fn in "
                        "model.predict_survival_function(X_new)].")
        want = ref.treatment_effect_t_learner(X, time, event, treated, X_new, horizon,
                                              **kwargs)
        arr = as_array(got, exercise, case).reshape(-1)
        inputs = (f"{n} patients x {d} covariates ({int(treated.sum())} treated, "
                  f"{int(event.sum())} events), X_new of {len(X_new)} rows, horizon={horizon}"
                  + (f", alpha={kwargs['alpha']}" if kwargs else ""))
        if arr.shape != want.shape:
            hint = ("one benefit per row of X_new: predict on X_new, not on the training X."
                    if arr.size == n else "return a 1-d array with one value per row of X_new.")
            fail(exercise, case, inputs=inputs, expected=f"shape {want.shape}",
                 got=f"shape {arr.shape}", hint=hint)
        if np.allclose(arr, want, rtol=1e-4, atol=1e-5):
            continue
        hint = ("benefit = S_treated(horizon | x) - S_control(horizon | x), each from its own "
                "arm's Cox model.")
        for variant, variant_hint in _t_variants(X, time, event, treated, X_new, horizon,
                                                 kwargs.get("alpha", 0.1)).values():
            if np.allclose(arr, variant, rtol=1e-4, atol=1e-5):
                hint = variant_hint
                break
        fail(exercise, f"{case} (tolerance: rtol=1e-04, atol=1e-05)", inputs=inputs,
             expected=want, got=arr, hint=hint)


# --- registry --------------------------------------------------------------------------------

EXERCISES = {
    "kaplan_meier": (check_kaplan_meier, ref.kaplan_meier),
    "concordance_index": (check_concordance_index, ref.concordance_index),
    "cox_partial_likelihood_loss": (check_cox_partial_likelihood_loss,
                                    ref.cox_partial_likelihood_loss),
    "restricted_mean_survival_time": (check_restricted_mean_survival_time,
                                      ref.restricted_mean_survival_time),
    "treatment_effect_t_learner": (check_treatment_effect_t_learner,
                                   ref.treatment_effect_t_learner),
}
#: the course's other code for an exercise (stubs while grading, see grading.SAME_AS_REFERENCE):
#: the bootstrap's Harrell's C, one event at a time (a red-team helper, round 9)
SAME_AS_REFERENCE = {"concordance_index": (ref._concordance_by_event,)}


def _register_samples() -> None:
    SAMPLE_ARGS["kaplan_meier"] = _by_hand
    SAMPLE_ARGS["concordance_index"] = lambda: (*_by_hand(), np.arange(6.0))
    SAMPLE_ARGS["cox_partial_likelihood_loss"] = lambda: (*_by_hand(), np.zeros(6))
    SAMPLE_ARGS["restricted_mean_survival_time"] = lambda: (*_by_hand(), 3.0)
    SAMPLE_ARGS["treatment_effect_t_learner"] = lambda: (*_trial(60, 2, 9)[:4],
                                                         _trial(60, 2, 9)[4], 200.0)


_register_samples()
