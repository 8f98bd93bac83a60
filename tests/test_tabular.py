"""The reference missingness report (medai_lessons.tabular): its exact contract, on small
tables and on the messy EHR export whose faults the loader records."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medai_lessons.data import load_messy_ehr
from medai_lessons.tabular import REPORT_COLUMNS, missingness_report


def test_report_of_a_small_table():
    df = pd.DataFrame({
        "age": [64, 51, np.nan, 72],
        "site": ["North", None, None, "Valley"],
        "visit": pd.to_datetime(["2024-01-02", None, "2024-03-04", None]),
        "count": pd.array([1, pd.NA, 3, 4], dtype="Int64"),
        "sex": ["F", "M", "F", "F"],
    })
    before = df.copy()
    report = missingness_report(df)
    assert list(report.columns) == list(REPORT_COLUMNS)
    assert list(report.index) == ["site", "visit", "age", "count"]   # ties keep column order
    assert report["n_missing"].tolist() == [2, 2, 1, 1]
    assert report["n_missing"].dtype == np.int64
    np.testing.assert_allclose(report["fraction_missing"], [0.5, 0.5, 0.25, 0.25])
    pd.testing.assert_frame_equal(df, before)


def test_a_table_without_gaps_gives_an_empty_report():
    report = missingness_report(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    assert report.empty and list(report.columns) == list(REPORT_COLUMNS)


def test_empty_strings_are_values_not_gaps():
    report = missingness_report(pd.DataFrame({"site": ["", " ", "North"]}))
    assert report.empty


@pytest.mark.parametrize("seed", [0, 3])
def test_report_of_the_messy_export_matches_what_the_loader_removed(seed):
    messy = load_messy_ehr(seed=seed, verbose=False)
    report = missingness_report(messy.frame)
    truth = messy.truth["missing_counts"]
    assert set(report.index) == set(truth)
    extra_rows = len(messy.truth["duplicated_ids"])
    for column, n in truth.items():                       # duplicated rows copy their gaps
        assert n <= report.loc[column, "n_missing"] <= n + extra_rows
    assert report["n_missing"].is_monotonic_decreasing
    np.testing.assert_allclose(report["fraction_missing"],
                               report["n_missing"] / len(messy.frame))


# --- chapter 6: median imputation with missing-value indicators -------------------------------


def _training_table():
    return pd.DataFrame({"a": [1.0, np.nan, 3.0, 5.0, np.nan],
                         "b": [2.0, 4.0, 6.0, 8.0, 10.0],        # no gap in training
                         "c": [np.nan, 1.0, 1.0, 2.0, 7.0]})


def test_indicators_follow_the_documented_column_order():
    from medai_lessons.tabular import fit_preprocessor

    X = _training_table()
    before = X.copy()
    prep = fit_preprocessor(X, add_indicator=True)
    assert list(prep.get_feature_names_out()) == ["a", "b", "c", "missingindicator_a",
                                                  "missingindicator_c"]
    out = prep.transform(X)
    assert out.shape == (5, 5)
    # the indicators mark the gaps as they were before imputation (not all zeros afterwards)
    raw = X[["a", "c"]].isna().to_numpy(float)
    expected = (raw - raw.mean(axis=0)) / raw.std(axis=0)
    np.testing.assert_allclose(out[:, 3:], expected)
    # the measurements are those of the imputation-only preprocessor
    np.testing.assert_allclose(out[:, :3], fit_preprocessor(X).transform(X))
    pd.testing.assert_frame_equal(X, before)


def test_indicators_are_learnt_on_the_training_part_only():
    from medai_lessons.tabular import fit_preprocessor

    X = _training_table()
    prep = fit_preprocessor(X, add_indicator=True)
    new = pd.DataFrame({"a": [np.nan, 4.0], "b": [np.nan, 6.0], "c": [3.0, 3.0]})
    out = prep.transform(new)
    # b had no gap in training: it is imputed with its training median but gets no indicator;
    # the indicators are scaled with the training shares of gaps, not the new part's
    assert out.shape == (2, 5)
    assert np.isclose(out[0, 1], (6.0 - X["b"].mean()) / X["b"].std(ddof=0))
    share_a, share_c = 2 / 5, 1 / 5
    sd_a, sd_c = np.sqrt(share_a * (1 - share_a)), np.sqrt(share_c * (1 - share_c))
    np.testing.assert_allclose(out[:, 3], [(1 - share_a) / sd_a, -share_a / sd_a])
    np.testing.assert_allclose(out[:, 4], [-share_c / sd_c, -share_c / sd_c])
    # fitted on the new part, the indicators would follow its gaps (a and b), not training's
    assert list(fit_preprocessor(new, add_indicator=True).get_feature_names_out()[3:]) == [
        "missingindicator_a", "missingindicator_b"]
    assert list(prep.get_feature_names_out()[3:]) == ["missingindicator_a", "missingindicator_c"]


def test_without_gaps_in_training_no_indicator_is_added():
    from medai_lessons.tabular import fit_preprocessor

    X = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.5, 0.1, 0.2]})
    prep = fit_preprocessor(X, add_indicator=True)
    assert list(prep.get_feature_names_out()) == ["a", "b"]
    assert prep.transform(pd.DataFrame({"a": [np.nan], "b": [0.3]})).shape == (1, 2)


def test_default_preprocessor_has_no_indicators():
    from medai_lessons.tabular import fit_preprocessor

    assert fit_preprocessor(_training_table()).transform(_training_table()).shape == (5, 3)


def test_indicators_help_where_gaps_follow_suspicion_and_hurt_where_they_do_not():
    """Section 3.1's claims on the real table: when a reading is missing mostly for benign
    aspirates, its indicator raises the test ROC AUC of a model on weak measurements; on the
    same test patients with the reading missing at random instead (another hospital), the
    indicator model ranks them worse than imputation only."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from medai_lessons.data import load_breast_cancer_table
    from medai_lessons.tabular import fit_preprocessor, stratified_split

    wdbc = load_breast_cancer_table(verbose=False)
    true = wdbc.X[["texture_mean", "smoothness_mean", "symmetry_mean"]]
    X = true.copy()
    rate = np.where(wdbc.y == 1, 0.05, 0.40)
    X.loc[np.random.default_rng(0).random(len(X)) < rate, "smoothness_mean"] = np.nan
    gains = {"here": [], "elsewhere": []}
    for seed in range(5):
        X_tr, X_va, X_te, y_tr, y_va, y_te = stratified_split(X, wdbc.y, 0.2, 0.2, seed)
        X_dev, y_dev = pd.concat([X_tr, X_va]), pd.concat([y_tr, y_va])
        elsewhere = true.loc[X_te.index].copy()
        elsewhere.loc[np.random.default_rng(seed).random(len(elsewhere)) < 0.2,
                      "smoothness_mean"] = np.nan
        auc = {}
        for add in (False, True):
            prep = fit_preprocessor(X_dev, add_indicator=add)
            model = LogisticRegression(max_iter=1000).fit(prep.transform(X_dev), y_dev)
            for site, X_site in (("here", X_te), ("elsewhere", elsewhere)):
                auc[site, add] = roc_auc_score(
                    y_te, model.predict_proba(prep.transform(X_site))[:, 1])
        for site in gains:
            gains[site].append(auc[site, True] - auc[site, False])
    assert min(gains["here"]) > 0, gains
    assert np.mean(gains["elsewhere"]) < 0, gains


def _informative_table(seed=0):
    """The breast-cancer table with the smoothness reading missing mostly for benign aspirates
    (40 % against 5 %), as chapter 6 builds it, and the complete table."""
    from medai_lessons.data import load_breast_cancer_table

    wdbc = load_breast_cancer_table(verbose=False)
    gappy = wdbc.X.copy()
    rate = np.where(wdbc.y == 1, 0.05, 0.40)
    gappy.loc[np.random.default_rng(seed).random(len(gappy)) < rate, "smoothness_mean"] = np.nan
    return gappy, wdbc.X, wdbc.y


def test_missing_indicator_experiment_is_the_computation_it_documents():
    """Section 3.1's experiment, recomputed step by step for two splits: the same AUCs,
    log-losses and bootstrap intervals, rows in the documented order, the chapter's split
    function used, and the inputs left alone."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from medai_lessons import metrics
    from medai_lessons.tabular import (
        INDICATOR_ARMS,
        INDICATOR_SITES,
        fit_preprocessor,
        indicator_gain,
        missing_indicator_experiment,
        stratified_split,
    )

    gappy, true, y = _informative_table()
    before = gappy.copy(), true.copy(), y.copy()
    weak = ["texture_mean", "smoothness_mean", "symmetry_mean"]
    called = []

    def split(X, labels, test_size, val_size, seed):
        called.append(seed)
        return stratified_split(X, labels, test_size, val_size, seed)

    seeds = [3, 1]
    results = missing_indicator_experiment(gappy, true, y, weak, seeds, split=split, n_boot=50)
    assert called == seeds
    assert list(results.index) == [(s, site, arm) for s in seeds for site in INDICATOR_SITES
                                   for arm in INDICATOR_ARMS]
    assert list(results.columns) == ["roc_auc", "log_loss", "n_test", "auc_low", "auc_high"]
    table = results.sort_index()                       # seeds in order: quick lookups
    for seed in seeds:
        X_tr, X_va, X_te, y_tr, y_va, y_te = stratified_split(gappy, y, 0.2, 0.2, seed)
        X_dev, y_dev = pd.concat([X_tr, X_va])[weak], pd.concat([y_tr, y_va])
        elsewhere = true.loc[X_te.index, weak].copy()
        elsewhere.loc[np.random.default_rng(seed).random(len(elsewhere)) < 0.2,
                      "smoothness_mean"] = np.nan
        for arm, add in zip(INDICATOR_ARMS, (False, True), strict=True):
            prep = fit_preprocessor(X_dev, add_indicator=add)
            model = LogisticRegression(max_iter=1000).fit(prep.transform(X_dev), y_dev)
            for site, X_site in zip(INDICATOR_SITES, (X_te[weak], elsewhere), strict=True):
                p = model.predict_proba(prep.transform(X_site))[:, 1]
                row = table.loc[(seed, site, arm)]
                assert row["roc_auc"] == pytest.approx(roc_auc_score(y_te, p), abs=1e-12)
                assert row["log_loss"] == pytest.approx(metrics.log_loss(y_te, p), abs=1e-12)
                assert row["n_test"] == len(y_te)
                ci = metrics.bootstrap_auc_ci(y_te, p, n_boot=50, seed=seed)
                assert (row["auc_low"], row["auc_high"]) == pytest.approx((ci.low, ci.high))
                assert row["auc_low"] <= row["roc_auc"] <= row["auc_high"]
    for frame, original in zip((gappy, true, y), before, strict=True):
        assert frame.equals(original)

    gain = indicator_gain(results)
    assert list(gain.index) == seeds and list(gain.columns) == list(INDICATOR_SITES)
    for seed in seeds:
        for site in INDICATOR_SITES:
            assert gain.loc[seed, site] == pytest.approx(
                table.loc[(seed, site, INDICATOR_ARMS[1]), "roc_auc"]
                - table.loc[(seed, site, INDICATOR_ARMS[0]), "roc_auc"])
    # without n_boot no interval columns; the gap at "another hospital" follows lost_share
    plain = missing_indicator_experiment(gappy, true, y, weak, [3], lost_share=0.0)
    assert list(plain.columns) == ["roc_auc", "log_loss", "n_test"]
    assert plain.loc[(3, "this hospital"), "roc_auc"].tolist() == \
        table.loc[(3, "this hospital"), "roc_auc"].tolist()
    assert plain.loc[(3, "another hospital"), "roc_auc"].tolist() != \
        table.loc[(3, "another hospital"), "roc_auc"].tolist()
