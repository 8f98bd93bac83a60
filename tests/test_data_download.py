"""Downloads through the registry, served from a local HTTP server on 127.0.0.1.

Every fault the loaders must handle: offline, checksum mismatch, an HTML page or a truncated
body sent in place of the file, an interrupted transfer, a bad file already in the cache. After
any failure, no file exists under the final name and no temporary file is left behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import os
import stat
import threading
from pathlib import Path

import numpy as np
import pytest

from medai_lessons.data import cache, registry
from medai_lessons.data.download import fetch
from medai_lessons.data.errors import ChecksumMismatch, CorruptFile, DataUnavailable
from medai_lessons.data.medmnist import load_medmnist

UNREACHABLE = "http://127.0.0.1:9/x.npz"  # the discard port: nothing listens there


def fake_medmnist_bytes(n=(12, 4, 6), channels=1, n_classes=2, seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    shape = (28, 28) if channels == 1 else (28, 28, 3)
    arrays = {}
    for split, k in zip(("train", "val", "test"), n, strict=True):
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(k, *shape), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, n_classes, size=(k, 1), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, bytes, dict]] = {}

    def do_GET(self):  # noqa: N802 - http.server's naming
        path = self.path.split("?")[0]
        status, body, opts = self.routes.get(path, (404, b"<html>page not found</html>", {}))
        self.send_response(status)
        length = opts.get("claimed_length", len(body))
        self.send_header("Content-Length", str(length))
        self.send_header("Content-Type", opts.get("type", "application/octet-stream"))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if length != len(body):
            self.close_connection = True

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def server():
    """A loopback-only HTTP server; tests put bytes at paths with ``server.routes[path]``."""
    _Handler.routes = {}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.routes = _Handler.routes
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDAI_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("MEDAI_DOWNLOAD_TIMEOUT", "10")


def point_entry(monkeypatch, name: str, url: str, md5: str | None) -> registry.DatasetInfo:
    info = dataclasses.replace(registry.get_info(name), url=url, md5=md5)
    monkeypatch.setitem(registry.REGISTRY, name, info)
    return info


def leftovers(folder: Path) -> list[str]:
    """Files in the folder other than moved-aside bad copies."""
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if ".bad-" not in p.name and not p.name.endswith(".downloaded"))


def test_download_verifies_the_checksum_and_lands_under_the_final_name(server, monkeypatch):
    body = fake_medmnist_bytes()
    server.routes["/ok/breastmnist.npz"] = (200, body, {})
    info = point_entry(
        monkeypatch, "breastmnist", server.base + "/ok/breastmnist.npz?download=1",
        hashlib.md5(body).hexdigest(),
    )
    path = fetch("breastmnist", progress=False)
    assert path == cache.dataset_path(info)
    assert path.read_bytes() == body
    assert leftovers(path.parent) == ["breastmnist.npz"]
    assert cache.cache_state(info) == "present"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # readable in a shared folder

    # Second call: the cached copy is used, the network is not touched.
    server.routes.pop("/ok/breastmnist.npz")
    assert fetch("breastmnist", progress=False) == path


def test_load_medmnist_downloads_and_returns_arrays(server, monkeypatch, capsys):
    body = fake_medmnist_bytes(n=(10, 3, 5), channels=3, n_classes=8, seed=1)
    server.routes["/blood.npz"] = (200, body, {})
    md5 = hashlib.md5(body).hexdigest()
    point_entry(monkeypatch, "bloodmnist", server.base + "/blood.npz", md5)
    ds = load_medmnist("bloodmnist", progress=False)
    assert ds.source == "real"
    assert ds.split_sizes() == {"train": 10, "val": 3, "test": 5}
    assert ds.x_train.shape == (10, 28, 28, 3) and ds.x_train.dtype == np.uint8
    assert ds.y_train.shape == (10,) and ds.y_train.dtype == np.int64
    with np.load(io.BytesIO(body)) as npz:
        np.testing.assert_array_equal(ds.x_test, npz["test_images"])
        np.testing.assert_array_equal(ds.y_test, npz["test_labels"].ravel())
    out = " ".join(capsys.readouterr().out.split())
    assert "BloodMNIST" in out and "REAL" in out and "matches the official" in out
    assert "CC BY 4.0" in out and "Acevedo" in out


def test_offline_raises_data_unavailable_with_the_staging_path(monkeypatch, tmp_path):
    info = point_entry(monkeypatch, "pneumoniamnist", UNREACHABLE, "0" * 32)
    with pytest.raises(DataUnavailable) as err:
        fetch("pneumoniamnist", progress=False)
    message = str(err.value)
    target = cache.dataset_path(info)
    assert str(target) in message  # the exact path to copy the file to
    assert UNREACHABLE in message  # from where
    assert "pneumoniamnist.npz" in message  # which file
    assert not target.exists()
    assert leftovers(target.parent) == []


def test_download_false_never_uses_the_network(monkeypatch):
    info = point_entry(monkeypatch, "pneumoniamnist", UNREACHABLE, "0" * 32)
    with pytest.raises(DataUnavailable, match="downloading is off"):
        fetch(info, download=False)


def test_checksum_mismatch_keeps_nothing(server, monkeypatch):
    server.routes["/other.npz"] = (200, fake_medmnist_bytes(seed=5), {})
    info = point_entry(monkeypatch, "breastmnist", server.base + "/other.npz",
                       hashlib.md5(b"the official bytes").hexdigest())
    with pytest.raises(ChecksumMismatch, match="not the official"):
        fetch(info, progress=False)
    target = cache.dataset_path(info)
    assert not target.exists()
    assert leftovers(target.parent) == []


def test_html_page_served_as_npz_is_rejected(server, monkeypatch):
    page = b"<!DOCTYPE html><html><body>Page not found</body></html>"
    server.routes["/page.npz"] = (200, page, {"type": "text/html"})
    good = fake_medmnist_bytes()
    info = point_entry(monkeypatch, "breastmnist", server.base + "/page.npz",
                       hashlib.md5(good).hexdigest())
    with pytest.raises(ChecksumMismatch):
        fetch(info, progress=False)
    assert leftovers(cache.dataset_path(info).parent) == []


def test_html_page_without_known_checksum_is_moved_aside_as_corrupt(server, monkeypatch):
    page = b"<html><body>Sign in to continue</body></html>"
    server.routes["/login.npz"] = (200, page, {"type": "text/html"})
    info = point_entry(monkeypatch, "breastmnist", server.base + "/login.npz", None)
    with pytest.raises(CorruptFile, match="HTML"):
        fetch(info, progress=False)
    folder = cache.dataset_path(info).parent
    assert leftovers(folder) == []
    bad = [p for p in folder.iterdir() if ".bad-" in p.name]
    assert len(bad) == 1 and bad[0].read_bytes() == page


def test_truncated_body_fails_the_checksum(server, monkeypatch):
    body = fake_medmnist_bytes()
    server.routes["/short.npz"] = (200, body[: len(body) // 3], {})
    info = point_entry(monkeypatch, "breastmnist", server.base + "/short.npz",
                       hashlib.md5(body).hexdigest())
    with pytest.raises(ChecksumMismatch):
        fetch(info, progress=False)
    assert leftovers(cache.dataset_path(info).parent) == []


def test_interrupted_transfer_leaves_no_file_under_the_final_name(server, monkeypatch):
    body = fake_medmnist_bytes()
    server.routes["/cut.npz"] = (200, body[:1000], {"claimed_length": len(body)})
    info = point_entry(monkeypatch, "breastmnist", server.base + "/cut.npz",
                       hashlib.md5(body).hexdigest())
    with pytest.raises(DataUnavailable, match="cut off"):
        fetch(info, progress=False)
    assert leftovers(cache.dataset_path(info).parent) == []


def test_http_error_status_is_reported(server, monkeypatch):
    info = point_entry(monkeypatch, "breastmnist", server.base + "/missing.npz", "0" * 32)
    with pytest.raises(DataUnavailable, match="HTTP 404"):
        fetch(info, progress=False)


def test_bad_cached_file_is_moved_aside_and_replaced(server, monkeypatch, capsys):
    body = fake_medmnist_bytes(seed=3)
    server.routes["/good.npz"] = (200, body, {})
    info = point_entry(monkeypatch, "breastmnist", server.base + "/good.npz",
                       hashlib.md5(body).hexdigest())
    target = cache.dataset_path(info)
    target.parent.mkdir(parents=True)
    stale = fake_medmnist_bytes(seed=4)
    target.write_bytes(stale)
    cache.mark_downloaded(target, info.md5)     # the course's own download, damaged since
    assert cache.cache_state(info) == "bad checksum"

    path = fetch(info, progress=False)
    assert path.read_bytes() == body
    moved = [p for p in target.parent.iterdir() if p.name.startswith("breastmnist.npz.bad-")]
    assert len(moved) == 1 and moved[0].read_bytes() == stale
    assert "moved aside" in capsys.readouterr().out


def test_bad_cached_file_is_never_used_when_offline(monkeypatch):
    info = point_entry(monkeypatch, "breastmnist", UNREACHABLE,
                       hashlib.md5(b"official").hexdigest())
    target = cache.dataset_path(info)
    target.parent.mkdir(parents=True)
    target.write_bytes(fake_medmnist_bytes())  # a readable npz, but not the official file
    cache.mark_downloaded(target, info.md5)     # downloaded by the course, changed since
    with pytest.raises(DataUnavailable) as err:
        load_medmnist("breastmnist", progress=False, verbose=False)
    assert "moved aside" in str(err.value)
    assert not target.exists()
    assert any(p.name.startswith("breastmnist.npz.bad-") for p in target.parent.iterdir())


def test_staged_file_is_used_without_network(monkeypatch):
    body = fake_medmnist_bytes(n=(7, 2, 3))
    info = point_entry(monkeypatch, "pneumoniamnist", UNREACHABLE, hashlib.md5(body).hexdigest())
    target = cache.dataset_path(info)
    target.parent.mkdir(parents=True)
    target.write_bytes(body)  # what an instructor does for an offline class
    ds = load_medmnist("pneumoniamnist", verbose=False)
    assert ds.split_sizes() == {"train": 7, "val": 2, "test": 3}
    assert ds.path == target


def test_a_file_the_user_staged_with_another_checksum_is_used_and_never_moved(
        server, monkeypatch, capsys):
    official = fake_medmnist_bytes(n=(12, 4, 6), seed=1)
    server.routes["/official.npz"] = (200, official, {})
    info = point_entry(monkeypatch, "pneumoniamnist", server.base + "/official.npz",
                       hashlib.md5(official).hexdigest())
    info = dataclasses.replace(info, n_samples={"train": 12, "val": 4, "test": 6})
    monkeypatch.setitem(registry.REGISTRY, "pneumoniamnist", info)
    target = cache.dataset_path(info)
    target.parent.mkdir(parents=True)
    mine = fake_medmnist_bytes(n=(9, 4, 6), seed=2)     # a cut-down copy: another checksum
    target.write_bytes(mine)
    state = cache.cache_state(info)
    assert state.startswith("staged copy, not the official file") and "train has 9" in state
    ds = load_medmnist("pneumoniamnist", progress=False)
    assert ds.source == "real" and ds.path == target
    assert ds.split_sizes() == {"train": 9, "val": 4, "test": 6}
    out = " ".join(capsys.readouterr().out.split())
    assert "warning" in out and "not the official pneumoniamnist.npz" in out
    assert "train has 9 images (official: 12)" in out
    with pytest.raises(ChecksumMismatch, match="left as it is"):
        fetch(info, progress=False)                     # never downloaded over it either
    assert target.read_bytes() == mine
    assert sorted(p.name for p in target.parent.iterdir()) == ["pneumoniamnist.npz"]


def test_a_staged_file_that_is_not_the_dataset_is_reported_and_left_alone(monkeypatch):
    info = point_entry(monkeypatch, "pneumoniamnist", UNREACHABLE,
                       hashlib.md5(b"official").hexdigest())
    target = cache.dataset_path(info)
    target.parent.mkdir(parents=True)
    target.write_text("<html>page not found</html>")
    assert cache.cache_state(info).startswith("bad staged file (the file is a web page")
    with pytest.raises(CorruptFile, match="put in the course's data folder by hand"):
        load_medmnist("pneumoniamnist", progress=False, verbose=False)
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        assert load_medmnist("pneumoniamnist", allow_synthetic=True,
                             verbose=False).source == "synthetic"
    assert target.read_text() == "<html>page not found</html>"
    assert [p.name for p in target.parent.iterdir()] == ["pneumoniamnist.npz"]


def test_failed_download_falls_back_to_synthetic_only_when_allowed(monkeypatch, capsys):
    point_entry(monkeypatch, "pneumoniamnist", UNREACHABLE, "0" * 32)
    with pytest.raises(DataUnavailable):
        load_medmnist("pneumoniamnist", verbose=False)
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        ds = load_medmnist("pneumoniamnist", allow_synthetic=True)
    assert ds.source == "synthetic"
    out = " ".join(capsys.readouterr().out.split())
    assert "SYNTHETIC" in out and "cannot be reached" in out


def _read_only(monkeypatch):
    """What renaming or writing in a read-only folder does (tests may run as root, for whom
    file permissions are no obstacle, so the refusal is simulated)."""
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", denied)


def test_bad_file_in_a_read_only_shared_folder_is_not_used_and_the_notebook_falls_back(
        monkeypatch, capsys):
    info = point_entry(monkeypatch, "pneumoniamnist", UNREACHABLE,
                       hashlib.md5(b"official").hexdigest())
    target = cache.dataset_path(info)
    target.parent.mkdir(parents=True)
    bad = fake_medmnist_bytes()                 # a readable npz, but not the official file
    target.write_bytes(bad)
    cache.mark_downloaded(target, info.md5)     # downloaded by the course, changed since
    _read_only(monkeypatch)
    with pytest.raises(ChecksumMismatch) as err:
        fetch(info, progress=False)
    message = " ".join(str(err.value).split())
    assert "will not be used" in message and "read-only" in message
    assert "MEDAI_DATA_DIR" in message and "verify" in message
    assert target.read_bytes() == bad           # left where it was, untouched
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        ds = load_medmnist("pneumoniamnist", allow_synthetic=True)
    assert ds.source == "synthetic"
    assert "read-only" in " ".join(capsys.readouterr().out.split())


def test_download_into_a_folder_that_cannot_be_written_is_a_data_error(server, monkeypatch):
    import pooch

    body = fake_medmnist_bytes()
    server.routes["/ro/breastmnist.npz"] = (200, body, {})
    info = point_entry(monkeypatch, "breastmnist", server.base + "/ro/breastmnist.npz",
                       hashlib.md5(body).hexdigest())

    def cannot_write(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(cache.dataset_path(info)))

    monkeypatch.setattr(pooch, "retrieve", cannot_write)
    with pytest.raises(DataUnavailable) as err:
        fetch(info, progress=False)
    message = " ".join(str(err.value).split())
    assert "could not save breastmnist.npz" in message and "Permission denied" in message
    assert "MEDAI_DATA_DIR" in message
