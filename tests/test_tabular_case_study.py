"""Chapter 6's reference implementations, against independent computations: the stratified
split (sizes, stratification, disjointness, determinism), the preprocessor (fitted on the
training part only), operating points and the screening threshold (against a brute-force
search), the clinical evaluation (against metrics.py and scikit-learn), the source's network
(structure and compile configuration) and the epoch trainer that the 20-split comparison uses.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.metrics import accuracy_score, precision_score, recall_score, roc_auc_score
from sklearn.preprocessing import StandardScaler

from medai_lessons import metrics, models
from medai_lessons.data import load_breast_cancer_table
from medai_lessons.tabular import (
    EVALUATION_KEYS,
    choose_threshold,
    evaluate_classifier,
    fit_preprocessor,
    stratified_split,
)


@pytest.fixture(scope="module")
def wdbc():
    return load_breast_cancer_table(verbose=False)


# --- stratified_split ------------------------------------------------------------------------


@pytest.mark.parametrize(("test_size", "val_size"), [(0.2, 0.2), (0.25, 0.15), (0.1, 0.3)])
@pytest.mark.parametrize("seed", [0, 7])
def test_split_sizes_stratification_and_disjointness(wdbc, test_size, val_size, seed):
    X, y = wdbc.X, wdbc.y
    X_train, X_val, X_test, y_train, y_val, y_test = stratified_split(X, y, test_size, val_size,
                                                                      seed)
    n = len(y)
    assert abs(len(X_test) - test_size * n) <= 1
    assert abs(len(X_val) - val_size * n) <= 1
    assert len(X_train) + len(X_val) + len(X_test) == n
    indices = [set(part.index) for part in (X_train, X_val, X_test)]
    assert all(not (a & b) for a, b in itertools.combinations(indices, 2))
    assert set().union(*indices) == set(X.index)
    for X_part, y_part in ((X_train, y_train), (X_val, y_val), (X_test, y_test)):
        assert isinstance(X_part, pd.DataFrame) and isinstance(y_part, pd.Series)
        assert list(X_part.index) == list(y_part.index)               # rows stay paired
        assert abs(y_part.sum() - y.mean() * len(y_part)) <= 1          # stratified
        pd.testing.assert_frame_equal(X_part, X.loc[X_part.index])      # the rows themselves


def test_split_is_reproducible_and_depends_on_the_seed(wdbc):
    first = stratified_split(wdbc.X, wdbc.y, 0.2, 0.2, 3)
    again = stratified_split(wdbc.X, wdbc.y, 0.2, 0.2, 3)
    other = stratified_split(wdbc.X, wdbc.y, 0.2, 0.2, 4)
    assert all(list(a.index) == list(b.index) for a, b in zip(first, again, strict=True))
    assert set(first[2].index) != set(other[2].index)


def test_split_accepts_arrays_and_leaves_them_unchanged():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(100, 3)), (rng.random(100) < 0.3).astype(int)
    X_before, y_before = X.copy(), y.copy()
    parts = stratified_split(X, y, 0.2, 0.2, 0)
    assert [len(p) for p in parts] == [60, 20, 20, 60, 20, 20]
    assert all(isinstance(p, np.ndarray) for p in parts)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)


@pytest.mark.parametrize(("test_size", "val_size"), [(0.0, 0.2), (0.5, 0.5), (0.2, 1.2),
                                                     (-0.1, 0.2)])
def test_split_rejects_impossible_fractions(test_size, val_size):
    with pytest.raises(ValueError, match="fractions of the whole"):
        stratified_split(np.zeros((10, 1)), np.arange(10) % 2, test_size, val_size, 0)


# --- fit_preprocessor ------------------------------------------------------------------------


def _table_with_gaps(seed=0, n=80):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal([5, -20, 300], [1, 10, 50], size=(n, 3)), columns=list("abc"))
    X = X.mask(rng.random(X.shape) < 0.15)
    return X.iloc[: n // 2], X.iloc[n // 2:]


def test_preprocessor_learns_the_training_statistics_only():
    X_train, X_test = _table_with_gaps()
    prep = fit_preprocessor(X_train)
    medians = X_train.median()
    filled = X_train.fillna(medians)
    np.testing.assert_allclose(prep[0].statistics_, medians)          # imputer: training medians
    np.testing.assert_allclose(prep[-1].mean_, filled.mean())         # scaler: training means
    np.testing.assert_allclose(prep[-1].scale_, filled.std(ddof=0))
    expected = (X_test.fillna(medians) - filled.mean()) / filled.std(ddof=0)
    np.testing.assert_allclose(prep.transform(X_test), expected)
    assert prep.n_features_in_ == X_train.shape[1]                    # features only, no label


def test_transforming_other_data_never_refits():
    X_train, X_test = _table_with_gaps(1)
    prep = fit_preprocessor(X_train)
    on_train = prep.transform(X_train)
    prep.transform(X_test)
    prep.transform(X_test + 1000)
    np.testing.assert_allclose(prep.transform(X_train), on_train)
    np.testing.assert_allclose(on_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(on_train.std(axis=0), 1)


def test_preprocessor_matches_scikit_learn_steps_and_leaves_input_alone():
    X_train, X_test = _table_with_gaps(2)
    before = X_train.copy()
    prep = fit_preprocessor(X_train)
    pd.testing.assert_frame_equal(X_train, before)
    imputer = SimpleImputer(strategy="median").fit(X_train)
    scaler = StandardScaler().fit(imputer.transform(X_train))
    np.testing.assert_allclose(prep.transform(X_test), scaler.transform(imputer.transform(X_test)))


# --- operating points and choose_threshold ---------------------------------------------------


def brute_force_threshold(y, s, min_sensitivity):
    """Every distinct score as the threshold; best specificity, then best sensitivity."""
    best = None
    for t in sorted(set(s.tolist())):
        positive = s >= t
        sens, spec = positive[y == 1].mean(), (~positive[y == 0]).mean()
        if sens >= min_sensitivity and (best is None or (spec, sens) > best[:2]):
            best = (spec, sens, t)
    return best[2]


def _random_case(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 300))
    y = (rng.random(n) < rng.uniform(0.1, 0.6)).astype(int)
    y[:2] = [0, 1]
    s = rng.normal(y * rng.uniform(0, 3), 1.0)
    if seed % 3 == 0:
        s = np.round(s, 1)                                # many ties
    if seed % 3 == 1:
        s = 1 / (1 + np.exp(-4 * s))
        s = np.where(s > 0.9, 1.0, s).astype(np.float32)  # a saturated sigmoid in float32
    return y, s


@pytest.mark.parametrize("seed", range(40))
def test_choose_threshold_matches_a_brute_force_search(seed):
    y, s = _random_case(seed)
    for min_sensitivity in (0.1, 0.5, 0.8, 0.9, 0.95, 1.0, np.mean(y[y == 1]) * 0.75):
        assert choose_threshold(y, s, min_sensitivity) == brute_force_threshold(
            y, np.asarray(s, dtype=float), min_sensitivity)


@pytest.mark.parametrize("seed", range(10))
def test_operating_points_match_counting(seed):
    y, s = _random_case(seed)
    points = metrics.operating_points(y, s)
    assert np.all(np.diff(points.thresholds) < 0)               # highest threshold first
    assert np.all(np.diff(points.sensitivity) >= 0) and np.all(np.diff(points.specificity) <= 0)
    assert points.sensitivity[-1] == 1.0
    for t, sens, spec in zip(*points, strict=True):
        report = metrics.diagnostic_metrics(y, np.asarray(s, float) >= t)
        assert sens == report["sensitivity"] and spec == report["specificity"]


def test_choose_threshold_reaches_a_requirement_exactly_and_breaks_ties_by_sensitivity():
    y = np.array([1, 1, 1, 1, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.95, 0.5])
    assert choose_threshold(y, s, 0.5) == 0.6          # specificity 0.5 from 0.6 to 0.9: best sens
    y20 = np.r_[np.ones(20, int), np.zeros(5, int)]
    s20 = np.r_[np.arange(20) / 20 + 0.5, [0.53, 0.58, 0.1, 0.2, 0.3]]
    t = choose_threshold(y20, s20, 0.9)                # 18 of 20 = 0.9 exactly, no false alarm
    assert t == 0.6 and np.mean(s20[y20 == 1] >= t) == 0.9


NO_BOTH = r"needs diseased \(1\) and healthy \(0\) patients"


@pytest.mark.parametrize(("y", "min_sensitivity", "message"), [
    ([0, 0, 0], 0.9, NO_BOTH), ([1, 1, 1], 0.9, NO_BOTH),
    ([0, 1, 1], 0.0, r"min_sensitivity is a fraction in \(0, 1\], got 0.0"),
    ([0, 1, 1], 1.5, r"min_sensitivity is a fraction in \(0, 1\], got 1.5")])
def test_choose_threshold_raises_when_undefined(y, min_sensitivity, message):
    with pytest.raises(ValueError, match=message):
        choose_threshold(np.array(y), np.array([0.2, 0.5, 0.9]), min_sensitivity)


def test_operating_points_reject_non_finite_scores():
    with pytest.raises(ValueError, match="finite"):
        metrics.operating_points([0, 1], [0.1, np.nan])


# --- evaluate_classifier ---------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.8])
def test_evaluation_matches_metrics_and_scikit_learn(threshold):
    rng = np.random.default_rng(int(threshold * 10))
    y = (rng.random(150) < 0.35).astype(int)
    s = np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0, 1)
    s[:3] = threshold                                     # ties at the threshold count positive
    result = evaluate_classifier(y, s, threshold)
    assert tuple(result) == EVALUATION_KEYS
    pred = (s >= threshold).astype(int)
    report = metrics.binary_report(y, s, threshold)
    for key in EVALUATION_KEYS:
        assert result[key] == report[key]
    assert result["sensitivity"] == pytest.approx(recall_score(y, pred))
    assert result["specificity"] == pytest.approx(recall_score(1 - y, 1 - pred))
    assert result["ppv"] == pytest.approx(precision_score(y, pred))
    assert result["npv"] == pytest.approx(precision_score(1 - y, 1 - pred))
    assert result["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert result["roc_auc"] == pytest.approx(roc_auc_score(y, s))


def test_evaluation_is_nan_where_undefined():
    result = evaluate_classifier(np.array([1, 0, 0, 1]), np.array([0.1, 0.2, 0.3, 0.4]), 0.9)
    assert np.isnan(result["ppv"]) and result["sensitivity"] == 0.0 and result["npv"] == 0.5



def test_threshold_table_counts_intervals_and_ppv_by_hand():
    from scipy.stats import binomtest

    from medai_lessons.tabular import threshold_table

    #            diseased: scores 0.9 0.8 0.6 0.3     healthy: 0.7 0.4 0.2 0.1 0.05 0.01
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.4, 0.2, 0.1, 0.05, 0.01])
    table = threshold_table(y, s, {"low (screen)": 0.25, "high": 0.75}, prevalence=0.1,
                            missed="missed cancers")
    assert list(table.index) == ["low (screen)", "high"]
    low, high = table.loc["low (screen)"], table.loc["high"]
    # at 0.25: tp 4, fn 0, fp 2 (0.7, 0.4), tn 4; at 0.75: tp 2, fn 2, fp 0, tn 6
    assert (low["missed cancers"], low["false alarms"]) == (0, 2)
    assert (high["missed cancers"], high["false alarms"]) == (2, 0)
    assert (low["sensitivity"], low["specificity"]) == (1.0, round(4 / 6, 3))
    assert (high["sensitivity"], high["specificity"]) == (0.5, 1.0)
    ci = binomtest(2, 4).proportion_ci(method="exact")
    assert high["95 % CI"] == f"{ci.low:.3f}-{ci.high:.3f}"
    ci = binomtest(4, 6).proportion_ci(method="exact")
    assert low["95 % CI "] == f"{ci.low:.3f}-{ci.high:.3f}"
    # PPV at 10 % prevalence: 1 * 0.1 / (1 * 0.1 + (1/3) * 0.9) = 0.25
    assert low["PPV at 10 % prevalence"] == 0.25
    assert high["PPV at 10 % prevalence"] == 1.0


def test_threshold_table_takes_sensitivity_and_specificity_from_the_evaluate_given():
    from medai_lessons.tabular import threshold_table

    y, s = np.array([1, 0, 1, 0]), np.array([0.9, 0.1, 0.8, 0.7])

    def own(y_true, scores, threshold):      # a learner's function with a different answer
        return {"sensitivity": 0.25, "specificity": 0.75}

    table = threshold_table(y, s, {"t": 0.5}, evaluate=own)
    assert (table.loc["t", "sensitivity"], table.loc["t", "specificity"]) == (0.25, 0.75)
    assert table.loc["t", "false alarms"] == 1          # the counts stay the course's


# --- build_mlp -------------------------------------------------------------------------------


@pytest.mark.parametrize("n_features", [30, 4])
def test_build_mlp_is_the_sources_network_compiled(n_features):
    import keras

    model = models.build_mlp(n_features)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert len(dense) == len(model.layers) == 3
    assert [(d.units, d.get_config()["activation"]) for d in dense] == [
        (64, "relu"), (32, "relu"), (1, "sigmoid")]
    assert tuple(model.inputs[0].shape) == (None, n_features)
    assert tuple(model.outputs[0].shape) == (None, 1)
    assert model.count_params() == (n_features + 1) * 64 + 65 * 32 + 33
    config = model.get_compile_config()
    assert config["loss"] == "binary_crossentropy"
    assert config["optimizer"]["class_name"] == "Adam"
    assert [m["class_name"] for m in config["metrics"]] == ["AUC", "Recall"]
    p = np.asarray(model(np.random.default_rng(0).normal(size=(5, n_features)).astype("f4")))
    assert p.shape == (5, 1) and np.all((p > 0) & (p < 1))


# --- the epoch trainer -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def trainer_and_data(wdbc):
    from medai_lessons.epoch_trainer import EpochTrainer

    X_train, X_val, X_test, y_train, y_val, y_test = stratified_split(wdbc.X, wdbc.y, 0.2, 0.2,
                                                                      0)
    prep = fit_preprocessor(X_train)
    data = tuple(prep.transform(x) for x in (X_train, X_val, X_test)) + (y_train, y_val, y_test)
    return EpochTrainer(models.build_mlp(wdbc.X.shape[1])), data


def test_trainer_reset_is_reproducible_per_seed(trainer_and_data):
    trainer, _ = trainer_and_data
    trainer.reset(1)
    first = [w.copy() for w in trainer.model.get_weights()]
    trainer.reset(2)
    other = trainer.model.get_weights()
    trainer.reset(1)
    assert all(np.array_equal(a, b) for a, b in zip(first, trainer.model.get_weights(),
                                                    strict=True))
    assert not np.array_equal(first[0], other[0])
    assert all(not b.any() for b in first[1::2])                   # biases start at zero
    assert int(trainer.model.optimizer.iterations.numpy()) == 0


def test_trainer_learns_and_restores_the_best_epoch(trainer_and_data):
    trainer, (A_train, A_val, A_test, y_train, y_val, y_test) = trainer_and_data
    trainer.reset(0)
    history = trainer.fit(A_train, y_train, A_val, y_val, epochs=200, patience=5, seed=0)
    assert history.stopped_early and len(history.val_loss) < 200
    assert history.best_epoch == int(np.argmin(history.val_loss))
    restored = float(trainer._cross_entropy(A_val.astype("f4"),
                                            np.asarray(y_val, "f4").reshape(-1, 1)))
    assert restored == pytest.approx(min(history.val_loss), rel=1e-5)
    assert roc_auc_score(y_test, trainer.predict(A_test)) > 0.97


def test_trainer_without_validation_trains_exactly_the_epochs(trainer_and_data):
    trainer, (A_train, _, _, y_train, _, _) = trainer_and_data
    trainer.reset(0)
    history = trainer.fit(A_train, y_train, epochs=7, l2=0.01, seed=0)
    assert len(history.loss) == 7 and history.val_loss == [] and history.best_epoch == 6
    assert history.loss[-1] < history.loss[0]


def test_trainer_input_noise_is_seeded_and_zero_noise_changes_nothing(trainer_and_data):
    trainer, (A_train, _, _, y_train, _, _) = trainer_and_data

    def weights_after(**options):
        trainer.reset(0)
        trainer.fit(A_train, y_train, epochs=3, seed=0, **options)
        return [w.copy() for w in trainer.model.get_weights()]

    plain, zero = weights_after(), weights_after(noise=0.0)
    noisy, again = weights_after(noise=0.1), weights_after(noise=0.1)
    assert all(np.array_equal(a, b) for a, b in zip(plain, zero, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(noisy, again, strict=True))
    assert not np.array_equal(plain[0], noisy[0])


# --- choosing the network's training setup without the test part -----------------------------


def test_the_candidate_grid_is_the_one_fixed_in_advance():
    from medai_lessons.tabular import MLP_SETUPS

    assert len(MLP_SETUPS) == len(set(MLP_SETUPS)) == 16
    assert {s.l2 for s in MLP_SETUPS} == {0.0, 1e-3, 1e-2, 3e-2}
    assert {s.noise for s in MLP_SETUPS} == {0.0, 0.1}
    assert {s.refit for s in MLP_SETUPS} == {False, True}


@pytest.mark.parametrize("seed", [0, 1])
def test_binary_log_loss_matches_scikit_learn(seed):
    from sklearn.metrics import log_loss

    from medai_lessons.tabular import binary_log_loss

    rng = np.random.default_rng(seed)
    y, p = rng.integers(0, 2, 50), rng.uniform(0, 1, 50)
    p[:2] = [0.0, 1.0]                                                 # clipped, not infinite
    assert binary_log_loss(y, p) == pytest.approx(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7)),
                                                  rel=1e-9)


def test_fit_mlp_early_stops_then_refits_on_training_and_validation(wdbc, trainer_and_data):
    from medai_lessons.tabular import MLPSetup, fit_mlp

    trainer, _ = trainer_and_data
    X_train, X_val, X_test, y_train, y_val, y_test = stratified_split(wdbc.X, wdbc.y, 0.2, 0.2,
                                                                      0)
    kept = fit_mlp(trainer, MLPSetup(l2=0.01), X_train, y_train, X_val, y_val, seed=0,
                   epochs=40, patience=5)
    assert kept.epochs == kept.history.best_epoch + 1
    np.testing.assert_allclose(kept.preprocessor[-1].mean_, X_train.mean().to_numpy())
    refit = fit_mlp(trainer, MLPSetup(l2=0.01, refit=True), X_train, y_train, X_val, y_val,
                    seed=0, epochs=40, patience=5)
    assert refit.epochs == kept.epochs                                 # the same stopping run
    np.testing.assert_allclose(refit.preprocessor[-1].mean_,
                               pd.concat([X_train, X_val]).mean().to_numpy())
    assert int(trainer.model.optimizer.iterations.numpy()) == refit.epochs * 15  # 455 / 32
    assert roc_auc_score(y_test, refit.predict(trainer, X_test)) > 0.97


def test_select_mlp_setup_scores_every_setup_on_the_validation_part(wdbc, trainer_and_data):
    from medai_lessons.tabular import MLPSetup, select_mlp_setup

    trainer, _ = trainer_and_data
    X_train, X_val, _, y_train, y_val, _ = stratified_split(wdbc.X, wdbc.y, 0.2, 0.2, 0)
    setups = (MLPSetup(0.0), MLPSetup(0.03), MLPSetup(0.0, refit=True))
    best, scores = select_mlp_setup(trainer, X_train, y_train, X_val, y_val, seed=0,
                                    setups=setups, epochs=30, patience=5)
    assert list(scores) == list(setups)
    assert best == min(setups, key=lambda s: scores[s]["log_loss"])
    for score in scores.values():
        assert 0 < score["log_loss"] < 0.7 and 0.8 < score["accuracy"] <= 1
    again, scores_again = select_mlp_setup(trainer, X_train, y_train, X_val, y_val, seed=0,
                                           setups=setups, epochs=30, patience=5)
    assert again == best and scores_again == scores                    # reproducible


def test_out_of_fold_probabilities_never_predict_a_patient_the_network_learned_from():
    from medai_lessons.tabular import out_of_fold_probabilities

    class Identity:
        def transform(self, X):
            return np.asarray(X, dtype=float)

    class RecordingTrainer:
        """Predicts 1 for a patient it was trained on, else 0.5; records its calls."""

        def __init__(self):
            self.calls, self.seen = [], set()

        def reset(self, seed):
            self.calls.append(("reset", seed))
            self.seen = set()

        def fit(self, X, y, *, epochs, l2, noise, seed):
            self.calls.append(("fit", len(X), epochs, l2, noise, seed))
            self.seen = set(X[:, 0].astype(int))

        def predict(self, X):
            return np.array([1.0 if i in self.seen else 0.5 for i in X[:, 0].astype(int)])

    y = pd.Series([0, 1] * 10 + [0] * 5)
    X = pd.DataFrame({"patient": np.arange(len(y)), "x": np.linspace(0, 1, len(y))})
    trainer = RecordingTrainer()
    p = out_of_fold_probabilities(trainer, X, y, epochs=7, l2=0.01, noise=0.1, n_splits=5,
                                  seed=3, preprocessor=lambda X_fit: Identity())
    np.testing.assert_array_equal(p, np.full(len(y), 0.5))     # every patient held out once
    fits = [c for c in trainer.calls if c[0] == "fit"]
    assert [c[0] for c in trainer.calls] == ["reset", "fit"] * 5
    assert fits == [("fit", 20, 7, 0.01, 0.1, k) for k in range(5)]
    assert [c[1] for c in trainer.calls if c[0] == "reset"] == list(range(5))
