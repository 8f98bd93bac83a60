"""Helpers for clinical tables (pandas DataFrames): what is missing, before anything is fitted.

Chapter 1 looks at the "messy EHR" export of :func:`medai_lessons.data.load_messy_ehr` with
:func:`missingness_report`; chapter 6 cleans such a table for a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

REPORT_COLUMNS: tuple[str, ...] = ("n_missing", "fraction_missing")


def missingness_report(df: pd.DataFrame) -> pd.DataFrame:
    """How many values each column is missing.

    A value is missing when pandas' ``isna()`` says so (NaN, None, NaT, ``pd.NA``); an empty
    or misspelt string is a value. Returns a DataFrame **indexed by column name** with

    - ``n_missing`` (int): the number of missing values in that column;
    - ``fraction_missing`` (float): ``n_missing / len(df)``, the share of the *rows* (not of
      all cells) that lack a value in that column;

    holding **only the columns with at least one missing value**, sorted by ``n_missing``,
    largest first (ties keep the table's column order). A table without gaps gives an empty
    report with the same two columns. ``df`` itself is not changed.
    """
    import pandas as pd

    counts = df.isna().sum()
    counts = counts[counts > 0].sort_values(ascending=False, kind="stable").astype("int64")
    fraction = counts / len(df) if len(df) else counts.astype(float)
    return pd.DataFrame({"n_missing": counts, "fraction_missing": fraction.astype(float)},
                        columns=list(REPORT_COLUMNS))
