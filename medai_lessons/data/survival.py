"""Survival data from clinical trials, shipped inside scikit-survival (nothing to download).

One loader, :func:`load_survival_table`, for three data sets of chapter 7:

- ``"actg320"``: the ACTG 320 AIDS trial, **randomised**: two nucleoside analogues with or
  without indinavir. 1,151 patients; the endpoint is an AIDS-defining event or death.
- ``"veterans_lung"``: the Veterans' Administration lung cancer trial, **randomised**:
  standard vs test chemotherapy. 137 men with advanced inoperable lung cancer; endpoint death.
- ``"gbsg2"``: the German Breast Cancer Study Group 2 trial, node-positive breast cancer;
  endpoint recurrence or death. Hormonal therapy (tamoxifen) was **not randomised for every
  patient** in this data set: treated women are older and mostly postmenopausal, so it is
  analysed here as a cohort (the chapter shows who was treated).

Each returns a :class:`SurvivalDataset` whose ``frame`` holds numeric covariates (categorical
ones one-hot coded, the first level dropped, ordinal grades as integers), the follow-up
``time`` in days, ``event`` (1 = the endpoint was observed, 0 = censored: follow-up ended
first) and ``treated`` (1 = the arm named in ``arms[1]``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from medai_lessons.data.containers import Provenance, wrap
from medai_lessons.data.errors import DataUnavailable
from medai_lessons.data.registry import get_info

if TYPE_CHECKING:
    import pandas as pd

SURVIVAL_NAMES: tuple[str, ...] = ("actg320", "veterans_lung", "gbsg2")
INSTALL_HINT = ("the chapter's trial data ship inside the package scikit-survival: install it "
                "with `python -m pip install scikit-survival` (it is a dependency of "
                "medai-lessons, so reinstalling the course installs it too)")


@dataclass
class SurvivalDataset(Provenance):
    """A table of patients with follow-up time, event indicator and treatment arm.

    Attributes:
        frame: covariates (numeric), then ``time`` (days), ``event`` (1/0), ``treated`` (1/0).
        feature_names: the covariate columns (not time, event or treated).
        arms: names of the arms, index = value of ``treated``.
        randomised: whether ``treated`` was assigned at random for every patient.
        endpoint: what an event is.
    """

    name: str
    title: str
    frame: pd.DataFrame
    feature_names: list[str]
    arms: tuple[str, str]
    randomised: bool
    endpoint: str
    source: str
    citation: str
    license: str
    notes: list[str] = field(default_factory=list)

    @property
    def X(self) -> pd.DataFrame:
        return self.frame[self.feature_names]

    @property
    def time(self) -> np.ndarray:
        return self.frame["time"].to_numpy(dtype=float)

    @property
    def event(self) -> np.ndarray:
        return self.frame["event"].to_numpy(dtype=np.int64)

    @property
    def treated(self) -> np.ndarray:
        return self.frame["treated"].to_numpy(dtype=np.int64)

    def _summary_head(self) -> list[str]:
        n1 = int(self.treated.sum())
        n0 = len(self.frame) - n1
        return [
            f"[medai data] {self.title}: {self.source.upper()} data",
            wrap(f"{len(self.frame):,} patients, {len(self.feature_names)} covariates; "
                 f"endpoint: {self.endpoint}, observed for {int(self.event.sum())} "
                 f"({100 * self.event.mean():.1f} %), the others censored; follow-up "
                 f"{self.time.min():.0f} to {self.time.max():.0f} days"),
            wrap(f"arms: {self.arms[0]} ({n0}) vs {self.arms[1]} ({n1}); "
                 + ("randomised" if self.randomised else "NOT randomised for every patient")),
        ]

    def __repr__(self) -> str:
        return (f"SurvivalDataset(name={self.name!r}, patients={len(self.frame)}, "
                f"events={int(self.event.sum())})")


def _sksurv_datasets():
    try:
        import sksurv.datasets as datasets
    except ImportError as exc:
        raise DataUnavailable(f"scikit-survival is not installed: {INSTALL_HINT}") from exc
    return datasets


def _numeric(X: pd.DataFrame, ordinal: dict[str, dict[str, int]]) -> pd.DataFrame:
    """Categorical columns one-hot (first level dropped), ordinal ones as integers."""
    import pandas as pd

    X = X.copy()
    for column, codes in ordinal.items():
        X[column] = X[column].astype(str).map(codes).astype(float)
    categorical = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    X = pd.get_dummies(X, columns=categorical, drop_first=True, dtype=float)
    return X.astype(float)


def _actg320(datasets):
    X, y = datasets.load_aids(endpoint="aids")
    treated = (X["tx"].astype(str) == "1").astype(np.int64).to_numpy()
    # txgrp repeats tx (with the trial's other arms, absent here); strat2 is the CD4 stratum
    X = X.drop(columns=["tx", "txgrp"]).rename(columns={"strat2": "cd4_stratum"})
    X = _numeric(X, {"karnof": {"70": 70, "80": 80, "90": 90, "100": 100}})
    X = X.rename(columns={"karnof": "karnofsky", "hemophil_1": "haemophilia",
                          "sex_2": "female", "priorzdv": "months_prior_zdv",
                          "cd4_stratum_1": "cd4_above_50"})
    return X, y["time"], y["censor"], treated, (
        "zidovudine + lamivudine", "zidovudine + lamivudine + indinavir"), True, \
        "AIDS-defining event or death"


def _veterans(datasets):
    X, y = datasets.load_veterans_lung_cancer()
    treated = (X["Treatment"].astype(str) == "test").astype(np.int64).to_numpy()
    X = X.drop(columns=["Treatment"])
    X = _numeric(X, {})
    X.columns = [c.lower().replace("celltype_", "cell_") for c in X.columns]
    X = X.rename(columns={"age_in_years": "age", "karnofsky_score": "karnofsky",
                          "months_from_diagnosis": "months_since_diagnosis",
                          "prior_therapy_yes": "prior_therapy"})
    return X, y["Survival_in_days"], y["Status"], treated, (
        "standard chemotherapy", "test chemotherapy"), True, "death"


def _gbsg2(datasets):
    X, y = datasets.load_gbsg2()
    treated = (X["horTh"].astype(str) == "yes").astype(np.int64).to_numpy()
    X = X.drop(columns=["horTh"])
    X = _numeric(X, {"tgrade": {"I": 1, "II": 2, "III": 3}})
    X = X.rename(columns={"menostat_Post": "postmenopausal", "tgrade": "tumour_grade",
                          "tsize": "tumour_size_mm", "pnodes": "positive_nodes",
                          "progrec": "progesterone_receptor", "estrec": "oestrogen_receptor"})
    return X, y["time"], y["cens"], treated, ("no hormonal therapy", "tamoxifen"), False, \
        "recurrence or death"


_BUILDERS = {"actg320": _actg320, "veterans_lung": _veterans, "gbsg2": _gbsg2}


def load_survival_table(name: str, verbose: bool = True) -> SurvivalDataset:
    """One of :data:`SURVIVAL_NAMES` as a :class:`SurvivalDataset` (see the module docstring)."""
    key = name.strip().lower()
    if key not in _BUILDERS:
        raise KeyError(f"unknown survival data set {name!r}; choose one of "
                       f"{', '.join(SURVIVAL_NAMES)}")
    X, time, event, treated, arms, randomised, endpoint = _BUILDERS[key](_sksurv_datasets())
    frame = X.reset_index(drop=True).copy()
    frame["time"] = np.asarray(time, dtype=float)
    frame["event"] = np.asarray(event, dtype=bool).astype(np.int64)
    frame["treated"] = treated
    info = get_info(key)
    notes = ["time in days; event 1 = endpoint observed, 0 = censored (follow-up ended first)",
             "categorical covariates one-hot coded (first level dropped)"]
    if not randomised:
        notes.append("treatment was not assigned at random for every patient: compare arms "
                     "with care (confounding)")
    ds = SurvivalDataset(name=key, title=info.title, frame=frame, feature_names=list(X.columns),
                         arms=arms, randomised=randomised, endpoint=endpoint, source="real",
                         citation=info.citation, license=info.license, notes=notes)
    if verbose:
        print(ds.summary())
    return ds
