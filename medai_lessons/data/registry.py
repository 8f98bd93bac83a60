"""The registry: one entry per dataset the course uses, with where it comes from.

Each :class:`DatasetInfo` holds the name, the URL, the official checksum (MD5, as the data's
publishers give it), the size, the license, the citation and a one-line description.
Nothing is downloaded or opened when this module is imported: the entries are plain data.

Kinds of dataset:

- ``"medmnist"``: one ``.npz`` file of the MedMNIST v2 collection (28x28 images), downloaded
  into the cache (see :mod:`medai_lessons.data.cache`) and checked against its MD5.
- ``"wfdb"``: a PhysioNet database (folder of WFDB records), read with the ``wfdb`` package.
- ``"package"``: data that ships inside an installed Python package (scikit-image,
  pydicom, scikit-learn): nothing to download, nothing to stage.

The MedMNIST URLs, MD5 checksums, label names, sample counts and licenses are those of the
official ``medmnist`` package (``medmnist/info.py``, version 3.0.2, which points at the
Zenodo record 10519652 of the MedMNIST v2 release). The download size is not part of that
metadata; :attr:`DatasetInfo.size` gives the size of the arrays once loaded instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MEDMNIST_CITATION = (
    "Yang J, Shi R, Wei D, Liu Z, Zhao L, Ke B, Pfister H, Ni B. MedMNIST v2 - A large-scale "
    "lightweight benchmark for 2D and 3D biomedical image classification. "
    "Scientific Data 10:41 (2023). https://doi.org/10.1038/s41597-022-01721-8"
)
ZENODO_RECORD = "https://zenodo.org/records/10519652/files/{filename}?download=1"


@dataclass(frozen=True)
class DatasetInfo:
    """Everything the course knows about one dataset before opening it.

    Attributes:
        name: the short name used in calls, e.g. ``"pneumoniamnist"``.
        title: the dataset's own name, e.g. ``"PneumoniaMNIST"``.
        kind: ``"medmnist"``, ``"wfdb"`` or ``"package"`` (see the module docstring).
        url: where the file (or the database) comes from.
        filename: the file's name in the cache (``None`` for folders and packaged data).
        md5: the official MD5 checksum of the file, or ``None`` where there is no single
            file (a database folder, data inside a package).
        size: a human-readable size.
        license: the data's license.
        citation: what to cite when using the data.
        description: one line saying what the data is.
        label_names: class names, index = label value (MedMNIST).
        n_samples: official split sizes, e.g. ``{"train": 4708, "val": 524, "test": 624}``.
        n_channels: 1 (grey) or 3 (colour) for images.
        task: the task as the publishers name it (``"binary-class"``, ``"multi-class"``).
    """

    name: str
    title: str
    kind: str
    url: str
    filename: str | None
    md5: str | None
    size: str
    license: str
    citation: str
    description: str
    label_names: tuple[str, ...] = ()
    n_samples: dict[str, int] = field(default_factory=dict, hash=False, compare=False)
    n_channels: int = 1
    task: str = ""

    @property
    def downloadable(self) -> bool:
        """True when the course fetches this dataset into its cache (not shipped in a package)."""
        return self.kind in {"medmnist", "wfdb"}


def _array_size(n_samples: dict[str, int], n_channels: int) -> str:
    """The size of a MedMNIST set's arrays once loaded, from its official sample counts."""
    n = sum(n_samples.values())
    megabytes = n * 28 * 28 * n_channels / 1e6
    shape = "28x28" if n_channels == 1 else "28x28x3"
    return f"{n:,} images of {shape} uint8 ({megabytes:.1f} MB once loaded)"


def _medmnist(
    name: str,
    title: str,
    md5: str,
    labels: tuple[str, ...],
    n_samples: dict[str, int],
    n_channels: int,
    task: str,
    license: str,
    source_citation: str,
    description: str,
) -> DatasetInfo:
    filename = f"{name}.npz"
    return DatasetInfo(
        name=name,
        title=title,
        kind="medmnist",
        url=ZENODO_RECORD.format(filename=filename),
        filename=filename,
        md5=md5,
        size=_array_size(n_samples, n_channels),
        license=license,
        citation=f"{MEDMNIST_CITATION}; source data: {source_citation}",
        description=description,
        label_names=labels,
        n_samples=dict(n_samples),
        n_channels=n_channels,
        task=task,
    )


_ENTRIES: list[DatasetInfo] = [
    _medmnist(
        "pneumoniamnist",
        "PneumoniaMNIST",
        md5="28209eda62fecd6e6a2d98b1501bb15f",
        labels=("normal", "pneumonia"),
        n_samples={"train": 4708, "val": 524, "test": 624},
        n_channels=1,
        task="binary-class",
        license="CC BY 4.0",
        source_citation=(
            "Kermany DS et al. Identifying medical diagnoses and treatable diseases by "
            "image-based deep learning. Cell 172(5):1122-1131.e9 (2018). "
            "https://doi.org/10.1016/j.cell.2018.02.010"
        ),
        description="Paediatric chest X-rays, 28x28 grey: normal vs pneumonia.",
    ),
    _medmnist(
        "breastmnist",
        "BreastMNIST",
        md5="750601b1f35ba3300ea97c75c52ff8f6",
        labels=("malignant", "normal, benign"),
        n_samples={"train": 546, "val": 78, "test": 156},
        n_channels=1,
        task="binary-class",
        license="CC BY 4.0",
        source_citation=(
            "Al-Dhabyani W, Gomaa M, Khaled H, Fahmy A. Dataset of breast ultrasound images. "
            "Data in Brief 28:104863 (2020). https://doi.org/10.1016/j.dib.2019.104863"
        ),
        description=(
            "Breast ultrasound, 28x28 grey: malignant (label 0) vs normal or benign (label 1)."
        ),
    ),
    _medmnist(
        "dermamnist",
        "DermaMNIST",
        md5="0744692d530f8e62ec473284d019b0c7",
        labels=(
            "actinic keratoses and intraepithelial carcinoma",
            "basal cell carcinoma",
            "benign keratosis-like lesions",
            "dermatofibroma",
            "melanoma",
            "melanocytic nevi",
            "vascular lesions",
        ),
        n_samples={"train": 7007, "val": 1003, "test": 2005},
        n_channels=3,
        task="multi-class",
        # Non-commercial: MedMNIST gives DermaMNIST CC BY-NC 4.0 (README "License and
        # Citation"; medmnist/info.py 3.0.2; changed from CC BY 4.0 in release 2.2.3).
        license="CC BY-NC 4.0 (non-commercial use only)",
        source_citation=(
            "Tschandl P, Rosendahl C, Kittler H. The HAM10000 dataset, a large collection of "
            "multi-source dermatoscopic images of common pigmented skin lesions. "
            "Scientific Data 5:180161 (2018). https://doi.org/10.1038/sdata.2018.161; "
            "Codella N et al. Skin lesion analysis toward melanoma detection 2018: a challenge "
            "hosted by the International Skin Imaging Collaboration (ISIC). arXiv:1902.03368"
        ),
        description="Dermatoscopic images of pigmented skin lesions, 28x28 colour, 7 classes.",
    ),
    _medmnist(
        "bloodmnist",
        "BloodMNIST",
        md5="7053d0359d879ad8a5505303e11de1dc",
        labels=(
            "basophil",
            "eosinophil",
            "erythroblast",
            "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)",
            "lymphocyte",
            "monocyte",
            "neutrophil",
            "platelet",
        ),
        n_samples={"train": 11959, "val": 1712, "test": 3421},
        n_channels=3,
        task="multi-class",
        license="CC BY 4.0",
        source_citation=(
            "Acevedo A, Merino A, Alferez S, Molina A, Boldu L, Rodellar J. A dataset of "
            "microscopic peripheral blood cell images for development of automatic recognition "
            "systems. Data in Brief 30:105474 (2020). https://doi.org/10.1016/j.dib.2020.105474"
        ),
        description="Peripheral blood cell microscopy, 28x28 colour, 8 cell types.",
    ),
    DatasetInfo(
        name="mitdb",
        title="MIT-BIH Arrhythmia Database",
        kind="wfdb",
        url="https://physionet.org/content/mitdb/1.0.0/",
        filename=None,
        # A folder of 48 records (.hea/.dat/.atr); PhysioNet publishes per-file SHA-256 sums
        # there. The course checks each record's structure instead (header readable, signal
        # file of the length the header announces): see ecg.check_mitdb_folder.
        md5=None,
        size="48 records of 30 min, 2 leads at 360 Hz (about 1.95 MB of signal per record)",
        license="Open Data Commons Attribution License v1.0",
        citation=(
            "Moody GB, Mark RG. The impact of the MIT-BIH Arrhythmia Database. IEEE Engineering "
            "in Medicine and Biology Magazine 20(3):45-50 (2001). "
            "https://doi.org/10.1109/51.932724; Goldberger AL et al. "
            "PhysioBank, PhysioToolkit, and PhysioNet: components of a new research resource "
            "for complex physiologic signals. Circulation 101(23):e215-e220 (2000)"
        ),
        description="Two-lead ambulatory ECGs with beat-by-beat annotations by cardiologists.",
        label_names=("N", "S", "V", "F", "Q"),
        task="beat classification (AAMI EC57 classes)",
    ),
    DatasetInfo(
        name="retina",
        title="Fundus photograph of a normal left eye",
        kind="package",
        url="https://commons.wikimedia.org/wiki/File:Fundus_photograph_of_normal_left_eye.jpg",
        filename="retina.jpg",
        md5=None,  # verified by scikit-image's own SHA-256 registry
        size="1411x1411 RGB",
        license="CC0 1.0 Universal public domain dedication (as scikit-image states)",
        citation=(
            "Haggstrom M. Medical gallery of Mikael Haggstrom 2014. WikiJournal of Medicine "
            "1(2) (2014). https://doi.org/10.15347/wjm/2014.008 (via scikit-image data)"
        ),
        description="Colour fundus photograph (retina), from scikit-image's sample data.",
    ),
    DatasetInfo(
        name="microaneurysms",
        title="Retina with microaneurysms (HRF database crop)",
        kind="package",
        url="https://www5.cs.fau.de/research/data/fundus-images/",
        filename="microaneurysms.png",
        md5=None,  # verified by scikit-image's own SHA-256 registry
        size="102x102 grey",
        license="CC0, given by the image's owner (as scikit-image states)",
        citation=(
            "Budai A, Bock R, Maier A, Hornegger J, Michelson G. Robust vessel segmentation in "
            "fundus images. International Journal of Biomedical Imaging 2013:154860 (2013). "
            "https://doi.org/10.1155/2013/154860 (via scikit-image data)"
        ),
        description="Green channel of a diabetic-retinopathy fundus image with microaneurysms.",
    ),
    DatasetInfo(
        name="immunohistochemistry",
        title="Immunohistochemistry (IHC) of colonic glands",
        kind="package",
        url="https://scikit-image.org/docs/stable/api/skimage.data.html",
        filename="ihc.png",
        md5=None,  # verified by scikit-image's own SHA-256 registry
        size="512x512 RGB",
        license=("no licence stated by the distributor: scikit-image (a BSD-3-Clause "
                 "package) ships it saying 'no known copyright restrictions'"),
        citation=(
            "Center for Microscopy And Molecular Imaging (CMMI); scikit-image sample data "
            "(van der Walt S et al. scikit-image: image processing in Python. PeerJ 2:e453, "
            "2014)"
        ),
        description="Colonic glands: FHL2 protein revealed with DAB, hematoxylin counterstain.",
    ),
    DatasetInfo(
        name="ct_small",
        title="CT slice (DICOM, NEMA WG04 sample, downsized)",
        kind="package",
        url="ftp://medical.nema.org/MEDICAL/Dicom/DataSets/WG04/",
        filename="CT_small.dcm",
        md5=None,  # ships inside pydicom
        size="128x128 int16, Hounsfield units after rescale",
        license=("no licence stated by the distributor: a NEMA DICOM WG04 sample image, "
                 "downsized and shipped as test data by pydicom (an MIT-licensed package; its "
                 "test-file README believes there is no restriction on using them)"),
        citation=(
            "NEMA DICOM WG04 sample data set CT1_UNC, downsized to 128x128 by the pydicom "
            "project (pydicom/data/test_files/CT_small.dcm)"
        ),
        description="One axial CT slice as a DICOM file, with its rescale to Hounsfield units.",
    ),
    DatasetInfo(
        name="mr_small",
        title="MR slice (DICOM, NEMA WG04 sample, downsized)",
        kind="package",
        url="ftp://medical.nema.org/MEDICAL/Dicom/DataSets/WG04/",
        filename="MR_small.dcm",
        md5=None,  # ships inside pydicom
        size="64x64 int16, arbitrary MR signal units",
        license=("no licence stated by the distributor: a NEMA DICOM WG04 sample image, "
                 "downsized and shipped as test data by pydicom (an MIT-licensed package; its "
                 "test-file README believes there is no restriction on using them)"),
        citation=(
            "NEMA DICOM WG04 sample data set MR1_UNC, downsized to 64x64 by the pydicom "
            "project (pydicom/data/test_files/MR_small.dcm)"
        ),
        description="One MR slice as a DICOM file (signal intensities have no physical unit).",
    ),
    DatasetInfo(
        name="breast_cancer_wisconsin",
        title="Breast Cancer Wisconsin (Diagnostic)",
        kind="package",
        url="https://doi.org/10.24432/C5DW2B",
        filename=None,
        md5=None,  # ships inside scikit-learn
        size="569 patients x 30 features",
        # CC BY 4.0 as the UCI record states it; scikit-learn's copy states no licence.
        license="CC BY 4.0 (UCI Machine Learning Repository; scikit-learn ships a copy)",
        citation=(
            "Street WN, Wolberg WH, Mangasarian OL. Nuclear feature extraction for breast tumor "
            "diagnosis. Proc. IS&T/SPIE Biomedical Image Processing and Biomedical "
            "Visualization 1905:861-870 (1993); Wolberg W, Mangasarian O, Street N, Street W. "
            "Breast Cancer Wisconsin (Diagnostic). UCI Machine Learning Repository (1995). "
            "https://doi.org/10.24432/C5DW2B"
        ),
        description="Cell-nucleus measurements of breast masses (fine-needle aspirates).",
        label_names=("benign", "malignant"),
        task="binary-class (course coding: 1 = malignant)",
    ),
    DatasetInfo(
        name="actg320",
        title="ACTG 320 AIDS trial",
        kind="package",
        url="https://web.archive.org/web/20170114043458/http://www.umass.edu/statdata/statdata/data/",
        filename="actg320.arff",
        md5=None,  # ships inside scikit-survival
        size="1,151 patients x 11 covariates, 96 AIDS-defining events or deaths",
        license=("no licence stated by the distributor: scikit-survival (a "
                 "GPL-3.0-or-later package) ships it without a licence note, taken from the "
                 "data site of the textbook Applied Survival Analysis (UMass)"),
        citation=(
            "Hammer SM et al. A controlled trial of two nucleoside analogues plus indinavir in "
            "persons with human immunodeficiency virus infection and CD4 cell counts of 200 per "
            "cubic millimeter or less. New England Journal of Medicine 337(11):725-733 (1997). "
            "https://doi.org/10.1056/NEJM199709113371101; data: Hosmer DW, Lemeshow S, May S. "
            "Applied Survival Analysis, 2nd ed. Wiley (2008) (via scikit-survival)"
        ),
        description=("Randomised trial: zidovudine + lamivudine with or without indinavir; "
                     "time to an AIDS-defining event or death."),
        task="survival (randomised treatment)",
    ),
    DatasetInfo(
        name="veterans_lung",
        title="Veterans' Administration lung cancer trial",
        kind="package",
        url="https://github.com/sebp/scikit-survival/tree/master/sksurv/datasets/data",
        filename="veteran.arff",
        md5=None,  # ships inside scikit-survival
        size="137 patients x 6 covariates, 128 deaths",
        license=("no licence stated by the distributor: scikit-survival (a "
                 "GPL-3.0-or-later package) ships it without a licence note, taken from "
                 "StatLib (lib.stat.cmu.edu/datasets/veteran)"),
        citation=(
            "Prentice RL. Exponential survivals with censoring and explanatory variables. "
            "Biometrika 60(2):279-288 (1973). https://doi.org/10.1093/biomet/60.2.279; data: "
            "Kalbfleisch JD, Prentice RL. The Statistical Analysis of Failure Time Data, 2nd "
            "ed. Wiley (2002) (via scikit-survival)"
        ),
        description=("Randomised trial: standard vs test chemotherapy in advanced inoperable "
                     "lung cancer; time to death."),
        task="survival (randomised treatment)",
    ),
    DatasetInfo(
        name="gbsg2",
        title="German Breast Cancer Study Group 2 (GBSG2)",
        kind="package",
        url="https://doi.org/10.1200/JCO.1994.12.10.2086",
        filename="GBSG2.arff",
        md5=None,  # ships inside scikit-survival
        size="686 patients x 8 covariates, 299 recurrences or deaths",
        license=("no licence stated by the distributor: scikit-survival (a "
                 "GPL-3.0-or-later package) ships it without a licence note; the same table is "
                 "in the R package TH.data (GPL-3)"),
        citation=(
            "Schumacher M, Bastert G, Bojar H et al. Randomized 2 x 2 trial evaluating hormonal "
            "treatment and the duration of chemotherapy in node-positive breast cancer "
            "patients. Journal of Clinical Oncology 12(10):2086-2093 (1994). "
            "https://doi.org/10.1200/JCO.1994.12.10.2086; Sauerbrei W, Royston P. Building "
            "multivariable prognostic and diagnostic models: transformation of the predictors "
            "by using fractional polynomials. Journal of the Royal Statistical Society A "
            "162(1):71-94 (1999) (via scikit-survival)"
        ),
        description=("Node-positive breast cancer: recurrence-free survival; hormonal therapy "
                     "not randomised for every patient in this data set."),
        task="survival (prognosis; treatment partly randomised)",
    ),
]

REGISTRY: dict[str, DatasetInfo] = {info.name: info for info in _ENTRIES}
"""Every dataset by name. Tests may point an entry elsewhere with ``monkeypatch.setitem``."""

MEDMNIST_NAMES: tuple[str, ...] = tuple(i.name for i in _ENTRIES if i.kind == "medmnist")

USED_BY: dict[str, tuple[str, ...]] = {
    "pneumoniamnist": ("ch03_cnn", "ch05_gan"),
    "mitdb": ("ch01_background", "ch04_rnn"),
    "retina": ("ch01_background",),
    "microaneurysms": ("ch01_background",),
    "immunohistochemistry": ("ch01_background",),
    "ct_small": ("ch01_background", "ch03_cnn"),
    "mr_small": ("ch01_background",),
    "breast_cancer_wisconsin": ("ch01_background", "ch02_activations_losses",
                                "ch06_tabular_case_study"),
    "actg320": ("ch07_prognosis_treatment",),
    "gbsg2": ("ch07_prognosis_treatment",),
}
"""The chapters that read each dataset. BreastMNIST, DermaMNIST and BloodMNIST are in the
registry for a learner's own projects; no chapter reads them, so the data checks (``verify
--strict``, ``medai-course doctor``) do not ask for them."""


def chapters_using(name: str) -> tuple[str, ...]:
    """The chapters that read the dataset ``name`` (empty for one no chapter reads)."""
    return USED_BY.get(name.strip().lower(), ())


def get_info(name: str) -> DatasetInfo:
    """The registry entry of ``name`` (case-insensitive), with a clear error when unknown."""
    key = name.strip().lower()
    try:
        return REGISTRY[key]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise KeyError(f"unknown dataset {name!r}; the course knows: {known}") from None


def list_datasets(kind: str | None = None) -> list[DatasetInfo]:
    """Every registry entry, or those of one ``kind``, in registry order."""
    return [i for i in REGISTRY.values() if kind is None or i.kind == kind]
