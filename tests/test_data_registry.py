"""The data registry, the cache folder and its override, and what importing the package does."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from medai_lessons.data import cache, registry
from medai_lessons.data.errors import ChecksumMismatch, CorruptFile, DataError, DataUnavailable


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDAI_DATA_DIR", str(tmp_path / "cache"))


def test_every_entry_has_the_required_fields():
    assert len(registry.REGISTRY) >= 5
    for name, info in registry.REGISTRY.items():
        assert info.name == name
        for attr in ("title", "url", "size", "license", "citation", "description"):
            assert getattr(info, attr).strip(), f"{name}.{attr} is empty"
        assert "\n" not in info.description
        if info.md5 is not None:
            assert re.fullmatch(r"[0-9a-f]{32}", info.md5), f"{name}: not an MD5: {info.md5}"


def test_medmnist_entries_point_at_the_zenodo_record_with_official_checksums():
    wanted = {"pneumoniamnist", "breastmnist", "dermamnist", "bloodmnist"}
    assert wanted <= set(registry.MEDMNIST_NAMES)
    for name in wanted:
        info = registry.get_info(name)
        assert info.url == f"https://zenodo.org/records/10519652/files/{name}.npz?download=1"
        assert info.filename == f"{name}.npz"
        assert info.md5 is not None
        assert set(info.n_samples) == {"train", "val", "test"}
        assert info.n_channels in (1, 3)
        assert "Scientific Data" in info.citation  # the MedMNIST v2 paper
    # The official file's checksum (the shared data's README gives the same one).
    assert registry.get_info("pneumoniamnist").md5 == "28209eda62fecd6e6a2d98b1501bb15f"
    assert registry.get_info("pneumoniamnist").n_samples == {"train": 4708, "val": 524, "test": 624}
    assert registry.get_info("dermamnist").n_channels == 3
    assert registry.get_info("bloodmnist").n_channels == 3
    assert len({registry.get_info(n).md5 for n in wanted}) == len(wanted)


def test_dermamnist_license_is_non_commercial():
    assert "NC" in registry.get_info("dermamnist").license
    assert "NC" not in registry.get_info("pneumoniamnist").license


# Sets whose distributor states no licence, and the package that ships each one (checked
# against the packages' own files: docs/design-notes.md, "Data licences, checked").
NO_LICENCE_STATED = {"immunohistochemistry": "scikit-image", "ct_small": "pydicom",
                     "mr_small": "pydicom", "actg320": "scikit-survival",
                     "veterans_lung": "scikit-survival", "gbsg2": "scikit-survival"}


def test_sets_without_a_stated_licence_say_so_and_name_who_ships_them():
    for name, shipper in NO_LICENCE_STATED.items():
        license = registry.get_info(name).license
        assert license.startswith("no licence stated by the distributor"), (name, license)
        assert shipper in license, (name, license)
    for name in set(registry.REGISTRY) - set(NO_LICENCE_STATED):
        license = registry.get_info(name).license
        assert "no licence" not in license, (name, license)
        assert re.search(r"CC BY|CC0|Open Data Commons", license), (name, license)


def test_get_info_is_case_insensitive_and_unknown_names_list_known_ones():
    assert registry.get_info(" PneumoniaMNIST ").name == "pneumoniamnist"
    with pytest.raises(KeyError, match="pneumoniamnist"):
        registry.get_info("no-such-set")


def test_errors_share_one_base_class():
    for cls in (DataUnavailable, ChecksumMismatch, CorruptFile):
        assert issubclass(cls, DataError)


def test_data_dir_follows_the_environment_variable(tmp_path, monkeypatch):
    target = tmp_path / "class folder"
    monkeypatch.setenv("MEDAI_DATA_DIR", str(target))
    assert cache.data_dir() == target.resolve()
    info = registry.get_info("pneumoniamnist")
    assert cache.dataset_path(info) == target.resolve() / "medmnist" / "pneumoniamnist.npz"
    assert cache.dataset_dir(registry.get_info("mitdb")) == target.resolve() / "mitdb"
    assert not target.exists()  # asking where does not create anything


def test_default_cache_dir_is_per_user(tmp_path, monkeypatch):
    monkeypatch.delenv("MEDAI_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    found = cache.data_dir()
    assert found == cache.default_cache_dir()
    assert "medai-lessons" in found.parts
    if sys.platform.startswith("linux"):
        assert found == tmp_path / "xdg" / "medai-lessons"
        monkeypatch.delenv("XDG_CACHE_HOME")
        assert cache.data_dir() == tmp_path / "home" / ".cache" / "medai-lessons"
    assert not found.exists()


def test_importing_the_package_downloads_nothing_and_stays_light(tmp_path):
    cache_dir = tmp_path / "import-cache"
    code = (
        "import sys, json, medai_lessons.data as d; d.REGISTRY; d.data_dir();"
        "print(json.dumps(sorted(m for m in ('tensorflow', 'keras', 'pandas', 'wfdb', "
        "'skimage', 'pydicom', 'pooch', 'requests', 'sklearn', 'scipy') if m in sys.modules)))"
    )
    env = {**os.environ, "MEDAI_DATA_DIR": str(cache_dir)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    assert not cache_dir.exists()


def test_lazy_names_resolve():
    import medai_lessons.data as d

    assert callable(d.load_dataset)
    assert callable(d.load_pneumoniamnist)
    with pytest.raises(AttributeError):
        d.no_such_loader  # noqa: B018


def _write_npz(path: Path) -> None:
    np.savez(path, a=np.arange(1000, dtype=np.int64), b=np.ones((10, 10), np.uint8))


def test_describe_bad_npz_accepts_a_real_npz(tmp_path):
    good = tmp_path / "good.npz"
    _write_npz(good)
    assert cache.describe_bad_npz(good) is None


def test_describe_bad_npz_recognises_html_empty_truncated_and_crc(tmp_path):
    html = tmp_path / "page.npz"
    html.write_text("<!DOCTYPE html><html><body>404 page not found</body></html>")
    assert "HTML" in cache.describe_bad_npz(html)

    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    assert "empty" in cache.describe_bad_npz(empty)

    good = tmp_path / "good.npz"
    _write_npz(good)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert "truncated" in cache.describe_bad_npz(cut)

    # Flip a byte inside a stored member's data: the zip directory is intact, the CRC is not.
    damaged = tmp_path / "damaged.npz"
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as z:
        member = z.getinfo("a.npy")
    data[member.header_offset + 30 + len("a.npy") + 200] ^= 0xFF
    damaged.write_bytes(bytes(data))
    assert "CRC" in cache.describe_bad_npz(damaged)

    with pytest.raises(CorruptFile, match="HTML"):
        cache.require_npz(html, "test file")


def test_move_aside_keeps_the_file_under_a_bad_name(tmp_path):
    f = tmp_path / "x.npz"
    f.write_bytes(b"junk")
    first = cache.move_aside(f)
    f.write_bytes(b"junk2")
    second = cache.move_aside(f)
    assert not f.exists()
    assert first != second
    for moved in (first, second):
        assert moved.parent == tmp_path
        assert moved.name.startswith("x.npz.bad-")
    assert {first.read_bytes(), second.read_bytes()} == {b"junk", b"junk2"}


def test_find_staged_looks_in_shared_data_above_the_start_folder(tmp_path):
    from medai_lessons.data import find_staged
    from medai_lessons.data.cache import staged_paths

    staged = tmp_path / "shared" / "data" / "medmnist" / "x.npz"
    deep = tmp_path / "course" / "chapter"
    deep.mkdir(parents=True)
    assert find_staged("medmnist/x.npz", start=deep) is None
    staged.parent.mkdir(parents=True)
    staged.write_bytes(b"PK")
    assert find_staged("medmnist/x.npz", start=deep) == staged
    paths = staged_paths("medmnist/x.npz", start=deep)
    assert paths[0] == deep / "shared" / "data" / "medmnist" / "x.npz"
    assert staged in paths and len(paths) == len(set(paths))


def test_the_chapters_a_dataset_is_listed_for_are_the_ones_that_read_it():
    from conftest import chapter_dirs

    loaders = {"mitdb": ("mitdb",), "ct_small": ("ct_small", "load_ct_slice"),
               "breast_cancer_wisconsin": ("load_breast_cancer",)}
    texts = {d.name: (d / f"{d.name}.ipynb").read_text() for d in chapter_dirs()}
    for name in registry.REGISTRY:
        readers = {ch for ch, text in texts.items()
                   if any(word in text for word in loaders.get(name, (name,)))}
        assert set(registry.chapters_using(name)) == readers, name
    assert registry.chapters_using("breastmnist") == ()
