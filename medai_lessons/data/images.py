"""Real medical images that install with Python packages (no course download needed).

From scikit-image's sample data:

- ``retina``: colour fundus photograph of a normal left eye (CC0);
- ``microaneurysms``: green channel of a fundus image with microaneurysms (HRF database, CC0);
- ``immunohistochemistry``: colonic glands with IHC (DAB) and hematoxylin stain.

scikit-image 0.26 ships all three inside its wheel (``skimage/data/retina.jpg``,
``microaneurysms.png``, ``ihc.png``: checked). scikit-image fetches any sample file that is not
in its wheel with pooch on first use, so another version or a trimmed install may need the
network for some of them: :func:`skimage_ships` says which case applies on this machine.
When a file must be downloaded and cannot be, the loaders raise the course's
:class:`~medai_lessons.data.errors.DataUnavailable` with what to do.

From pydicom's test files (shipped inside the pydicom package):

- ``ct_small``: one CT slice (``CT_small.dcm``, 128x128), returned in **Hounsfield units**
  (stored value x RescaleSlope + RescaleIntercept) with window presets;
- ``mr_small``: one MR slice (``MR_small.dcm``, 64x64); MR intensities have no physical unit.

Each loader returns a :class:`MedicalImage`: the array, the modality, a description, where
the file comes from and the citation, the license, the units and, for CT, the windowing;
``.source`` is ``"real"`` as for every other dataset of the course.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medai_lessons.data.containers import wrap
from medai_lessons.data.errors import DataUnavailable
from medai_lessons.data.registry import DatasetInfo, get_info

# Common CT windows as (centre, width) in Hounsfield units.
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "soft tissue": (40.0, 400.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}

SKIMAGE_FUNCTIONS: dict[str, str] = {
    "retina": "retina",
    "microaneurysms": "microaneurysms",
    "immunohistochemistry": "immunohistochemistry",
}
MODALITIES: dict[str, str] = {
    "retina": "colour fundus photograph",
    "microaneurysms": "fundus photograph (green channel)",
    "immunohistochemistry": "brightfield microscopy, immunohistochemistry",
    "ct_small": "CT",
    "mr_small": "MR",
}


@dataclass
class MedicalImage:
    """One real medical image with what it is and where it comes from.

    Attributes:
        name: registry name (``"ct_small"``).
        image: the pixel array (for CT: float32 Hounsfield units).
        modality: e.g. ``"CT"``, ``"MR"``, ``"colour fundus photograph"``.
        description: what the image shows.
        provenance: where the file comes from (package and file).
        citation: what to cite.
        license: the image's license.
        units: what the pixel values mean (``"HU"``, ``"8-bit RGB"``...).
        window: default display window ``(centre, width)`` in ``units``, if any.
        window_presets: other useful windows (CT).
        pixel_spacing_mm: row and column spacing, for DICOM images.
        metadata: a few DICOM attributes (rescale, manufacturer...).
    """

    name: str
    image: np.ndarray
    modality: str
    description: str
    provenance: str
    citation: str
    license: str
    units: str
    window: tuple[float, float] | None = None
    window_presets: dict[str, tuple[float, float]] = field(default_factory=dict)
    pixel_spacing_mm: tuple[float, float] | None = None
    metadata: dict[str, object] = field(default_factory=dict)
    source: str = "real"

    def windowed(self, centre: float | None = None, width: float | None = None) -> np.ndarray:
        """The image mapped to [0, 1] through a display window (default: ``self.window``).

        Values below ``centre - width / 2`` become 0, above ``centre + width / 2`` become 1.
        Without a window the image's own min and max are used.
        """
        img = self.image.astype(np.float32)
        if centre is None or width is None:
            if self.window is None:
                lo, hi = float(img.min()), float(img.max())
                return (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
            centre, width = self.window
        lo = centre - width / 2
        return np.clip((img - lo) / width, 0.0, 1.0)

    def summary(self) -> str:
        shape = "x".join(map(str, self.image.shape))
        extra = f"; window {self.window} {self.units}" if self.window else ""
        return "\n".join(
            [
                f"[medai data] {self.name}: REAL image, {self.modality}",
                wrap(f"{shape} {self.image.dtype}, units: {self.units}{extra}"),
                wrap(f"{self.description} From: {self.provenance}"),
                wrap(f"license: {self.license}"),
                wrap(f"cite: {self.citation}"),
            ]
        )

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (
            f"MedicalImage(name={self.name!r}, modality={self.modality!r}, "
            f"shape={self.image.shape}, units={self.units!r})"
        )


def _skimage_data_folder() -> Path | None:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def skimage_ships(name: str) -> bool:
    """True when scikit-image's installed wheel contains the file of sample ``name``."""
    folder = _skimage_data_folder()
    info = get_info(name)
    return bool(folder and info.filename and (folder / info.filename).is_file())


def package_data_state(info: DatasetInfo) -> str:
    """``"present"`` or ``"missing (...)"`` for data inside a package (for the CLI)."""
    if info.name in SKIMAGE_FUNCTIONS:
        if importlib.util.find_spec("skimage") is None:
            return "missing (install scikit-image)"
        if skimage_ships(info.name):
            return "present (in scikit-image)"
        import skimage.data

        cached = Path(skimage.data.data_dir) / str(info.filename)
        if cached.is_file():
            return "present (scikit-image cache)"
        return "missing (scikit-image downloads it on first use)"
    if info.name in {"ct_small", "mr_small"}:
        if importlib.util.find_spec("pydicom") is None:
            return "missing (install pydicom)"
        from pydicom.data import get_testdata_file

        found = get_testdata_file(str(info.filename), download=False)
        return "present (in pydicom)" if found else "missing (not in this pydicom)"
    if info.name == "breast_cancer_wisconsin":
        if importlib.util.find_spec("sklearn") is None:
            return "missing (install scikit-learn)"
        return "present (in scikit-learn)"
    if info.name in {"actg320", "veterans_lung", "gbsg2"}:
        spec = importlib.util.find_spec("sksurv")
        if spec is None:
            return "missing (install scikit-survival)"
        folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
        if (folder / str(info.filename)).is_file():
            return "present (in scikit-survival)"
        return "missing (not in this scikit-survival)"
    return "unknown"


def _skimage_image(name: str) -> np.ndarray:
    info = get_info(name)
    try:
        import skimage.data
    except ImportError as exc:
        raise DataUnavailable(
            f"the {name} image needs scikit-image: install it with `pip install scikit-image`"
        ) from exc
    loader = getattr(skimage.data, SKIMAGE_FUNCTIONS[name])
    try:
        return np.asarray(loader())
    except (ConnectionError, OSError, ModuleNotFoundError, ValueError) as exc:
        shipped = "ships inside" if skimage_ships(name) else "does not ship inside"
        raise DataUnavailable(
            f"the {name} image ({info.filename}) {shipped} this scikit-image, which tried to "
            f"download it and failed ({type(exc).__name__}: {exc}). With internet, run once: "
            f"python -c \"import skimage.data; skimage.data.{SKIMAGE_FUNCTIONS[name]}()\" "
            f"(it is then cached in {getattr(skimage.data, 'data_dir', 'scikit-image cache')}); "
            "or install a scikit-image whose wheel contains it (0.26 ships all three)."
        ) from exc
    except Exception as exc:  # requests' and pooch's own errors
        if type(exc).__module__.split(".")[0] not in {"requests", "urllib3", "pooch"}:
            raise
        raise DataUnavailable(
            f"scikit-image could not download the {name} image ({info.filename}): {exc}. "
            f"Run python -c \"import skimage.data; skimage.data.{SKIMAGE_FUNCTIONS[name]}()\" "
            "once with internet."
        ) from exc


def _skimage_result(name: str, image: np.ndarray, description: str, units: str) -> MedicalImage:
    info = get_info(name)
    where = "shipped in the scikit-image package" if skimage_ships(name) else "scikit-image cache"
    return MedicalImage(
        name=name,
        image=image,
        modality=MODALITIES[name],
        description=description,
        provenance=f"skimage.data.{SKIMAGE_FUNCTIONS[name]}() ({info.filename}, {where}); "
        f"original: {info.url}",
        citation=info.citation,
        license=info.license,
        units=units,
    )


def load_retina(verbose: bool = True) -> MedicalImage:
    """Colour fundus photograph of a normal left eye (1411x1411x3 uint8, CC0)."""
    img = _skimage_result(
        "retina",
        _skimage_image("retina"),
        "Normal left eye: optic disc, macula and retinal vessels.",
        "8-bit RGB",
    )
    if verbose:
        print(img.summary())
    return img


def load_microaneurysms(verbose: bool = True) -> MedicalImage:
    """Green channel of a diabetic-retinopathy fundus image with microaneurysms (102x102)."""
    img = _skimage_result(
        "microaneurysms",
        _skimage_image("microaneurysms"),
        "Crop of image 07_dr of the High-Resolution Fundus database: dark round dots are "
        "microaneurysms, an early sign of diabetic retinopathy.",
        "8-bit grey (green channel)",
    )
    if verbose:
        print(img.summary())
    return img


def load_immunohistochemistry(verbose: bool = True) -> MedicalImage:
    """Colonic glands with IHC (DAB, brown) and hematoxylin (blue) staining (512x512x3)."""
    img = _skimage_result(
        "immunohistochemistry",
        _skimage_image("immunohistochemistry"),
        "Colonic glands; FHL2 protein expression shown brown by DAB, nuclei blue by "
        "hematoxylin counterstain.",
        "8-bit RGB",
    )
    if verbose:
        print(img.summary())
    return img


def _dicom(name: str):
    info = get_info(name)
    try:
        import pydicom
        from pydicom.data import get_testdata_file
    except ImportError as exc:
        raise DataUnavailable(
            f"the {name} slice needs pydicom: install it with `pip install pydicom`"
        ) from exc
    try:
        path = get_testdata_file(str(info.filename), download=False)
    except Exception as exc:
        raise DataUnavailable(f"pydicom could not find {info.filename}: {exc}") from exc
    if path is None:
        raise DataUnavailable(
            f"this pydicom does not ship {info.filename}; install pydicom>=2.0 (it ships "
            "CT_small.dcm and MR_small.dcm in pydicom/data/test_files)"
        )
    return pydicom.dcmread(path), Path(path)


def _spacing(ds) -> tuple[float, float] | None:
    spacing = getattr(ds, "PixelSpacing", None)
    return (float(spacing[0]), float(spacing[1])) if spacing else None


def load_ct_slice(verbose: bool = True) -> MedicalImage:
    """One CT slice from pydicom's test files, converted to Hounsfield units (HU).

    HU = stored value x RescaleSlope + RescaleIntercept (here slope 1, intercept -1024).
    The file has no window of its own; the default window is the soft-tissue one
    (centre 40 HU, width 400 HU); :data:`CT_WINDOWS` holds lung, bone and brain windows too.
    """
    info = get_info("ct_small")
    ds, path = _dicom("ct_small")
    stored = ds.pixel_array
    slope = float(getattr(ds, "RescaleSlope", 1.0))
    intercept = float(getattr(ds, "RescaleIntercept", 0.0))
    hu = (stored.astype(np.float32) * slope + intercept).astype(np.float32)
    img = MedicalImage(
        name="ct_small",
        image=hu,
        modality=str(getattr(ds, "Modality", "CT")),
        description=(
            "Axial CT slice (128x128, downsized from a NEMA sample); values in Hounsfield "
            "units: air -1000, water 0, soft tissue 20-80, bone several hundred and above."
        ),
        provenance=f"pydicom test file {path.name} ({path})",
        citation=info.citation,
        license=info.license,
        units="HU (Hounsfield units)",
        window=CT_WINDOWS["soft tissue"],
        window_presets=dict(CT_WINDOWS),
        pixel_spacing_mm=_spacing(ds),
        metadata={
            "RescaleSlope": slope,
            "RescaleIntercept": intercept,
            "Manufacturer": str(getattr(ds, "Manufacturer", "")),
            "SliceThickness": str(getattr(ds, "SliceThickness", "")),
            "stored_dtype": str(stored.dtype),
        },
    )
    if verbose:
        print(img.summary())
    return img


def _first(value):
    """The first value of a DICOM multi-valued attribute, or the value itself."""
    if hasattr(value, "__len__") and not isinstance(value, str):
        return value[0]
    return value


def load_mr_slice(verbose: bool = True) -> MedicalImage:
    """One MR slice from pydicom's test files (64x64; the file's own display window)."""
    info = get_info("mr_small")
    ds, path = _dicom("mr_small")
    pixels = ds.pixel_array
    centre, width = getattr(ds, "WindowCenter", None), getattr(ds, "WindowWidth", None)
    window = None
    if centre is not None and width is not None:
        window = (float(_first(centre)), float(_first(width)))
    img = MedicalImage(
        name="mr_small",
        image=np.asarray(pixels),
        modality=str(getattr(ds, "Modality", "MR")),
        description=(
            "MR slice (64x64, downsized from a NEMA sample). MR signal intensity has no "
            "physical unit: compare values only within one scan."
        ),
        provenance=f"pydicom test file {path.name} ({path})",
        citation=info.citation,
        license=info.license,
        units="arbitrary MR signal units",
        window=window,
        pixel_spacing_mm=_spacing(ds),
        metadata={"Manufacturer": str(getattr(ds, "Manufacturer", ""))},
    )
    if verbose:
        print(img.summary())
    return img


_LOADERS = {
    "retina": load_retina,
    "microaneurysms": load_microaneurysms,
    "immunohistochemistry": load_immunohistochemistry,
    "ct_small": load_ct_slice,
    "mr_small": load_mr_slice,
}
SAMPLE_IMAGES: tuple[str, ...] = tuple(_LOADERS)


def load_sample_image(name: str, verbose: bool = True) -> MedicalImage:
    """One of :data:`SAMPLE_IMAGES` by name."""
    key = name.strip().lower()
    if key not in _LOADERS:
        raise KeyError(f"unknown sample image {name!r}; choose one of {', '.join(SAMPLE_IMAGES)}")
    return _LOADERS[key](verbose=verbose)
