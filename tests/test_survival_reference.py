"""Chapter 7's reference implementations (medai_lessons/survival.py) against scikit-survival:
Kaplan-Meier, Harrell's C, the Cox partial likelihood (and a linear Keras network trained with
it against the library's Cox regression), restricted mean survival time, the T-learner and the
helpers the applied cells use. Ties and censoring at the same time as events are included."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sksurv", reason="scikit-survival (chapter 7's data and library) is missing")

from sksurv.linear_model import CoxPHSurvivalAnalysis  # noqa: E402
from sksurv.linear_model.coxph import CoxPHOptimizer  # noqa: E402
from sksurv.metrics import concordance_index_censored  # noqa: E402
from sksurv.nonparametric import kaplan_meier_estimator  # noqa: E402
from sksurv.util import Surv  # noqa: E402

from medai_lessons import survival as S  # noqa: E402
from medai_lessons.data import load_survival_table  # noqa: E402


def tied_sample(n=60, seed=0):
    """Integer times (many ties), events and censorings at the same times, tied risks."""
    rng = np.random.default_rng(seed)
    time = rng.integers(1, 15, n).astype(float)
    event = (rng.random(n) < 0.6).astype(int)
    time[:6] = 5.0
    event[:6] = [1, 1, 0, 0, 1, 0]            # events and censorings at t = 5
    risk = np.round(rng.normal(size=n), 1)    # ties in risk
    return time, event, risk


@pytest.fixture(scope="module")
def veterans():
    ds = load_survival_table("veterans_lung", verbose=False)
    X = ds.X.to_numpy()
    return (X - X.mean(0)) / X.std(0), ds.time, ds.event, ds.treated


def km_library(time, event, at):
    x, y = kaplan_meier_estimator(np.asarray(event, bool), time)
    return y[np.searchsorted(x, at)]


@pytest.mark.parametrize("seed", range(4))
def test_kaplan_meier_matches_the_library_with_ties(seed):
    time, event, _ = tied_sample(seed=seed)
    times, surv = S.kaplan_meier(time, event)
    np.testing.assert_array_equal(times, np.unique(time[event == 1]))
    np.testing.assert_allclose(surv, km_library(time, event, times), rtol=0, atol=1e-12)


def test_kaplan_meier_on_the_trial_and_without_events(veterans):
    _, time, event, _ = veterans
    times, surv = S.kaplan_meier(time, event)
    np.testing.assert_allclose(surv, km_library(time, event, times), atol=1e-12)
    times, surv = S.kaplan_meier([3.0, 4.0], [0, 0])
    assert times.size == 0 and surv.size == 0
    with pytest.raises(ValueError, match="differ in length"):
        S.kaplan_meier([1.0, 2.0], [1])


@pytest.mark.parametrize("seed", range(4))
def test_concordance_matches_the_library_with_tied_times_and_risks(seed):
    time, event, risk = tied_sample(seed=seed)
    want = concordance_index_censored(event.astype(bool), time, risk)[0]
    assert S.concordance_index(time, event, risk) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_the_bootstrap_concordance_counts_pairs_like_the_reference(seed):
    time, event, risk = tied_sample(n=80, seed=seed)
    assert S._concordance_by_event(time, event.astype(bool), risk) == pytest.approx(
        S.concordance_index(time, event, risk), abs=1e-12)
    c, low, high = S.bootstrap_concordance(time, event, risk, n_boot=50, seed=seed)
    assert low <= c <= high


def test_concordance_on_the_trial_and_without_comparable_pairs(veterans):
    X, time, event, _ = veterans
    risk = X[:, 1] * -1.0
    want = concordance_index_censored(event.astype(bool), time, risk)[0]
    assert S.concordance_index(time, event, risk) == pytest.approx(want, abs=1e-12)
    with pytest.raises(ValueError, match="no comparable pair"):
        S.concordance_index([1.0, 2.0], [0, 0], [0.1, 0.2])


@pytest.mark.parametrize("seed", range(3))
def test_cox_loss_is_the_library_likelihood_per_event_with_breslow_ties(seed):
    time, event, _ = tied_sample(seed=seed)
    X = np.random.default_rng(seed).normal(size=(time.size, 3))
    w = np.array([0.3, -0.5, 0.1])
    library = CoxPHOptimizer(X, event.astype(bool), time, np.zeros(3), "breslow")
    want = library.nlog_likelihood(w) * time.size / event.sum()   # the library: per patient
    assert S.cox_partial_likelihood_loss(time, event, X @ w) == pytest.approx(want, rel=1e-10)
    assert S.cox_partial_likelihood_loss(time, np.zeros_like(event), X @ w) == 0.0


def test_cox_loss_on_tensors_has_the_finite_difference_gradient():
    import tensorflow as tf

    time, event, _ = tied_sample(n=30, seed=5)
    log_risk = np.random.default_rng(5).normal(size=30)
    x = tf.Variable(log_risk)
    with tf.GradientTape() as tape:
        loss = S.cox_partial_likelihood_loss(tf.constant(time), tf.constant(event), x)
    grad = tape.gradient(loss, x).numpy()
    assert np.all(np.isfinite(grad))
    eps = 1e-6
    fd = np.array([(S.cox_partial_likelihood_loss(time, event, log_risk + eps * np.eye(30)[k])
                    - S.cox_partial_likelihood_loss(time, event, log_risk - eps * np.eye(30)[k]))
                   / (2 * eps) for k in range(30)])
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)


def test_a_linear_network_trained_with_the_loss_recovers_the_library_cox_coefficients(veterans):
    import keras

    X, time, event, _ = veterans
    library = CoxPHSurvivalAnalysis().fit(X, Surv.from_arrays(event.astype(bool), time))
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((X.shape[1],)), keras.layers.Dense(1, use_bias=False)])
    S.fit_cox_model(model, X, time, event, steps=600, learning_rate=0.05)
    weights = model.get_weights()[0][:, 0]
    # stated tolerance: 0.01 on standardised covariates (coefficients range -0.64 to 0.04)
    np.testing.assert_allclose(weights, library.coef_, atol=0.01)


@pytest.mark.parametrize("tau", [3.0, 5.0, 9.5, 40.0])
def test_rmst_is_the_area_under_the_library_curve(tau):
    time, event, _ = tied_sample(seed=7)
    x, y = kaplan_meier_estimator(event.astype(bool), time)
    grid = np.linspace(0, tau, 200001)[:-1]
    step = np.concatenate([[1.0], y])[np.searchsorted(x, grid, side="right")]
    assert S.restricted_mean_survival_time(time, event, tau) == pytest.approx(
        np.sum(step) * tau / grid.size, abs=1e-3)


def test_t_learner_finds_a_benefit_that_exists_only_for_some_patients():
    rng = np.random.default_rng(0)
    n = 1200
    X = rng.normal(size=(n, 2))
    treated = rng.integers(0, 2, n)
    # the treatment halves the hazard only when x0 > 0
    hazard = 0.1 * np.exp(0.5 * X[:, 1]) * np.where((treated == 1) & (X[:, 0] > 0), 0.3, 1.0)
    event_time = rng.exponential(1 / hazard)
    censor = rng.uniform(2, 15, n)
    time, event = np.minimum(event_time, censor), (event_time <= censor).astype(int)
    X_new = np.array([[1.5, 0.0], [-1.5, 0.0]])
    benefit = S.treatment_effect_t_learner(X, time, event, treated, X_new, horizon=5.0)
    assert benefit.shape == (2,)
    assert benefit[0] > 0.15 and abs(benefit[1]) < benefit[0] / 2


def test_breslow_survival_matches_the_library_prediction(veterans):
    X, time, event, _ = veterans
    library = CoxPHSurvivalAnalysis().fit(X, Surv.from_arrays(event.astype(bool), time))
    want = np.array([fn(200.0) for fn in library.predict_survival_function(X[:10])])
    got = S.breslow_survival(time, event, X @ library.coef_, X[:10] @ library.coef_, 200.0)
    np.testing.assert_allclose(got, want, rtol=1e-8)


def test_survival_at_uses_greenwood_and_the_difference_has_an_interval():
    time = np.array([1, 2, 2, 3, 4, 5], float)
    event = np.array([1, 1, 0, 1, 0, 1])
    s, se = S.survival_at(time, event, 3.0)
    # S = (5/6)(4/5)(2/3); Greenwood: sum d / (n (n - d)) = 1/30 + 1/20 + 1/6
    assert s == pytest.approx(5 / 6 * 4 / 5 * 2 / 3)
    assert se == pytest.approx(s * np.sqrt(1 / 30 + 1 / 20 + 1 / 6))
    diff, low, high = S.survival_difference(np.r_[time, time], np.r_[event, event],
                                            np.r_[np.ones(6), np.zeros(6)], 3.0)
    assert diff == pytest.approx(0.0) and low < 0 < high


def test_benefit_by_group_and_calibration_tables_have_one_row_per_group(veterans):
    X, time, event, treated = veterans
    table = S.benefit_by_group(time, event, treated, X[:, 0], 100.0, n_groups=3)
    assert table.n.sum() == time.size and len(table.labels) == 3
    assert np.all(table.low <= table.observed) and np.all(table.observed <= table.high)
    cal = S.calibration_at_horizon(time, event, np.linspace(0.1, 0.9, time.size), 100.0)
    assert cal.n.sum() == time.size and np.all(np.diff(cal.predicted) > 0)


def test_a_network_t_learner_also_finds_the_patients_who_benefit():
    import keras

    rng = np.random.default_rng(1)
    n = 1000
    X = rng.normal(size=(n, 2))
    treated = rng.integers(0, 2, n)
    hazard = 0.1 * np.where((treated == 1) & (X[:, 0] > 0), 0.3, 1.0)
    event_time = rng.exponential(1 / hazard)
    censor = rng.uniform(2, 15, n)
    time, event = np.minimum(event_time, censor), (event_time <= censor).astype(int)

    def build(d, seed):
        keras.utils.set_random_seed(seed)
        return keras.Sequential([keras.Input((d,)), keras.layers.Dense(8, activation="relu"),
                                 keras.layers.Dense(1, use_bias=False)])

    X_new = np.array([[1.5, 0.0], [-1.5, 0.0]])
    benefit = S.network_t_learner(build, X, time, event, treated, X_new, 5.0, max_steps=200)
    assert benefit.shape == (2,) and benefit[0] > benefit[1] + 0.1
