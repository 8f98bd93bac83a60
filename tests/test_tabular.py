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
