"""Plots of chapter 7 (survival and treatment effects). Each function draws on a new figure
and returns it; in a notebook, assign the result (``fig = plot_...(...)``) so it is shown once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from medai_lessons.plotting import _named


def plot_km_by_group(time, event, groups: Mapping[str, np.ndarray], at_risk_times:
                     Sequence[float] | None = None, extra: Mapping[str, tuple] | None = None,
                     title: str = "", xlabel: str = "days since randomisation",
                     ylabel: str = "event-free survival", ylim: tuple[float, float] = (0, 1.02)):
    """Kaplan-Meier curves with 95 % bands (scikit-survival's log-log intervals), one per
    group ({label: boolean mask}), and the number at risk under the plot at ``at_risk_times``.
    ``extra`` adds dashed curves {label: (times, survival)} (e.g. a wrong estimate)."""
    from sksurv.nonparametric import kaplan_meier_estimator

    groups = _named(groups, "groups", "label: boolean mask", '{"control": arm == 0}')
    time = np.asarray(time, float)
    event = np.asarray(event).astype(bool)
    fig, (ax, table) = plt.subplots(2, 1, figsize=(7.5, 4.6), sharex=True,
                                    gridspec_kw={"height_ratios": [4, 1]})
    if at_risk_times is None:
        at_risk_times = np.linspace(0, time.max(), 6).round(0)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (label, mask) in enumerate(groups.items()):
        mask = np.asarray(mask, bool)
        x, y, ci = kaplan_meier_estimator(event[mask], time[mask], conf_type="log-log")
        colour = colours[k % len(colours)]
        ax.step(np.r_[0, x], np.r_[1, y], where="post", color=colour, lw=2,
                label=f"{label} (n = {mask.sum()})")
        ax.fill_between(np.r_[0, x], np.r_[1, ci[0]], np.r_[1, ci[1]], step="post",
                        color=colour, alpha=0.2)
        censored = ~event[mask]
        ct = time[mask][censored]
        ax.plot(ct, np.interp(ct, x, y, left=1.0), "|", color=colour, ms=5, alpha=0.5)
        counts = [int(np.sum(time[mask] >= t)) for t in at_risk_times]
        for t, c in zip(at_risk_times, counts, strict=True):
            table.text(t, -k, str(c), ha="center", va="center", fontsize=8, color=colour)
    for k, (label, (x, y)) in enumerate((extra or {}).items()):
        ax.step(np.r_[0, x], np.r_[1, y], where="post", ls="--", lw=1.5,
                color="grey" if k == 0 else colours[(k + 3) % len(colours)], label=label)
    ax.set_ylim(*ylim)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, loc="lower left")
    if title:
        ax.set_title(title)
    table.set_ylim(-len(groups) + 0.5, 0.5)
    table.set_yticks(-np.arange(len(groups)), list(groups), fontsize=8)
    table.set_title("number at risk", fontsize=8, loc="left")
    table.grid(False)
    table.set_xticks(at_risk_times)          # the axis ticks where the numbers at risk stand
    table.set_xlabel(xlabel)
    fig.tight_layout()
    return fig


def plot_group_table(tables: Mapping[str, object], xlabel: str, ylabel: str, title: str = "",
                     diagonal: bool = True, zero_line: bool = False):
    """Predicted (x) against observed (y, with its 95 % interval) per group, for one or more
    :class:`~medai_lessons.survival.GroupTable` ({label: table}); the diagonal is perfect
    agreement."""
    tables = _named(tables, "tables", "label: GroupTable", '{"network": table}')
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    lows, highs = [], []
    for k, (label, tab) in enumerate(tables.items()):
        offset = 0.002 * (k - (len(tables) - 1) / 2)
        ax.errorbar(tab.predicted + offset, tab.observed,
                    yerr=[tab.observed - tab.low, tab.high - tab.observed], fmt="o",
                    capsize=3, label=label)
        lows += [tab.predicted.min(), tab.low.min()]
        highs += [tab.predicted.max(), tab.high.max()]
    lo, hi = min(lows), max(highs)
    if diagonal:
        ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls=":", label="predicted = observed")
    if zero_line:
        ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_intervals(rows: Mapping[str, tuple[float, float, float]], xlabel: str, title: str = "",
                   reference: float | None = None):
    """One horizontal estimate with its interval per row ({label: (estimate, low, high)})."""
    rows = _named(rows, "rows", "label: (estimate, low, high)", '{"trial": (0.06, 0.02, 0.1)}')
    fig, ax = plt.subplots(figsize=(7, 0.55 * len(rows) + 1.3))
    labels = list(rows)[::-1]
    for i, label in enumerate(labels):
        est, low, high = rows[label]
        ax.errorbar(est, i, xerr=[[est - low], [high - est]], fmt="o", capsize=4)
        ax.text(high, i + 0.18, f" {est:.3f} ({low:.3f} to {high:.3f})", fontsize=8)
    if reference is not None:
        ax.axvline(reference, color="grey", lw=1, ls=":")
    lo = min(v[1] for v in rows.values())
    hi = max(v[2] for v in rows.values())
    span = (hi - lo) or 1.0
    ax.set_xlim(min(lo, reference if reference is not None else lo) - 0.05 * span,
                hi + 0.6 * span)                             # room for the printed values
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylim(-0.6, len(labels) - 0.3)
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
