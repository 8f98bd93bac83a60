"""MIT-BIH beats: AAMI classes, the 187-sample window at 125 Hz, edge beats, damaged records,
fetching through wfdb (faked, and for real from a PhysioNet-like server on this machine: no
internet), and record 100 of ../shared/data when present."""

from __future__ import annotations

import functools
import http.server
import shutil
import tempfile
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

wfdb = pytest.importorskip("wfdb")

from medai_lessons.data import cache, registry  # noqa: E402
from medai_lessons.data.ecg import (  # noqa: E402
    AAMI_CLASSES,
    aami_class,
    fetch_mitdb,
    folder_state,
    load_mitdb,
)
from medai_lessons.data.errors import CorruptFile, DataUnavailable  # noqa: E402

# wfdb itself (writing and reading the test's records) uses a pandas keyword pandas deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")

FS = 360
# The AAMI EC57 grouping of MIT-BIH beat symbols, written out from the standard.
EC57 = {"N": "NLRej", "S": "AaJS", "V": "VE", "F": "F", "Q": "/fQ"}
NON_BEATS = ["+", "~", "|", '"', "x", "!", "[", "]"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDAI_DATA_DIR", str(tmp_path / "cache"))


def beat_plan(duration: float) -> list[tuple[float, str]]:
    plan = [(0.2, "N")]  # too near the start for the 0.5 s before the R peak
    t = 1.0
    for symbols in ("NLRej", "AaJS", "VE", "F", "/fQ"):
        for s in symbols:
            plan.append((t, s))
            t += 0.8
    for s in NON_BEATS:
        plan.append((t, s))
        t += 0.3
    t += 0.5
    while t < duration - 1.2:
        plan.append((t, "N"))
        t += 0.8
    plan.append((duration - 0.3, "N"))  # too near the end for the 1 s after the R peak
    return plan


def write_record(folder: Path, name: str = "t1", duration: float = 24.0) -> list[tuple[int, str]]:
    """A two-lead record (V5 first, MLII second) with a spike at every beat; returns the plan."""
    n = int(duration * FS)
    t = np.arange(n) / FS
    mlii = np.zeros(n)
    plan = [(int(round(tb * FS)), s) for tb, s in beat_plan(duration)]
    for sample, symbol in plan:
        if symbol in NON_BEATS:
            continue
        mlii += 1.0 * np.exp(-0.5 * ((t - sample / FS) / 0.01) ** 2)
    v5 = -0.5 * mlii + 0.05 * np.sin(2 * np.pi * 0.3 * t)
    wfdb.wrsamp(
        name, fs=FS, units=["mV", "mV"], sig_name=["V5", "MLII"],
        p_signal=np.column_stack([v5, mlii]), fmt=["212", "212"], write_dir=str(folder),
    )
    wfdb.wrann(
        name, "atr", sample=np.array([p for p, _ in plan]), symbol=[s for _, s in plan],
        write_dir=str(folder),
    )
    return plan


def test_aami_mapping_follows_ec57():
    for cls, symbols in EC57.items():
        for s in symbols:
            assert aami_class(s) == cls, s
    for s in NON_BEATS:
        assert aami_class(s) is None
    assert AAMI_CLASSES == ("N", "S", "V", "F", "Q")


def test_written_record_gives_windows_centred_on_each_beat(tmp_path, capsys):
    plan = write_record(tmp_path)
    beats = load_mitdb(path=tmp_path)
    kept = [(p, s) for p, s in plan[1:-1] if s not in NON_BEATS]  # first and last are dropped
    assert len(beats) == len(kept)
    assert beats.X.shape == (len(kept), 187) and beats.X.dtype == np.float32
    assert beats.y.dtype == np.int64
    assert beats.fs == 125
    assert beats.n_dropped_edge == 2
    assert beats.n_skipped_nonbeat == len(NON_BEATS)
    expected = Counter(next(c for c, syms in EC57.items() if s in syms) for _, s in kept)
    assert beats.counts() == {c: expected.get(c, 0) for c in AAMI_CLASSES}
    np.testing.assert_array_equal(beats.positions, [p for p, _ in kept])
    assert list(beats.symbols) == [s for _, s in kept]
    # The spike of each beat is at index 62 (0.496 s into the 1.496 s window), scaled to 1.
    peaks = beats.X.argmax(axis=1)
    assert np.all(np.abs(peaks - 62) <= 1)
    assert np.allclose(beats.X.max(axis=1), 1.0) and np.allclose(beats.X.min(axis=1), 0.0)
    assert beats.lead == "MLII"  # the second channel, chosen by name (V5's spikes point down)
    out = capsys.readouterr().out
    assert "REAL" in out and "Moody" in out and "dropped 2" in out


def write_record_without_mlii(folder: Path, name: str) -> None:
    """A record like 102 or 104 of MIT-BIH: no MLII, its first lead V5."""
    write_record(folder, name)
    rec = wfdb.rdrecord(str(folder / name))
    wfdb.wrsamp(name, fs=FS, units=["mV", "mV"], sig_name=["V5", "V2"],
                p_signal=rec.p_signal, fmt=["212", "212"], write_dir=str(folder))


def test_each_beat_keeps_the_lead_of_its_record_and_a_mix_is_said(tmp_path, capsys):
    write_record(tmp_path, "t1")
    write_record_without_mlii(tmp_path, "t2")
    beats = load_mitdb(["t1", "t2"], path=tmp_path)
    by_record = {r: set(beats.leads[beats.records == r].tolist()) for r in ("t1", "t2")}
    assert by_record == {"t1": {"MLII"}, "t2": {"V5"}}
    assert beats.lead == "mixed"
    out = capsys.readouterr().out
    assert "different leads" in out and "MLII: record t1" in out and "V5: record t2" in out
    only = load_mitdb(["t2"], path=tmp_path, verbose=False)
    assert only.lead == "V5" and set(only.leads.tolist()) == {"V5"} and not only.notes
    with pytest.raises(ValueError, match=r"record t2 has no lead MLII.*first lead is V5"):
        load_mitdb(["t1", "t2"], path=tmp_path, verbose=False, same_lead=True)
    same = load_mitdb(["t1"], path=tmp_path, verbose=False, same_lead=True)
    assert same.lead == "MLII" and len(same.leads) == len(same)


def test_unnormalised_windows_stay_in_millivolts(tmp_path):
    write_record(tmp_path)
    beats = load_mitdb(path=tmp_path, normalize=False, verbose=False)
    assert 0.85 < float(beats.X.max(axis=1).min()) <= 1.05
    assert abs(float(np.median(beats.X[:, :20]))) < 0.05  # flat baseline before the spike
    X, y, names = beats
    assert X is beats.X and y is beats.y and names == AAMI_CLASSES


def test_truncated_signal_file_is_reported(tmp_path):
    write_record(tmp_path)
    dat = tmp_path / "t1.dat"
    dat.write_bytes(dat.read_bytes()[:5000])
    assert folder_state(tmp_path).startswith("corrupt")
    with pytest.raises(CorruptFile, match="truncated"):
        load_mitdb(path=tmp_path, verbose=False)


def test_folder_without_records_says_where_to_put_them(tmp_path):
    with pytest.raises(DataUnavailable, match=r"\.hea, \.dat and \.atr"):
        load_mitdb(path=tmp_path, verbose=False)
    write_record(tmp_path)
    with pytest.raises(DataUnavailable, match="t9"):
        load_mitdb("t9", path=tmp_path, verbose=False)


def test_offline_fetch_gives_staging_instructions_and_leaves_nothing(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(wfdb, "dl_database", offline)
    folder = cache.dataset_dir(registry.get_info("mitdb"))
    with pytest.raises(DataUnavailable) as err:
        load_mitdb("100", verbose=False)
    assert str(folder) in str(err.value) and "100.hea" in str(err.value)
    assert list(folder.iterdir()) == []  # no half download left behind
    with pytest.raises(DataUnavailable, match="downloading is off"):
        fetch_mitdb(["100"], download=False)


def test_fetch_moves_a_complete_download_into_the_cache(tmp_path, monkeypatch):
    source = tmp_path / "physionet"
    source.mkdir()
    plan = write_record(source, "t2")
    calls = []

    def fake_dl_database(db, dl_dir, records=None, annotators=None, **kwargs):
        calls.append((db, records, annotators))
        for f in source.iterdir():
            shutil.copy(f, Path(dl_dir) / f.name)

    monkeypatch.setattr(wfdb, "dl_database", fake_dl_database)
    beats = load_mitdb("t2", verbose=False)
    assert calls == [("mitdb", ["t2"], ["atr"])]
    folder = cache.dataset_dir(registry.get_info("mitdb"))
    assert sorted(p.name for p in folder.iterdir()) == ["t2.atr", "t2.dat", "t2.hea"]
    assert len(beats) == sum(1 for _, s in plan[1:-1] if s not in NON_BEATS)
    # Now present: no second download.
    load_mitdb("t2", verbose=False)
    assert len(calls) == 1


def test_an_incomplete_download_is_not_kept(tmp_path, monkeypatch):
    source = tmp_path / "physionet"
    source.mkdir()
    write_record(source, "t3")

    def broken_dl_database(db, dl_dir, records=None, annotators=None, **kwargs):
        for f in source.iterdir():
            data = f.read_bytes()
            (Path(dl_dir) / f.name).write_bytes(data[:100] if f.suffix == ".dat" else data)

    monkeypatch.setattr(wfdb, "dl_database", broken_dl_database)
    with pytest.raises(CorruptFile, match="incomplete"):
        fetch_mitdb(["t3"])
    folder = cache.dataset_dir(registry.get_info("mitdb"))
    assert list(folder.iterdir()) == []


@pytest.fixture
def physionet(tmp_path, monkeypatch):
    """A PhysioNet-like web server on this machine, with wfdb pointed at it: wfdb's own
    download code (version lookup, header streaming, file transfer) runs over real HTTP.
    Returns the folder it serves ``mitdb`` from and the list of paths requested."""
    root = tmp_path / "physionet-site"
    files = root / "files" / "mitdb" / "1.0.0"
    files.mkdir(parents=True)
    (files / "ANNOTATORS").write_text("atr\treference beat annotations\n")
    page = root / "content" / "mitdb"
    (page / "1.0.0").mkdir(parents=True)
    (page / "index.html").write_text("<p>Version: 1.0.0</p>")
    (page / "1.0.0" / "index.html").write_text("<p>MIT-BIH Arrhythmia Database</p>")
    requested = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requested.append(self.path)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/"
    monkeypatch.setattr(wfdb.io.download, "PN_CONTENT_URL", base + "content/")
    monkeypatch.setattr(wfdb.io.download.config, "db_index_url", base + "files/")
    for proxy in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    yield files, requested
    server.shutdown()
    server.server_close()


def test_fetch_downloads_record_by_record_over_http_with_a_progress_bar(physionet, capsys):
    files, requested = physionet
    plans = {name: write_record(files, name) for name in ("t4", "t5")}
    folder = fetch_mitdb(["t4", "t5"], progress=True)
    assert sorted(p.name for p in folder.iterdir()) == [
        "t4.atr", "t4.dat", "t4.hea", "t5.atr", "t5.dat", "t5.hea"]      # no temporary folder
    assert {"/files/mitdb/1.0.0/t4.dat", "/files/mitdb/1.0.0/t5.atr"} <= set(requested)
    err = capsys.readouterr()
    assert "MIT-BIH records" in err.err and "2/2" in err.err
    assert "Downloading files" not in err.out                  # wfdb's chatter is hidden
    beats = load_mitdb(["t4", "t5"], verbose=False)
    assert len(beats) == sum(1 for plan in plans.values()
                             for _, s in plan[1:-1] if s not in NON_BEATS)
    requested.clear()
    fetch_mitdb(["t4", "t5"], progress=False)                  # in the cache: no request
    assert requested == []


def test_a_record_truncated_in_transit_is_not_kept_and_the_ones_before_it_are(physionet):
    files, _ = physionet
    write_record(files, "t6")
    write_record(files, "t7")
    dat = files / "t7.dat"
    dat.write_bytes(dat.read_bytes()[:200])
    folder = cache.dataset_dir(registry.get_info("mitdb"))
    with pytest.raises(CorruptFile) as err:
        fetch_mitdb(["t6", "t7"], progress=False)
    message = str(err.value)
    assert "record t7 is incomplete" in message and "1 record(s) fetched before it" in message
    assert "t7.hea" in message and "t6.hea" not in message     # the staging hint: what is left
    assert sorted(p.name for p in folder.iterdir()) == ["t6.atr", "t6.dat", "t6.hea"]


def test_a_record_the_server_does_not_have_gives_staging_instructions(physionet):
    with pytest.raises(DataUnavailable) as err:
        fetch_mitdb(["t8"], progress=False)
    folder = cache.dataset_dir(registry.get_info("mitdb"))
    assert "could not download MIT-BIH record t8" in str(err.value)
    assert str(folder) in str(err.value) and "t8.hea" in str(err.value)
    assert list(folder.iterdir()) == []


def test_real_record_100(shared_data, capsys):
    folder = shared_data / "mitdb"
    if not (folder / "100.hea").is_file():
        pytest.skip(f"{folder}/100.hea is not present")
    ann = wfdb.rdann(str(folder / "100"), "atr")
    annotated = Counter(ann.symbol)
    assert annotated["N"] == 2239 and annotated["A"] == 33 and annotated["V"] == 1  # README
    beats = load_mitdb("100", path=folder)
    counts = beats.counts()
    assert counts["S"] == 33 and counts["V"] == 1 and counts["F"] == 0 and counts["Q"] == 0
    # Only beats within ~0.5 s of the start or ~1 s of the end may be dropped.
    n_beats = sum(annotated[s] for s in "NAV")
    assert len(beats) + beats.n_dropped_edge == n_beats
    assert 2235 <= counts["N"] <= 2239
    edge = [p for p, s in zip(ann.sample, ann.symbol, strict=True)
            if s in "NAV" and (p < 0.5 * 360 or p > 650000 - 1.0 * 360)]
    assert beats.n_dropped_edge == len(edge)
    assert beats.X.shape == (len(beats), 187)
    # The S beats are the record's A beats, at the annotated positions.
    a_positions = [p for p, s in zip(ann.sample, ann.symbol, strict=True) if s == "A"]
    np.testing.assert_array_equal(np.sort(beats.positions[beats.y == 1]), a_positions)
    # The R peak is at index 62: the highest point within 0.08 s of it (the window also
    # holds the next beat's R, which may be taller).
    near = beats.X[beats.y == 0][:, 52:73].argmax(axis=1) + 52
    assert np.mean(np.abs(near - 62) <= 1) > 0.95
    assert "Open Data Commons" in capsys.readouterr().out


def test_fetch_into_a_folder_that_cannot_be_written_is_a_data_error(physionet, monkeypatch):
    files, requested = physionet
    write_record(files, "t9")

    def denied(*args, **kwargs):               # tests may run as root: simulate the refusal
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", denied)
    with pytest.raises(DataUnavailable) as err:
        fetch_mitdb(["t9"], progress=False)
    message = str(err.value)
    assert "could not save MIT-BIH record t9" in message and "Permission denied" in message
    assert "MEDAI_DATA_DIR" in message and "t9.hea" in message
    assert requested == []                     # nothing was downloaded to be thrown away


def test_records_may_be_numbers_or_a_single_record(tmp_path):
    write_record(tmp_path, "100")
    by_name = load_mitdb("100", path=tmp_path, verbose=False)
    for records in (100, [100], np.int64(100), np.array([100]), (" 100",), ["100"]):
        beats = load_mitdb(records=records, path=tmp_path, verbose=False)
        np.testing.assert_array_equal(beats.X, by_name.X)
        assert set(beats.records.tolist()) == {"100"}
    from medai_lessons.data import load_dataset

    assert len(load_dataset("mitdb", records=100, path=tmp_path, verbose=False)) == len(by_name)
    write_record(tmp_path, "007")   # numbers name the three-digit records
    assert set(load_mitdb(7, path=tmp_path, verbose=False).records.tolist()) == {"007"}


@pytest.mark.parametrize(
    ("records", "error", "message"),
    [
        (100.0, TypeError, r"one record \(100 or '100'\) or a list"),
        (True, TypeError, "records="),
        ([100, None], TypeError, "a record is named by a number or a string"),
        ("", ValueError, "empty record name"),
        ([100, "100"], ValueError, "record 100 more than once"),
        (-1, ValueError, "negative"),
    ],
)
def test_a_bad_records_argument_says_what_to_pass(tmp_path, records, error, message):
    write_record(tmp_path, "100")
    with pytest.raises(error, match=message):
        load_mitdb(records=records, path=tmp_path, verbose=False)
    with pytest.raises(error, match=message):
        fetch_mitdb(records, download=False)


def test_missing_records_message_names_the_records_that_are_there(tmp_path):
    write_record(tmp_path, "100")
    with pytest.raises(DataUnavailable, match="holds the complete record") as err:
        load_mitdb(101, path=tmp_path, verbose=False)
    assert "101.hea" in str(err.value) and "record(s) 100" in str(err.value)
    with pytest.raises(DataUnavailable, match="give the folder"):
        load_mitdb(path=tmp_path / "100.dat", verbose=False)


def test_fetch_takes_record_numbers_and_a_single_name(physionet):
    files, requested = physionet
    write_record(files, "100")
    folder = fetch_mitdb("100", progress=False)   # one record, not the records "1", "0", "0"
    assert sorted(p.name for p in folder.iterdir()) == ["100.atr", "100.dat", "100.hea"]
    assert not any(path.endswith(("/1.hea", "/0.hea")) for path in requested)
    requested.clear()
    assert fetch_mitdb(100, progress=False) == folder and fetch_mitdb([100]) == folder
    assert requested == []                        # the same record: already in the cache
    assert len(load_mitdb(100, download=False, verbose=False)) > 0
