"""The course's medical data: registry, cache, verified downloads and loaders.

One call per dataset in a notebook, printing what was loaded and returning it with its
provenance (``.source`` is ``"real"`` or ``"synthetic"``, plus ``.citation``, ``.license``)::

    from medai_lessons.data import load_dataset, load_pneumoniamnist
    ds = load_pneumoniamnist()                      # MedMNIST, MD5-checked
    ds = load_dataset("pneumoniamnist", path="my_copy.npz")   # a local variant, structure-checked
    beats = load_dataset("mitdb", records="100")    # MIT-BIH beats, AAMI classes
    X, y, names = load_dataset("synthetic_ecg", n_per_class=50, seed=0)

Modules: :mod:`.registry` (what exists), :mod:`.cache` (where it lives; ``MEDAI_DATA_DIR``),
:mod:`.download` (pooch, checksums, atomic writes), :mod:`.errors`, :mod:`.medmnist`,
:mod:`.ecg` (MIT-BIH), :mod:`.ecg_synthetic`, :mod:`.synthetic` (28x28 lesion stand-in),
:mod:`.images` (scikit-image and pydicom samples), :mod:`.tables` (breast cancer, messy EHR),
:mod:`.survival` (the trials of chapter 7, shipped in scikit-survival),
:mod:`.api` (``load_dataset``). Command line: ``python -m medai_lessons.data
list|fetch|verify|where``.

Importing this package downloads nothing and imports neither TensorFlow nor pandas, wfdb,
scikit-image, pydicom or scikit-survival: the loaders are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from medai_lessons.data.cache import data_dir, default_cache_dir, find_staged
from medai_lessons.data.errors import ChecksumMismatch, CorruptFile, DataError, DataUnavailable
from medai_lessons.data.registry import REGISTRY, DatasetInfo, get_info, list_datasets

_LAZY: dict[str, str] = {
    "load_dataset": "api",
    "dataset_names": "api",
    "fetch": "download",
    "load_medmnist": "medmnist",
    "load_pneumoniamnist": "medmnist",
    "load_breastmnist": "medmnist",
    "load_dermamnist": "medmnist",
    "load_bloodmnist": "medmnist",
    "check_structure": "medmnist",
    "load_mitdb": "ecg",
    "extract_beats": "ecg",
    "aami_class": "ecg",
    "AAMI_CLASSES": "ecg",
    "AAMI_MAP": "ecg",
    "BeatSet": "ecg",
    "DS1_RECORDS": "ecg",
    "DS2_RECORDS": "ecg",
    "inter_patient_status": "ecg",
    "load_inter_patient": "ecg",
    "ecg_strip": "ecg_synthetic",
    "make_ecg_dataset": "ecg_synthetic",
    "RHYTHMS": "ecg_synthetic",
    "ECGStrip": "ecg_synthetic",
    "ECGDataset": "ecg_synthetic",
    "make_lesion_images": "synthetic",
    "load_retina": "images",
    "load_microaneurysms": "images",
    "load_immunohistochemistry": "images",
    "load_ct_slice": "images",
    "load_mr_slice": "images",
    "load_sample_image": "images",
    "MedicalImage": "images",
    "load_breast_cancer_table": "tables",
    "load_messy_ehr": "tables",
    "TableDataset": "tables",
    "load_survival_table": "survival",
    "SurvivalDataset": "survival",
    "SURVIVAL_NAMES": "survival",
    "ImageDataset": "containers",
    "Split": "containers",
}

__all__ = [
    "REGISTRY",
    "ChecksumMismatch",
    "CorruptFile",
    "DataError",
    "DataUnavailable",
    "DatasetInfo",
    "data_dir",
    "default_cache_dir",
    "find_staged",
    "get_info",
    "list_datasets",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    """Import a loader's module the first time one of its names is used."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # for type checkers and editors; not run
    from medai_lessons.data.api import dataset_names, load_dataset  # noqa: F401
    from medai_lessons.data.containers import ImageDataset, Split  # noqa: F401
    from medai_lessons.data.download import fetch  # noqa: F401
    from medai_lessons.data.ecg import (  # noqa: F401
        AAMI_CLASSES,
        AAMI_MAP,
        DS1_RECORDS,
        DS2_RECORDS,
        BeatSet,
        aami_class,
        extract_beats,
        inter_patient_status,
        load_inter_patient,
        load_mitdb,
    )
    from medai_lessons.data.ecg_synthetic import (  # noqa: F401
        RHYTHMS,
        ECGDataset,
        ECGStrip,
        ecg_strip,
        make_ecg_dataset,
    )
    from medai_lessons.data.images import (  # noqa: F401
        MedicalImage,
        load_ct_slice,
        load_immunohistochemistry,
        load_microaneurysms,
        load_mr_slice,
        load_retina,
        load_sample_image,
    )
    from medai_lessons.data.medmnist import (  # noqa: F401
        check_structure,
        load_bloodmnist,
        load_breastmnist,
        load_dermamnist,
        load_medmnist,
        load_pneumoniamnist,
    )
    from medai_lessons.data.survival import (  # noqa: F401
        SURVIVAL_NAMES,
        SurvivalDataset,
        load_survival_table,
    )
    from medai_lessons.data.synthetic import make_lesion_images  # noqa: F401
    from medai_lessons.data.tables import (  # noqa: F401
        TableDataset,
        load_breast_cancer_table,
        load_messy_ehr,
    )
