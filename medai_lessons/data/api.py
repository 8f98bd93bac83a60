"""``load_dataset(name)``: one call per dataset in a notebook.

Each call prints what was loaded (real or synthetic, name, sizes, citation, license) and
returns an object that carries the same provenance (``.source``, ``.citation``,
``.license``). Names:

========================  =========================================================
``pneumoniamnist``,       MedMNIST 28x28 sets -> :class:`ImageDataset`
``breastmnist``,          (keywords of :func:`~medai_lessons.data.medmnist.load_medmnist`:
``dermamnist``,           ``path=``, ``allow_synthetic=``, ``download=``...)
``bloodmnist``
``mitdb``                 MIT-BIH heartbeats -> :class:`BeatSet` (``records=``, ``path=``)
``retina``,               real images shipped with scikit-image / pydicom ->
``microaneurysms``,       :class:`MedicalImage`
``immunohistochemistry``,
``ct_small``, ``mr_small``
``breast_cancer_wisconsin``  clean table -> :class:`TableDataset`
``messy_ehr``             messy table (``seed=``) -> :class:`TableDataset`
``actg320``, ``gbsg2``,   survival tables of chapter 7 -> :class:`SurvivalDataset`
``veterans_lung``
``synthetic_ecg``         synthetic rhythms (``n_per_class=``, ``seed=``...) -> ECGDataset
``synthetic_lesions``     synthetic 28x28 lesion set -> :class:`ImageDataset`
========================  =========================================================
"""

from __future__ import annotations

from typing import Any

from medai_lessons.data.registry import MEDMNIST_NAMES

OTHER_NAMES: tuple[str, ...] = (
    "mitdb",
    "retina",
    "microaneurysms",
    "immunohistochemistry",
    "ct_small",
    "mr_small",
    "breast_cancer_wisconsin",
    "messy_ehr",
    "actg320",
    "veterans_lung",
    "gbsg2",
    "synthetic_ecg",
    "synthetic_lesions",
)


def dataset_names() -> tuple[str, ...]:
    """Every name :func:`load_dataset` accepts."""
    return MEDMNIST_NAMES + OTHER_NAMES


def load_dataset(name: str, **kwargs: Any) -> Any:
    """Load any course dataset by name, print what was loaded, and return it.

    Keyword arguments go to the dataset's own loader (see the table in this module).
    """
    key = name.strip().lower()
    if key in MEDMNIST_NAMES:
        from medai_lessons.data.medmnist import load_medmnist

        return load_medmnist(key, **kwargs)
    if key == "mitdb":
        from medai_lessons.data.ecg import load_mitdb

        return load_mitdb(**kwargs)
    if key in {"retina", "microaneurysms", "immunohistochemistry", "ct_small", "mr_small"}:
        from medai_lessons.data.images import load_sample_image

        return load_sample_image(key, **kwargs)
    if key == "breast_cancer_wisconsin":
        from medai_lessons.data.tables import load_breast_cancer_table

        return load_breast_cancer_table(**kwargs)
    if key == "messy_ehr":
        from medai_lessons.data.tables import load_messy_ehr

        return load_messy_ehr(**kwargs)
    if key in {"actg320", "veterans_lung", "gbsg2"}:
        from medai_lessons.data.survival import load_survival_table

        return load_survival_table(key, **kwargs)
    if key == "synthetic_ecg":
        from medai_lessons.data.ecg_synthetic import make_ecg_dataset

        kwargs.setdefault("verbose", True)
        return make_ecg_dataset(**kwargs)
    if key == "synthetic_lesions":
        from medai_lessons.data.synthetic import make_lesion_images

        kwargs.setdefault("verbose", True)
        return make_lesion_images(**kwargs)
    raise KeyError(f"unknown dataset {name!r}; choose one of {', '.join(dataset_names())}")
