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
    stage(monkeypatch, "breastmnist", npz_bytes(2), npz_bytes(3))
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
    code, out, _ = run(capsys, "verify")
    assert code == 1
    assert "breastmnist: bad checksum" in out and "fetch breastmnist" in out
    assert cache.dataset_path(info).exists()  # verify only reports; it moves nothing


def test_verify_strict_fails_when_something_is_missing(capsys):
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
