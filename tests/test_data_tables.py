"""The Wisconsin breast cancer table (readable names, 1 = malignant) and its messy EHR variant."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from medai_lessons.data import load_dataset
from medai_lessons.data.tables import (
    DUPLICATE_RATE,
    MISSING_RATES,
    SITES,
    UNIT_RATE,
    load_breast_cancer_table,
    load_messy_ehr,
    readable_name,
)


def test_readable_names():
    assert readable_name("mean radius") == "radius_mean"
    assert readable_name("radius error") == "radius_se"
    assert readable_name("worst concave points") == "concave_points_worst"
    assert readable_name("mean fractal dimension") == "fractal_dimension_mean"
    with pytest.raises(ValueError):
        readable_name("radius")


def test_clean_table_codes_malignant_as_one(capsys):
    ds = load_dataset("breast_cancer_wisconsin")
    df = ds.frame
    raw = load_breast_cancer()
    assert df.shape == (569, 31)
    assert len(ds.feature_names) == 30 and ds.target == "malignant"
    assert all(c == c.lower() and " " not in c for c in df.columns)
    # scikit-learn's target_names say which code is which: check against them.
    malignant_code = list(raw.target_names).index("malignant")
    np.testing.assert_array_equal(df["malignant"], (raw.target == malignant_code).astype(int))
    assert int(df["malignant"].sum()) == int((raw.target == malignant_code).sum())
    # Clinically: malignant nuclei are larger on average.
    means = df.groupby("malignant")["radius_mean"].mean()
    assert means[1] > means[0]
    worst_area = raw.data[:, list(raw.feature_names).index("worst area")]
    np.testing.assert_allclose(df["area_worst"], worst_area)
    out = capsys.readouterr().out
    assert "1 = malignant" in out and "REAL" in out and "Street" in out


def test_messy_ehr_is_deterministic_for_a_seed():
    a = load_messy_ehr(seed=3, verbose=False).frame
    b = load_messy_ehr(seed=3, verbose=False).frame
    c = load_messy_ehr(seed=4, verbose=False).frame
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_messy_ehr_faults_are_there_at_the_documented_rates():
    ds = load_messy_ehr(seed=0, verbose=False)
    df, n = ds.frame, 569
    n_dup = int(round(DUPLICATE_RATE * n))
    assert len(df) == n + n_dup
    assert int(df.duplicated().sum()) == n_dup
    assert df["patient_id"].nunique() == n
    assert sorted(df.loc[df.duplicated(), "patient_id"]) == sorted(ds.truth["duplicated_ids"])

    unique = df.drop_duplicates()
    for col, rate in MISSING_RATES.items():
        assert int(unique[col].isna().sum()) == int(round(rate * n)), col

    # The hidden unit change: area far above pi * radius^2 (radius_mean may be missing).
    known = unique.dropna(subset=["radius_mean"])
    ratio = known["area_mean"] / (np.pi * known["radius_mean"] ** 2)
    flagged = set(known.loc[ratio > 10, "patient_id"])
    assert flagged <= set(ds.truth["unit_changed_ids"])
    assert len(ds.truth["unit_changed_ids"]) == int(round(UNIT_RATE * n))
    assert len(flagged) >= 0.9 * len(ds.truth["unit_changed_ids"])
    assert not any("unit" in c or "flag" in c for c in df.columns)  # flagged nowhere

    sites = unique["referring_site"].dropna()
    assert set(sites.str.strip().str.title()) == set(SITES)
    assert (~sites.isin(SITES)).sum() > 0  # inconsistent spellings to clean


def test_messy_ehr_keeps_the_clinical_signal():
    clean = load_breast_cancer_table(verbose=False).frame
    messy = load_messy_ehr(seed=0, verbose=False).frame.drop_duplicates()
    assert messy["malignant"].sum() == clean["malignant"].sum()
    merged = messy.set_index("patient_id")["texture_mean"]
    clean_tex = clean["texture_mean"].set_axis([f"P{i + 1:04d}" for i in range(len(clean))])
    both = merged.dropna()
    np.testing.assert_allclose(both.to_numpy(), clean_tex.loc[both.index].to_numpy())
