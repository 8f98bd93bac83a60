"""Tabular data: the Wisconsin diagnostic breast cancer table, clean and "messy EHR".

**Clean table** (:func:`load_breast_cancer_table`): scikit-learn's copy of the Breast Cancer
Wisconsin (Diagnostic) data, 569 fine-needle aspirates x 30 measurements of the cell nuclei,
as a pandas DataFrame.

- Column names are readable snake_case: ``"<measure>_<statistic>"`` with statistic ``mean``,
  ``se`` (standard error; scikit-learn calls it "error") or ``worst`` (mean of the three
  largest values). So ``"mean radius"`` -> ``radius_mean``, ``"radius error"`` ->
  ``radius_se``, ``"worst concave points"`` -> ``concave_points_worst``. The measures are
  radius, texture, perimeter, area, smoothness, compactness, concavity, concave_points,
  symmetry and fractal_dimension (all in the units of the digitised images).
- The label column ``malignant`` is **1 = malignant, 0 = benign**. Note that scikit-learn's
  own ``target`` is the opposite (1 = benign): the course recodes it so that the positive
  class is the disease.

**Messy EHR variant** (:func:`load_messy_ehr`), for the data-cleaning lessons, made from the
clean table deterministically for a seed:

- ``patient_id`` (``"P0001"``...) and ``referring_site``: a categorical column, one of
  :data:`SITES` drawn with probabilities :data:`SITE_WEIGHTS` (synthetic, not in the source);
  :data:`SPELLING_RATE` (5 %) of the site values are written inconsistently (lower case, upper
  case or with a trailing space).
- Missing values (NaN / None), completely at random, in exactly ``round(rate x 569)`` of the
  569 original rows for each column of :data:`MISSING_RATES`: radius_mean 2 %, texture_mean
  5 %, smoothness_mean 8 %, concavity_worst 3 %, referring_site 4 % (a duplicated row copies
  its gaps, so the final table can hold a few more).
- A unit inconsistency, flagged nowhere: in :data:`UNIT_RATE` (7 %) of the rows,
  ``area_mean`` and ``area_worst`` are multiplied by 100 (as if exported in a unit 100 times
  smaller, like mm^2 for cm^2). Hint for learners: area ~ pi x radius^2 for the other rows.
- Duplicated rows: :data:`DUPLICATE_RATE` (3 %) of the patients appear twice (identical rows).
- Rows are then shuffled.

The returned :class:`TableDataset` of the messy variant records in ``truth`` exactly what was
changed (ids of the rows with the unit change, duplicated ids, missing counts), for checkers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from medai_lessons.data.containers import Provenance, wrap
from medai_lessons.data.registry import get_info

if TYPE_CHECKING:
    import pandas as pd

TARGET = "malignant"
SITES: tuple[str, ...] = (
    "North Clinic",
    "Riverside Hospital",
    "University Hospital",
    "Valley Health Center",
)
SITE_WEIGHTS: tuple[float, ...] = (0.35, 0.25, 0.30, 0.10)
MISSING_RATES: dict[str, float] = {
    "radius_mean": 0.02,
    "texture_mean": 0.05,
    "smoothness_mean": 0.08,
    "concavity_worst": 0.03,
    "referring_site": 0.04,
}
UNIT_RATE = 0.07
UNIT_FACTOR = 100.0
UNIT_COLUMNS: tuple[str, ...] = ("area_mean", "area_worst")
DUPLICATE_RATE = 0.03
SPELLING_RATE = 0.05


def readable_name(sklearn_name: str) -> str:
    """``"mean concave points"`` -> ``"concave_points_mean"``; ``"radius error"`` ->
    ``"radius_se"``; ``"worst area"`` -> ``"area_worst"``."""
    name = str(sklearn_name).strip()
    if name.startswith("mean "):
        measure, stat = name[5:], "mean"
    elif name.startswith("worst "):
        measure, stat = name[6:], "worst"
    elif name.endswith(" error"):
        measure, stat = name[:-6], "se"
    else:
        raise ValueError(f"unexpected feature name {sklearn_name!r}")
    return f"{measure.replace(' ', '_')}_{stat}"


@dataclass
class TableDataset(Provenance):
    """A table with its provenance.

    Attributes:
        frame: the DataFrame (features, label column, extra columns).
        target: the label column's name (``"malignant"``: 1 = malignant).
        feature_names: the 30 measurement columns.
        source: ``"real"``, or ``"real (modified: synthetic faults added)"`` for the messy
            variant (real measurements, made-up site column and faults).
        truth: for the messy variant, what was changed (see :mod:`tables` docstring).
    """

    name: str
    title: str
    frame: pd.DataFrame
    target: str
    feature_names: list[str]
    source: str
    citation: str
    license: str
    notes: list[str] = field(default_factory=list)
    truth: dict[str, object] = field(default_factory=dict)

    @property
    def X(self) -> pd.DataFrame:
        return self.frame[self.feature_names]

    @property
    def y(self) -> pd.Series:
        return self.frame[self.target]

    def _summary_head(self) -> list[str]:
        n_pos = int((self.frame[self.target] == 1).sum())
        lines = [
            f"[medai data] {self.title}: {self.source.upper()} data",
            wrap(
                f"{len(self.frame):,} rows x {self.frame.shape[1]} columns; label "
                f"'{self.target}': 1 = malignant ({n_pos}), 0 = benign "
                f"({int((self.frame[self.target] == 0).sum())})"
            ),
        ]
        return lines

    def __repr__(self) -> str:
        return f"TableDataset(name={self.name!r}, shape={self.frame.shape}, source={self.source!r})"


def load_breast_cancer_table(verbose: bool = True) -> TableDataset:
    """The Wisconsin diagnostic table, readable column names, ``malignant`` 1 = malignant."""
    from sklearn.datasets import load_breast_cancer

    info = get_info("breast_cancer_wisconsin")
    raw = load_breast_cancer(as_frame=True)
    features = raw.data.rename(columns=readable_name)
    frame = features.copy()
    # scikit-learn: 0 = malignant, 1 = benign. Course: 1 = malignant.
    frame[TARGET] = (raw.target.to_numpy() == 0).astype(np.int64)
    ds = TableDataset(
        name=info.name,
        title=info.title,
        frame=frame,
        target=TARGET,
        feature_names=list(features.columns),
        source="real",
        citation=info.citation,
        license=info.license,
        notes=[
            "label recoded: 1 = malignant, 0 = benign (scikit-learn's target codes 1 = benign)",
            "columns renamed '<measure>_<mean|se|worst>', e.g. 'mean radius' -> radius_mean",
        ],
    )
    if verbose:
        print(ds.summary())
    return ds


def load_messy_ehr(seed: int = 0, verbose: bool = True) -> TableDataset:
    """The breast cancer table made messy like an EHR export, deterministically for ``seed``.

    See the module docstring for every fault and its rate; ``result.truth`` lists them.
    """
    import pandas as pd

    clean = load_breast_cancer_table(verbose=False)
    rng = np.random.default_rng(seed)
    df = clean.frame.copy()
    n = len(df)

    df.insert(0, "patient_id", [f"P{i + 1:04d}" for i in range(n)])
    sites = rng.choice(len(SITES), size=n, p=np.asarray(SITE_WEIGHTS))
    site_values = np.array([SITES[i] for i in sites], dtype=object)
    n_spell = int(round(SPELLING_RATE * n))
    spell_rows = rng.choice(n, size=n_spell, replace=False)
    variants = (str.lower, str.upper, lambda s: s + " ")
    for k, row in enumerate(spell_rows):
        site_values[row] = variants[k % len(variants)](site_values[row])
    df.insert(1, "referring_site", pd.Series(site_values, dtype=object))

    n_unit = int(round(UNIT_RATE * n))
    unit_rows = np.sort(rng.choice(n, size=n_unit, replace=False))
    for col in UNIT_COLUMNS:
        df.loc[unit_rows, col] = df.loc[unit_rows, col] * UNIT_FACTOR

    missing: dict[str, int] = {}
    for col, rate in MISSING_RATES.items():
        k = int(round(rate * n))
        rows = rng.choice(n, size=k, replace=False)
        df.loc[rows, col] = None if col == "referring_site" else np.nan
        missing[col] = k

    n_dup = int(round(DUPLICATE_RATE * n))
    dup_rows = np.sort(rng.choice(n, size=n_dup, replace=False))
    df = pd.concat([df, df.iloc[dup_rows]], ignore_index=True)
    df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)

    info = get_info("breast_cancer_wisconsin")
    ds = TableDataset(
        name="messy_ehr",
        title="Breast cancer table as a messy EHR export",
        frame=df,
        target=TARGET,
        feature_names=list(clean.feature_names),
        source="real (modified: synthetic faults added)",
        citation=info.citation,
        license=info.license,
        notes=[
            f"derived from the Wisconsin table with seed {seed}: missing values, a hidden unit "
            f"change in {n_unit} rows, {n_dup} duplicated rows, inconsistent site spellings "
            "(rates in medai_lessons.data.tables)",
            "label: 1 = malignant, 0 = benign",
        ],
        truth={
            "seed": seed,
            "unit_changed_ids": [f"P{i + 1:04d}" for i in unit_rows],
            "unit_columns": list(UNIT_COLUMNS),
            "unit_factor": UNIT_FACTOR,
            "duplicated_ids": [f"P{i + 1:04d}" for i in dup_rows],
            "missing_counts": missing,
            "misspelled_site_ids": sorted(f"P{i + 1:04d}" for i in spell_rows),
        },
    )
    if verbose:
        print(ds.summary())
    return ds
