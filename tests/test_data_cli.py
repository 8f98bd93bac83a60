"""``python -m medai_lessons.data list|fetch|verify|where``, in-process and as a subprocess."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import subprocess
import sys

import numpy as np
import pytest

from medai_lessons.data import cache, registry
from medai_lessons.data.cli import main

UNREACHABLE = "http://127.0.0.1:9/x.npz"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDAI_DATA_DIR", str(tmp_path / "cache"))


def npz_bytes(seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    arrays = {}
    for split, k in (("train", 5), ("val", 2), ("test", 3)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (k, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 2, (k, 1), dtype=np.uint8)
    np.savez(buf, **arrays)
    return buf.getvalue()


def stage(monkeypatch, name: str, body: bytes, official: bytes) -> registry.DatasetInfo:
    """Point ``name`` at an unreachable URL with the MD5 of ``official``; put ``body`` in."""
    info = dataclasses.replace(
        registry.get_info(name), url=UNREACHABLE, md5=hashlib.md5(official).hexdigest()
    )
    monkeypatch.setitem(registry.REGISTRY, name, info)
    path = cache.dataset_path(info)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return info


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_where_prints_the_override(tmp_path, capsys):
    code, out, _ = run(capsys, "where")
    assert code == 0 and out.strip() == str((tmp_path / "cache").resolve())


def test_list_shows_present_missing_and_bad(monkeypatch, capsys):
    good = npz_bytes(1)
    stage(monkeypatch, "pneumoniamnist", good, good)
    info = stage(monkeypatch, "breastmnist", npz_bytes(2), npz_bytes(3))
    cache.mark_downloaded(cache.dataset_path(info), info.md5)  # the course's, damaged since
    code, out, _ = run(capsys, "list")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert " present " in rows["pneumoniamnist"]
    assert " bad checksum " in rows["breastmnist"]
    assert " missing " in rows["dermamnist"]
    assert "NC" in rows["dermamnist"]
    assert set(registry.REGISTRY) <= set(rows)


def test_verify_fails_on_a_bad_file_and_says_what_to_do(monkeypatch, capsys):
    good = npz_bytes(1)
    stage(monkeypatch, "pneumoniamnist", good, good)
    code, out, _ = run(capsys, "verify")
    assert code == 0 and "verify: OK" in out

    info = stage(monkeypatch, "breastmnist", npz_bytes(2), npz_bytes(3))
    cache.mark_downloaded(cache.dataset_path(info), info.md5)  # the course's, damaged since
    code, out, _ = run(capsys, "verify")
    assert code == 1
    assert "breastmnist: bad checksum" in out and "fetch breastmnist" in out
    assert cache.dataset_path(info).exists()  # verify only reports; it moves nothing


def test_verify_uses_a_staged_copy_with_another_checksum_and_warns(monkeypatch, capsys):
    official = npz_bytes(1)
    info = stage(monkeypatch, "pneumoniamnist", npz_bytes(5), official)   # staged by hand
    code, out, _ = run(capsys, "verify")
    line = next(x for x in out.splitlines() if "pneumoniamnist:" in x)
    assert code == 0, out
    assert "staged copy, not the official file" in line and "train has 5 images" in line
    assert "[ch03_cnn, ch05_gan]" in line and "not comparable" in line
    assert cache.dataset_path(info).read_bytes() == npz_bytes(5)
    stage(monkeypatch, "pneumoniamnist", b"<html>not found</html>", official)
    code, out, _ = run(capsys, "verify")
    assert code == 1 and "pneumoniamnist: bad staged file (the file is a web page" in out
    assert "left as it is" in out


def test_verify_strict_asks_only_for_data_the_chapters_use(tmp_path, monkeypatch, capsys):
    official = npz_bytes(1)
    stage(monkeypatch, "pneumoniamnist", official, official)
    for record in ("100",):  # ch01 and ch04 read MIT-BIH records: still missing
        assert not (cache.data_dir() / "mitdb" / f"{record}.hea").exists()
    code, out, _ = run(capsys, "verify", "--strict")
    assert code == 1 and "mitdb: missing" in out
    for name in ("breastmnist", "dermamnist", "bloodmnist"):
        assert f"  {name}: missing" not in out
    assert "not checked: breastmnist, dermamnist, bloodmnist (no chapter uses them" in out


def test_verify_strict_fails_when_something_is_missing(tmp_path, capsys):
    (tmp_path / "cache").mkdir()      # an existing, empty folder (a missing one is an error)
    code, _, _ = run(capsys, "verify")
    assert code == 0
    code, out, _ = run(capsys, "verify", "--strict")
    assert code == 1 and "missing" in out


def test_fetch_usage_and_offline_failure(monkeypatch, capsys):
    assert run(capsys, "fetch")[0] == 2
    assert run(capsys, "fetch", "nonexistent")[0] == 1
    assert run(capsys, "fetch", "--all", "pneumoniamnist")[0] == 2
    info = dataclasses.replace(registry.get_info("dermamnist"), url=UNREACHABLE)
    monkeypatch.setitem(registry.REGISTRY, "dermamnist", info)
    code, _, err = run(capsys, "fetch", "dermamnist", "--no-progress")
    assert code == 1
    assert "FAILED" in err and str(cache.dataset_path(info)) in err
    code, out, _ = run(capsys, "fetch", "ct_small")
    assert code == 0 and "nothing to fetch" in out


def test_fetch_reports_an_already_staged_file(monkeypatch, capsys):
    good = npz_bytes(4)
    info = stage(monkeypatch, "bloodmnist", good, good)
    code, out, _ = run(capsys, "fetch", "bloodmnist")
    assert code == 0 and str(cache.dataset_path(info)) in out


def test_module_entry_point_runs(tmp_path):
    env = {**os.environ, "MEDAI_DATA_DIR": str(tmp_path / "sub")}
    where = subprocess.run([sys.executable, "-m", "medai_lessons.data", "where"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert where.returncode == 0 and where.stdout.strip() == str((tmp_path / "sub").resolve())
    listing = subprocess.run([sys.executable, "-m", "medai_lessons.data", "list"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0
    assert "pneumoniamnist" in listing.stdout and "missing" in listing.stdout
    bad = subprocess.run([sys.executable, "-m", "medai_lessons.data", "bogus"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2


def test_verify_a_data_folder_that_does_not_exist_is_an_error(tmp_path, capsys):
    code, out, err = run(capsys, "verify")
    assert code == 1 and "verify: OK" not in out
    assert f"{tmp_path / 'cache'} does not exist" in err and "MEDAI_DATA_DIR is set to" in err
    assert "Set MEDAI_DATA_DIR to the folder that holds medmnist/ and mitdb/" in err
    assert run(capsys, "verify", "--strict")[0] == 1
    code, out, _ = run(capsys, "list")                  # list still lists, and says so
    assert code == 0 and "warning: the data folder" in out and "does not exist" in out


def test_verify_the_default_folder_before_anything_was_fetched(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MEDAI_DATA_DIR")
    monkeypatch.setattr(cache, "default_cache_dir", lambda: tmp_path / "never-fetched")
    code, out, _ = run(capsys, "verify")
    assert code == 0 and "verify: OK" not in out
    assert "nothing to verify" in out and "does not exist yet" in out and "fetch" in out
    assert run(capsys, "verify", "--strict")[0] == 1


def test_verify_an_empty_folder_says_there_is_nothing_to_verify(tmp_path, capsys):
    (tmp_path / "cache").mkdir()
    code, out, _ = run(capsys, "verify")
    assert code == 0 and "verify: OK" not in out
    assert f"verify: nothing to verify: no dataset is in {tmp_path / 'cache'}" in out
    assert "fetch NAME` (or `fetch --all`) downloads datasets into it" in out


def test_files_copied_without_their_subfolders_get_a_warning(tmp_path, monkeypatch, capsys):
    root = tmp_path / "cache"
    root.mkdir()
    (root / "pneumoniamnist.npz").write_bytes(npz_bytes(1))
    for ext in (".hea", ".dat", ".atr"):
        (root / f"100{ext}").write_bytes(b"x")
    (root / "notes.txt").write_text("not a data file")
    code, out, _ = run(capsys, "verify")
    assert "verify: OK" not in out and "nothing to verify" in out
    assert (f"pneumoniamnist.npz in {root} is not used: the course looks for it in "
            f"{root / 'medmnist'}{os.sep}. Move it there.") in out
    assert f"100.atr, 100.dat, 100.hea in {root} are not used" in out
    assert str(root / "mitdb") in out and "notes.txt" not in out
    code, out, _ = run(capsys, "list")
    assert code == 0 and f"warning: pneumoniamnist.npz in {root} is not used" in out

    # Once in place (here with the official checksum), verify is OK and warns no more.
    good = npz_bytes(1)
    stage(monkeypatch, "pneumoniamnist", good, good)
    (root / "pneumoniamnist.npz").unlink()
    for ext in (".hea", ".dat", ".atr"):
        (root / f"100{ext}").unlink()
    code, out, _ = run(capsys, "verify")
    assert code == 0 and "verify: OK" in out and "warning" not in out


def test_a_data_folder_set_to_the_medmnist_subfolder_is_pointed_out(tmp_path, monkeypatch,
                                                                    capsys):
    inner = tmp_path / "staged" / "medmnist"
    inner.mkdir(parents=True)
    (inner / "pneumoniamnist.npz").write_bytes(npz_bytes(1))
    monkeypatch.setenv("MEDAI_DATA_DIR", str(inner))
    code, out, _ = run(capsys, "verify")
    assert code == 0 and "verify: OK" not in out
    assert ("Set MEDAI_DATA_DIR to the folder that holds medmnist/ and mitdb/ "
            f"({inner.parent})") in out
