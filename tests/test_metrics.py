"""Clinical metrics (medai_lessons.metrics) against scikit-learn and hand-counted tables, the
bootstrap interval, calibration, the reports, and the plots that draw them."""

from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.metrics import roc_curve as sk_roc_curve  # noqa: E402

from medai_lessons import metrics, plotting  # noqa: E402

# 10 patients counted by hand: tp 3 (0, 2, 7), fp 2 (4, 5), tn 4 (3, 6, 8, 9), fn 1 (1)
HAND_TRUE = np.array([1, 1, 1, 0, 0, 0, 0, 1, 0, 0])
HAND_PRED = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 0])


def patients(seed: int, n: int = 200, prevalence: float = 0.3):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prevalence).astype(int)
    scores = np.clip(0.35 * y + rng.normal(0.35, 0.2, n), 0, 1)
    return y, scores


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# --- counts ----------------------------------------------------------------------------------


def test_confusion_counts_of_a_hand_counted_table():
    assert metrics.confusion_counts(HAND_TRUE, HAND_PRED) == (3, 2, 4, 1)
    assert all(type(c) is int for c in metrics.confusion_counts(HAND_TRUE, HAND_PRED))


@pytest.mark.parametrize("seed", range(5))
def test_confusion_counts_agree_with_scikit_learn(seed):
    y, s = patients(seed)
    y_pred = s >= 0.5
    tn, fp, fn, tp = confusion_matrix(y, y_pred, labels=[0, 1]).ravel()
    assert metrics.confusion_counts(y, y_pred) == (tp, fp, tn, fn)
    assert sum(metrics.confusion_counts(y, y_pred)) == len(y)


@pytest.mark.parametrize(("y_true", "y_pred", "expected"), [
    ([0, 0, 0], [0, 0, 0], (0, 0, 3, 0)),
    ([1, 1], [1, 1], (2, 0, 0, 0)),
    ([1, 0], [True, False], (1, 0, 1, 0)),
    ([1.0, 0.0, 1.0], [0, 0, 1], (1, 0, 1, 1)),
    ([], [], (0, 0, 0, 0)),
], ids=["all healthy", "all diseased", "booleans", "float labels", "empty"])
def test_confusion_counts_edge_cases(y_true, y_pred, expected):
    assert metrics.confusion_counts(y_true, y_pred) == expected


@pytest.mark.parametrize(("y_true", "y_pred", "message"), [
    ([0, 1, 2], [0, 1, 1], "only 0 and 1"),
    ([0, 1], [0, 0.7], "only 0 and 1"),
    ([0, 1, 1], [0, 1], "has 2"),
])
def test_confusion_counts_rejects_bad_labels(y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        metrics.confusion_counts(y_true, y_pred)


# --- threshold metrics -----------------------------------------------------------------------


def test_metrics_of_the_hand_counted_table():
    m = metrics.diagnostic_metrics(HAND_TRUE, HAND_PRED)
    assert m == pytest.approx({"sensitivity": 3 / 4, "specificity": 4 / 6, "ppv": 3 / 5,
                               "npv": 4 / 5, "accuracy": 7 / 10, "f1": 6 / 9})
    assert list(m) == list(metrics.METRIC_NAMES)


@pytest.mark.parametrize("seed", range(5))
def test_metrics_agree_with_scikit_learn(seed):
    y, s = patients(seed)
    y_pred = (s >= 0.5).astype(int)
    m = metrics.diagnostic_metrics(y, y_pred)
    assert m["sensitivity"] == pytest.approx(recall_score(y, y_pred))
    assert m["specificity"] == pytest.approx(recall_score(y, y_pred, pos_label=0))
    assert m["ppv"] == pytest.approx(precision_score(y, y_pred))
    assert m["npv"] == pytest.approx(precision_score(y, y_pred, pos_label=0))
    assert m["accuracy"] == pytest.approx(accuracy_score(y, y_pred))
    assert m["f1"] == pytest.approx(f1_score(y, y_pred))
    for name in ("sensitivity", "specificity", "ppv", "npv", "f1"):
        assert getattr(metrics, name)(y, y_pred) == m[name]


@pytest.mark.parametrize(("counts", "undefined", "zero"), [
    ((0, 2, 6, 0), {"sensitivity"}, {"ppv", "f1"}),          # nobody diseased
    ((0, 0, 4, 2), {"ppv"}, {"sensitivity", "f1"}),          # nothing predicted positive
    ((5, 0, 0, 2), {"specificity"}, {"npv"}),                # everybody diseased
    ((3, 0, 0, 0), {"specificity", "npv"}, set()),           # all positive and right
    ((0, 0, 3, 0), {"sensitivity", "ppv", "f1"}, set()),     # all negative and right
    ((0, 0, 0, 0), set(metrics.METRIC_NAMES), set()),        # nobody at all
])
def test_a_zero_denominator_gives_nan_and_nothing_else_does(counts, undefined, zero):
    m = metrics.metrics_from_counts(*counts)
    assert {k for k, v in m.items() if np.isnan(v)} == undefined
    assert {k for k, v in m.items() if v == 0} == zero


def test_f1_is_the_harmonic_mean_where_both_are_defined():
    for counts in itertools.product(range(4), repeat=4):
        m = metrics.metrics_from_counts(*counts)
        if m["ppv"] + m["sensitivity"] > 0:
            harmonic = 2 * m["ppv"] * m["sensitivity"] / (m["ppv"] + m["sensitivity"])
            assert m["f1"] == pytest.approx(harmonic), counts


# --- prevalence ------------------------------------------------------------------------------


def test_ppv_from_prevalence_by_hand():
    assert metrics.ppv_from_prevalence(0.9, 0.99, 0.005) == pytest.approx(
        0.0045 / (0.0045 + 0.01 * 0.995))
    assert isinstance(metrics.ppv_from_prevalence(0.9, 0.99, 0.005), float)
    assert metrics.ppv_from_prevalence(0.7, 1.0, 0.01) == 1.0
    assert metrics.ppv_from_prevalence(0.9, 0.9, 0.0) == 0.0
    assert np.isnan(metrics.ppv_from_prevalence(0.0, 1.0, 0.3))   # nobody tests positive
    assert np.isnan(metrics.npv_from_prevalence(1.0, 0.0, 0.3))   # nobody tests negative


@pytest.mark.parametrize(("sens", "spec", "prevalence", "people"), [
    (0.9, 0.99, 0.005, 100_000), (0.8, 0.7, 0.25, 1_000), (0.6, 0.95, 0.5, 200)])
def test_bayes_agrees_with_counting_a_population(sens, spec, prevalence, people):
    ill = round(prevalence * people)
    tp = round(sens * ill)
    tn = round(spec * (people - ill))
    counted = metrics.metrics_from_counts(tp, people - ill - tn, tn, ill - tp)
    assert metrics.ppv_from_prevalence(sens, spec, prevalence) == pytest.approx(counted["ppv"])
    assert metrics.npv_from_prevalence(sens, spec, prevalence) == pytest.approx(counted["npv"])


def test_ppv_from_prevalence_broadcasts_over_arrays():
    prevalences = np.array([0.001, 0.01, 0.1, 0.5])
    got = metrics.ppv_from_prevalence(0.9, 0.99, prevalences)
    assert got.shape == (4,)
    assert np.all(np.diff(got) > 0)                  # PPV rises with prevalence
    np.testing.assert_allclose(got, [metrics.ppv_from_prevalence(0.9, 0.99, p)
                                     for p in prevalences])
    grid = metrics.ppv_from_prevalence(np.array([[0.8], [0.9]]), 0.99, prevalences)
    assert grid.shape == (2, 4)


def test_prevalence_given_as_a_percentage_is_an_error():
    with pytest.raises(ValueError, match="fraction"):
        metrics.ppv_from_prevalence(0.9, 0.99, 5)


# --- ROC and AUC -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_roc_and_auc_agree_with_scikit_learn(seed):
    y, s = patients(seed)
    for ours, theirs in zip(metrics.roc_curve(y, s), sk_roc_curve(y, s), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert metrics.roc_auc(y, s) == pytest.approx(roc_auc_score(y, s))


def test_auc_is_the_probability_that_a_diseased_patient_scores_higher():
    y, s = patients(7, n=60)
    s = np.round(s, 1)                                  # with ties, which count one half
    pos, neg = s[y == 1], s[y == 0]
    pairs = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    assert metrics.roc_auc(y, s) == pytest.approx(pairs.mean())


def test_auc_of_one_class_is_nan():
    assert np.isnan(metrics.roc_auc([0, 0, 0], [0.1, 0.5, 0.9]))


def test_bootstrap_interval_is_deterministic_and_contains_the_estimate():
    y, s = patients(3)
    first = metrics.bootstrap_auc_ci(y, s, n_boot=300, seed=5)
    assert first == metrics.bootstrap_auc_ci(y, s, n_boot=300, seed=5)
    assert first != metrics.bootstrap_auc_ci(y, s, n_boot=300, seed=6)
    assert first.auc == pytest.approx(roc_auc_score(y, s))
    assert first.low < first.auc < first.high
    assert (first.level, first.n_boot) == (0.95, 300)
    auc, low, high, *_ = first                          # unpacks like a tuple
    assert (auc, low, high) == first[:3]


def test_bootstrap_interval_widens_with_the_level_and_narrows_with_more_patients():
    y, s = patients(4, n=150)
    narrow = metrics.bootstrap_auc_ci(y, s, n_boot=400, level=0.8, seed=0)
    wide = metrics.bootstrap_auc_ci(y, s, n_boot=400, level=0.99, seed=0)
    assert wide.low < narrow.low and wide.high > narrow.high
    y_big, s_big = patients(4, n=1500)
    big = metrics.bootstrap_auc_ci(y_big, s_big, n_boot=200, seed=0)
    small = metrics.bootstrap_auc_ci(y, s, n_boot=200, seed=0)
    assert big.high - big.low < small.high - small.low


def test_bootstrap_resamples_are_stratified():
    # 2 diseased among 40: unstratified resamples would often hold no diseased patient
    y = np.r_[np.ones(2, int), np.zeros(38, int)]
    s = np.linspace(0, 1, 40)[::-1]
    ci = metrics.bootstrap_auc_ci(y, s, n_boot=200, seed=0)
    assert np.isfinite([ci.low, ci.high]).all()
    with pytest.raises(ValueError, match="both"):
        metrics.bootstrap_auc_ci(np.zeros(5, int), np.arange(5.0))


# --- calibration -----------------------------------------------------------------------------


def test_calibration_wraps_scikit_learn():
    y, s = patients(1, n=500)
    curve = metrics.calibration(y, s, n_bins=8)
    observed, predicted = calibration_curve(y, s, n_bins=8)
    np.testing.assert_array_equal(curve.mean_predicted, predicted)
    np.testing.assert_array_equal(curve.fraction_positive, observed)
    assert curve.mean_predicted.shape == curve.fraction_positive.shape
    assert 1 <= len(curve.mean_predicted) <= 8
    quantile = metrics.calibration(y, s, n_bins=5, strategy="quantile")
    assert len(quantile.mean_predicted) == 5


def test_calibrated_probabilities_lie_near_the_diagonal():
    rng = np.random.default_rng(0)
    p = rng.random(20_000)
    y = (rng.random(20_000) < p).astype(int)            # y drawn with exactly probability p
    curve = metrics.calibration(y, p, n_bins=10)
    np.testing.assert_allclose(curve.fraction_positive, curve.mean_predicted, atol=0.03)
    overconfident = metrics.calibration(y, np.clip(2 * p - 0.5, 0, 1), n_bins=10)
    assert np.max(np.abs(overconfident.fraction_positive - overconfident.mean_predicted)) > 0.1


# --- reports ---------------------------------------------------------------------------------


def test_binary_report_uses_the_same_metrics_at_the_threshold():
    y, s = patients(2)
    for threshold in (0.3, 0.5, 0.7):
        r = metrics.binary_report(y, s, threshold=threshold)
        m = metrics.diagnostic_metrics(y, s >= threshold)
        assert {k: r[k] for k in m} == m
        assert (r["tp"], r["fp"], r["tn"], r["fn"]) == metrics.confusion_counts(y, s >= threshold)
        assert r["roc_auc"] == pytest.approx(roc_auc_score(y, s))
    r = metrics.binary_report([1, 0], [0.5, 0.49])      # a score equal to the threshold is positive
    assert (r["tp"], r["tn"]) == (1, 1)


def test_binary_report_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="y_true has 3 values but scores has 2"):
        metrics.binary_report([0, 1, 1], [0.2, 0.8])


def test_format_report_is_one_line_with_the_numbers():
    y, s = patients(2)
    r = metrics.binary_report(y, s)
    line = metrics.format_report(r, "test")
    assert "\n" not in line and line.startswith("test: ")
    assert f"sensitivity {r['sensitivity']:.3f}" in line and f"missed: {r['fn']}" in line


# --- plots -----------------------------------------------------------------------------------


def test_confusion_matrix_plot_shows_each_count():
    fig = plotting.plot_confusion_matrix((3, 2, 4, 1), class_names=("benign", "malignant"))
    assert isinstance(fig, plt.Figure)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    for cell in ("TP 3", "FP 2", "TN 4", "FN 1", "75.0 % of row"):
        assert cell in texts
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["predicted benign", "predicted malignant"]


def test_confusion_matrix_plot_of_an_empty_row():
    fig = plotting.plot_confusion_matrix((0, 0, 5, 0))
    assert "TP 0" in " ".join(t.get_text() for t in fig.axes[0].texts)


def test_roc_plot_has_one_curve_per_model_with_its_auc():
    y, s = patients(0)
    ci = metrics.bootstrap_auc_ci(y, s, n_boot=50)
    fig = plotting.plot_roc(y, {"model": s, "noise": np.random.default_rng(0).random(len(y))},
                            intervals={"model": ci})
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[0].startswith(f"model: AUC {ci.auc:.3f} (95 % CI {ci.low:.3f}-")
    assert legend[1].startswith("noise: AUC")
    assert any("chance" in t for t in legend)


def test_calibration_plot_has_curve_and_histogram():
    y, s = patients(0)
    fig = plotting.plot_calibration(y, {"model": s}, n_bins=5, title="t")
    assert len(fig.axes) == 2
    ax, hist = fig.axes
    assert ax.get_title() == "t"
    diagonal, model = ax.lines
    assert list(diagonal.get_xdata()) == [0, 1] == list(diagonal.get_ydata())
    curve = metrics.calibration(y, s, n_bins=5)
    np.testing.assert_allclose(model.get_xdata(), curve.mean_predicted)
    np.testing.assert_allclose(model.get_ydata(), curve.fraction_positive)
    counts, _ = np.histogram(s, bins=np.linspace(0, 1, 6))
    [bars] = hist.patches                         # one step outline per model
    heights = bars.get_xy()[1:-1:2, 1]            # the top of each bin, left to right
    np.testing.assert_array_equal(heights, counts)


def test_image_panels_and_ecg_strip():
    fig = plotting.plot_images({"a": np.zeros((4, 4)), "b": np.ones((4, 4, 3)),
                                "c": np.eye(4)}, ncols=2)
    assert [ax.get_title() for ax in fig.axes[:3]] == ["a", "b", "c"]
    assert not fig.axes[3].axison                     # the unused fourth panel is hidden
    fs = 250.0
    signal = np.sin(np.arange(0, 5, 1 / fs) * 2 * np.pi)
    fig = plotting.plot_ecg(signal, fs, start=1.0, seconds=2.0, beats={300: "N", 400: "V"})
    ax = fig.axes[0]
    assert ax.get_xlim() == pytest.approx((1.0, 3.0 - 1 / fs))
    assert sorted(t.get_text() for t in ax.texts) == ["N", "V"]


# --- choosing a threshold --------------------------------------------------------------------


def test_youden_threshold_by_hand_and_against_a_brute_force_count():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.6, 0.4, 0.7, 0.9])
    # thresholds in (0.2, 0.4] call 3 of 3 sick and 2 of 3 healthy right: J = 2/3, the best;
    # of the scores, 0.4 is the one there
    assert metrics.youden_threshold(y, p) == 0.4
    assert metrics.youden_threshold(y, p, grid=[0.5, 0.3, 0.65]) == 0.3
    assert metrics.youden_threshold(y, p, grid=metrics.THRESHOLD_GRID) == pytest.approx(0.21)
    rng = np.random.default_rng(3)
    for _ in range(20):
        y = rng.integers(0, 2, 80)
        y[:2] = (0, 1)
        p = np.round(np.clip(0.3 * y + rng.normal(0.35, 0.2, 80), 0, 1), 2)  # with ties
        for grid in (np.unique(p), metrics.THRESHOLD_GRID):
            j = [metrics.sensitivity(y, p >= t) + metrics.specificity(y, p >= t) - 1
                 for t in grid]
            best = np.max(j)  # of the tied best, the lowest threshold
            expected = min(t for t, jt in zip(grid, j, strict=True) if jt > best - 1e-9)
            chosen = metrics.youden_threshold(y, p, None if grid is not metrics.THRESHOLD_GRID
                                              else grid)
            assert chosen == pytest.approx(expected)


def test_youden_threshold_finds_the_best_where_a_grid_of_probabilities_cannot():
    # a confident network: every score above 0.99, the diseased ones highest
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.991, 0.992, 0.993, 0.996, 0.998, 0.999])
    assert metrics.youden_threshold(y, p) == 0.996
    assert metrics.binary_report(y, p, metrics.youden_threshold(y, p))["accuracy"] == 1.0
    # logits and percentages need no grid of their own
    assert metrics.youden_threshold(y, [-3.0, -2.0, 1.5, -1.0, 2.0, 4.0]) == -1.0
    assert metrics.youden_threshold(y, [10, 20, 30, 80, 85, 90]) == 80
    # a grid that cannot separate them (a network trained for one epoch) still gives a
    # threshold, the lowest of the grid, where every J is 0
    assert metrics.youden_threshold(y, p, grid=metrics.THRESHOLD_GRID) == pytest.approx(0.01)


def test_youden_threshold_needs_both_classes_and_a_grid():
    with pytest.raises(ValueError, match="diseased"):
        metrics.youden_threshold([1, 1], [0.2, 0.8])
    with pytest.raises(ValueError, match="grid"):
        metrics.youden_threshold([0, 1], [0.2, 0.8], grid=[])


# --- bad input: a clear error that says what to pass ----------------------------------------

Y4 = np.array([0, 1, 1, 0])
P4 = np.array([0.1, 0.9, 0.8, 0.3])


def _every_score_function():
    """Each function of a binary score vector, called as a learner would (scores last)."""
    return {
        "roc_curve": lambda y, s: metrics.roc_curve(y, s),
        "roc_auc": lambda y, s: metrics.roc_auc(y, s),
        "youden_threshold": lambda y, s: metrics.youden_threshold(y, s),
        "bootstrap_auc_ci": lambda y, s: metrics.bootstrap_auc_ci(y, s, n_boot=5),
        "calibration": lambda y, s: metrics.calibration(y, s, n_bins=2),
        "binary_report": lambda y, s: metrics.binary_report(y, s),
        "operating_points": lambda y, s: metrics.operating_points(y, s),
        "plot_roc": lambda y, s: plotting.plot_roc(y, {"model": s}),
        "plot_calibration": lambda y, s: plotting.plot_calibration(y, {"model": s}),
    }


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("function", list(_every_score_function()))
def test_non_finite_scores_are_one_clear_error(function, bad):
    scores = np.array([0.1, bad, 0.8, 0.3])
    message = r"(scores|probabilities) must be finite.*lower learning rate"
    with pytest.raises(ValueError, match=message):
        _every_score_function()[function](Y4, scores)


@pytest.mark.parametrize("function", list(_every_score_function()))
def test_two_column_probabilities_say_which_column_to_pass(function):
    softmax = np.c_[1 - P4, P4]
    with pytest.raises(ValueError, match=r"shape \(4, 2\).*p\[:, 1\]"):
        _every_score_function()[function](Y4, softmax)


def test_one_column_scores_still_work():
    y, s = patients(4)
    assert metrics.roc_auc(y, s[:, None]) == metrics.roc_auc(y, s)
    assert metrics.binary_report(y, s[:, None]) == metrics.binary_report(y, s)
    assert metrics.youden_threshold(y, s[:, None]) == metrics.youden_threshold(y, s)


def test_bootstrap_needs_at_least_one_resample():
    for n_boot in (0, -1, 2.5):
        with pytest.raises(ValueError, match="n_boot"):
            metrics.bootstrap_auc_ci(Y4, P4, n_boot=n_boot)


def test_format_report_formats_what_it_is_given_and_names_its_input():
    line = metrics.format_report(metrics.diagnostic_metrics(HAND_TRUE, HAND_PRED), "ch1")
    assert line == ("ch1: sensitivity 0.750 | specificity 0.667 | PPV 0.600 | NPV 0.800 | "
                    "accuracy 0.700")
    for wrong in ((1, 2), {"auc": 0.9}):
        with pytest.raises(TypeError, match=r"binary_report\(y_true, scores\)"):
            metrics.format_report(wrong)


@pytest.mark.parametrize("position", range(3))
def test_ppv_from_prevalence_rejects_a_missing_value(position):
    args = [0.9, 0.95, 0.1]
    args[position] = None
    name = ("sensitivity", "specificity", "prevalence")[position]
    with pytest.raises(TypeError, match=f"{name} must be a number"):
        metrics.ppv_from_prevalence(*args)
    with pytest.raises(TypeError, match=f"{name} must be a number"):
        metrics.npv_from_prevalence(*args)


def _cell_texts(fig):
    return sorted(t.get_text() for t in fig.axes[0].texts)


def test_confusion_matrix_plot_takes_scikit_learns_2x2_matrix():
    y_pred = (HAND_PRED == 1)
    matrix = confusion_matrix(HAND_TRUE, y_pred)                  # [[tn, fp], [fn, tp]]
    from_matrix = _cell_texts(plotting.plot_confusion_matrix(matrix))
    assert from_matrix == _cell_texts(plotting.plot_confusion_matrix((3, 2, 4, 1)))
    assert "TP 3" in " ".join(from_matrix) and "TN 4" in " ".join(from_matrix)


@pytest.mark.parametrize("counts", [
    {"sensitivity": 0.75, "specificity": 0.6},              # a metrics dict
    {"tp": 3, "fp": 2, "tn": 4, "fn": 1},                   # a binary_report-like dict
    (3, 2, 4),                                              # too few counts
    HAND_TRUE,                                              # labels, not counts
    np.zeros((3, 3), int),                                  # not 2x2
    (3, 2, -4, 1),                                          # a negative count
    (0.75, 0.6, 0.6, 0.8),                                  # metrics, not counts
])
def test_confusion_matrix_plot_rejects_what_is_not_counts(counts):
    with pytest.raises((TypeError, ValueError), match=r"\(tp, fp, tn, fn\).*confusion_counts"):
        plotting.plot_confusion_matrix(counts)


class _History:
    """What keras' model.fit returns: the curves are in .history."""

    history = {"loss": [1.0, 0.5]}


def test_plots_of_named_curves_say_to_pass_a_dict():
    with pytest.raises(TypeError, match=r"scores must be a dict.*\{'CNN': p\}"):
        plotting.plot_roc(Y4, P4)
    with pytest.raises(TypeError, match=r"probabilities must be a dict.*\{'CNN': p\}"):
        plotting.plot_calibration(Y4, list(P4))
    with pytest.raises(TypeError, match=r"pass history\.history"):
        plotting.plot_curves(_History())
    with pytest.raises(TypeError, match="curves must be a dict"):
        plotting.plot_curves([1.0, 0.5])
    with pytest.raises(TypeError, match=r"panels must be a dict \{title: image\}"):
        plotting.plot_images(np.zeros((3, 4, 4)))
    assert plotting.plot_curves(_History.history).axes[0].get_legend() is not None


def test_function_panels_name_what_they_measure():
    x = np.linspace(0, 1, 5)
    fig = plotting.plot_functions(x, {"a": {"f": x}, "b": {"g": x ** 2}}, ylabel="loss")
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", ""]
    assert plotting.plot_functions(x, {"a": {"f": x}}).axes[0].get_ylabel() == ""
    one_epoch = plotting.plot_functions([1], {"training loss": {"loss": [0.5]}}, xlabel="epoch")
    assert one_epoch.axes[0].lines[0].get_marker() == "o"               # visible: one point
    smooth = plotting.plot_functions(np.linspace(-5, 5, 401), {"f": {"sigmoid": np.zeros(401)}})
    assert smooth.axes[0].lines[0].get_marker() in (None, "None", "")


def _axis_lines(ax) -> set[str]:
    """Which of the grey lines through 0 a panel has: 'x' (y = 0), 'y' (x = 0)."""
    found = set()
    for line in [line for line in ax.lines if line.get_color() == "grey"]:
        xs, ys = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        if np.all(ys == 0):
            found.add("x")
        if np.all(xs == 0):
            found.add("y")
    return found


def test_function_panels_draw_the_axes_only_where_0_is_shown():
    """A function's plot gets its axes through 0; a training curve over epochs 1..n, or an AUC
    near 1, is not stretched to reach 0, and its epochs are whole numbers."""
    x = np.linspace(-3, 3, 61)
    tanh = plotting.plot_functions(x, {"f": {"tanh": np.tanh(x)}})
    assert _axis_lines(tanh.axes[0]) == {"x", "y"}
    epochs = np.arange(1, 4)
    fig = plotting.plot_functions(epochs, {"loss": {"training": [0.7, 0.5, 0.4]},
                                           "AUC": {"validation": [0.95, 0.97, 0.98]}},
                                  xlabel="epoch")
    for ax in fig.axes:
        assert _axis_lines(ax) == set(), ax.get_title()
        assert ax.get_xlim()[0] > 0, ax.get_title()
    ticks = [t for t in fig.axes[0].get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    one = plotting.plot_functions([1], {"training loss": {"loss": [0.5]}}, xlabel="epoch")
    assert one.axes[0].get_xlim()[0] > 0
    assert list(one.axes[0].get_xticks()) == [1.0]       # one whole epoch, not 0.945 ... 1.05
    # a limit that includes 0 brings the line y = 0 back
    fig = plotting.plot_functions(epochs, {"loss": {"training": [0.7, 0.5, 0.4]}},
                                  ylim=[(0, 1)])
    assert _axis_lines(fig.axes[0]) == {"x"}


def test_short_training_curves_show_each_point():
    """Fast mode trains for one epoch: a curve of one point must still be visible."""
    one_epoch = plotting.plot_curves({"training": [0.7], "validation": [0.8]})
    for line in one_epoch.axes[0].lines:
        assert line.get_marker() == "o", line.get_label()
        assert len(line.get_xdata()) == 1
    assert list(one_epoch.axes[0].get_xticks()) == [0.0]   # one whole step, not fractions
    long_run = plotting.plot_curves({"training": np.linspace(1, 0.1, 500)})
    assert long_run.axes[0].lines[0].get_marker() in (None, "None", "")
    with_level = plotting.plot_curves({"loss": [1.4, 1.3, 1.35], "log 4": [np.log(4)] * 3})
    loss, level = with_level.axes[0].lines
    assert loss.get_marker() == "o" and loss.get_linestyle() == "-"
    assert level.get_marker() in (None, "None", "") and level.get_linestyle() == "--"
    ticks = with_level.axes[0].get_xticks()
    assert np.all(ticks == np.round(ticks)), ticks                 # steps are whole numbers


def test_ecg_plot_past_the_end_of_the_signal_says_how_long_it_is():
    signal = np.zeros(3600)                                   # 10 s at 360 Hz
    with pytest.raises(ValueError, match=r"start=20 s.*signal lasts 10 s"):
        plotting.plot_ecg(signal, 360, start=20)
    with pytest.raises(ValueError, match="fs"):
        plotting.plot_ecg(signal, 0)
    assert plotting.plot_ecg(signal, 360, start=9.5).axes


def test_beat_and_confusion_matrix_plots_check_labels_against_class_names():
    from medai_lessons import plotting_seq

    X = np.random.default_rng(0).random((20, 30))
    y = np.r_[np.zeros(10, int), np.ones(10, int)]
    with pytest.raises(ValueError, match="X has 20 beats but y has 5 labels"):
        plotting_seq.plot_beats(X, y[:5], ["N", "V"], fs=125, pre=10)
    with pytest.raises(ValueError, match=r"class indices 0 to 1.*found \[4\]"):
        plotting_seq.plot_beats(X, np.r_[y[:-1], 4], ["N", "V"], fs=125, pre=10)
    with pytest.raises(ValueError, match=r"'m' is 3x3 but class_names has 2 names"):
        plotting_seq.plot_confusion_matrices({"m": np.eye(3, dtype=int)}, ["a", "b"])
    with pytest.raises(TypeError, match="matrices must be a dict"):
        plotting_seq.plot_confusion_matrices(np.eye(2, dtype=int), ["a", "b"])


@pytest.mark.parametrize(("k", "n"), [(0, 70), (41, 42), (42, 42), (7, 20)])
def test_proportion_ci_is_the_exact_beta_interval(k, n):
    from scipy.stats import beta

    low, high = metrics.proportion_ci(k, n)
    assert low == pytest.approx(0.0 if k == 0 else beta.ppf(0.025, k, n - k + 1))
    assert high == pytest.approx(1.0 if k == n else beta.ppf(0.975, k + 1, n - k))
    assert low <= k / n <= high
    if k == 0:                        # the rule of three: about 3 / n at 95 %
        assert 3 / n < high < 4 / n


@pytest.mark.parametrize(("k", "n"), [(5, 3), (-1, 3), (1, 0), (1.5, 3)])
def test_proportion_ci_wants_counts(k, n):
    with pytest.raises(ValueError, match="counts with 0 <= k <= n"):
        metrics.proportion_ci(k, n)


def test_rr_interval_plot_shows_every_interval_by_label():
    fs = 100.0
    beats = {0: "N", 80: "N", 160: "N", 200: "V", 300: "N", 380: "A"}
    fig = plotting.plot_rr_intervals(beats, fs, title="rhythm")
    normal, other = fig.axes[0].lines
    np.testing.assert_allclose(normal.get_ydata(), [0.8, 0.8, 1.0])
    np.testing.assert_allclose(other.get_ydata(), [0.4, 0.8])
    np.testing.assert_allclose(other.get_xdata(), np.array([200, 380]) / fs / 60)
    assert fig.axes[0].get_title() == "rhythm"
    with pytest.raises(ValueError, match="needs two beats"):
        plotting.plot_rr_intervals({5: "N"}, fs)


def test_adaptive_trial_plot_draws_each_strategy():
    shares = {"equal": np.full(5, 1 / 3), "Thompson": np.linspace(0.3, 0.9, 5)}
    totals = {"equal": np.array([2, 3, 3]), "Thompson": np.array([4, 4, 5])}
    fig = plotting.plot_adaptive_trial(shares, totals, best_expected=4.5, short_names=["e", "T"])
    left, right = fig.axes
    curves = [line for line in left.lines if len(line.get_xdata()) == 5]
    assert [line.get_label() for line in curves] == ["equal", "Thompson"]
    np.testing.assert_allclose(curves[1].get_ydata(), shares["Thompson"])
    assert [t.get_text() for t in right.get_xticklabels()] == ["e", "T"]
    assert any(list(line.get_ydata()) == [4.5, 4.5] for line in right.lines)
    with pytest.raises(TypeError, match="shares must be a dict"):
        plotting.plot_adaptive_trial(np.zeros(5), totals, best_expected=1)


def test_spread_plot_shows_every_value_and_its_mean():
    panels = {"noise": {"all": [0.7, 0.8, 0.9], "train": [0.4, 0.5, 0.6]},
              "real": {"before": [0.99, 0.98], "after": [0.97, 0.99]}}
    fig = plotting.plot_spread(panels, "AUC", references={"noise": 0.5}, suptitle="s")
    noise, real = fig.axes
    assert [t.get_text() for t in noise.get_xticklabels()] == ["all", "train"]
    points = [np.asarray(c.get_offsets())[:, 1] for c in noise.collections
              if len(np.asarray(c.get_offsets())) == 3]
    np.testing.assert_allclose(sorted(map(sorted, points)), [[0.4, 0.5, 0.6], [0.7, 0.8, 0.9]])
    assert any(list(line.get_ydata()) == [0.5, 0.5] for line in noise.lines)
    assert not any(list(line.get_ydata()) == [0.5, 0.5] for line in real.lines)
    assert noise.get_title() == "noise" and fig._suptitle.get_text() == "s"


def test_youden_threshold_refuses_percentages_on_the_grid_of_probabilities():
    y = np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="not percentages or logits"):
        metrics.youden_threshold(y, [10, 20, 80, 90], grid=metrics.THRESHOLD_GRID)
    assert metrics.youden_threshold(y, [10, 20, 80, 90], grid=[15, 50, 85]) == 50
    assert metrics.youden_threshold(y, [10, 20, 80, 90]) == 80
    assert metrics.youden_threshold(y, [0.1, 0.2, 0.8, 0.9]) == 0.8


def test_plot_operating_points_draws_both_curves_on_a_logit_axis_with_the_marks():
    points = metrics.operating_points([0, 0, 1, 1, 1], [0.0, 0.3, 0.6, 0.9, 1.0])
    fig = plotting.plot_operating_points(points, {"screening (sens >= 0.98)": 0.3,
                                                  "confirming": 1.0}, title="t")
    ax = fig.axes[0]
    assert ax.get_xscale() == "logit" and ax.get_title() == "t"
    sens, spec = ax.get_lines()[:2]
    assert np.all(np.isfinite(sens.get_xdata())) and sens.get_xdata().max() == 1 - 1e-6
    np.testing.assert_array_equal(spec.get_ydata(), points.specificity)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["sensitivity", "specificity", "screening: 0.3", "confirming: 1"]
    plt.close(fig)


def test_plot_decision_curve_marks_only_thresholds_inside_the_range():
    grid = np.linspace(0.05, 0.5, 10)
    fig = plotting.plot_decision_curve(grid, {"model": grid * 0 + 0.1, "treat all": 0.3 - grid,
                                              "treat none": np.zeros(10)},
                                       prevalence=0.3, marks={"a": 0.2, "b": 0.9})
    ax = fig.axes[0]
    assert [line.get_linewidth() for line in ax.get_lines()[:3]] == [2, 1.2, 1.2]
    assert len(ax.get_lines()) == 4                      # three curves and the mark at 0.2
    assert ax.get_ylim() == pytest.approx((-0.05, 0.35))
    with pytest.raises(TypeError, match="dict"):
        plotting.plot_decision_curve(grid, [grid], prevalence=0.3)
    plt.close("all")
