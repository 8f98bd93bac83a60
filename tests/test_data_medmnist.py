"""MedMNIST loading from a user's file (path=), structure checks, the synthetic stand-in,
and the real variant file in ../shared/data."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from medai_lessons.data import load_dataset, registry
from medai_lessons.data.errors import CorruptFile, DataUnavailable
from medai_lessons.data.medmnist import check_structure, load_medmnist, load_pneumoniamnist
from medai_lessons.data.synthetic import make_lesion_images


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDAI_DATA_DIR", str(tmp_path / "cache"))


def fake_arrays(n=(12, 4, 6), channels=1, n_classes=2, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (28, 28) if channels == 1 else (28, 28, 3)
    out = {}
    for split, k in zip(("train", "val", "test"), n, strict=True):
        out[f"{split}_images"] = rng.integers(0, 256, size=(k, *shape), dtype=np.uint8)
        out[f"{split}_labels"] = rng.integers(0, n_classes, size=(k, 1), dtype=np.uint8)
    return out


def save(tmp_path: Path, arrays: dict[str, np.ndarray], name="local.npz") -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_local_variant_reports_checksum_difference_and_passes_structure(tmp_path, capsys):
    path = save(tmp_path, fake_arrays(n=(30, 5, 7)))
    before = path.read_bytes()
    ds = load_medmnist("pneumoniamnist", path=path)
    out = " ".join(capsys.readouterr().out.split())
    assert ds.source == "real"
    assert ds.path == path
    assert "differs from the official" in ds.checksum and "structure" in ds.checksum
    assert hashlib.md5(before).hexdigest() in out
    assert "28209eda62fecd6e6a2d98b1501bb15f" in out
    assert "train has 30 images (official: 4,708)" in out
    assert path.read_bytes() == before  # the user's own file is never moved or changed


def official_file(tmp_path, monkeypatch, name: str) -> tuple[Path, str]:
    """A saved fake file, registered as dataset ``name``'s official one (its MD5)."""
    import dataclasses

    path = save(tmp_path, fake_arrays())
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    monkeypatch.setitem(registry.REGISTRY, name,
                        dataclasses.replace(registry.get_info(name), md5=md5))
    return path, md5


def test_local_file_with_official_checksum_is_accepted_as_official(tmp_path, monkeypatch):
    path, _ = official_file(tmp_path, monkeypatch, "breastmnist")
    ds = load_medmnist("breastmnist", path=path, verbose=False)
    assert "matches the official" in ds.checksum
    assert ds.notes == []


def test_shapes_dtypes_and_flattened_labels(tmp_path):
    arrays = fake_arrays(n=(9, 3, 4), channels=3, n_classes=7, seed=2)
    ds = load_medmnist("dermamnist", path=save(tmp_path, arrays), verbose=False)
    for split, (x, y) in ds.splits.items():
        assert x.dtype == np.uint8 and x.shape[1:] == (28, 28, 3)
        assert y.dtype == np.int64 and y.ndim == 1 and len(y) == len(x)
        np.testing.assert_array_equal(y, arrays[f"{split}_labels"][:, 0])
    assert len(ds.label_names) == 7
    assert "melanoma" in ds.label_names


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.pop("val_labels"), "missing keys"),
        (lambda a: a.__setitem__("train_images", a["train_images"].astype(np.float32)),
         "dtype float32"),
        (lambda a: a.__setitem__("test_images", a["test_images"][:, :27, :27]), "shape"),
        (lambda a: a.__setitem__("train_labels", a["train_labels"] + 5), "outside 0..1"),
        (lambda a: a.__setitem__("val_labels", a["val_labels"][:-1]), "labels"),
    ],
)
def test_structure_problems_are_named(tmp_path, change, message):
    arrays = fake_arrays()
    change(arrays)
    path = save(tmp_path, arrays)
    with pytest.raises(CorruptFile, match=message):
        load_medmnist("pneumoniamnist", path=path, verbose=False)


def test_grey_file_is_rejected_for_a_colour_set():
    blood = registry.get_info("bloodmnist")
    problems = check_structure(fake_arrays(channels=1, n_classes=8), blood)
    assert any("expected (N, 28, 28, 3)" in p for p in problems)
    assert check_structure(fake_arrays(channels=3, n_classes=8), blood) == []


def test_html_and_truncated_local_files_are_corrupt(tmp_path):
    html = tmp_path / "pneumoniamnist.npz"
    html.write_text("<html><head><title>404 Not Found</title></head></html>")
    with pytest.raises(CorruptFile, match="HTML"):
        load_medmnist("pneumoniamnist", path=html, verbose=False)

    good = save(tmp_path, fake_arrays(), "good.npz")
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:-500])
    with pytest.raises(CorruptFile, match="truncated"):
        load_medmnist("pneumoniamnist", path=cut, verbose=False)


def test_missing_local_file_says_so(tmp_path):
    with pytest.raises(DataUnavailable, match="no file at"):
        load_medmnist("pneumoniamnist", path=tmp_path / "nope.npz", verbose=False)


def test_synthetic_stand_in_is_loud_and_shaped_like_medmnist(capsys):
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        ds = load_dataset("bloodmnist", allow_synthetic=True, download=False)
    out = " ".join(capsys.readouterr().out.split())  # undo the line wrapping
    assert ds.source == "synthetic" and ds.is_synthetic
    assert "SYNTHETIC" in out and "NOT BloodMNIST" in out
    assert "bloodmnist.npz" in out  # says what was missing and where to stage it
    assert ds.x_train.dtype == np.uint8 and ds.x_train.shape[1:] == (28, 28, 3)
    assert ds.label_names == ("no lesion", "lesion")


def test_no_silent_fallback():
    with pytest.raises(DataUnavailable, match="pneumoniamnist.npz"):
        load_pneumoniamnist(download=False, verbose=False)


def test_synthetic_images_are_deterministic_and_differ_by_seed():
    a = make_lesion_images(40, 10, 10, seed=7)
    b = make_lesion_images(40, 10, 10, seed=7)
    c = make_lesion_images(40, 10, 10, seed=8)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(a.splits[split].images, b.splits[split].images)
        np.testing.assert_array_equal(a.splits[split].labels, b.splits[split].labels)
    assert not np.array_equal(a.x_train, c.x_train)
    assert a.x_train.shape == (40, 28, 28) and a.x_train.dtype == np.uint8
    assert a.y_train.dtype == np.int64 and set(np.unique(a.y_train)) == {0, 1}
    assert abs(int(a.y_train.sum()) - 20) <= 1


def test_synthetic_lesions_are_visible_to_a_simple_rule():
    """A lesion is a bright blob: its brightest smoothed spot stands out from the image."""
    from scipy.ndimage import uniform_filter

    ds = make_lesion_images(300, 0, 0, seed=0)
    x = ds.x_train.astype(np.float64)
    local = uniform_filter(x, size=(1, 3, 3))
    contrast = local.max(axis=(1, 2)) - np.median(x, axis=(1, 2))
    threshold = np.median(contrast)
    accuracy = np.mean((contrast > threshold) == (ds.y_train == 1))
    assert accuracy > 0.8


def test_real_variant_pneumoniamnist(shared_data, capsys):
    path = shared_data / "medmnist" / "pneumoniamnist.npz"
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    ds = load_dataset("pneumoniamnist", path=path)
    out = " ".join(capsys.readouterr().out.split())
    assert "f5b994ec7c2fe8bc81ae15cbab7c3df8" in out  # the variant's MD5, per the README
    assert "differs from the official" in out and "structure" in out
    assert ds.split_sizes() == {"train": 3882, "val": 524, "test": 624}
    assert ds.class_counts("train") == {"normal": 388, "pneumonia": 3494}
    assert ds.class_counts("val") == {"normal": 135, "pneumonia": 389}
    assert ds.class_counts("test") == {"normal": 234, "pneumonia": 390}
    assert ds.x_train.shape == (3882, 28, 28) and ds.x_train.dtype == np.uint8
    assert "4,708" in out  # the official train size, for comparison


@pytest.mark.parametrize("name", ["pneumoniamnist.npz", "PneumoniaMNIST (1).npz"])
def test_a_file_named_as_another_set_is_refused(tmp_path, name):
    path = save(tmp_path, fake_arrays(), name)
    with pytest.raises(CorruptFile, match="looks like PneumoniaMNIST, not BreastMNIST") as err:
        load_medmnist("breastmnist", path=path, verbose=False)
    message = str(err.value)
    assert "file name" in message and "load_dataset('pneumoniamnist'" in message
    assert "breastmnist.npz" in message                  # what to pass instead
    assert load_medmnist("pneumoniamnist", path=path, verbose=False).source == "real"


def test_a_file_with_another_sets_official_checksum_is_refused(tmp_path, monkeypatch):
    path, md5 = official_file(tmp_path, monkeypatch, "pneumoniamnist")
    with pytest.raises(CorruptFile, match=f"MD5 {md5} is that of the official pneumoniamnist"):
        load_medmnist("breastmnist", path=path, verbose=False)
    assert "matches the official" in load_medmnist("pneumoniamnist", path=path,
                                                   verbose=False).checksum


def test_a_file_with_another_sets_val_and_test_sizes_is_refused(tmp_path):
    """The shared PneumoniaMNIST variant: train cut down, val and test official (524, 624)."""
    path = save(tmp_path, fake_arrays(n=(40, 524, 624)), "my_copy.npz")
    with pytest.raises(CorruptFile, match="524 and 624 images, exactly PneumoniaMNIST's"):
        load_medmnist("breastmnist", path=path, verbose=False)
    ds = load_medmnist("pneumoniamnist", path=path, verbose=False)   # sizes alone: accepted
    assert ds.split_sizes() == {"train": 40, "val": 524, "test": 624}


def test_wrong_channels_and_labels_outside_the_classes_are_refused(tmp_path):
    grey = save(tmp_path, fake_arrays(), "grey.npz")
    with pytest.raises(CorruptFile, match=r"expected \(N, 28, 28, 3\)"):
        load_medmnist("dermamnist", path=grey, verbose=False)
    eight = save(tmp_path, fake_arrays(channels=3, n_classes=8, n=(80, 8, 8)), "eight.npz")
    with pytest.raises(CorruptFile, match=r"outside 0..6 \(7 classes\)"):
        load_medmnist("dermamnist", path=eight, verbose=False)


def test_a_file_without_some_classes_says_so(tmp_path):
    path = save(tmp_path, fake_arrays(channels=3, n_classes=2, n=(60, 10, 10)), "derma_sub.npz")
    ds = load_medmnist("dermamnist", path=path, verbose=False)
    assert any("no image of 5 of the 7 DermaMNIST classes" in n for n in ds.notes)


def test_the_real_variant_is_refused_as_another_set(shared_data, tmp_path):
    real = shared_data / "medmnist" / "pneumoniamnist.npz"
    if not real.is_file():
        pytest.skip(f"{real} is not present")
    with pytest.raises(CorruptFile, match="looks like PneumoniaMNIST, not BreastMNIST"):
        load_medmnist("breastmnist", path=real, verbose=False)
    renamed = tmp_path / "chest.npz"
    renamed.write_bytes(real.read_bytes())
    with pytest.raises(CorruptFile, match="exactly PneumoniaMNIST's"):
        load_medmnist("breastmnist", path=renamed, verbose=False)
    assert load_medmnist("pneumoniamnist", path=renamed, verbose=False).source == "real"


def test_a_wrong_split_name_lists_the_splits():
    import pickle

    ds = make_lesion_images(6, 2, 2)
    with pytest.raises(KeyError, match=r"unknown split 'training'; the splits are train, val, "
                                       r"test \(did you mean 'train'\?\)"):
        ds.splits["training"]
    with pytest.raises(KeyError, match="unknown split 'valid'; the splits are train, val, test"):
        ds.class_counts("valid")
    with pytest.raises(KeyError, match="unknown split 'xyz'; the splits are"):
        ds.splits["xyz"]
    # Otherwise the splits are the plain dict they were.
    plain = dict(ds.splits)
    assert ds.splits == plain and list(ds.splits) == ["train", "val", "test"]
    assert isinstance(ds.splits, dict) and ds.splits.get("training") is None
    copy = pickle.loads(pickle.dumps(ds))
    assert list(copy.splits) == list(plain) and type(copy.splits) is type(ds.splits)
    np.testing.assert_array_equal(copy.splits["val"].images, plain["val"].images)
    x, y = ds.splits["train"]
    assert len(x) == len(y) == 6
