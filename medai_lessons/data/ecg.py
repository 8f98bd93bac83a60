"""MIT-BIH Arrhythmia Database: heartbeats cut from real ECGs, labelled with AAMI classes.

Records are read with the ``wfdb`` package from a local folder (``path=``, or the course cache
``<cache>/mitdb/``), or fetched from PhysioNet with ``wfdb.dl_database`` when online.

**Beat windows.** Following the beat format of Kachuee et al. (2018) -- 187 samples at
125 Hz -- each record's lead (MLII by default) is resampled from 360 Hz to 125 Hz with
``scipy.signal.resample_poly`` (up 25, down 72: a polyphase filter that band-limits before
decimating). Each annotated beat's R-peak position is mapped to the new rate
(``round(sample * 125 / 360)``) and the window is cut around it:

- 62 samples (0.496 s) before the R peak, the R sample, and 124 samples (0.992 s) after it:
  ``187 = 62 + 1 + 124`` samples, 1.496 s in all. This holds the P wave, the QRS and the T
  wave of the beat, and it reaches 0.992 s past the R peak: whenever the heart beats faster
  than about 60 per minute (an RR interval under 0.992 s), the **next beat's R peak is
  inside the window too** (in record 100, at about 75 per minute, for 99.5 % of the beats),
  and often the previous beat's T wave as well. A classifier sees the neighbours' timing,
  not only the beat.
- Beats whose window does not fit inside the record are **dropped**: those whose R peak,
  rounded to the 125 Hz grid, lies less than 62 samples (0.496 s) after the record's first
  sample or less than 124 samples (0.992 s) before its last; the rounding moves each cut-off
  by at most half a sample (4 ms). Their number is reported (``n_dropped_edge``).
- With ``normalize=True`` (default) each window is min-max scaled to [0, 1], as in Kachuee et
  al.; with ``normalize=False`` it stays in millivolts.

Unlike Kachuee et al., who cut from one R peak over 1.2 median RR intervals and zero-padded,
this fixed window is centred near the R peak; only the length and rate are theirs.

**Labels.** Annotation symbols are mapped to the five AAMI EC57 classes:
N (N, L, R, e, j), S (A, a, J, S), V (V, E), F (F), Q (/, f, Q). Every other symbol
(rhythm changes ``+``, noise ``~``, comments ``"``, non-conducted P ``x``, flutter waves
``!``, ...) is not a beat class and is skipped. AAMI recommends leaving out the paced records
102, 104, 107 and 217 (:data:`PACED_RECORDS`) when comparing results.

**Inter-patient division.** A beat-level random split puts beats of the same patient in the
training and the test part. The standard evaluation on MIT-BIH (de Chazal, O'Dwyer and Reilly
2004) divides the 44 non-paced records instead into two fixed halves of 22 records:
:data:`DS1_RECORDS` to train and :data:`DS2_RECORDS` to test.
:func:`inter_patient_status` says which of the 44 are staged; :func:`load_inter_patient`
loads both halves, each beat with its record. The division is by record: records 201 (DS1) and
202 (DS2) were recorded from the same man (:data:`SAME_SUBJECT_RECORDS`, from the database's
own description), so one subject has beats in both halves of the published division.

References: Moody GB, Mark RG (2001) IEEE EMB Magazine 20(3):45-50; Goldberger AL et al.
(2000) Circulation 101(23):e215-e220; Kachuee M, Fazeli S, Sarrafzadeh M (2018) ECG
heartbeat classification: a deep transferable representation, IEEE ICHI, arXiv:1805.00794;
ANSI/AAMI EC57:2012, Testing and reporting performance results of cardiac rhythm and ST
segment measurement algorithms; de Chazal P, O'Dwyer M, Reilly RB (2004) Automatic
classification of heartbeats using ECG morphology and heartbeat interval features, IEEE
Transactions on Biomedical Engineering 51(7):1196-1206.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from medai_lessons.data.cache import dataset_dir
from medai_lessons.data.containers import LabelledSignals, wrap
from medai_lessons.data.errors import CorruptFile, DataError, DataUnavailable
from medai_lessons.data.registry import get_info

AAMI_CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")
AAMI_MAP: dict[str, str] = {
    **dict.fromkeys(["N", "L", "R", "e", "j"], "N"),
    **dict.fromkeys(["A", "a", "J", "S"], "S"),
    **dict.fromkeys(["V", "E"], "V"),
    "F": "F",
    **dict.fromkeys(["/", "f", "Q"], "Q"),
}
AAMI_DESCRIPTIONS: dict[str, str] = {
    "N": "normal, bundle branch block or escape beat",
    "S": "supraventricular ectopic beat",
    "V": "ventricular ectopic beat",
    "F": "fusion of ventricular and normal beat",
    "Q": "paced, fusion of paced and normal, or unclassifiable beat",
}

TARGET_FS = 125
PRE_R = 62
POST_R = 124
WINDOW = PRE_R + 1 + POST_R  # 187 samples

MITDB_RECORDS: tuple[str, ...] = tuple(
    str(r)
    for r in [*range(100, 110), *range(111, 120), *range(121, 125),
              200, 201, 202, 203, 205, 207, 208, 209, 210, 212, 213, 214, 215, 217,
              219, 220, 221, 222, 223, 228, 230, 231, 232, 233, 234]
)
PACED_RECORDS: tuple[str, ...] = ("102", "104", "107", "217")

# The inter-patient division of de Chazal, O'Dwyer and Reilly (2004), IEEE TBME 51(7):1196-1206:
# the 44 records left when the paced ones are set aside, in two halves of 22.
DS1_RECORDS: tuple[str, ...] = (
    "101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122",
    "124", "201", "203", "205", "207", "208", "209", "215", "220", "223", "230",
)
DS2_RECORDS: tuple[str, ...] = (
    "100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210",
    "212", "213", "214", "219", "221", "222", "228", "231", "232", "233", "234",
)
INTER_PATIENT_RECORDS: tuple[str, ...] = DS1_RECORDS + DS2_RECORDS
# "Records 201 and 202 came from the same male subject" (the database's directory): the
# published division puts one in each half.
SAME_SUBJECT_RECORDS: tuple[str, ...] = ("201", "202")
FETCH_COMMAND = "python -m medai_lessons.data fetch mitdb"
DIVISION_CITATION = (
    "de Chazal P, O'Dwyer M, Reilly RB. Automatic classification of heartbeats using ECG "
    "morphology and heartbeat interval features. IEEE Transactions on Biomedical Engineering "
    "51(7):1196-1206 (2004)"
)


def record_name(record: object) -> str:
    """One record's name as a string: ``100`` (an int) -> ``"100"`` (MIT-BIH record numbers are
    three digits, so ``7`` -> ``"007"``); a string is kept as it is (without surrounding
    spaces). Anything else raises a :class:`TypeError` or :class:`ValueError` saying what to
    pass."""
    if isinstance(record, str):
        name = record.strip()
        if not name:
            raise ValueError(
                "an empty record name was given; name MIT-BIH records like '100' or 100 "
                "(or leave records= out to use every record in the folder)"
            )
        return name
    if isinstance(record, (int, np.integer)) and not isinstance(record, (bool, np.bool_)):
        if record < 0:
            raise ValueError(f"record {record} is negative; MIT-BIH records are 100 to 234")
        return f"{int(record):03d}"
    raise TypeError(
        f"a record is named by a number or a string, like 100 or '100', not by "
        f"{record!r} ({type(record).__name__})"
    )


def record_names(records: object) -> list[str] | None:
    """``records=`` as a list of record names: ``None`` (or an empty list) -> ``None`` (every
    record); one record (``"100"`` or ``100``) -> ``["100"]``; a list, tuple, range or array of
    them -> their names, in order. A record listed twice, or something that is not a record
    name, raises an error saying what to pass."""
    if records is None:
        return None
    if isinstance(records, (str, int, np.integer)) and not isinstance(records, (bool, np.bool_)):
        return [record_name(records)]
    if isinstance(records, (bytes, dict)) or not isinstance(records, Iterable):
        raise TypeError(
            f"records= takes one record (100 or '100') or a list of them (e.g. [100, 101]), "
            f"not {records!r} ({type(records).__name__})"
        )
    items = records.reshape(-1).tolist() if isinstance(records, np.ndarray) else records
    names: list[str] = []
    for item in items:
        name = record_name(item)
        if name in names:
            raise ValueError(
                f"records= lists record {name} more than once; its beats would be loaded "
                "twice. List each record once."
            )
        names.append(name)
    return names or None


def aami_class(symbol: str) -> str | None:
    """The AAMI class of a beat annotation symbol, or ``None`` for a non-beat annotation."""
    return AAMI_MAP.get(symbol)


@dataclass
class BeatSet(LabelledSignals):
    """Heartbeat windows with AAMI labels and where each came from.

    ``X, y, class_names = beats`` unpacks the arrays.

    Attributes:
        X: ``(n_beats, 187)`` float32 windows at ``fs`` Hz.
        y: ``(n_beats,)`` int64 index into ``class_names``.
        class_names: ``("N", "S", "V", "F", "Q")``.
        symbols: the original annotation symbol of each beat.
        records: the record each beat comes from.
        positions: the R-peak sample of each beat at the record's own rate (360 Hz).
        fs: sampling rate of the windows (125 Hz).
        leads: the lead each beat was cut from (a record without the lead asked for gives its
            first lead; beats of different leads have different shapes).
        lead: the one lead of every beat, or ``"mixed"`` when the records gave different
            leads (then :attr:`notes` names them, and ``beats.leads == "MLII"`` selects one).
        n_dropped_edge: beats left out because their window did not fit in the record.
        n_skipped_nonbeat: annotations skipped because they are not beats.
    """

    X: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    symbols: np.ndarray
    records: np.ndarray
    positions: np.ndarray
    fs: int = TARGET_FS
    lead: str = "MLII"
    leads: np.ndarray | None = None
    normalized: bool = True
    n_dropped_edge: int = 0
    n_skipped_nonbeat: int = 0
    source: str = "real"
    name: str = "mitdb"
    title: str = "MIT-BIH Arrhythmia Database"
    citation: str = ""
    license: str = ""
    path: Path | None = None
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Beats per AAMI class."""
        c = np.bincount(self.y, minlength=len(self.class_names))
        return {name: int(c[i]) for i, name in enumerate(self.class_names)}

    def symbol_counts(self) -> dict[str, int]:
        """Beats per original annotation symbol."""
        values, c = np.unique(self.symbols, return_counts=True)
        return {str(v): int(n) for v, n in zip(values, c, strict=True)}

    def _summary_head(self) -> list[str]:
        recs = sorted(set(self.records.tolist()))
        shown = ", ".join(recs[:8]) + (f", ... ({len(recs)} records)" if len(recs) > 8 else "")
        counts = ", ".join(f"{k} {v:,}" for k, v in self.counts().items())
        scale = "min-max scaled to [0, 1] per beat" if self.normalized else "in mV"
        lines = [
            f"[medai data] {self.title}: REAL data from {self.path} (records {shown})",
            wrap(
                f"{len(self):,} beats of {self.X.shape[1]} samples at {self.fs} Hz, lead "
                f"{self.lead}, {scale}; AAMI classes: {counts}"
            ),
            wrap(
                f"dropped {self.n_dropped_edge} beat(s) too near a record's ends for the "
                f"window; skipped {self.n_skipped_nonbeat} non-beat annotation(s)"
            ),
        ]
        return lines

    def __repr__(self) -> str:
        return f"BeatSet(n={len(self)}, counts={self.counts()}, fs={self.fs})"


def resample(signal: np.ndarray, fs: float, target_fs: float = TARGET_FS) -> np.ndarray:
    """Resample a 1-D signal from ``fs`` to ``target_fs`` with a polyphase filter."""
    from scipy.signal import resample_poly

    ratio = Fraction(target_fs / fs).limit_denominator(1000)
    if ratio == 1:
        return np.asarray(signal, dtype=np.float64)
    return resample_poly(np.asarray(signal, dtype=np.float64), ratio.numerator, ratio.denominator)


def extract_beats(
    signal: np.ndarray,
    fs: float,
    samples: Sequence[int] | np.ndarray,
    symbols: Sequence[str],
    *,
    target_fs: int = TARGET_FS,
    pre: int = PRE_R,
    post: int = POST_R,
    normalize: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Cut a window around every annotated beat of one lead.

    Args:
        signal: one lead, 1-D, at ``fs`` Hz.
        fs: its sampling rate.
        samples, symbols: the annotation positions (at ``fs``) and symbols.
        target_fs, pre, post: resampling rate and window (see the module docstring).
        normalize: min-max scale each window to [0, 1].

    Returns:
        ``(X, y, kept_symbols, kept_positions, n_dropped_edge, n_skipped_nonbeat)``.
    """
    x = resample(signal, fs, target_fs)
    samples = np.asarray(samples, dtype=np.int64)
    windows, labels, kept_sym, kept_pos = [], [], [], []
    dropped = skipped = 0
    for pos, sym in zip(samples, symbols, strict=True):
        cls = aami_class(sym)
        if cls is None:
            skipped += 1
            continue
        centre = int(round(pos * target_fs / fs))
        start, stop = centre - pre, centre + post + 1
        if start < 0 or stop > x.size:
            dropped += 1
            continue
        w = x[start:stop]
        if normalize:
            lo, hi = w.min(), w.max()
            w = (w - lo) / (hi - lo) if hi > lo else np.zeros_like(w)
        windows.append(w)
        labels.append(AAMI_CLASSES.index(cls))
        kept_sym.append(sym)
        kept_pos.append(pos)
    n = pre + post + 1
    X = np.asarray(windows, dtype=np.float32).reshape(-1, n)
    return (
        X,
        np.asarray(labels, dtype=np.int64),
        np.asarray(kept_sym, dtype="<U2"),
        np.asarray(kept_pos, dtype=np.int64),
        dropped,
        skipped,
    )


def _wfdb():
    try:
        import wfdb
    except ImportError as exc:
        raise DataUnavailable(
            "reading ECG records needs the package wfdb: install it with `pip install wfdb`"
        ) from exc
    return wfdb


@contextmanager
def _quiet_wfdb() -> Iterator[None]:
    """Hide wfdb's pandas deprecation chatter ("The inplace keyword ...") from notebooks."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")
        yield


def records_in(folder: Path) -> list[str]:
    """Record names in a folder that have a header, a signal file and beat annotations."""
    if not folder.is_dir():
        return []
    return sorted(
        p.stem for p in folder.glob("*.hea")
        if (folder / f"{p.stem}.atr").is_file() and (folder / f"{p.stem}.dat").is_file()
    )


def check_record(folder: Path, record: str) -> str | None:
    """What is wrong with one record's files, or ``None`` when they look whole.

    Reads the header with wfdb and checks that every signal file holds as many bytes as the
    header announces (formats 212, 16, 80) and that the annotation file is not empty.
    """
    wfdb = _wfdb()
    base = folder / record
    try:
        with _quiet_wfdb():
            header = wfdb.rdheader(str(base))
    except Exception as exc:  # wfdb raises various errors for a damaged header
        return f"header {record}.hea cannot be read ({exc})"
    bytes_per_sample = {"212": 1.5, "16": 2, "80": 1, "61": 2}
    files: dict[str, list[str]] = {}
    for fname, fmt in zip(header.file_name or [], header.fmt or [], strict=False):
        files.setdefault(fname, []).append(str(fmt))
    for fname, fmts in files.items():
        dat = folder / fname
        if not dat.is_file():
            return f"signal file {fname} is missing"
        per = [bytes_per_sample.get(f) for f in fmts]
        if None in per or not header.sig_len:
            continue
        expected = int(np.ceil(sum(per) * header.sig_len))
        actual = dat.stat().st_size
        if actual < expected:
            return f"signal file {fname} is truncated ({actual:,} bytes, expected {expected:,})"
    atr = folder / f"{record}.atr"
    if not atr.is_file() or atr.stat().st_size == 0:
        return f"annotation file {record}.atr is missing or empty"
    return None


def check_mitdb_folder(folder: Path) -> dict[str, str | None]:
    """``{record: problem or None}`` for every record in ``folder``."""
    return {rec: check_record(folder, rec) for rec in records_in(folder)}


def folder_state(folder: Path) -> str:
    """``"missing"`` (no record), ``"present"`` (all records whole) or ``"corrupt"``."""
    recs = records_in(folder)
    if not recs:
        return "missing"
    try:
        problems = check_mitdb_folder(folder)
    except DataUnavailable:
        return f"present ({len(recs)} records; install wfdb to check them)"
    bad = [r for r, p in problems.items() if p]
    if bad:
        return f"corrupt ({', '.join(bad)})"
    return f"present ({len(recs)} of {len(MITDB_RECORDS)} records)"


def _staging_hint(folder: Path, records: Iterable[str]) -> str:
    recs = list(records)
    files = ", ".join(f"{r}.hea, {r}.dat, {r}.atr" for r in recs[:3])
    if len(recs) > 3:
        files += f", ... ({len(recs)} records)"
    return (
        "To use it without internet, download the records from "
        f"https://physionet.org/content/mitdb/1.0.0/ on a machine with internet "
        f"(or with wfdb.dl_database('mitdb', folder)) and copy the files ({files}) into "
        f"exactly this folder: {folder} -- or pass path= a folder that holds them."
    )


def fetch_mitdb(
    records: Sequence[str | int] | str | int | None = None,
    *,
    download: bool = True,
    progress: bool | None = None,
) -> Path:
    """Make sure MIT-BIH records are in the cache (``<cache>/mitdb``) and return the folder.

    Records already there are not fetched again. New ones are downloaded one at a time with
    ``wfdb.dl_database``, each into a temporary folder next to the cache folder, checked, and
    moved into place only when complete: an interrupted download leaves no half record, and
    the records finished before it stay (running again fetches only the rest). ``progress``
    shows a bar over the records (default: in a terminal or notebook). ``records`` are names
    or numbers (``"100"``, ``100``, ``[100, 101]``); default: all 48.

    Raises:
        DataUnavailable: offline (or ``download=False``) and some records are missing.
        CorruptFile: a record arrived incomplete (it is not kept).
    """
    info = get_info("mitdb")
    folder = dataset_dir(info)
    wanted = record_names(records) or list(MITDB_RECORDS)
    have = set(records_in(folder))
    missing = [r for r in wanted if r not in have]
    if not missing:
        return folder
    if not download:
        raise DataUnavailable(
            f"MIT-BIH records {missing[:5]}{'...' if len(missing) > 5 else ''} are not in "
            f"{folder} and downloading is off. " + _staging_hint(folder, missing)
        )
    from tqdm.auto import tqdm

    from medai_lessons.data.download import show_progress

    wfdb = _wfdb()
    with tqdm(total=len(missing), desc="MIT-BIH records", unit="record",
              disable=not show_progress(progress)) as bar:
        for done, rec in enumerate(missing):
            try:
                _download_record(wfdb, folder, rec)
            except DataError as exc:
                kept = (f"The {done} record(s) fetched before it are in the cache; running the "
                        "fetch again fetches only the rest. " if done else "")
                raise type(exc)(f"{exc} {kept}{_staging_hint(folder, missing[done:])}") from (
                    exc.__cause__)
            bar.update()
    return folder


def _download_record(wfdb, folder: Path, rec: str) -> None:
    """Download one record into a temporary folder inside ``folder``; move its files into
    ``folder`` only when the record reads as complete."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=folder))
    except OSError as exc:
        raise DataUnavailable(
            f"could not save MIT-BIH record {rec} in {folder} ({exc.strerror or exc}; a "
            "read-only folder, e.g. a class's shared data folder, or a full disk). Set "
            "MEDAI_DATA_DIR to a folder you can write to."
        ) from exc
    try:
        try:
            # dl_database prints "Downloading files..." for every call: the bar says it.
            with _quiet_wfdb(), redirect_stdout(io.StringIO()):
                wfdb.dl_database("mitdb", str(tmp), records=[rec], annotators=["atr"])
        except Exception as exc:  # wfdb surfaces network errors under several types
            raise DataUnavailable(
                f"could not download MIT-BIH record {rec} from PhysioNet "
                f"({type(exc).__name__}: {exc})."
            ) from exc
        problem = check_record(tmp, rec) if (tmp / f"{rec}.hea").is_file() else "not sent"
        if problem:
            raise CorruptFile(
                f"the download of MIT-BIH record {rec} is incomplete: {problem}. "
                "It was not kept; try again."
            )
        for f in tmp.iterdir():
            f.replace(folder / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_record(folder: Path | str, record: str | int, lead: str = "MLII"):
    """Read one record: ``(signal of the lead in mV, fs, annotation samples, symbols, lead)``.

    When the record has no lead of that name, its first lead is used (and named).
    """
    record = record_name(record)
    wfdb = _wfdb()
    base = str(Path(folder) / record)
    try:
        with _quiet_wfdb():
            rec = wfdb.rdrecord(base)
            ann = wfdb.rdann(base, "atr")
    except FileNotFoundError as exc:
        raise DataUnavailable(f"record {record} is not complete in {folder}: {exc}") from exc
    except Exception as exc:
        raise CorruptFile(f"record {record} in {folder} cannot be read: {exc}") from exc
    names = list(rec.sig_name or [])
    channel = names.index(lead) if lead in names else 0
    used = names[channel] if names else "lead 0"
    return rec.p_signal[:, channel], float(rec.fs), np.asarray(ann.sample), list(ann.symbol), used


def load_mitdb(
    records: Sequence[str | int] | str | int | None = None,
    *,
    path: str | Path | None = None,
    lead: str = "MLII",
    normalize: bool = True,
    download: bool = True,
    verbose: bool = True,
    same_lead: bool = False,
) -> BeatSet:
    """Heartbeats of MIT-BIH records as 187-sample windows at 125 Hz with AAMI labels.

    Args:
        records: record names or numbers (``"100"``, ``100``, ``["100", "101"]`` or
            ``[100, 101]``); default: every record in the folder, or, when the folder is
            empty, all 48 (downloaded if allowed).
        path: a local folder holding ``<record>.hea/.dat/.atr`` files; default: the course
            cache ``<cache>/mitdb`` (fetched from PhysioNet when online).
        lead: the lead to use. MLII is in every record but 102 and 104 (both lead with V5);
            a record without the lead gives its first lead, each
            beat keeps its lead in ``beats.leads``, and a set that mixes leads says so
            (``beats.lead == "mixed"`` and a note) unless ``same_lead=True`` refuses it.
        normalize: min-max scale each beat to [0, 1] (as Kachuee et al.); False keeps mV.
        download: allow fetching missing records into the cache.
        verbose: print the summary.
        same_lead: refuse (``ValueError``) records that do not all have ``lead``.

    Raises:
        DataUnavailable: the records are neither in the folder nor downloadable now.
        ValueError: ``same_lead=True`` and a record lacks ``lead``.
        CorruptFile: a record's files are damaged.
    """
    info = get_info("mitdb")
    wanted = record_names(records)
    if path is not None:
        folder = Path(path).expanduser()
        if folder.is_file():
            raise DataUnavailable(
                f"path= names the file {folder}; give the folder that holds the records' "
                f".hea, .dat and .atr files instead: path={str(folder.parent)!r}"
                + (f", records={folder.stem!r}" if folder.suffix in {".hea", ".dat", ".atr"}
                   else "")
            )
        have = records_in(folder)
        if wanted is None:
            wanted = have
        missing = [r for r in wanted if r not in have]
        if not wanted or missing:
            there = (
                f" The folder holds the complete record(s) {', '.join(have[:10])}"
                f"{', ...' if len(have) > 10 else ''}." if have else ""
            )
            raise DataUnavailable(
                f"no complete MIT-BIH record{'s ' + str(missing) if missing else 's'} in "
                f"{folder} (each record needs .hea, .dat and .atr files).{there} "
                + _staging_hint(folder, missing or ["100"])
            )
    else:
        folder = dataset_dir(info)
        if wanted is None:
            wanted = records_in(folder) or list(MITDB_RECORDS)
        folder = fetch_mitdb(wanted, download=download)

    parts = []
    dropped = skipped = 0
    lead_of: dict[str, str] = {}
    for rec in wanted:
        problem = check_record(folder, rec)
        if problem:
            raise CorruptFile(
                f"MIT-BIH record {rec} in {folder}: {problem}. " + _staging_hint(folder, [rec])
            )
        signal, fs, samples, symbols, used_lead = read_record(folder, rec, lead)
        if used_lead != lead and same_lead:
            raise ValueError(
                f"MIT-BIH record {rec} has no lead {lead} (its first lead is {used_lead}); "
                f"leave it out of records=, or pass same_lead=False to take its first lead "
                f"(each beat's lead is then in beats.leads)"
            )
        lead_of[rec] = used_lead
        X, y, sym, pos, d, s = extract_beats(signal, fs, samples, symbols, normalize=normalize)
        parts.append((X, y, sym, pos, np.full(len(y), rec, dtype="<U8"),
                      np.full(len(y), used_lead, dtype="<U16")))
        dropped += d
        skipped += s
    used = sorted(set(lead_of.values()))
    X = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, WINDOW), np.float32)
    beats = BeatSet(
        X=X.astype(np.float32),
        y=np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64),
        class_names=AAMI_CLASSES,
        symbols=np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, "<U2"),
        records=np.concatenate([p[4] for p in parts]) if parts else np.zeros(0, "<U8"),
        positions=np.concatenate([p[3] for p in parts]) if parts else np.zeros(0, np.int64),
        lead=used[0] if len(used) == 1 else ("mixed" if used else lead),
        leads=np.concatenate([p[5] for p in parts]) if parts else np.zeros(0, "<U16"),
        normalized=normalize,
        n_dropped_edge=dropped,
        n_skipped_nonbeat=skipped,
        citation=info.citation,
        license=info.license,
        path=folder,
    )
    if len(used) > 1:
        by_lead = "; ".join(
            f"{name}: record{'s' if n > 1 else ''} {', '.join(recs)}"
            for name in used
            for recs in [[r for r, v in lead_of.items() if v == name]]
            for n in [len(recs)]
        )
        beats.notes.append(
            f"the beats come from different leads ({by_lead}): a record without {lead} gives "
            f"its first lead, and the same beat looks different in another lead; "
            f"beats.leads holds each beat's lead (select one with beats.leads == {lead!r}, "
            f"or leave those records out)"
        )
    paced = sorted(set(wanted) & set(PACED_RECORDS))
    if paced:
        beats.notes.append(
            f"records {', '.join(paced)} are paced; AAMI EC57 recommends excluding them "
            "when comparing results"
        )
    if verbose:
        print(beats.summary())
    return beats


# --- the inter-patient division (DS1 / DS2) ----------------------------------------------------


def _named(records: Sequence[str]) -> str:
    return ", ".join(records) if records else "none"


@dataclass(frozen=True)
class InterPatientStatus:
    """Which of the 44 records of the DS1/DS2 division are staged on this machine, and where.

    Attributes:
        folder: the folder holding the most of them (the course cache wins a tie), or
            ``None`` when no folder looked in holds any.
        searched: the folders looked in, in order.
        staged: the records of the division complete in ``folder`` (``.hea``, ``.dat`` and
            ``.atr``), DS1's first, in the division's order.
        missing: the records of the division that are not.
    """

    folder: Path | None
    searched: tuple[Path, ...]
    staged: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """All 44 records are staged in one folder."""
        return not self.missing

    def missing_from(self, half: str) -> tuple[str, ...]:
        """The missing records of one half, ``"DS1"`` or ``"DS2"``."""
        halves = {"DS1": DS1_RECORDS, "DS2": DS2_RECORDS}
        if half not in halves:
            raise ValueError(f"half is 'DS1' (training) or 'DS2' (test), not {half!r}")
        return tuple(r for r in halves[half] if r in self.missing)

    def short(self) -> str:
        """One sentence: what is staged and the course's command that stages the rest."""
        if self.complete:
            return (f"all 44 records of the MIT-BIH inter-patient division (DS1/DS2) are staged "
                    f"in {self.folder}")
        if len(self.missing) <= 6:
            which = f"records {_named(self.missing)} are missing"
        elif not self.staged:
            which = "none of them is staged here"
        elif len(self.staged) <= 6:
            which = (f"{len(self.missing)} are not staged here (only record"
                     f"{'s' if len(self.staged) > 1 else ''} {_named(self.staged)})")
        else:
            which = (f"{len(self.missing)} are not staged here ({len(self.missing_from('DS1'))} "
                     f"of DS1 and {len(self.missing_from('DS2'))} of DS2)")
        return (f"the standard MIT-BIH inter-patient division (DS1 → DS2) needs its 44 "
                f"non-paced records and {which}; `{FETCH_COMMAND}` stages them (all 48 "
                "records, about 95 MB; needs internet)")

    def describe(self, records: Sequence[str] = INTER_PATIENT_RECORDS) -> str:
        """Which of ``records`` are missing, half by half, and how to stage them."""
        missing = [r for r in records if r in self.missing]
        where = (f"in {self.folder}" if self.folder is not None else
                 "in any folder looked in (" + ", ".join(str(p) for p in self.searched[:3])
                 + (", ..." if len(self.searched) > 3 else "") + ")")
        halves = "; ".join(
            f"{half} ({role}): {_named([r for r in records_ if r in missing])}"
            for half, role, records_ in (("DS1", "training", DS1_RECORDS),
                                         ("DS2", "test", DS2_RECORDS))
            if any(r in missing for r in records_)
        )
        cache = dataset_dir(get_info("mitdb"))
        return (
            f"the MIT-BIH inter-patient division (de Chazal et al. 2004) needs {len(records)} "
            f"record(s) of which {len(missing)} are not complete {where}. Missing, {halves}. "
            f"Stage them with `{FETCH_COMMAND}` (downloads all 48 records into {cache}; needs "
            "internet), or copy each record's .hea, .dat and .atr files from "
            f"https://physionet.org/content/mitdb/1.0.0/ into {cache} (or into one folder of "
            "your own, passed as path=)."
        )


def _mitdb_folders(start: str | Path | None = None) -> list[Path]:
    """The course cache's ``mitdb`` folder, then the staged ``shared/data/mitdb`` folders."""
    from medai_lessons.data.cache import staged_paths

    return [dataset_dir(get_info("mitdb")), *staged_paths("mitdb", start)]


def inter_patient_status(path: str | Path | None = None, *,
                         start: str | Path | None = None) -> InterPatientStatus:
    """Which of the 44 records of the DS1/DS2 division are staged, and in which folder.

    ``path`` names the folder to look in; by default the course's data cache
    (``<cache>/mitdb``, ``MEDAI_DATA_DIR`` to move it) and then a staged ``shared/data/mitdb``
    next to ``start`` (the working folder by default) or the package, as
    :func:`medai_lessons.sequences.find_mitdb` looks; the folder holding the most of the 44
    is used (a division is read from one folder). Nothing is downloaded.
    """
    folders = [Path(path).expanduser()] if path is not None else _mitdb_folders(start)
    best, best_have = None, set()
    for folder in folders:
        have = set(records_in(folder)) & set(INTER_PATIENT_RECORDS)
        if len(have) > len(best_have):
            best, best_have = folder, have
    return InterPatientStatus(
        folder=best,
        searched=tuple(folders),
        staged=tuple(r for r in INTER_PATIENT_RECORDS if r in best_have),
        missing=tuple(r for r in INTER_PATIENT_RECORDS if r not in best_have),
    )


@dataclass
class InterPatientBeats:
    """The beats of the DS1/DS2 division: ``train`` (DS1) and ``test`` (DS2), two
    :class:`BeatSet` whose ``records`` give each beat's record (its patient).

    ``records_per_half`` is ``None`` for the standard division, or the number of records of
    each half a quick run took (the first of each list); :attr:`ran` says which it was.
    """

    train: BeatSet
    test: BeatSet
    folder: Path
    records_per_half: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def standard(self) -> bool:
        """Every record of both halves was used."""
        return self.records_per_half is None

    @property
    def ran(self) -> str:
        """One sentence saying which division the beats come from."""
        if self.standard:
            return ("the standard inter-patient division of MIT-BIH (de Chazal et al. 2004): "
                    "trained on the 22 records of DS1, tested on the 22 records of DS2")
        k = self.records_per_half
        return (f"a quick cut of the MIT-BIH inter-patient division: the first {k} record"
                f"{'s' if k > 1 else ''} of DS1 for training and of DS2 for testing (the "
                "standard division uses all 22 of each)")

    def summary(self) -> str:
        lines = [f"[medai data] MIT-BIH inter-patient division, REAL records from {self.folder}:"]
        for half, role, beats in (("DS1", "training", self.train), ("DS2", "test", self.test)):
            recs = list(dict.fromkeys(beats.records.tolist()))
            counts = ", ".join(f"{k} {v:,}" for k, v in beats.counts().items())
            lines.append(wrap(f"{half} ({role}): {len(recs)} records, {len(beats):,} beats "
                              f"({counts})"))
        lines += [wrap(f"note: {n}") for n in self.notes]
        lines += [wrap(f"license: {self.train.license}"),
                  wrap(f"cite: {self.train.citation}; the division: {DIVISION_CITATION}")]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"InterPatientBeats(train={len(self.train)} beats of DS1, "
                f"test={len(self.test)} beats of DS2, standard={self.standard})")


def load_inter_patient(
    path: str | Path | None = None,
    *,
    records_per_half: int | None = None,
    lead: str = "MLII",
    normalize: bool = True,
    verbose: bool = True,
    start: str | Path | None = None,
) -> InterPatientBeats:
    """The beats of the MIT-BIH inter-patient division: DS1 to train, DS2 to test.

    Each half is read with :func:`load_mitdb` (the same 187-sample windows at 125 Hz around
    each annotated R peak, with AAMI labels) from the folder :func:`inter_patient_status`
    finds (or ``path``), with the lead ``lead`` in every record (all 44 have MLII). Each beat
    keeps its record in ``.records``; no record is in both halves. Records 201 (DS1) and 202
    (DS2) come from one subject, as the published division has them (a note says so).

    ``records_per_half`` takes only the first records of each list (a quick run; the result
    says it is not the standard division). Nothing is downloaded.

    Raises:
        DataUnavailable: a record needed is not staged; the message names every missing
            record of each half and how to stage them.
        CorruptFile: a record's files are damaged.
    """
    if records_per_half is not None and (
        isinstance(records_per_half, bool) or not isinstance(records_per_half, (int, np.integer))
        or not 1 <= records_per_half <= len(DS1_RECORDS)
    ):
        raise ValueError(
            f"records_per_half is a whole number from 1 to {len(DS1_RECORDS)} (or None for the "
            f"standard division), not {records_per_half!r}"
        )
    k = None if records_per_half is None else int(records_per_half)
    ds1, ds2 = DS1_RECORDS[:k], DS2_RECORDS[:k]
    status = inter_patient_status(path, start=start)
    if any(r in status.missing for r in ds1 + ds2) or status.folder is None:
        raise DataUnavailable(status.describe(ds1 + ds2))
    train = load_mitdb(list(ds1), path=status.folder, lead=lead, normalize=normalize,
                       verbose=False, same_lead=True)
    test = load_mitdb(list(ds2), path=status.folder, lead=lead, normalize=normalize,
                      verbose=False, same_lead=True)
    data = InterPatientBeats(train=train, test=test, folder=status.folder, records_per_half=k)
    if set(SAME_SUBJECT_RECORDS) <= set(ds1 + ds2):
        data.notes.append(
            "records 201 (DS1) and 202 (DS2) were recorded from the same man: the published "
            "division is by record, so this one subject has beats in both halves"
        )
    if not data.standard:
        data.notes.append(data.ran)
    if verbose:
        print(data.summary())
    return data
