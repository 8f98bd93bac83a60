"""Plots of images, filters, feature maps and Grad-CAM heat maps (chapter 3).

Each function draws a new figure and returns it; in a notebook assign the result
(``fig = plot_heatmaps(...)``) so that it is shown once. Image panels without a colour bar are
shown side by side with :func:`medai_lessons.plotting.plot_images`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np


def _bare(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def plot_rows(rows: Mapping[str, Mapping[str, np.ndarray]], size: float = 2.2,
              cmap: str = "gray", suptitle: str | None = None):
    """A grid of images: one row per entry of ``rows`` ({row label: {column title: image}}),
    the row label on the left; every row has the same columns. The images of one column share
    one colour scale, so that rows can be compared by eye; a column with negative values (a
    signed filter response) gets a grey scale centred on 0 (grey 0, white positive, black
    negative)."""
    labels = list(rows)
    columns = list(rows[labels[0]])
    fig, axes = plt.subplots(len(labels), len(columns), squeeze=False,
                             figsize=(size * len(columns) + 0.6, size * len(labels) + 0.5))
    for j, column in enumerate(columns):
        images = [np.asarray(rows[label][column], dtype=float) for label in labels]
        lo = min(float(np.min(im)) for im in images)
        hi = max(float(np.max(im)) for im in images)
        if lo < 0:
            lo, hi = -max(-lo, hi), max(-lo, hi)
        for i, image in enumerate(images):
            ax = axes[i, j]
            ax.imshow(image, cmap=cmap, vmin=lo, vmax=hi if hi > lo else lo + 1)
            _bare(ax)
            if i == 0:
                ax.set_title(column, fontsize=9)
            if j == 0:
                ax.set_ylabel(labels[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def plot_feature_maps(maps: np.ndarray, n: int = 16, ncols: int = 8, title: str = "",
                      image: np.ndarray | None = None, size: float = 1.25):
    """The first ``n`` channels of one layer's output ``maps`` (``h x w x K``), each on its own
    grey scale (bright = strong response), optionally after the input ``image``."""
    maps = np.asarray(maps, dtype=float)
    if maps.ndim != 3:
        hint = ("drop the batch axis: maps[0]" if maps.ndim == 4 and len(maps) == 1 else
                "pass one image's maps, e.g. maps[0]" if maps.ndim == 4 else
                "pass a layer's output for one image")
        raise ValueError(f"maps must be one image's feature maps, shape (h, w, K); got shape "
                         f"{maps.shape}: {hint}")
    panels = ([("input", image)] if image is not None else []) + [
        (f"#{k}", maps[..., k]) for k in range(min(n, maps.shape[-1]))]
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + 0.2) * nrows + 0.45),
                             squeeze=False)
    for ax, (label, m) in zip(axes.flat, panels, strict=False):
        ax.imshow(m, cmap="gray" if label == "input" else "magma")
        ax.set_title(label, fontsize=8)
    for ax in axes.flat:
        _bare(ax)
        if not ax.images:
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_heatmaps(images: np.ndarray, heatmaps: np.ndarray, titles: Sequence[str],
                  ncols: int = 4, alpha: float = 0.45, size: float = 2.3,
                  suptitle: str | None = None, cmap: str = "jet"):
    """Grad-CAM overlays: each grey image with its heat map (0 = blue, 1 = red) on top, and the
    image alone above it, so that the reader sees what the colours cover. ``images`` are
    ``(N, H, W)`` or ``(N, H, W, 1)``; ``heatmaps`` ``(N, H, W)`` in [0, 1]."""
    heatmaps = np.asarray(heatmaps, dtype=float)
    images = np.asarray(images, dtype=float).reshape(heatmaps.shape)
    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(2 * nrows, ncols, squeeze=False, layout="constrained",
                             figsize=(size * ncols + 0.9, 2 * size * nrows + 0.5))
    shown = None
    for k in range(nrows * ncols):
        top, bottom = axes[2 * (k // ncols), k % ncols], axes[2 * (k // ncols) + 1, k % ncols]
        for ax in (top, bottom):
            _bare(ax)
            if k >= n:
                ax.axis("off")
        if k >= n:
            continue
        top.imshow(images[k], cmap="gray")
        top.set_title(titles[k], fontsize=8)
        bottom.imshow(images[k], cmap="gray")
        shown = bottom.imshow(heatmaps[k], cmap=cmap, alpha=alpha, vmin=0, vmax=1)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    if shown is not None:
        fig.colorbar(shown, ax=axes[1::2, -1].tolist(), shrink=0.9, label="Grad-CAM (0 to 1)")
    return fig
