"""Fetching a registry file into the cache, safely.

Downloads go through **pooch**, a small maintained library for fetching data files, because:

- it verifies the file's hash (here the official MD5) before the file is used;
- it downloads to a temporary file in the target folder and moves it into place only once
  the hash matches, so a failed or interrupted download never leaves a half file under the
  final name (the move is a rename within one folder: atomic);
- it shows a tqdm progress bar;
- it needs neither TensorFlow nor any other heavy dependency (it is imported only when a
  download is actually needed).

What :func:`fetch` guarantees:

- a good file already in the cache is used as it is (no network);
- a file **the course downloaded** that no longer has its checksum (or, without a known
  checksum, is not an npz) is moved aside to ``<name>.bad-<timestamp>`` and never used; a
  fresh copy is fetched;
- a file **someone put in the cache** with another checksum is theirs: it is never renamed,
  moved or downloaded over. ``fetch(..., accept_staged=True)`` (what the loaders do) returns
  it, and the loader checks its structure and says how it differs; otherwise
  :class:`ChecksumMismatch` says so and what to do;
- every failure raises one of the course's errors (:mod:`medai_lessons.data.errors`) with a
  message that says what to do: :class:`DataUnavailable` when offline, the server refuses or
  the transfer is cut off (naming the file, the URL and the exact path to copy the file to),
  :class:`ChecksumMismatch` when the downloaded bytes are not the official file (e.g. an
  HTML page or a truncated body), :class:`CorruptFile` when a file with no official
  checksum is not a readable npz.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from medai_lessons.data.cache import (
    data_dir,
    dataset_path,
    describe_bad_npz,
    downloaded_by_course,
    file_md5,
    mark_downloaded,
    move_aside,
)
from medai_lessons.data.errors import (
    ChecksumMismatch,
    CorruptFile,
    DataError,
    DataUnavailable,
    StagedCopy,
)
from medai_lessons.data.registry import DatasetInfo, get_info

TIMEOUT_ENV = "MEDAI_DOWNLOAD_TIMEOUT"
DEFAULT_TIMEOUT = 60.0  # seconds without an answer before a download is given up


def staging_hint(info: DatasetInfo, path: Path | None = None) -> str:
    """The instructions, in one paragraph, for putting a file in place by hand."""
    path = path or dataset_path(info)
    return (
        f"To use it without internet, download {info.url} on a machine that has internet and "
        f"copy it to exactly this path: {path} (the cache folder is {data_dir()}; set the "
        f"environment variable MEDAI_DATA_DIR to use another folder, e.g. one an instructor "
        f"filled for the class). Then run `python -m medai_lessons.data verify`."
    )


def show_progress(progress: bool | None) -> bool:
    """``progress`` if given, else whether a person is watching (a terminal or a notebook)."""
    if progress is not None:
        return progress
    return sys.stderr.isatty() or "ipykernel" in sys.modules


def _timeout() -> float:
    try:
        return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


def check_cached(info: DatasetInfo, path: Path | None = None) -> tuple[bool, str | None]:
    """Check the cached copy of ``info``: ``(True, None)`` if good, ``(False, None)`` if absent.

    A bad copy the course downloaded is moved aside; the return value is then
    ``(False, message)`` saying where it went and why. A copy someone staged by hand with
    another checksum raises :class:`StagedCopy` and stays where it is.
    """
    path = path or dataset_path(info)
    if not path.is_file():
        return False, None
    if info.md5 is not None:
        actual = file_md5(path)
        if actual == info.md5:
            return True, None
        if not downloaded_by_course(path):
            raise StagedCopy(
                f"{path} has MD5 {actual}, not the official {info.md5}: it is not the official "
                f"{info.filename}. It was put there by hand (the course did not download it), "
                f"so it is left as it is. The loaders use it when it has the structure of "
                f"{info.title} (and say how it differs); to have the official file instead, "
                f"move yours elsewhere yourself and fetch again"
            )
        reason = describe_bad_npz(path) or "its content differs from the official file"
        problem = (f"the cached {info.filename} had MD5 {actual}, not the official {info.md5} "
                   f"({reason})")
        moved = _set_aside(path, problem, ChecksumMismatch)
        return False, (
            f"{problem}; it was moved aside to {moved} and will not be used (to use a copy "
            f"you trust that differs from the official file, open it with path=)"
        )
    reason = describe_bad_npz(path)
    if reason is None:
        return True, None
    problem = f"the cached {info.filename} is unusable ({reason})"
    moved = _set_aside(path, problem, CorruptFile)
    return False, f"{problem}; moved aside to {moved}"


def _set_aside(path: Path, problem: str, error: type[DataError]) -> Path:
    """Move a bad cached file aside (:func:`move_aside`). Where its folder is read-only (a
    class's shared data folder), raise ``error`` instead: the bad file stays where it is,
    unused, and nothing can be downloaded over it, so the message says who can fix it."""
    try:
        return move_aside(path)
    except OSError as exc:
        raise error(
            f"{problem}. It will not be used, and it cannot be moved aside either "
            f"({exc.strerror or exc}: {path.parent} is read-only here, e.g. a class's shared "
            f"data folder). Ask whoever looks after {data_dir()} to put the official file "
            f"there and run `python -m medai_lessons.data verify`, or set MEDAI_DATA_DIR to a "
            f"folder of your own to download a good copy into."
        ) from exc


def fetch(
    name: str | DatasetInfo,
    *,
    progress: bool | None = None,
    download: bool = True,
    verbose: bool = True,
    accept_staged: bool = False,
) -> Path:
    """Return the path of a verified copy of a registry file, downloading it if needed.

    Args:
        name: a registry name (``"pneumoniamnist"``) or a :class:`DatasetInfo`.
        progress: show a progress bar (default: when running in a terminal or notebook).
        download: when False, never touch the network: a missing file raises
            :class:`DataUnavailable` with the staging instructions.
        verbose: print one line when a bad cached copy was moved aside.
        accept_staged: return a file someone put in the cache even when its checksum is not
            the official one (the caller checks its structure); otherwise such a file raises
            :class:`StagedCopy`. Either way it is left where it is.

    Raises:
        DataUnavailable: not in the cache and not downloadable now.
        ChecksumMismatch: the download is not the official file (nothing is kept), or
            (:class:`StagedCopy`) a file staged by hand is not the official one.
        CorruptFile: a file with no official checksum is not a readable npz.
    """
    info = name if isinstance(name, DatasetInfo) else get_info(name)
    if info.kind == "wfdb":
        from medai_lessons.data.ecg import fetch_mitdb

        return fetch_mitdb(download=download, progress=progress)
    if info.kind != "medmnist" or info.filename is None:
        raise ValueError(f"{info.name} ships inside a Python package; there is nothing to fetch")

    path = dataset_path(info)
    try:
        good, note = check_cached(info, path)
    except StagedCopy:
        if accept_staged:
            return path
        raise
    if good:
        return path
    if note and verbose:
        print(f"[medai data] warning: {note}")
    if not download:
        raise DataUnavailable(
            f"{info.title} ({info.filename}) is not in the cache and downloading is off. "
            + (f"Note: {note}. " if note else "")
            + staging_hint(info, path)
        )
    _download(info, path, progress=show_progress(progress), note=note)
    _make_readable(path)
    mark_downloaded(path, info.md5)
    if info.md5 is None:
        reason = describe_bad_npz(path)
        if reason is not None:
            moved = move_aside(path)
            raise CorruptFile(
                f"the download of {info.filename} from {info.url} is not a usable npz "
                f"({reason}); it was moved aside to {moved}. " + staging_hint(info, path)
            )
    return path


def _make_readable(path: Path) -> None:
    """Give a downloaded file the usual permissions (the temporary file was owner-only),
    so that a cache folder shared by a class is readable by everyone allowed by the umask."""
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(path, 0o666 & ~umask)
    except OSError:  # a file system without permissions: nothing to do
        pass


def _download(info: DatasetInfo, path: Path, *, progress: bool, note: str | None) -> None:
    """Download ``info.url`` to ``path`` through pooch, turning failures into course errors."""
    try:
        import pooch
        import requests.exceptions as rex
    except ImportError as exc:  # pragma: no cover - pooch is a dependency of the course
        raise DataUnavailable(
            f"downloading {info.filename} needs the package pooch ({exc}); install it with "
            "`pip install pooch`. " + staging_hint(info, path)
        ) from exc

    known_hash = f"md5:{info.md5}" if info.md5 else None
    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=_timeout())
    before = "" if note is None else f" (Before that: {note}.)"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        pooch.retrieve(
            url=info.url,
            known_hash=known_hash,
            fname=path.name,
            path=path.parent,
            downloader=downloader,
            progressbar=progress,
        )
    except (rex.ConnectionError, rex.Timeout) as exc:
        raise DataUnavailable(
            f"could not download {info.title} ({info.filename}) from {info.url}: the server "
            f"cannot be reached (no internet, or the address is blocked here: "
            f"{type(exc).__name__}).{before} " + staging_hint(info, path)
        ) from exc
    except rex.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise DataUnavailable(
            f"could not download {info.title} ({info.filename}): {info.url} answered HTTP "
            f"{status}.{before} " + staging_hint(info, path)
        ) from exc
    except (rex.ChunkedEncodingError, rex.ContentDecodingError) as exc:
        raise DataUnavailable(
            f"the download of {info.filename} from {info.url} was cut off before the end "
            f"({type(exc).__name__}); nothing was saved under {path}. Try again, or stage it."
            f"{before} " + staging_hint(info, path)
        ) from exc
    except rex.RequestException as exc:
        raise DataUnavailable(
            f"could not download {info.filename} from {info.url}: {exc}.{before} "
            + staging_hint(info, path)
        ) from exc
    except OSError as exc:  # after the network errors above, which are OSErrors too
        raise DataUnavailable(
            f"could not save {info.filename} in {path.parent} ({exc.strerror or exc}; a "
            f"read-only folder, e.g. a class's shared data folder, or a full disk).{before} Set "
            f"MEDAI_DATA_DIR to a folder you can write to, or ask whoever looks after "
            f"{data_dir()} to put the file there. " + staging_hint(info, path)
        ) from exc
    except ValueError as exc:
        # pooch raises ValueError when the hash of the downloaded temporary file does not
        # match; it has already deleted that temporary file, so nothing bad is kept.
        if "hash" not in str(exc).lower():
            raise
        raise ChecksumMismatch(
            f"the file downloaded from {info.url} is not the official {info.filename}: its "
            f"checksum differs from MD5 {info.md5} (the server may have sent an error page, a "
            f"truncated file or another version). It was discarded; nothing was saved under "
            f"{path}.{before} Try again later, or " + staging_hint(info, path)
        ) from exc
