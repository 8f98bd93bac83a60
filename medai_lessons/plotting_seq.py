"""Plots of ECG sequences and of what recurrent networks do with them (chapter 4).

Each function draws a new figure and returns it; in a notebook assign the result
(``fig = plot_ecg_strips(...)``) so that it is shown once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

_CLASS_COLOURS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def plot_ecg_strips(strips: Sequence, seconds: float = 6.0):
    """One row per ``ECGStrip`` (``medai_lessons.data.ecg_synthetic``): the first ``seconds``
    of the signal, every R peak marked, premature ventricular beats in red."""
    fig, axes = plt.subplots(len(strips), 1, figsize=(10, 1.55 * len(strips) + 0.4),
                             sharex=True, squeeze=False)
    for ax, strip in zip(axes[:, 0], strips, strict=True):
        n = int(seconds * strip.fs)
        t, x = strip.time[:n], strip.signal[:n]
        ax.plot(t, x, color="black", lw=0.9)
        for peak, kind in zip(strip.r_peaks, strip.beat_types, strict=True):
            if peak < n:
                ax.plot(t[peak], x[peak] + 0.25, "v", ms=5,
                        color="tab:red" if kind == "V" else "tab:blue")
        rr = strip.rr_intervals
        cv = np.std(rr) / np.mean(rr) if rr.size > 1 else float("nan")
        ax.set_title(f"{strip.rhythm} · {strip.rhythm_name} · {strip.heart_rate:.0f} bpm · "
                     f"RR variation {100 * cv:.0f} %", fontsize=9, loc="left")
        ax.set_ylabel("mV")
        ax.set_ylim(x.min() - 0.3, x.max() + 0.55)
    axes[-1, 0].set_xlabel("time (s)    ▼ beat (blue: normal, red: premature ventricular)")
    fig.tight_layout()
    return fig


def plot_beats(X, y, class_names: Sequence[str], fs: float, pre: int, max_per_class: int = 40,
               title: str = "", seed: int = 0):
    """Heartbeat windows overlaid, one panel per class that has beats: up to
    ``max_per_class`` thin lines and their mean; time in ms relative to the R peak (the
    window starts ``pre`` samples before it)."""
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X must be (beats, samples); got shape {X.shape}"
                         + (": pass X[..., 0]" if X.ndim == 3 and X.shape[-1] == 1 else ""))
    if y.size != len(X):
        raise ValueError(f"X has {len(X)} beats but y has {y.size} labels: pass one label per "
                         "beat.")
    y = y.reshape(-1)
    outside = ~np.isin(y, np.arange(len(class_names)))
    if outside.any():
        raise ValueError(f"y must hold class indices 0 to {len(class_names) - 1}, one per entry "
                         f"of class_names {list(class_names)}; found {np.unique(y[outside])[:5]}")
    present = [k for k in range(len(class_names)) if np.any(y == k)]
    fig, axes = plt.subplots(1, len(present), figsize=(3.4 * len(present), 2.9), sharey=True,
                             squeeze=False)
    t = (np.arange(X.shape[1]) - pre) / fs * 1000
    rng = np.random.default_rng(seed)
    for ax, k in zip(axes[0], present, strict=True):
        idx = np.flatnonzero(y == k)
        shown = rng.choice(idx, size=min(max_per_class, idx.size), replace=False)
        colour = _CLASS_COLOURS[k % len(_CLASS_COLOURS)]
        ax.plot(t, X[shown].T, color=colour, lw=0.6, alpha=0.35)
        ax.plot(t, X[idx].mean(axis=0), color="black", lw=1.8, label="mean")
        ax.set_title(f"{class_names[k]}: {idx.size:,} beat{'s' if idx.size > 1 else ''}",
                     fontsize=10)
        ax.set_xlabel("ms from the R peak")
        ax.legend(fontsize=8, loc="upper right")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def plot_confusion_matrices(matrices: Mapping[str, np.ndarray], class_names: Sequence[str],
                            titles: Mapping[str, str] | None = None, suptitle: str = ""):
    """Confusion matrices side by side (rows: true class, columns: predicted). Each cell shows
    its count; the colour is the row's share, so the diagonal reads as per-class recall.
    Each matrix is ``k x k`` for the ``k`` entries of ``class_names``."""
    if not hasattr(matrices, "items"):
        raise TypeError("matrices must be a dict {title: confusion matrix}, e.g. {'GRU': cm}; "
                        f"got a {type(matrices).__name__}")
    k = len(class_names)
    for name, cm in matrices.items():
        shape = np.shape(cm)
        if shape != (k, k):
            size = "x".join(map(str, shape)) if len(shape) == 2 else f"of shape {shape}"
            raise ValueError(f"matrix {name!r} is {size} but class_names has {k} names: pass "
                             f"one name per class and a {k}x{k} matrix for each model.")
    n = len(matrices)
    size = 1.0 + 0.52 * len(class_names)
    fig, axes = plt.subplots(1, n, figsize=(size * n + 0.6, size + 0.5), squeeze=False)
    for ax, (name, cm) in zip(axes[0], matrices.items(), strict=True):
        cm = np.asarray(cm)
        share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if share[i, j] > 0.6 else "black")
        ax.set_xticks(range(len(class_names)), class_names, fontsize=8)
        ax.set_yticks(range(len(class_names)), class_names, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title((titles or {}).get(name, name), fontsize=9)
        ax.grid(False)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def plot_hidden_states(signal, fs: float, H, step_seconds: float, probabilities=None,
                       class_names: Sequence[str] | None = None, title: str = "",
                       signal_label: str = "ECG", units: int | None = 24):
    """What a recurrent layer carries along a sequence.

    Top: the input signal (sampled at ``fs``). Middle: the hidden state after each step
    (``H``, shape ``(T, u)``, one row per unit, at most ``units`` of them: those that change
    most), each step drawn at the time it ends. Bottom (when given): the classifier's class
    probabilities read out from the hidden state after each step, i.e. what the model would
    answer if the sequence ended there.
    """
    H = np.asarray(H)
    signal = np.asarray(signal)
    rows = 3 if probabilities is not None else 2
    fig, axes = plt.subplots(rows, 1, figsize=(10, 2.0 * rows + 1.2), sharex=True,
                             gridspec_kw={"height_ratios": [1, 1.6, 1][:rows]})
    t_signal = np.arange(signal.size) / fs
    axes[0].plot(t_signal, signal, color="black", lw=0.9)
    axes[0].set_ylabel(signal_label)
    if title:
        axes[0].set_title(title, fontsize=10, loc="left")
    order = np.argsort(-H.std(axis=0))[: units or H.shape[1]]
    edges = np.arange(H.shape[0] + 1) * step_seconds
    mesh = axes[1].pcolormesh(edges, np.arange(order.size + 1), H[:, order].T, cmap="RdBu_r",
                              vmin=-1, vmax=1, shading="flat")
    axes[1].set_ylabel(f"hidden unit\n({order.size} most active)")
    axes[1].grid(False)
    # the colour bar sits just outside the panel, so that all panels keep the same width
    fig.colorbar(mesh, cax=axes[1].inset_axes([1.005, 0.0, 0.012, 1.0]), label="h")
    if probabilities is not None:
        P = np.asarray(probabilities)
        t_steps = edges[1:]
        for k in range(P.shape[1]):
            name = class_names[k] if class_names is not None else str(k)
            axes[2].step(t_steps, P[:, k], where="post", lw=1.8, label=name,
                         color=_CLASS_COLOURS[k % len(_CLASS_COLOURS)])
        axes[2].set_ylim(-0.05, 1.05)
        axes[2].set_ylabel("probability")
        axes[2].legend(fontsize=8, ncol=P.shape[1], loc="upper left")
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    return fig
