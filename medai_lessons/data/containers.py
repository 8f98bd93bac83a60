"""What the loaders return: arrays together with where they came from.

Every loaded dataset carries its provenance: ``source`` (``"real"`` or ``"synthetic"``; the
messy EHR table, real measurements with made-up faults, says
``"real (modified: synthetic faults added)"``), ``name``, ``citation``, ``license`` and
free-text ``notes`` (e.g. "checksum differs from the official file; structure checked
instead"). ``summary()`` gives the text the loaders print, so that a notebook's output always
says what was loaded.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SPLITS: tuple[str, ...] = ("train", "val", "test")


def wrap(text: str, indent: str = "  ") -> str:
    """Wrap one paragraph of summary text to 96 columns with a hanging indent."""
    return textwrap.fill(text, width=96, initial_indent=indent, subsequent_indent=indent + "  ")


class Provenance:
    """What every loaded dataset says about itself: ``summary()`` starts with the dataset's
    own lines (``_summary_head``) and ends with its notes, license and citation; ``str()`` of
    a dataset is that summary, which is what a notebook prints."""

    notes: list[str]
    license: str
    citation: str

    def _summary_head(self) -> list[str]:  # pragma: no cover - every dataset defines it
        raise NotImplementedError

    def summary(self) -> str:
        lines = self._summary_head()
        lines += [wrap(f"note: {n}") for n in self.notes]
        lines += [wrap(f"license: {self.license}"), wrap(f"cite: {self.citation}")]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


class LabelledSignals(Provenance):
    """A dataset of signals ``X`` with labels ``y`` and their ``class_names``:
    ``X, y, class_names = dataset`` unpacks it and ``len(dataset)`` counts the signals."""

    X: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]

    def __iter__(self) -> Iterator:
        yield self.X
        yield self.y
        yield self.class_names

    def __len__(self) -> int:
        return int(self.X.shape[0])


SPLIT_ALIASES: dict[str, str] = {
    "training": "train",
    "valid": "val",
    "validate": "val",
    "validation": "val",
    "dev": "val",
    "testing": "test",
}


class UnknownSplit(KeyError):
    """A split name that a dataset does not have (a ``KeyError`` whose message reads plainly)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Splits(dict):
    """The ``{"train": Split, "val": Split, "test": Split}`` of a dataset: a plain dict, except
    that a wrong name (``"training"``, ``"valid"``) raises a :class:`KeyError` that names the
    splits there are, instead of a bare ``KeyError: 'training'``."""

    def __missing__(self, key: object) -> Split:
        known = ", ".join(str(k) for k in self)
        message = f"unknown split {key!r}; the splits are {known}"
        guess = SPLIT_ALIASES.get(key.strip().lower()) if isinstance(key, str) else None
        if guess is None and isinstance(key, str):
            import difflib

            close = difflib.get_close_matches(key.strip().lower(), [str(k) for k in self], n=1)
            guess = close[0] if close else None
        if guess is not None and guess in self:
            message += f" (did you mean {guess!r}?)"
        raise UnknownSplit(message)


@dataclass
class Split:
    """One split of an image dataset: ``images`` (uint8) and ``labels`` (flat int64)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __iter__(self) -> Iterator[np.ndarray]:
        """``x, y = ds.splits["train"]`` unpacks images and labels."""
        yield self.images
        yield self.labels


@dataclass
class ImageDataset(Provenance):
    """An image classification dataset with train/val/test splits and its provenance.

    Attributes:
        name: registry name, e.g. ``"pneumoniamnist"``.
        title: readable name, e.g. ``"PneumoniaMNIST"``.
        source: ``"real"`` or ``"synthetic"``.
        splits: ``{"train": Split, "val": Split, "test": Split}`` (a :class:`Splits`: a dict
            whose error for a wrong split name lists the right ones).
        label_names: class names; ``label_names[k]`` is the name of label ``k``.
        citation: what to cite.
        license: the data's license.
        path: the file the arrays came from (``None`` for synthetic data).
        checksum: how the file was checked (official MD5, or structure check of a variant).
        notes: anything else a reader of the output should know.
    """

    name: str
    title: str
    source: str
    splits: dict[str, Split]
    label_names: tuple[str, ...]
    citation: str
    license: str
    path: Path | None = None
    checksum: str = "not applicable"
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.splits, Splits):
            self.splits = Splits(self.splits)

    @property
    def x_train(self) -> np.ndarray:
        return self.splits["train"].images

    @property
    def y_train(self) -> np.ndarray:
        return self.splits["train"].labels

    @property
    def x_val(self) -> np.ndarray:
        return self.splits["val"].images

    @property
    def y_val(self) -> np.ndarray:
        return self.splits["val"].labels

    @property
    def x_test(self) -> np.ndarray:
        return self.splits["test"].images

    @property
    def y_test(self) -> np.ndarray:
        return self.splits["test"].labels

    @property
    def is_synthetic(self) -> bool:
        return self.source != "real"

    def split_sizes(self) -> dict[str, int]:
        """``{"train": n, "val": n, "test": n}``."""
        return {k: len(v) for k, v in self.splits.items()}

    def class_counts(self, split: str = "train") -> dict[str, int]:
        """How many images of each class a split holds, by class name."""
        labels = self.splits[split].labels
        counts = np.bincount(labels, minlength=len(self.label_names))
        return {name: int(counts[i]) for i, name in enumerate(self.label_names)}

    def _summary_head(self) -> list[str]:
        """The lines the loader prints: what, real or synthetic, sizes, checks, citation."""
        first = self.splits[SPLITS[0]].images
        shape = "x".join(str(s) for s in first.shape[1:])
        sizes = " / ".join(f"{k} {len(v):,}" for k, v in self.splits.items())
        kind = "REAL data" if self.source == "real" else "SYNTHETIC data (not real patients)"
        where = f" from {self.path}" if self.path else ""
        labels = ", ".join(f"{i} = {n}" for i, n in enumerate(self.label_names))
        lines = [
            f"[medai data] {self.title}: {kind}{where}",
            wrap(f"splits: {sizes} images of {shape} {first.dtype}; labels: {labels}"),
            wrap(f"checksum: {self.checksum}"),
        ]
        return lines

    def __repr__(self) -> str:
        return (
            f"ImageDataset(name={self.name!r}, source={self.source!r}, "
            f"splits={self.split_sizes()}, label_names={self.label_names!r})"
        )
