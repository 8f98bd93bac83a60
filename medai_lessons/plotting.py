"""Plots the chapters share. Each function draws on a new figure and returns it; in a
notebook, assign the result (``fig = plot_curves(...)``) so it is shown once."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np


def _named(values, argument: str, form: str, example: str):
    """``values`` when it is a dict (anything with ``.items()``, e.g. also a DataFrame);
    otherwise a TypeError that says what to pass."""
    if hasattr(values, "items"):
        return values
    if isinstance(getattr(values, "history", None), Mapping):    # what keras' fit returns
        raise TypeError(f"{argument} must be a dict {{{form}}}; got a Keras History: "
                        "pass history.history")
    raise TypeError(f"{argument} must be a dict {{{form}}}, e.g. {example}; got a "
                    f"{type(values).__name__}")


_MARKED_POINTS = 30     # curves with at most this many points get a marker at each point


def plot_functions(x, panels: Mapping[str, Mapping[str, np.ndarray]], xlabel: str = "x",
                   ylim: Sequence[tuple[float, float] | None] | None = None,
                   styles: Mapping[str, str] | None = None, ylabel: str | None = None):
    """One panel per entry of ``panels`` ({panel title: {curve label: y values}}); ``ylabel``
    names what the curves measure, on the first panel. A curve of a few points (a training
    curve in fast mode: one epoch) gets a marker at each point, so that it is visible."""
    xs = np.asarray(x, dtype=float)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for i, (ax, (title, curves)) in enumerate(zip(axes[0], panels.items(), strict=True)):
        lows, highs = [], []
        for label, y in curves.items():
            short = np.size(y) <= _MARKED_POINTS
            ax.plot(x, y, (styles or {}).get(label, "-"), label=label, lw=2,
                    marker="o" if short else None, ms=4)
            values = np.asarray(y, dtype=float)
            finite = values[np.isfinite(values)]
            lows.append(finite.min(initial=np.inf))
            highs.append(finite.max(initial=-np.inf))
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        if ylabel and i == 0:
            ax.set_ylabel(ylabel)
        # the axes through 0, where 0 is among the values shown (a function's plot), not
        # where drawing them would stretch the panel (epochs from 1, an AUC near 1)
        bottom, top = (ylim[i] if ylim is not None and ylim[i] is not None
                       else (min(lows, default=np.inf), max(highs, default=-np.inf)))
        if bottom <= 0 <= top:
            ax.axhline(0, color="grey", lw=0.8)
        if xs.size and xs.min() <= 0 <= xs.max():
            ax.axvline(0, color="grey", lw=0.8)
        _whole_number_ticks(ax, xs)
        if ylim is not None and ylim[i] is not None:
            ax.set_ylim(*ylim[i])
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _whole_number_ticks(ax, xs: np.ndarray) -> None:
    """Steps and epochs (whole-number x values) get whole-number ticks; one or two of them get
    a tick each (a locator would fall back to fractions such as 0.945 ... 1.05)."""
    from matplotlib.ticker import MaxNLocator

    if not xs.size or not np.all(xs == np.round(xs)):
        return
    if np.unique(xs).size < 3:
        ax.set_xticks(np.unique(xs))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_curves(curves: Mapping[str, Sequence[float]], xlabel: str = "step",
                ylabel: str = "loss", title: str | None = None, logy: bool = False,
                x: Sequence[float] | None = None):
    """Training curves (loss or metric per step/epoch), one line per entry, against ``x``
    (default 0, 1, 2, ...). A short curve (fast mode: a few epochs, or one) is drawn with a
    marker at each point, so that a curve of a single point is still visible; a level that
    does not change (a reference such as log 4 or a floor) is drawn dashed, without markers.
    Steps and epochs get whole-number ticks."""
    curves = _named(curves, "curves", "curve name: values", "{'training loss': losses}")
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    all_x = []
    for label, values in curves.items():
        values = np.asarray(values, dtype=float)
        xs = np.arange(len(values)) if x is None else np.asarray(x, dtype=float)
        all_x.append(xs)
        level = len(values) > 1 and bool(np.all(values == values[0]))
        marker = "o" if len(values) <= _MARKED_POINTS and not level else None
        ax.plot(xs, values, "--" if level else "-", label=label, lw=1.5 if level else 2,
                marker=marker, ms=4)
    _whole_number_ticks(ax, np.concatenate(all_x) if all_x else np.array([]))
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


def _finish(fig, ax, title: str | None):
    """Title the main axes (if a title is given), tighten the layout, return the figure."""
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


# --- clinical evaluation (chapter 1 onwards) -------------------------------------------------


_COUNTS = ("counts must be (tp, fp, tn, fn) as metrics.confusion_counts returns it, or "
           "the 2x2 matrix [[tn, fp], [fn, tp]] of sklearn.metrics.confusion_matrix")


def _confusion_table(counts) -> np.ndarray:
    """``[[tn, fp], [fn, tp]]`` from ``(tp, fp, tn, fn)`` or from that 2x2 matrix itself."""
    if hasattr(counts, "keys"):
        if all(key in counts for key in ("tp", "fp", "tn", "fn")):
            hint = "pass (report['tp'], report['fp'], report['tn'], report['fn'])"
        else:
            hint = "pass metrics.confusion_counts(y_true, y_pred)"
        raise TypeError(f"{_COUNTS}; got a dict with keys {list(counts)[:6]}: {hint}")
    try:
        given = np.asarray(counts)
    except ValueError:                                      # ragged nested sequences
        given = np.asarray(counts, dtype=object)
    if given.shape == (2, 2):
        table = given
    elif given.shape == (4,):
        tp, fp, tn, fn = given
        table = np.array([[tn, fp], [fn, tp]], dtype=given.dtype)
    else:
        raise ValueError(f"{_COUNTS}; got {given.size} values of shape {given.shape}")
    if (table.dtype.kind not in "iuf" or np.any(table < 0) or np.any(table != np.round(table))):
        raise ValueError(f"{_COUNTS}: whole numbers >= 0; got {given.tolist()}")
    return table.astype(np.int64)


def plot_confusion_matrix(counts: Sequence[int], class_names: Sequence[str] = ("healthy",
                                                                                 "disease"),
                          title: str | None = None):
    """The 2x2 confusion matrix of ``counts``: rows are the truth, columns the prediction;
    each cell shows its count and its share of the row (so the diagonal cells read as
    specificity and sensitivity).

    ``counts`` is ``(tp, fp, tn, fn)`` in this order, as :func:`metrics.confusion_counts
    <medai_lessons.metrics.confusion_counts>` returns it, or the 2x2 matrix
    ``[[tn, fp], [fn, tp]]`` (rows: true class 0, 1; columns: predicted class 0, 1) that
    ``sklearn.metrics.confusion_matrix`` returns. Not ``confusion_matrix(...).ravel()``: that
    is ``(tn, fp, fn, tp)``, another order of four numbers, which cannot be told apart from
    ours; pass the matrix itself.
    """
    table = _confusion_table(counts)
    names = [["TN", "FP"], ["FN", "TP"]]
    rows = table.sum(axis=1, keepdims=True)
    shares = np.divide(table, rows, out=np.full(table.shape, np.nan), where=rows > 0)
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    ax.imshow(np.nan_to_num(shares), cmap="Blues", vmin=0, vmax=1)
    for i in range(2):
        for j in range(2):
            share = "" if np.isnan(shares[i, j]) else f"\n{100 * shares[i, j]:.1f} % of row"
            ax.text(j, i, f"{names[i][j]} {table[i, j]}{share}", ha="center", va="center",
                    color="white" if shares[i, j] > 0.6 else "black", fontsize=10)
    ax.set_xticks([0, 1], [f"predicted {c}" for c in class_names])
    ax.set_yticks([0, 1], [f"truly {c}" for c in class_names])
    ax.grid(False)
    return _finish(fig, ax, title)


def plot_roc(y_true, scores: Mapping[str, Sequence[float]], threshold: float | None = 0.5,
             intervals: Mapping[str, Sequence[float]] | None = None, title: str | None = None):
    """ROC curves of one or more models on the same patients, with each AUC (and its
    confidence interval from ``intervals[name] = (auc, low, high, ...)``, e.g. a
    :func:`medai_lessons.metrics.bootstrap_auc_ci` result) in the legend, the chance
    diagonal, and a dot where each model operates at ``threshold``."""
    from medai_lessons import metrics

    scores = _named(scores, "scores", "model name: scores", "{'CNN': p}")
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    for name, s in scores.items():
        fpr, tpr, _ = metrics.roc_curve(y_true, s)
        label = f"{name}: AUC {metrics.roc_auc(y_true, s):.3f}"
        if intervals and name in intervals:
            _, low, high = intervals[name][:3]
            label += f" (95 % CI {low:.3f}-{high:.3f})"
        line, = ax.plot(fpr, tpr, lw=2, label=label, drawstyle="steps-post")
        if threshold is not None:
            r = metrics.diagnostic_metrics(y_true, np.asarray(s, dtype=float) >= threshold)
            ax.plot(1 - r["specificity"], r["sensitivity"], "o", ms=8, color=line.get_color())
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="chance (AUC 0.5)")
    ax.set_xlabel("1 - specificity (false-positive rate)")
    ax.set_ylabel("sensitivity (true-positive rate)")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")
    if threshold is not None:
        ax.plot([], [], "ko", label=f"threshold {threshold:g}")
    ax.legend(fontsize=8, loc="lower right")
    return _finish(fig, ax, title)


def plot_calibration(y_true, probabilities: Mapping[str, Sequence[float]], n_bins: int = 10,
                     title: str | None = None):
    """Reliability diagram (observed share of diseased patients against the mean predicted
    probability, per bin) with the diagonal of perfect calibration, and below it how many
    patients received each predicted probability."""
    from medai_lessons import metrics

    probabilities = _named(probabilities, "probabilities", "model name: probabilities",
                           "{'CNN': p}")
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(4.8, 5.2), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfectly calibrated")
    for name, p in probabilities.items():
        curve = metrics.calibration(y_true, p, n_bins=n_bins)
        ax.plot(curve.mean_predicted, curve.fraction_positive, "o-", lw=2, label=name)
        hist.hist(np.asarray(p, dtype=float), bins=np.linspace(0, 1, n_bins + 1),
                  histtype="step", lw=2, label=name)
    ax.set_ylabel("observed share diseased")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    hist.set_xlabel("predicted probability of disease")
    hist.set_ylabel("patients")
    return _finish(fig, ax, title)



def plot_operating_points(points, marks: Mapping[str, float] | None = None,
                          title: str | None = None):
    """Sensitivity and specificity at every threshold, on a logit axis (it spreads out the
    thresholds near 0 and 1 where a good model puts most patients), with a dashed line at
    each named threshold of ``marks`` (``{name: threshold}``; the legend shows the name up to
    its first " (" and the threshold).

    ``points`` is what :func:`medai_lessons.metrics.operating_points` returns (``thresholds``,
    ``sensitivity``, ``specificity``). A logit axis cannot show 0 or 1: thresholds there are
    drawn at 1e-6 and 1 - 1e-6.
    """
    marks = _named(marks or {}, "marks", "name: threshold", "{'screening': 0.12}")
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    shown = np.clip(np.asarray(points.thresholds, dtype=float), 1e-6, 1 - 1e-6)
    ax.plot(shown, points.sensitivity, drawstyle="steps-post", label="sensitivity")
    ax.plot(shown, points.specificity, drawstyle="steps-post", label="specificity")
    colours = ("tab:red", "grey", "tab:green", "tab:purple", "tab:brown")
    for k, (name, t) in enumerate(marks.items()):
        ax.axvline(np.clip(t, 1e-6, 1 - 1e-6), color=colours[k % len(colours)], ls="--",
                   lw=1.2, label=f"{name.split(' (')[0]}: {t:.3g}")
    ax.set_xscale("logit")
    ticks = [0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("threshold on the predicted probability (logit scale)")
    ax.set_ylabel("sensitivity or specificity")
    ax.legend(fontsize=8, loc="center left")
    return _finish(fig, ax, title)


def plot_decision_curve(thresholds, curves: Mapping[str, Sequence[float]],
                        prevalence: float, marks: Mapping[str, float] | None = None,
                        title: str | None = None):
    """A decision curve: the net benefit of each strategy in ``curves`` (``{name: net
    benefit at each of thresholds}``; the first is drawn bold, e.g. the model, then "treat
    all" and "treat none") against the threshold probability, with a dotted line at each
    threshold of ``marks`` that falls inside the range shown. The net benefit cannot exceed
    the ``prevalence`` (every diseased patient treated, nobody else), which bounds the y axis.
    """
    curves = _named(curves, "curves", "strategy: net benefits", "{'model': [...]}")
    thresholds = np.asarray(thresholds, dtype=float)
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for k, (name, values) in enumerate(curves.items()):
        ax.plot(thresholds, np.asarray(values, dtype=float), lw=2 if k == 0 else 1.2,
                label=name)
    for t in (marks or {}).values():
        if thresholds.min() < t < thresholds.max():
            ax.axvline(t, color="grey", ls=":", lw=1)
    ax.set_ylim(-0.05, prevalence + 0.05)
    ax.set_xlabel("threshold probability $p_t$ (a false positive costs $p_t / (1 - p_t)$ of a "
                  "true positive's gain)")
    ax.set_ylabel("net benefit (per patient)")
    ax.legend(fontsize=8)
    return _finish(fig, ax, title)

# --- medical images and signals --------------------------------------------------------------


def plot_images(panels: Mapping[str, np.ndarray], cmap: str = "gray", ncols: int | None = None,
                size: float = 3.4, suptitle: str | None = None, **imshow):
    """Images side by side, one per entry of ``panels`` ({title: array}), without axes
    ticks. Extra keyword arguments go to ``imshow`` (e.g. ``vmin``, ``vmax``); 2-d arrays use
    ``cmap``. Returns the figure; ``fig.axes`` gives the panels to draw on."""
    panels = _named(panels, "panels", "title: image", "{'X-ray': x[0]}")
    n = len(panels)
    ncols = ncols or n
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3),
                             squeeze=False)
    for ax, (title, image) in zip(list(axes.flat)[:n], panels.items(), strict=True):
        ax.imshow(image, cmap=cmap if np.ndim(image) == 2 else None, **imshow)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_ecg(signal, fs: float, start: float = 0.0, seconds: float = 10.0,
             beats: Mapping[int, str] | None = None, title: str | None = None):
    """An ECG strip in mV on ECG paper: minor grid 0.04 s x 0.1 mV, major grid 0.2 s x 0.5 mV
    (a clinician's 1 mm and 5 mm squares at 25 mm/s, 10 mm/mV). ``beats`` maps sample indices
    (of the whole ``signal``) to annotation symbols written above the R peaks."""
    signal = np.asarray(signal, dtype=float)
    if not fs > 0:
        raise ValueError(f"fs is the sampling rate in Hz, a number > 0 (e.g. 360); got {fs!r}")
    first, last = int(round(start * fs)), int(round((start + seconds) * fs))
    if not 0 <= first < len(signal):
        length = len(signal) / fs
        raise ValueError(f"start={start:g} s is outside the signal: the signal lasts {length:g} s "
                         f"({len(signal)} samples at {fs:g} Hz); pick a start from 0 to below "
                         f"{length:g} s.")
    t = np.arange(first, min(last, signal.size)) / fs
    y = signal[first:first + t.size]
    fig, ax = plt.subplots(figsize=(min(2.0 + 1.3 * seconds, 15), 3.2))
    lo = np.floor((y.min() - 0.2) * 2) / 2
    hi = np.ceil((y.max() + 0.4) * 2) / 2
    ax.set_xticks(np.arange(t[0], t[-1] + 1e-9, 0.2), minor=False)
    ax.set_xticks(np.arange(t[0], t[-1] + 1e-9, 0.04), minor=True)
    ax.set_yticks(np.arange(lo, hi + 1e-9, 0.5))
    ax.set_yticks(np.arange(lo, hi + 1e-9, 0.1), minor=True)
    ax.grid(True, which="major", color="tab:red", alpha=0.35, lw=0.8)
    ax.grid(True, which="minor", color="tab:red", alpha=0.12, lw=0.5)
    ax.plot(t, y, color="black", lw=0.9)
    if beats:
        for sample, symbol in beats.items():
            if first <= sample < first + t.size:
                ax.annotate(symbol, (sample / fs, signal[sample]), xytext=(0, 6),
                            textcoords="offset points", ha="center", fontsize=9,
                            color="tab:blue" if symbol in ("N", ".") else "tab:red")
    ax.set_xlim(t[0], t[-1])
    ax.set_ylim(lo, hi)
    ax.set_xticklabels([f"{v:g}" if abs(v - round(v)) < 1e-6 else "" for v in ax.get_xticks()])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mV")
    return _finish(fig, ax, title)


def plot_adaptive_trial(shares: Mapping[str, Sequence[float]],
                        successes: Mapping[str, Sequence[float]], best_expected: float,
                        short_names: Sequence[str] | None = None):
    """Chapter 1's simulated adaptive trial, one entry per allocation strategy: left, the share
    of the patients so far who were given the best treatment (``shares[name][t]`` after patient
    ``t + 1``, a mean over runs); right, each run's number of successes, against the
    ``best_expected`` successes of always giving the best treatment."""
    _named(shares, "shares", "strategy: share given the best treatment after each patient",
           "{'Thompson sampling': share}")
    _named(successes, "successes", "strategy: each run's number of successes",
           "{'Thompson sampling': totals}")
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.6), gridspec_kw={"width_ratios": [1.3, 1]})
    for name, share in shares.items():
        axes[0].plot(np.arange(1, len(share) + 1), share, lw=2, label=name)
    axes[0].axhline(1 / 3, color="grey", lw=0.8, ls=":")
    axes[0].set_ylim(0, 1)
    axes[0].set_xlabel("patients treated so far")
    axes[0].set_ylabel("share given the best treatment")
    axes[0].legend(fontsize=8)
    axes[1].boxplot([np.asarray(v) for v in successes.values()], widths=0.5)
    axes[1].set_xticks(range(1, len(successes) + 1), list(short_names or successes))
    axes[1].axhline(best_expected, color="tab:green", ls="--", lw=1,
                    label="always the best (expected)")
    axes[1].set_ylabel("successes per run")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_spread(panels: Mapping[str, Mapping[str, Sequence[float]]], ylabel: str,
                references: Mapping[str, float] | None = None, suptitle: str | None = None):
    """Repeated measurements side by side: one panel per entry of ``panels`` ({panel title:
    {label: values}}), each label's values as jittered points with their mean ± sd in black,
    and a dashed line where ``references`` gives a panel one (e.g. chance)."""
    _named(panels, "panels", "panel title: {label: values}", "{'noise': {'before': aucs}}")
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.4), squeeze=False)
    for ax, (title, groups) in zip(axes[0], panels.items(), strict=True):
        for i, values in enumerate(groups.values()):
            values = np.asarray(values, dtype=float)
            jitter = np.random.default_rng(i).uniform(-0.12, 0.12, values.size)
            ax.scatter(i + jitter, values, s=12, alpha=0.7)
            ax.errorbar(i + 0.3, values.mean(), yerr=values.std(), fmt="ko", capsize=4)
        ax.set_xticks(range(len(groups)), list(groups), fontsize=8)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        if title in (references or {}):
            ax.axhline(references[title], color="grey", ls="--", lw=1)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_rr_intervals(beats: Mapping[int, str], fs: float, title: str | None = None):
    """The rhythm of a whole recording: the RR interval before each beat (seconds since the
    previous beat) against time, normal beats (``N``) in grey, every other label in red.
    ``beats`` maps sample indices to annotation symbols, as for :func:`plot_ecg`."""
    if not fs > 0:
        raise ValueError(f"fs is the sampling rate in Hz, a number > 0 (e.g. 360); got {fs!r}")
    times = np.array(sorted(beats))
    if times.size < 2:
        raise ValueError(f"an RR interval needs two beats; beats holds {times.size}")
    rr = np.diff(times) / fs
    labels = np.array([beats[t] for t in times[1:]])
    normal = labels == "N"
    fig, ax = plt.subplots(figsize=(9, 2.8))
    ax.plot(times[1:][normal] / fs / 60, rr[normal], ".", ms=2, color="grey",
            label="N: normal beat")
    ax.plot(times[1:][~normal] / fs / 60, rr[~normal], "o", ms=5, color="tab:red",
            label="other labels (A: atrial premature, V: ventricular premature)")
    ax.set_xlabel("time (min)")
    ax.set_ylabel("RR interval before the beat (s)")
    ax.legend(fontsize=8, loc="upper right")
    return _finish(fig, ax, title)


# --- what a model relies on (chapter 6) ------------------------------------------------------


def plot_importance(importances: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                    feature_names: Sequence[str], top: int = 10,
                    xlabel: str = "drop in ROC AUC when the feature is shuffled",
                    title: str | None = None):
    """Horizontal bars of feature importances with their spread, one colour per model:
    ``importances = {model name: (means, standard deviations)}``, one value per feature (e.g.
    ``sklearn.inspection.permutation_importance``'s ``importances_mean`` and
    ``importances_std``). The ``top`` features of the first model are shown, most important
    on top."""
    names = list(importances)
    first = np.asarray(importances[names[0]][0], dtype=float)
    order = np.argsort(first)[::-1][:top][::-1]
    height = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(6.5, 0.25 * len(order) * len(names) + 1.4))
    for k, name in enumerate(names):
        means, sds = (np.asarray(v, dtype=float) for v in importances[name])
        ax.barh(np.arange(len(order)) + ((len(names) - 1) / 2 - k) * height, means[order],
                height=height, xerr=sds[order], capsize=2, label=name)
    ax.set_yticks(np.arange(len(order)), [feature_names[i] for i in order])
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel(xlabel)
    if len(names) > 1:
        ax.legend(fontsize=8, loc="lower right")
    return _finish(fig, ax, title)


# --- Chinese text in figures --------------------------------------------------------------------
#
# matplotlib's default font (DejaVu Sans) has no Chinese glyphs: a label such as "卷积" is drawn
# as boxes. :func:`use_cjk_font` (called by the chapters' set-up) adds an installed font that
# has them as a fallback behind the default, so Latin text keeps its look; :func:`term` writes a
# label with its Chinese term only where such a font exists, and without it otherwise.

#: fonts with Chinese glyphs, by family name, in the order they are preferred
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC",
                "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Microsoft YaHei", "SimHei",
                "PingFang SC", "Hiragino Sans GB", "Heiti SC", "Arial Unicode MS")
_CJK_FILES = ("notosanscjk", "notoserifcjk", "notosanssc", "sourcehansans", "wqy", "msyh",
              "simhei", "pingfang", "hiragino", "stheiti", "arial unicode")


def cjk_font() -> str | None:
    """The family name of an installed font with Chinese glyphs that matplotlib can use, or
    ``None``. Fonts installed after matplotlib built its font list are found and added too."""
    from pathlib import Path

    from matplotlib import font_manager

    def known() -> str | None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        return next((name for name in CJK_FAMILIES if name in names), None)

    if (found := known()) is not None:
        return found
    for path in font_manager.findSystemFonts():
        if any(key in Path(path).name.lower() for key in _CJK_FILES):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue
    return known()


def use_cjk_font() -> str | None:
    """Let figures draw Chinese text: the font of :func:`cjk_font` goes behind the default
    font family (which keeps drawing Latin text; matplotlib falls back along
    ``font.family`` glyph by glyph). Returns its name, or ``None`` when the machine has no
    such font (install e.g. Debian's ``fonts-noto-cjk``)."""
    name = cjk_font()
    if name is not None:
        families = [f for f in plt.rcParams["font.family"] if f != name]
        plt.rcParams["font.family"] = [*families, name]
    return name


def term(english: str, chinese: str) -> str:
    """A label with the source documents' Chinese term where a font can draw it
    (``"convolution (卷积)"``), else the English alone (never boxes)."""
    return f"{english} ({chinese})" if cjk_font() is not None else english
