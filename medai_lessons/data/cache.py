"""Where the course keeps its data on this machine, and how to tell a good file from a bad one.

The cache folder is, in this order:

1. the folder named by the environment variable ``MEDAI_DATA_DIR`` (an instructor can point
   every learner at a shared, pre-filled folder for an offline class);
2. otherwise the user's cache folder for the course: ``$XDG_CACHE_HOME/medai-lessons`` or
   ``~/.cache/medai-lessons`` on Linux, ``~/Library/Caches/medai-lessons`` on macOS and
   ``%LOCALAPPDATA%\\medai-lessons\\Cache`` on Windows.

Inside it each kind of data has its subfolder: ``medmnist/<name>.npz`` and
``mitdb/<record>.{hea,dat,atr}``. To stage data for a class without internet, copy the
official files to exactly those paths (``python -m medai_lessons.data where`` prints the
folder, ``... list`` shows what is there, ``... verify`` checks it).

Whose file it is decides what happens to a file whose checksum is not the official one:

- a file **the course downloaded** (it leaves a mark beside it, :func:`mark_downloaded`) that
  no longer matches its checksum was damaged afterwards: :func:`move_aside` renames it to
  ``<name>.bad-<timestamp>`` so that it can be inspected, and a fresh copy can take its place;
- a file **someone put there** (staged by hand: a re-packed or cut-down copy) is theirs and is
  never renamed, moved or overwritten. If it has the structure of the dataset it is used, with
  a warning that names the split sizes that differ from the official ones; if not, it is
  reported, and left where it is.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import zipfile
from pathlib import Path

from medai_lessons.data.errors import CorruptFile
from medai_lessons.data.registry import REGISTRY, DatasetInfo

ENV_VAR = "MEDAI_DATA_DIR"
APP_NAME = "medai-lessons"


def default_cache_dir() -> Path:
    """The per-user cache folder of this platform (ignores ``MEDAI_DATA_DIR``)."""
    home = Path.home()
    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        return Path(base) / APP_NAME / "Cache"
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / APP_NAME
    base = os.environ.get("XDG_CACHE_HOME") or str(home / ".cache")
    return Path(base) / APP_NAME


def data_dir() -> Path:
    """The cache folder in use: ``MEDAI_DATA_DIR`` if set, else :func:`default_cache_dir`.

    The folder is not created here (nothing is written until something is fetched).
    """
    override = os.environ.get(ENV_VAR, "").strip()
    if override:
        return Path(override).expanduser().resolve()
    return default_cache_dir()


def subfolder(info: DatasetInfo) -> str:
    """The name of the cache's subfolder for a dataset's files (``medmnist``, ``mitdb``...)."""
    return info.name if info.kind == "wfdb" else info.kind


def dataset_dir(info: DatasetInfo) -> Path:
    """The subfolder of the cache that holds a dataset's files (``medmnist``, ``mitdb``...)."""
    return data_dir() / subfolder(info)


def dataset_path(info: DatasetInfo) -> Path:
    """Where a single-file dataset lives (or should be staged) in the cache."""
    if info.filename is None or info.kind == "package":
        return dataset_dir(info)
    return dataset_dir(info) / info.filename


def staged_paths(relative: str | Path, start: str | Path | None = None) -> list[Path]:
    """Where a copy staged beside the course could be: ``shared/data/<relative>`` in ``start``
    (default: the working folder), in the course package's folder, and in every folder above
    either, nearest first. Nothing is checked here; see :func:`find_staged`."""
    starts = [Path(start or Path.cwd()).resolve(), Path(__file__).resolve().parents[1]]
    seen, out = set(), []
    for first in starts:
        for folder in (first, *first.parents):
            candidate = folder / "shared" / "data" / Path(relative)
            if candidate not in seen:
                seen.add(candidate)
                out.append(candidate)
    return out


def find_staged(relative: str | Path, start: str | Path | None = None) -> Path | None:
    """The first existing ``shared/data/<relative>`` of :func:`staged_paths` (a file or a
    folder, e.g. ``"medmnist/pneumoniamnist.npz"`` as on the course's test machines), or
    ``None``. The loaders check what they read; this only finds it."""
    return next((p for p in staged_paths(relative, start) if p.exists()), None)


def file_md5(path: Path | str, chunk: int = 1 << 20) -> str:
    """The MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _download_mark(path: Path) -> Path:
    return path.with_name(f".{path.name}.downloaded")


def mark_downloaded(path: Path, md5: str | None) -> None:
    """Leave a mark beside a file the course downloaded (and verified): ``.<name>.downloaded``
    holding its MD5. Only a marked file is ever moved aside by the course."""
    try:
        _download_mark(path).write_text(f"{md5 or ''}\n")
    except OSError:  # a folder that cannot be written: the file counts as staged by hand
        pass


def downloaded_by_course(path: Path) -> bool:
    """True when the course downloaded ``path`` itself (:func:`mark_downloaded`); a file
    without the mark was put there by someone, and the course never moves it."""
    return _download_mark(path).is_file()


def move_aside(path: Path) -> Path:
    """Rename a bad file to ``<name>.bad-<timestamp>`` next to it, and return the new path.

    The file is kept (not deleted) so that one can look at what was there; its new name
    keeps it from ever being used in place of the real file.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.bad-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.bad-{stamp}-{n}")
        n += 1
    os.replace(path, target)
    try:
        _download_mark(path).unlink(missing_ok=True)
    except OSError:
        pass
    return target


def describe_bad_npz(path: Path) -> str | None:
    """Why a file named ``.npz`` cannot be an npz, or ``None`` if it looks like one.

    Recognises an empty file, an HTML or other text page (e.g. a "page not found" saved under
    the file's name) and a truncated or damaged zip archive. It does not check the arrays'
    contents (see :func:`medai_lessons.data.medmnist.check_structure`).
    """
    size = path.stat().st_size
    if size == 0:
        return "the file is empty (0 bytes)"
    with open(path, "rb") as handle:
        head = handle.read(512)
    if not head.startswith(b"PK"):
        text = head.lstrip().lower()
        if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<")) or b"<html" in text:
            return (
                "the file is a web page (HTML), not an npz archive: probably an error page "
                "(e.g. 'page not found' or a login page) saved under this name"
            )
        return f"the file does not start like a zip/npz archive (first bytes: {head[:16]!r})"
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except zipfile.BadZipFile as exc:
        return f"the npz (zip) archive is truncated or damaged ({exc}; {size:,} bytes on disk)"
    except (EOFError, OSError) as exc:
        return f"the npz archive could not be read to the end ({exc}; {size:,} bytes on disk)"
    if bad is not None:
        return f"the member {bad!r} of the npz archive is damaged (CRC check failed)"
    return None


def require_npz(path: Path, what: str) -> None:
    """Raise :class:`CorruptFile` with the reason when ``path`` is not a readable npz."""
    reason = describe_bad_npz(path)
    if reason is not None:
        raise CorruptFile(
            f"{what} at {path} cannot be used: {reason}. Replace it with the official file "
            "(fetch it again, or copy a good copy over it)."
        )


def cache_state(info: DatasetInfo) -> str:
    """The state of a dataset on this machine, for ``python -m medai_lessons.data list``.

    One of ``"present"``, ``"missing"``, ``"bad checksum"`` (a file the course downloaded
    that no longer matches), ``"staged copy, not the official file (...)"`` (a file someone put
    there with another checksum and the dataset's structure: it is used, and the parenthesis
    says how it differs), ``"bad staged file (...)"`` (one put there that cannot be used),
    ``"corrupt"`` (for a file with no official checksum that is not a readable npz), or for
    data inside packages ``"present"`` / ``"missing"`` (package not installed, or a file it
    must download first).
    """
    if info.kind == "package":
        from medai_lessons.data.images import package_data_state

        return package_data_state(info)
    if info.kind == "wfdb":
        from medai_lessons.data.ecg import folder_state

        return folder_state(dataset_dir(info))
    path = dataset_path(info)
    if not path.is_file():
        return "missing"
    if info.md5 is not None:
        if file_md5(path) == info.md5:
            return "present"
        if downloaded_by_course(path):
            return "bad checksum"
        problem, differs = staged_file_problem(path, info)
        if problem:
            return f"bad staged file ({problem})"
        return "staged copy, not the official file (" + (differs or "same split sizes") + ")"
    return "present" if describe_bad_npz(path) is None else "corrupt"


def staged_file_problem(path: Path, info: DatasetInfo) -> tuple[str | None, str | None]:
    """For a file put in the cache by hand whose checksum is not the official one:
    ``(why it cannot be used or None, how its split sizes differ or None)``."""
    from medai_lessons.data.medmnist import check_structure, split_size_notes

    reason = describe_bad_npz(path)
    if reason is not None:
        return reason, None
    try:
        import numpy as np

        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # an npz whose arrays cannot be read
        return f"its arrays cannot be read: {exc}", None
    problems = check_structure(arrays, info)
    if problems:
        return "; ".join(problems), None
    sizes = {s: int(arrays[f"{s}_images"].shape[0]) for s in ("train", "val", "test")}
    differ = split_size_notes(sizes, info)
    return None, ("; ".join(differ) if differ else None)


def misplaced_files(root: Path | None = None) -> list[tuple[Path, Path]]:
    """Known data files in the data folder (``root``, default :func:`data_dir`) or one level
    below it that are not where the loaders look, as ``(found, where it belongs)``: e.g. a
    ``pneumoniamnist.npz`` copied to the top of the folder instead of into ``medmnist/``, or
    MIT-BIH record files (``100.hea``...) outside ``mitdb/``. Such files are never used."""
    from medai_lessons.data.ecg import MITDB_RECORDS

    root = Path(root) if root is not None else data_dir()
    by_name = {
        i.filename.lower(): root / subfolder(i) / i.filename
        for i in REGISTRY.values()
        if i.kind == "medmnist" and i.filename
    }
    mitdb_dir = root / subfolder(REGISTRY["mitdb"])
    record_files = {f"{r}{ext}" for r in MITDB_RECORDS for ext in (".hea", ".dat", ".atr")}

    def entries(folder: Path) -> list[Path]:
        try:
            return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
        except OSError:
            return []

    found = []
    top = entries(root)
    candidates = [p for p in top if p.is_file()]
    for sub in (p for p in top if p.is_dir()):
        candidates += [p for p in entries(sub) if p.is_file()]
    for path in candidates:
        belongs = by_name.get(path.name.lower())
        if belongs is None and path.name in record_files:
            belongs = mitdb_dir / path.name
        if belongs is None or _same_file(path, belongs):
            continue
        found.append((path, belongs))
    return found


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def layout_warnings(root: Path | None = None) -> list[str]:
    """One sentence per problem of :func:`misplaced_files`, saying where the files belong
    (or, when the folder named is itself ``medmnist/`` or ``mitdb/``, which folder to name)."""
    root = Path(root) if root is not None else data_dir()
    groups: dict[tuple[Path, Path], list[Path]] = {}
    for path, belongs in misplaced_files(root):
        groups.setdefault((path.parent, belongs.parent), []).append(path)
    warnings = []
    for (where, target), paths in groups.items():
        names = ", ".join(p.name for p in paths[:6]) + (
            f", ... ({len(paths)} files)" if len(paths) > 6 else ""
        )
        are, them = ("is", "it") if len(paths) == 1 else ("are", "them")
        if where == root and root.name.lower() == target.name.lower():
            warnings.append(
                f"{names} in {root} {are} not used: {root} looks like the {root.name}/ subfolder "
                f"itself. Set {ENV_VAR} to the folder that holds medmnist/ and mitdb/ "
                f"({root.parent}), not to {root}."
            )
            continue
        there = [p for p in paths if (target / p.name).exists()]
        also = (
            f" ({', '.join(p.name for p in there[:3])} already there: these copies are extra)"
            if there else ""
        )
        warnings.append(
            f"{names} in {where} {are} not used: the course looks for {them} in "
            f"{target}{os.sep}. Move {them} there{also}."
        )
    return warnings
