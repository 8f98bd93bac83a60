"""The MIT-BIH inter-patient division (DS1/DS2, de Chazal et al. 2004) and chapter 4's split
experiment on it.

Only record 100 of MIT-BIH is in ../shared/data, so the complete division is exercised with
small records written by wfdb's own writers under the 44 record names (per-half morphology, so
that a classifier trained on DS1 meets new patients in DS2), and record 100 is checked where it
is real: what the status sees, and its beats through the division's loader beside 43 written
records.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest

wfdb = pytest.importorskip("wfdb")

from conftest import SOURCE  # noqa: E402
from medai_lessons import sequences  # noqa: E402
from medai_lessons.data.ecg import (  # noqa: E402
    DS1_RECORDS,
    DS2_RECORDS,
    FETCH_COMMAND,
    INTER_PATIENT_RECORDS,
    MITDB_RECORDS,
    PACED_RECORDS,
    SAME_SUBJECT_RECORDS,
    inter_patient_status,
    load_inter_patient,
    load_mitdb,
)
from medai_lessons.data.errors import DataUnavailable  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")

FS = 360
# The division as published (de Chazal, O'Dwyer, Reilly 2004, IEEE TBME 51(7):1196-1206),
# written out here rather than imported, so that a changed list in the package fails.
PUBLISHED_DS1 = [101, 106, 108, 109, 112, 114, 115, 116, 118, 119, 122,
                 124, 201, 203, 205, 207, 208, 209, 215, 220, 223, 230]
PUBLISHED_DS2 = [100, 103, 105, 111, 113, 117, 121, 123, 200, 202, 210,
                 212, 213, 214, 219, 221, 222, 228, 231, 232, 233, 234]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDAI_DATA_DIR", str(tmp_path / "cache"))


def write_division_record(folder: Path, name: str, *, v_sign: float, duration: float = 30.0,
                          seed: int = 0) -> list[tuple[int, str]]:
    """A two-lead record (MLII, V1): a beat every 0.8 s, every fifth a ventricular one (wide,
    of polarity ``v_sign``), the others normal (a narrow spike and a T wave), plus one rhythm
    annotation (not a beat). Returns the annotations written."""
    rng = np.random.default_rng(seed)
    n = int(duration * FS)
    t = np.arange(n) / FS
    mlii = 0.02 * rng.standard_normal(n)
    plan = []
    for k, tb in enumerate(np.arange(1.0, duration - 1.2, 0.8)):
        symbol = "V" if k % 5 == 4 else "N"
        if symbol == "N":
            mlii += (np.exp(-0.5 * ((t - tb) / 0.012) ** 2)
                     + 0.2 * np.exp(-0.5 * ((t - tb - 0.25) / 0.05) ** 2))
        else:
            mlii += v_sign * 1.2 * np.exp(-0.5 * ((t - tb) / 0.05) ** 2)
        plan.append((int(round(tb * FS)), symbol))
    plan.append((int((duration - 0.5) * FS), "+"))
    wfdb.wrsamp(name, fs=FS, units=["mV", "mV"], sig_name=["MLII", "V1"],
                p_signal=np.column_stack([mlii, -0.5 * mlii]), fmt=["212", "212"],
                write_dir=str(folder))
    wfdb.wrann(name, "atr", sample=np.array([p for p, _ in plan]),
               symbol=[s for _, s in plan], write_dir=str(folder))
    return plan


@pytest.fixture(scope="module")
def division(tmp_path_factory) -> Path:
    """A folder with the 44 records of the division, written by wfdb: DS1's ventricular beats
    point up, DS2's down (each half's patients differ from the other's)."""
    folder = tmp_path_factory.mktemp("division")
    for i, record in enumerate(INTER_PATIENT_RECORDS):
        write_division_record(folder, record, v_sign=1.0 if record in DS1_RECORDS else -1.0,
                              seed=i)
    return folder


def copy_records(source: Path, target: Path, records) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for record in records:
        for ext in ("hea", "dat", "atr"):
            shutil.copy(source / f"{record}.{ext}", target / f"{record}.{ext}")
    return target


# --- the lists ----------------------------------------------------------------------------------


def test_the_division_is_the_published_one_44_distinct_records_in_two_disjoint_halves():
    assert list(DS1_RECORDS) == [str(r) for r in PUBLISHED_DS1]
    assert list(DS2_RECORDS) == [str(r) for r in PUBLISHED_DS2]
    assert len(DS1_RECORDS) == len(DS2_RECORDS) == 22
    assert len(set(INTER_PATIENT_RECORDS)) == 44
    assert not set(DS1_RECORDS) & set(DS2_RECORDS)
    assert INTER_PATIENT_RECORDS == DS1_RECORDS + DS2_RECORDS


def test_the_division_is_every_record_but_the_paced_ones():
    assert len(MITDB_RECORDS) == 48
    assert not set(PACED_RECORDS) & set(INTER_PATIENT_RECORDS)
    assert set(INTER_PATIENT_RECORDS) | set(PACED_RECORDS) == set(MITDB_RECORDS)


def test_the_one_subject_with_two_records_is_split_across_the_halves_and_said_so():
    first, second = SAME_SUBJECT_RECORDS
    assert first in DS1_RECORDS and second in DS2_RECORDS


# --- the status: what is staged ----------------------------------------------------------------


def test_the_status_names_exactly_the_records_staged_and_missing(division, tmp_path):
    staged = ["101", "106", "100", "234"]
    folder = copy_records(division, tmp_path / "some", staged)
    status = inter_patient_status(folder)
    assert status.folder == folder and not status.complete
    assert status.staged == ("101", "106", "100", "234")  # in the division's order
    assert set(status.missing) == set(INTER_PATIENT_RECORDS) - set(staged)
    assert len(status.missing) == 40
    assert "101" not in status.missing_from("DS1") and len(status.missing_from("DS1")) == 20
    assert "234" not in status.missing_from("DS2") and "103" in status.missing_from("DS2")
    with pytest.raises(ValueError, match="'DS1' .* or 'DS2'"):
        status.missing_from("train")
    line = status.short()
    assert "\n" not in line and FETCH_COMMAND in line and "40 are not staged" in line
    assert "only records 101, 106, 100, 234" in line


def test_a_few_missing_records_are_named_in_the_short_line(division, tmp_path):
    folder = copy_records(division, tmp_path / "almost",
                          [r for r in INTER_PATIENT_RECORDS if r not in ("118", "222")])
    status = inter_patient_status(folder)
    assert status.missing == ("118", "222")
    assert "records 118, 222 are missing" in status.short()


def test_an_incomplete_record_is_not_staged(division, tmp_path):
    folder = copy_records(division, tmp_path / "partial", INTER_PATIENT_RECORDS)
    (folder / "115.atr").unlink()
    status = inter_patient_status(folder)
    assert status.missing == ("115",) and "115" not in status.staged


def test_the_status_uses_the_folder_that_holds_most_of_the_division(division, tmp_path,
                                                                      monkeypatch):
    start = tmp_path / "course" / "source" / "ch04_rnn"
    start.mkdir(parents=True)
    copy_records(division, tmp_path / "shared" / "data" / "mitdb", ["100", "101"])
    status = inter_patient_status(start=start)
    assert status.folder == tmp_path / "shared" / "data" / "mitdb"
    assert status.staged == ("101", "100")
    assert status.searched[0] == tmp_path / "cache" / "mitdb"  # the cache is looked in first
    cache = copy_records(division, tmp_path / "cache" / "mitdb", INTER_PATIENT_RECORDS)
    status = inter_patient_status(start=start)
    assert status.folder == cache and status.complete
    assert "all 44 records" in status.short()


def test_nothing_staged_anywhere_says_so(tmp_path):
    status = inter_patient_status(tmp_path / "empty")
    assert status.folder is None and status.staged == () and len(status.missing) == 44
    assert "none of them is staged" in status.short()


# --- the loader ------------------------------------------------------------------------------


def test_the_loader_gives_ds1_to_train_and_ds2_to_test_with_each_beats_record(division, capsys):
    data = load_inter_patient(division)
    out = capsys.readouterr().out
    assert data.standard and "standard inter-patient division" in data.ran
    assert list(dict.fromkeys(data.train.records.tolist())) == list(DS1_RECORDS)
    assert list(dict.fromkeys(data.test.records.tolist())) == list(DS2_RECORDS)
    assert not set(data.train.records.tolist()) & set(data.test.records.tolist())
    for beats in (data.train, data.test):
        assert beats.X.shape[1] == 187 and beats.lead == "MLII"
        assert len(beats) == len(beats.records) == len(beats.y)
        counts = beats.counts()
        # every record: 35 annotated beats, every fifth ventricular, none dropped at the edges
        assert counts == {"N": 22 * 28, "S": 0, "V": 22 * 7, "F": 0, "Q": 0}
        for record in set(beats.records.tolist()):
            assert np.sum(beats.records == record) == 35
    assert "DS1 (training): 22 records" in out and "DS2 (test): 22 records" in out
    assert "201 (DS1) and 202 (DS2)" in out and "de Chazal" in out


def test_the_loader_matches_load_mitdb_record_by_record(division):
    data = load_inter_patient(division, verbose=False)
    one = load_mitdb(["203"], path=division, verbose=False)
    mine = data.train.records == "203"
    np.testing.assert_array_equal(data.train.X[mine], one.X)
    np.testing.assert_array_equal(data.train.y[mine], one.y)


def test_a_quick_cut_takes_the_first_records_of_each_half_and_says_it_is_not_standard(division):
    data = load_inter_patient(division, records_per_half=3, verbose=False)
    assert not data.standard and "first 3 records" in data.ran and "all 22" in data.ran
    assert sorted(set(data.train.records.tolist())) == ["101", "106", "108"]
    assert sorted(set(data.test.records.tolist())) == ["100", "103", "105"]
    assert not any("201" in note for note in data.notes)
    for bad in (0, 23, 2.5, True, "3"):
        with pytest.raises(ValueError, match="records_per_half"):
            load_inter_patient(division, records_per_half=bad, verbose=False)


def test_a_missing_record_stops_the_loader_with_every_missing_record_named(division, tmp_path):
    folder = copy_records(division, tmp_path / "gaps",
                          [r for r in INTER_PATIENT_RECORDS if r not in ("109", "213", "232")])
    with pytest.raises(DataUnavailable) as err:
        load_inter_patient(folder, verbose=False)
    message = str(err.value)
    assert "DS1 (training): 109" in message and "DS2 (test): 213, 232" in message
    assert "3 are not complete" in message and FETCH_COMMAND in message
    assert str(folder) in message
    # a quick cut that needs none of the missing records still loads
    assert len(load_inter_patient(folder, records_per_half=3, verbose=False).train) > 0


def test_nothing_staged_names_where_it_looked(tmp_path):
    with pytest.raises(DataUnavailable, match=r"any folder looked in .*101, 106"):
        load_inter_patient(tmp_path / "nowhere", verbose=False)


# --- record 100, real ----------------------------------------------------------------------------


def test_real_record_100_is_seen_as_one_of_44_and_its_beats_go_to_ds2(shared_data, division,
                                                                     tmp_path):
    real = shared_data / "mitdb"
    if not (real / "100.hea").is_file():
        pytest.skip(f"record 100 is not in {real}")
    status = inter_patient_status(real)
    assert status.staged == ("100",) and len(status.missing) == 43 and not status.complete
    assert "only record 100" in status.short()
    with pytest.raises(DataUnavailable, match="DS1 \\(training\\): 101, 106"):
        load_inter_patient(real, verbose=False)
    # the real record 100 beside 43 written ones: its beats are DS2's, labelled as load_mitdb
    # labels them (record 100: 2,239 N, 33 A and 1 V annotated; 3 N too near the ends)
    folder = copy_records(division, tmp_path / "mixed",
                          [r for r in INTER_PATIENT_RECORDS if r != "100"])
    copy_records(real, folder, ["100"])
    data = load_inter_patient(folder, verbose=False)
    beats_100 = data.test.records == "100"
    assert not np.any(data.train.records == "100")
    assert np.bincount(data.test.y[beats_100], minlength=5).tolist() == [2236, 33, 1, 0, 0]
    alone = load_mitdb("100", path=real, verbose=False)
    np.testing.assert_array_equal(data.test.X[beats_100], alone.X)


# --- the experiment --------------------------------------------------------------------------


def test_inter_patient_scores_train_on_ds1_and_test_on_new_patients(division):
    data = load_inter_patient(division, verbose=False)
    scores = sequences.inter_patient_scores(data, repeats=2, seed=0)
    assert set(scores) == {"accuracy", "recall of V"}
    for ways in scores.values():
        assert len(ways["random beats"]) == 2 and len(ways[sequences.DS12_LABEL]) == 1
        assert all(0.0 <= v <= 1.0 for values in ways.values() for v in values)
    # DS2's ventricular beats point the other way: with DS2's beats in training (random beats)
    # they are found; trained on DS1 alone they are not.
    assert min(scores["recall of V"]["random beats"]) > 0.9
    assert scores["recall of V"][sequences.DS12_LABEL][0] < 0.5
    clf = sequences.quick_beat_classifier()
    keep1, keep2 = np.isin(data.train.y, (0, 2)), np.isin(data.test.y, (0, 2))
    clf.fit(data.train.X[keep1], data.train.y[keep1] == 2)
    expected = clf.score(data.test.X[keep2], data.test.y[keep2] == 2)
    assert scores["accuracy"][sequences.DS12_LABEL][0] == pytest.approx(expected)


def test_inter_patient_scores_need_both_classes_in_each_half(division):
    data = load_inter_patient(division, verbose=False)
    data.test.y = np.zeros_like(data.test.y)           # no V beat left in DS2
    with pytest.raises(ValueError, match="DS2 beats need both normal"):
        sequences.inter_patient_scores(data, repeats=1)
    with pytest.raises(ValueError, match="repeats"):
        sequences.inter_patient_scores(data, repeats=0)


def test_beat_and_patient_splits_use_the_function_given_for_the_patient_split():
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(8), 10)
    X = rng.random((80, 187)).astype(np.float32)
    y = np.tile([0, 1], 40)
    calls = []

    def split(patient_ids, test_size, seed):
        calls.append((len(patient_ids), test_size, seed))
        test = np.isin(patient_ids, [0, 1])
        return np.flatnonzero(~test), np.flatnonzero(test)

    result = sequences.beat_and_patient_splits(X, y, ids, split, repeats=3)
    assert calls == [(80, 0.25, 0), (80, 0.25, 1), (80, 0.25, 2)]
    assert set(result) == {"random beats", "random patients"}
    assert all(len(v) == 3 for v in result.values())
    with pytest.raises(ValueError, match="one row per beat"):
        sequences.beat_and_patient_splits(X, y[:-1], ids, split, repeats=1)
    text = sequences.format_spread({"panel": result})
    assert text.count("\n") == 1 and "over 3 splits" in text


# --- the chapter's cell --------------------------------------------------------------------------


def run_split_experiment_cell(fast: bool, start: Path, monkeypatch, capsys) -> str:
    """Chapter 4's split-experiment cell as the notebook runs it, with the course's
    split_by_patient standing in for the learner's."""
    import matplotlib.pyplot as plt

    from medai_lessons import plotting
    from medai_lessons.notebook import Course, learner_or_reference
    from medai_lessons.tabular import split_by_patient

    nb = nbformat.read(SOURCE / "ch04_rnn" / "ch04_rnn.ipynb", as_version=4)
    source = next(c.source for c in nb.cells if c.get("id") == "cell-split-experiment")
    monkeypatch.chdir(start)
    namespace = {"np": np, "plotting": plotting, "sequences": sequences,
                 "learner_or_reference": learner_or_reference,
                 "split_by_patient": split_by_patient,
                 "course": Course(chapter="ch04_rnn", seed=0, fast=fast, device="cpu")}
    exec(compile(source, "cell-split-experiment", "exec"), namespace)
    plt.close("all")
    return capsys.readouterr().out


def test_the_chapter_cell_runs_ds1_ds2_when_all_44_records_are_staged(division, tmp_path,
                                                                       monkeypatch, capsys):
    copy_records(division, tmp_path / "cache" / "mitdb", INTER_PATIENT_RECORDS)
    out = run_split_experiment_cell(False, tmp_path, monkeypatch, capsys)
    ran = [line for line in out.splitlines() if line.startswith("Ran:")]
    assert len(ran) == 1 and "standard inter-patient division" in ran[0]
    assert "MIT-BIH, normal vs V: recall of V | DS1 → DS2" in out
    assert "synthetic patients, normal vs PVC: accuracy | random patients" in out
    out = run_split_experiment_cell(True, tmp_path, monkeypatch, capsys)
    ran = [line for line in out.splitlines() if line.startswith("Ran:")]
    assert len(ran) == 1 and "first 3 records" in ran[0]


def test_the_chapter_cell_says_it_ran_the_synthetic_patients_only_otherwise(division, tmp_path,
                                                                          monkeypatch, capsys):
    copy_records(division, tmp_path / "cache" / "mitdb", ["100", "101"])
    out = run_split_experiment_cell(True, tmp_path, monkeypatch, capsys)
    ran = [line for line in out.splitlines() if line.startswith("Ran:")]
    assert len(ran) == 1 and "synthetic patients only" in ran[0]
    assert FETCH_COMMAND in ran[0] and "42 are not staged" in ran[0]
    assert "MIT-BIH" not in out.replace(ran[0], "")
