"""Chapter 7's plots: they draw what they are given and say what to pass when given the wrong
thing."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("sksurv", reason="scikit-survival (chapter 7) is not installed")

from medai_lessons import plotting_survival as splot  # noqa: E402
from medai_lessons import survival  # noqa: E402


def sample(n=80, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(1, 50, n).astype(float), rng.integers(0, 2, n), rng.integers(0, 2, n)


def test_km_plot_has_a_curve_per_group_and_the_numbers_at_risk():
    time, event, arm = sample()
    fig = splot.plot_km_by_group(time, event, {"a": arm == 0, "b": arm == 1},
                                 at_risk_times=[0, 20, 40],
                                 extra={"wrong": survival.kaplan_meier(time, event)})
    curves, table = fig.axes
    assert len(curves.get_legend().get_texts()) == 3
    assert [t.get_text() for t in table.texts][:3] == [
        str(int(np.sum(time[arm == 0] >= t))) for t in (0, 20, 40)]
    assert list(table.get_xticks()) == [0, 20, 40]      # each number stands under its tick


def test_group_and_interval_plots_draw_every_row():
    time, event, arm = sample(200, 1)
    table = survival.benefit_by_group(time, event, arm, np.linspace(0, 1, 200), 25.0)
    fig = splot.plot_group_table({"T-learner": table}, "predicted", "observed", zero_line=True)
    assert len(fig.axes[0].collections) >= 1
    fig = splot.plot_intervals({"x": (0.1, 0.0, 0.2), "y": (0.3, 0.25, 0.35)}, "difference",
                               reference=0.0)
    left, right = fig.axes[0].get_xlim()
    assert left <= 0.0 and right > 0.35


def test_a_list_instead_of_a_dict_says_what_to_pass():
    time, event, arm = sample()
    with pytest.raises(TypeError, match="label: boolean mask"):
        splot.plot_km_by_group(time, event, [arm == 0])
