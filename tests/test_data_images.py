"""Real images shipped with scikit-image and pydicom: what ships, what each loader returns,
Hounsfield units and windows for CT, and the clear error when a file would need the network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medai_lessons.data import cache, load_dataset, registry
from medai_lessons.data.errors import DataUnavailable
from medai_lessons.data.images import (
    CT_WINDOWS,
    load_ct_slice,
    load_immunohistochemistry,
    load_microaneurysms,
    load_retina,
    skimage_ships,
)

skimage = pytest.importorskip("skimage")
pytest.importorskip("skimage.data")
pydicom = pytest.importorskip("pydicom")

SKIMAGE_SAMPLES = {
    "retina": (load_retina, (1411, 1411, 3)),
    "microaneurysms": (load_microaneurysms, (102, 102)),
    "immunohistochemistry": (load_immunohistochemistry, (512, 512, 3)),
}


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDAI_DATA_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("name", sorted(SKIMAGE_SAMPLES))
def test_skimage_sample_loads_with_provenance(name, capsys):
    shipped = (Path(skimage.__file__).parent / "data" / registry.get_info(name).filename).is_file()
    assert skimage_ships(name) == shipped
    if not shipped:
        cached = Path(skimage.data.data_dir) / registry.get_info(name).filename
        if not cached.is_file():
            pytest.skip(f"this scikit-image does not ship {name} and it is not cached")
    loader, shape = SKIMAGE_SAMPLES[name]
    img = loader()
    assert img.image.shape == shape and img.image.dtype == np.uint8
    assert img.modality and img.license and img.citation and img.provenance
    assert img.source == "real"
    out = capsys.readouterr().out
    assert "REAL image" in out and name in out


def test_skimage_download_failure_becomes_data_unavailable(monkeypatch):
    def offline():
        raise ConnectionError("Failed to establish a new connection")

    monkeypatch.setattr(skimage.data, "retina", offline)
    with pytest.raises(DataUnavailable) as err:
        load_retina(verbose=False)
    message = str(err.value)
    assert "retina.jpg" in message and "skimage.data.retina()" in message


def test_ct_slice_is_in_hounsfield_units():
    ct = load_ct_slice(verbose=False)
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_allclose(ct.image, expected)
    assert ct.modality == "CT" and "HU" in ct.units and ct.source == "real"
    assert ct.image.dtype == np.float32 and ct.image.shape == (128, 128)
    # Physically sensible: air outside the body near -1000 HU, bone well above soft tissue.
    assert ct.image.min() < -800 and ct.image.max() > 700
    assert ct.pixel_spacing_mm is not None and ct.pixel_spacing_mm[0] > 0
    assert ct.window == CT_WINDOWS["soft tissue"]


def test_ct_windowing_maps_the_window_to_0_1():
    ct = load_ct_slice(verbose=False)
    centre, width = ct.window
    shown = ct.windowed()
    assert shown.min() >= 0.0 and shown.max() <= 1.0
    below = ct.image <= centre - width / 2
    above = ct.image >= centre + width / 2
    assert np.all(shown[below] == 0.0) and np.all(shown[above] == 1.0)
    inside = ~below & ~above
    np.testing.assert_allclose(shown[inside], (ct.image[inside] - (centre - width / 2)) / width,
                               rtol=1e-5)
    lung = ct.windowed(*CT_WINDOWS["lung"])
    assert (lung > 0).mean() > (shown > 0).mean()  # the lung window shows more of the dark air


def test_mr_slice_has_no_physical_unit_and_its_own_window(capsys):
    mr = load_dataset("mr_small")
    assert mr.modality == "MR" and mr.image.shape == (64, 64)
    assert "arbitrary" in mr.units
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("MR_small.dcm"))
    np.testing.assert_array_equal(mr.image, ds.pixel_array)
    if "WindowCenter" in ds:
        assert mr.window == (float(ds.WindowCenter), float(ds.WindowWidth))
    assert "MR" in capsys.readouterr().out


def test_cache_state_of_packaged_data():
    for name in ("retina", "ct_small", "mr_small", "breast_cancer_wisconsin"):
        state = cache.cache_state(registry.get_info(name))
        assert state.startswith(("present", "missing")), state
    assert cache.cache_state(registry.get_info("ct_small")).startswith("present")
