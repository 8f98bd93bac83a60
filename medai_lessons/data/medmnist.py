"""MedMNIST v2 (2D, 28x28): PneumoniaMNIST, BreastMNIST, DermaMNIST and BloodMNIST.

One call per dataset in a notebook::

    from medai_lessons.data import load_pneumoniamnist
    ds = load_pneumoniamnist()          # cache, else download (MD5-checked), else clear error
    x_train, y_train = ds.splits["train"]

Where the arrays come from, in order:

1. ``path=`` a local ``.npz`` the user names. If its MD5 is the official one, it is used as
   is. If not (a re-packed or cut-down copy), its **structure** is checked instead: the six
   keys, uint8 images of 28x28 (x3 for colour sets), integer labels of matching length and
   within the class range. The printed output says that the checksum differs, and how.
2. The course cache (``python -m medai_lessons.data where``), filled by a download through
   :func:`medai_lessons.data.download.fetch` or staged by hand.
3. Only with ``allow_synthetic=True``: a synthetic lesion / no-lesion set of the same shapes
   (:mod:`medai_lessons.data.synthetic`), announced loudly in the output and by a warning.

Images are returned as uint8 ``(N, 28, 28)`` (grey) or ``(N, 28, 28, 3)`` (colour), labels
as flat int64 ``(N,)``. DermaMNIST's license is CC BY-NC 4.0: non-commercial use only.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from medai_lessons.data.cache import file_md5, require_npz
from medai_lessons.data.containers import SPLITS, ImageDataset, Split
from medai_lessons.data.download import fetch
from medai_lessons.data.errors import CorruptFile, DataError, DataUnavailable
from medai_lessons.data.registry import REGISTRY, DatasetInfo, get_info

EXPECTED_KEYS: tuple[str, ...] = tuple(
    f"{split}_{part}" for split in SPLITS for part in ("images", "labels")
)


def check_structure(arrays: dict[str, np.ndarray], info: DatasetInfo) -> list[str]:
    """Every way in which ``arrays`` do not look like the MedMNIST set ``info``.

    Checks the six keys, the image dtype (uint8) and shape (``(N, 28, 28)`` or
    ``(N, 28, 28, 3)`` as the set requires), that labels are integers with one per image
    (``(N,)`` or ``(N, 1)``), and that every label is in ``0 .. len(label_names) - 1``.
    Split sizes are not checked here (a variant may have other sizes): see
    :func:`split_size_notes`. Returns an empty list when all is well.
    """
    problems: list[str] = []
    missing = [k for k in EXPECTED_KEYS if k not in arrays]
    if missing:
        problems.append(f"missing keys {missing} (found {sorted(arrays)})")
    image_shape = (28, 28) if info.n_channels == 1 else (28, 28, 3)
    n_classes = len(info.label_names)
    for split in SPLITS:
        images = arrays.get(f"{split}_images")
        labels = arrays.get(f"{split}_labels")
        if images is None or labels is None:
            continue
        if images.dtype != np.uint8:
            problems.append(f"{split}_images has dtype {images.dtype}, expected uint8")
        if images.ndim < 1 or tuple(images.shape[1:]) != image_shape:
            problems.append(
                f"{split}_images has shape {images.shape}, expected (N, "
                + ", ".join(map(str, image_shape))
                + ")"
            )
        if not np.issubdtype(labels.dtype, np.integer):
            problems.append(f"{split}_labels has dtype {labels.dtype}, expected integers")
            continue
        if labels.ndim not in (1, 2) or (labels.ndim == 2 and labels.shape[1] != 1):
            problems.append(f"{split}_labels has shape {labels.shape}, expected (N,) or (N, 1)")
            continue
        if images.ndim >= 1 and labels.shape[0] != images.shape[0]:
            problems.append(
                f"{split} has {images.shape[0]} images but {labels.shape[0]} labels"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            problems.append(
                f"{split}_labels range {labels.min()}..{labels.max()} is outside "
                f"0..{n_classes - 1} ({n_classes} classes)"
            )
    return problems


def split_size_notes(sizes: dict[str, int], info: DatasetInfo) -> list[str]:
    """Say which split sizes differ from the official ones (empty when none do)."""
    notes = []
    for split, n in sizes.items():
        official = info.n_samples.get(split)
        if official is not None and n != official:
            notes.append(f"{split} has {n:,} images (official: {official:,})")
    return notes


def _other_sets(info: DatasetInfo) -> list[DatasetInfo]:
    return [i for i in REGISTRY.values() if i.kind == "medmnist" and i.name != info.name]


def named_like_another_set(path: Path, info: DatasetInfo) -> DatasetInfo | None:
    """The other MedMNIST set whose name the file's name carries (``pneumoniamnist.npz``,
    ``pneumoniamnist (1).npz``...) when it does not also carry ``info``'s, else ``None``."""
    stem = path.name.lower()
    if info.name in stem:
        return None
    return next((o for o in _other_sets(info) if o.name in stem), None)


def identify_other_set(
    arrays: dict[str, np.ndarray], md5: str, info: DatasetInfo
) -> tuple[DatasetInfo, str] | None:
    """``(other set, why)`` when a file is evidently another registered MedMNIST set than
    ``info``: its MD5 is the other set's official one, or its val and test splits have exactly
    the other set's official sizes (and not ``info``'s). ``None`` otherwise. Sizes that merely
    differ from ``info``'s (a cut-down variant) are not enough."""
    for other in _other_sets(info):
        if other.md5 is not None and md5 == other.md5:
            return other, f"its MD5 {md5} is that of the official {other.filename}"
    sizes = {s: int(arrays[f"{s}_images"].shape[0]) for s in ("val", "test")}
    if all(info.n_samples.get(s) == n for s, n in sizes.items()):
        return None
    for other in _other_sets(info):
        if all(other.n_samples.get(s) == n for s, n in sizes.items()):
            ours = " and ".join(f"{info.n_samples[s]:,}" for s in sizes if s in info.n_samples)
            return other, (
                f"its val and test splits have {sizes['val']:,} and {sizes['test']:,} images, "
                f"exactly {other.title}'s (the official {info.title} has {ours or 'others'})"
            )
    return None


def _refuse_other_set(
    path: Path, info: DatasetInfo, other: DatasetInfo, why: str, by_name: bool = False
) -> CorruptFile:
    """The error for a file that is evidently ``other``, opened as ``info``."""
    labels = ", ".join(f"{i} = {n}" for i, n in enumerate(info.label_names[:2]))
    if len(info.label_names) > 2:
        labels += f", ... ({len(info.label_names)} classes)"
    return CorruptFile(
        f"{path} looks like {other.title}, not {info.title}: {why}. Loading it as "
        f"{info.title} would give its images {info.title}'s labels ({labels}), which would be "
        f"wrong, so it was not loaded. To use this file, load it as {other.title}: "
        f"load_dataset({other.name!r}, path={str(path)!r}). For {info.title}, pass its own file "
        f"({info.filename}, from {info.url})"
        + (
            f"; if this file really is {info.title}, give it a name that does not say "
            f"{other.name} (e.g. {info.filename})." if by_name else "."
        )
    )


def unused_classes_note(arrays: dict[str, np.ndarray], info: DatasetInfo) -> str | None:
    """A note when no image of some class is in the file (e.g. a subset), else ``None``."""
    labels = np.concatenate([np.asarray(arrays[f"{s}_labels"]).reshape(-1) for s in SPLITS])
    present = set(np.unique(labels).tolist())
    absent = [n for i, n in enumerate(info.label_names) if i not in present]
    if not absent:
        return None
    return (
        f"the file has no image of {len(absent)} of the {len(info.label_names)} {info.title} "
        f"classes ({', '.join(absent)}): check that it is the whole {info.title} set"
    )


def _read_npz(path: Path, info: DatasetInfo) -> dict[str, np.ndarray]:
    require_npz(path, f"{info.title} file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (ValueError, OSError, EOFError) as exc:
        raise CorruptFile(
            f"{info.title} file at {path} cannot be read as an npz ({exc}). Replace it with "
            "the official file."
        ) from exc


def _to_dataset(
    arrays: dict[str, np.ndarray], info: DatasetInfo, path: Path, checksum: str, notes: list[str]
) -> ImageDataset:
    splits = {
        s: Split(
            np.ascontiguousarray(arrays[f"{s}_images"], dtype=np.uint8),
            np.asarray(arrays[f"{s}_labels"]).reshape(-1).astype(np.int64),
        )
        for s in SPLITS
    }
    return ImageDataset(
        name=info.name,
        title=info.title,
        source="real",
        splits=splits,
        label_names=info.label_names,
        citation=info.citation,
        license=info.license,
        path=path,
        checksum=checksum,
        notes=notes,
    )


def open_local_npz(path: str | Path, info: DatasetInfo) -> ImageDataset:
    """Open a user-supplied ``.npz`` as the MedMNIST set ``info``.

    With the official MD5 the file is used as is. Otherwise its structure is checked
    (:func:`check_structure`) and the result says so: ``checksum`` tells that the MD5
    differs and that the structure check passed, and ``notes`` lists split sizes that differ
    from the official ones. A file that fails the structure check raises
    :class:`CorruptFile` listing every problem. So does a file that is evidently another
    MedMNIST set: its name is another set's (``pneumoniamnist.npz`` opened as BreastMNIST),
    its MD5 is another set's official one, or its val and test sizes are exactly another
    set's. The user's file is never moved or changed.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataUnavailable(
            f"there is no file at {path} (path= should name a local {info.filename}). "
            f"Check the path, or leave path= out to use the course cache."
        )
    other = named_like_another_set(path, info)
    if other is not None:
        why = (
            f"its file name is {other.filename}, {other.title}'s"
            if path.name.lower() == other.filename
            else f"its file name {path.name} says {other.name} ({other.title})"
        )
        raise _refuse_other_set(path, info, other, why, by_name=True)
    arrays = _read_npz(path, info)
    problems = check_structure(arrays, info)
    if problems:
        raise CorruptFile(
            f"{path} does not have the structure of {info.title}: " + "; ".join(problems)
            + ". Use the official file (" + info.url + ")."
        )
    md5 = file_md5(path)
    identified = identify_other_set(arrays, md5, info)
    if identified is not None:
        raise _refuse_other_set(path, info, *identified)
    notes: list[str] = []
    if info.md5 is not None and md5 == info.md5:
        checksum = f"MD5 {md5} matches the official file"
    else:
        official = info.md5 or "unknown"
        checksum = (
            f"MD5 {md5} differs from the official {official}: not the official file, so its "
            "structure was checked instead (keys, uint8 28x28 images, integer labels in range): OK"
        )
        sizes = {s: int(arrays[f"{s}_images"].shape[0]) for s in SPLITS}
        differ = split_size_notes(sizes, info)
        if differ:
            notes.append(
                "split sizes differ from the official release: " + "; ".join(differ)
                + ". Results are not comparable with published ones."
            )
        unused = unused_classes_note(arrays, info)
        if unused:
            notes.append(unused)
    return _to_dataset(arrays, info, path, checksum, notes)


def _open_staged(path: Path, info: DatasetInfo) -> ImageDataset:
    """A file someone put in the cache with another checksum: used when its structure is
    that of ``info`` (with a warning that says how it differs), never moved or changed."""
    try:
        ds = open_local_npz(path, info)
    except CorruptFile as exc:
        raise CorruptFile(
            f"{exc} The file was put in the course's data folder by hand, not downloaded by "
            f"the course, so it is left where it is: replace it with the official file "
            f"({info.url}), or move it elsewhere and let the course download it."
        ) from exc
    sizes = [n for n in ds.notes if n.startswith("split sizes differ")]
    ds.notes.insert(0, (
        f"{path} is not the official {info.filename} (its checksum differs) but has the "
        f"structure of {info.title}, so it is used as it is"
        + (f"; {sizes[0][0].lower()}{sizes[0][1:]}" if sizes else "; its split sizes are the "
           "official ones")
    ))
    if sizes:
        ds.notes.remove(sizes[0])
    return ds


def _synthetic_fallback(info: DatasetInfo, reason: DataError, seed: int) -> ImageDataset:
    from medai_lessons.data.synthetic import make_lesion_images

    sizes = info.n_samples
    n_train = min(sizes.get("train", 1000), 1000)
    n_val = min(sizes.get("val", 200), 200)
    n_test = min(sizes.get("test", 200), 200)
    ds = make_lesion_images(n_train, n_val, n_test, channels=info.n_channels, seed=seed)
    ds.name = info.name
    ds.title = f"{info.title} -> SYNTHETIC stand-in"
    ds.notes = [
        f"{info.title} could not be loaded: {reason}",
        "these are synthetic lesion / no-lesion images with the same shapes and dtypes, "
        f"NOT {info.title}: labels are 0 = no lesion, 1 = lesion, and nothing learned here "
        "applies to real patients. Stage the real file (see above) and run again.",
    ]
    return ds


def load_medmnist(
    name: str,
    *,
    path: str | Path | None = None,
    allow_synthetic: bool = False,
    download: bool = True,
    progress: bool | None = None,
    seed: int = 0,
    verbose: bool = True,
) -> ImageDataset:
    """Load a MedMNIST v2 2D set (28x28) with its provenance, and print what was loaded.

    Args:
        name: ``"pneumoniamnist"``, ``"breastmnist"``, ``"dermamnist"`` or ``"bloodmnist"``.
        path: a local ``.npz`` to open instead of the cache (checksum or structure checked).
        allow_synthetic: when the real data cannot be had, return the synthetic stand-in
            (:func:`medai_lessons.data.synthetic.make_lesion_images`) instead of raising,
            and say so loudly.
        download: allow a download when the file is not in the cache.
        progress: show a download progress bar (default: in terminals and notebooks).
        seed: seed of the synthetic stand-in (only used when falling back).
        verbose: print the summary (what was loaded, real or synthetic, sizes, citation).

    Returns:
        An :class:`ImageDataset`; ``.source`` is ``"real"`` or ``"synthetic"``.

    Raises:
        DataUnavailable, ChecksumMismatch, CorruptFile: when the real data cannot be used
            and ``allow_synthetic`` is False. A bad ``path=`` file always raises.
    """
    info = get_info(name)
    if info.kind != "medmnist":
        raise ValueError(f"{name!r} is not a MedMNIST set; use load_dataset({name!r})")
    if path is not None:
        ds = open_local_npz(path, info)
    else:
        try:
            cached = fetch(info, progress=progress, download=download, verbose=verbose,
                           accept_staged=True)
            if info.md5 is not None and file_md5(cached) != info.md5:
                ds = _open_staged(cached, info)
                if verbose:
                    print(f"[medai data] warning: {ds.notes[0]}")
            else:
                arrays = _read_npz(cached, info)
                problems = check_structure(arrays, info)
                if problems:  # an official MD5 with a wrong structure cannot happen; be safe
                    raise CorruptFile(f"{cached}: " + "; ".join(problems))
                ds = _to_dataset(
                    arrays, info, cached, f"MD5 {info.md5} matches the official file", []
                )
        except DataError as exc:
            if not allow_synthetic:
                raise
            ds = _synthetic_fallback(info, exc, seed)
            banner = (
                f"!!! SYNTHETIC DATA: {info.title} is not available, so a synthetic "
                "stand-in is used. Results say nothing about real patients. !!!"
            )
            warnings.warn(banner, UserWarning, stacklevel=2)
            if verbose:
                print(banner)
    if verbose:
        print(ds.summary())
    return ds


def load_pneumoniamnist(**kwargs) -> ImageDataset:
    """PneumoniaMNIST: paediatric chest X-rays, 0 = normal, 1 = pneumonia (CC BY 4.0).

    Keyword arguments are those of :func:`load_medmnist`.
    """
    return load_medmnist("pneumoniamnist", **kwargs)


def load_breastmnist(**kwargs) -> ImageDataset:
    """BreastMNIST: breast ultrasound, 0 = malignant, 1 = normal or benign (CC BY 4.0).

    Keyword arguments are those of :func:`load_medmnist`.
    """
    return load_medmnist("breastmnist", **kwargs)


def load_dermamnist(**kwargs) -> ImageDataset:
    """DermaMNIST: dermatoscopy, 7 classes, colour. License CC BY-NC 4.0 (non-commercial).

    Keyword arguments are those of :func:`load_medmnist`.
    """
    return load_medmnist("dermamnist", **kwargs)


def load_bloodmnist(**kwargs) -> ImageDataset:
    """BloodMNIST: blood cell microscopy, 8 cell types, colour (CC BY 4.0).

    Keyword arguments are those of :func:`load_medmnist`.
    """
    return load_medmnist("bloodmnist", **kwargs)
