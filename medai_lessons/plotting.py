"""Plots the chapters share. Each function draws on a new figure and returns it; in a
notebook, assign the result (``fig = plot_curves(...)``) so it is shown once."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np


def plot_functions(x, panels: Mapping[str, Mapping[str, np.ndarray]], xlabel: str = "x",
                   ylim: Sequence[tuple[float, float] | None] | None = None,
                   styles: Mapping[str, str] | None = None):
    """One panel per entry of ``panels`` ({panel title: {curve label: y values}})."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for i, (ax, (title, curves)) in enumerate(zip(axes[0], panels.items(), strict=True)):
        for label, y in curves.items():
            ax.plot(x, y, (styles or {}).get(label, "-"), label=label, lw=2)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.axhline(0, color="grey", lw=0.8)
        ax.axvline(0, color="grey", lw=0.8)
        if ylim is not None and ylim[i] is not None:
            ax.set_ylim(*ylim[i])
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_curves(curves: Mapping[str, Sequence[float]], xlabel: str = "step",
                ylabel: str = "loss", title: str | None = None, logy: bool = False):
    """Training curves (loss or metric per step/epoch), one line per entry."""
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    for label, values in curves.items():
        ax.plot(np.arange(len(values)), values, label=label, lw=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_descent_path(f: Callable[[np.ndarray], float], paths: Mapping[str, Sequence],
                      xlim=(-5, 5), ylim=(-5, 5), title: str | None = None, levels: int = 30):
    """Contours of a 2-d loss ``f(w)`` and the paths that optimisers took across it."""
    xs = np.linspace(*xlim, 121)
    ys = np.linspace(*ylim, 121)
    grid = np.array([[f(np.array([a, b])) for a in xs] for b in ys])
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.contour(xs, ys, grid, levels=levels, cmap="viridis", linewidths=0.8)
    for label, path in paths.items():
        p = np.asarray(path)
        inside = (np.all((p[:, 0] >= xlim[0]) & (p[:, 0] <= xlim[1]) & (p[:, 1] >= ylim[0])
                         & (p[:, 1] <= ylim[1])))
        note = "" if inside else ", leaves the frame"
        ax.plot(p[:, 0], p[:, 1], "o-", ms=3, lw=1.5, label=f"{label} ({len(p) - 1} steps{note})")
        if inside:
            ax.plot(*p[-1], "k*", ms=10)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel("$w_1$")
    ax.set_ylabel("$w_2$")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_weights(values: Mapping[str, float], title: str = "", xlabel: str = "weight"):
    """A horizontal bar chart of named values (e.g. a model's weights), largest |value| on top."""
    items = sorted(values.items(), key=lambda kv: abs(kv[1]))
    fig, ax = plt.subplots(figsize=(6.5, 0.25 * len(items) + 1.2))
    ax.barh([k for k, _ in items], [v for _, v in items],
            color=["tab:red" if v > 0 else "tab:blue" for _, v in items])
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
