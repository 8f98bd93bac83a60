"""The studies in benchmarks/studies: each answers its question on validation data only, and
its verdict follows the rule it wrote down. Quick forms of the real runs (tiny data, an epoch
or a few), so they check the machinery, not the figures."""

from __future__ import annotations

import importlib.util
import json

import pytest

from conftest import ROOT
from medai_lessons.benchmarking import cpu_name


def study(name: str):
    path = ROOT / "benchmarks" / "studies" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Unreadable:
    """Stands in for a test split: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the study used a test split ({name})")

    def __array__(self, *args, **kwargs):
        raise AssertionError("the study used a test split (as an array)")

    def __len__(self):
        raise AssertionError("the study used a test split (its length)")


def test_ch06_ensemble_study_answers_on_validation_parts_only(tmp_path, monkeypatch, capsys):
    """The study's quick form runs, compares one network with the average on every setup, and
    its verdict follows its written rule; it never uses a split's test part."""
    import medai_lessons.tabular as tabular

    ch06 = study("ch06_ensemble")
    real_split = tabular.stratified_split
    calls = []

    def watched_split(X, y, test_size, val_size, seed):
        X_tr, X_va, _, y_tr, y_va, _ = real_split(X, y, test_size, val_size, seed)
        calls.append(seed)
        return X_tr, X_va, Unreadable(), y_tr, y_va, Unreadable()

    monkeypatch.setattr(tabular, "stratified_split", watched_split)
    out = tmp_path / "study.json"
    assert ch06.main(["--splits", "1", "--members", "2", "--epochs", "3", "--out",
                      str(out)]) == 0
    result = json.loads(out.read_text())
    (row,) = result["rows"]
    assert len(row["setups"]) == len(tabular.MLP_SETUPS) and row["chosen"] in row["setups"]
    s = result["summary"]
    assert s["adopt"] == (s["chosen setup: average_log_loss"] < s["chosen setup: one_log_loss"]
                          and s["chosen setup: average_accuracy"]
                          >= s["chosen setup: one_accuracy"])
    # the average of two different networks is not one of them
    chosen = row["setups"][row["chosen"]]
    assert chosen["average_log_loss"] != chosen["one_log_loss"]
    assert calls == [0]      # chapter 6's first split, its test part handed over unreadable
    with pytest.raises(SystemExit) as one_member:
        ch06.main(["--members", "1", "--out", str(tmp_path / "not-written.json")])
    assert one_member.value.code == 2 and "--members at least 2" in capsys.readouterr().err
    assert not (tmp_path / "not-written.json").exists()


def _records(**val_auc):
    """Validation records of 3 replicates per candidate with the given mean ROC AUC and
    training time (seconds): {name: (auc, seconds)}."""
    return {"validation": [{"candidate": name, "replicate": r, "val_auc": auc + d,
                            "train_seconds": seconds}
                           for name, (auc, seconds) in val_auc.items()
                           for r, d in enumerate((-0.001, 0.0, 0.001))],
            "test": []}


def test_ch03_recipe_rules_are_the_ones_written_down():
    ch03 = study("ch03_recipe")
    # round 1: the largest mean validation AUC, whatever the time
    assert ch03.choose(_records(A=(0.990, 100), B=(0.991, 90), C=(0.992, 500), D=(0.989, 80)),
                       1) == "C"
    # round 2: a new candidate over 110 s is out; the incumbent D wins near-ties
    assert ch03.choose(_records(D=(0.9960, 150), E=(0.9990, 111), F=(0.9964, 80)), 2) == "D"
    assert ch03.choose(_records(D=(0.9960, 150), E=(0.9990, 100), F=(0.9964, 80)), 2) == "E"
    with pytest.raises(ValueError, match="validate --round 2"):
        records = _records(D=(0.996, 80), E=(0.997, 80), F=(0.995, 80))
        records["validation"].pop()
        ch03.choose(records, 2)
    # the recorded study: both rounds chose D, and the test split was read for D only
    recorded = json.loads((ROOT / "benchmarks" / "results" / "ch03_recipe.json").read_text())
    assert ch03.choose(recorded, 1) == ch03.choose(recorded, 2) == "D"
    assert {r["candidate"] for r in recorded["test"]} == {"D"}
    # round 3 chooses nothing: D, measured again on another processor, which every record names
    assert ch03.choose(_records(D=(0.99, 200)), 3) == "D"
    again = json.loads((ROOT / "benchmarks" / "results" / "ch03_recipe_round3.json").read_text())
    assert ch03.choose(again, 3) == "D"
    assert [(r["candidate"], r["replicate"]) for r in again["test"]] == [("D", k) for k in range(3)]
    assert all(r["cpu"] for r in again["validation"] + again["test"])
    assert {r["cpu"] for r in again["test"]} == {r["cpu"] for r in again["validation"]}
    for command in ("validate", "test"):     # never into the study's main file
        with pytest.raises(SystemExit) as refused:
            ch03.main([command, "--round", "3"])
        assert refused.value.code == 2


def test_ch03_recipe_study_trains_on_validation_and_tests_only_the_choice(
        shared_data, tmp_path, monkeypatch, capsys):
    ch03 = study("ch03_recipe")
    real_load = ch03.load_xrays

    class WithoutTest:
        def __init__(self, xrays):
            self.x_train, self.y_train = xrays.x_train, xrays.y_train
            self.x_val, self.y_val = xrays.x_val, xrays.y_val
            self.x_test = self.y_test = Unreadable()

    data = str(shared_data / "medmnist" / "pneumoniamnist.npz")
    common = ["--round", "2", "--replicates", "1", "--results", str(tmp_path / "r.json"),
              "--weights", str(tmp_path / "w"), "--data", data]
    monkeypatch.setattr(ch03, "load_xrays", lambda path: WithoutTest(real_load(path)))
    assert ch03.main(["validate", *common, "--limit", "96", "--epochs-cap", "1"]) == 0
    results = json.loads((tmp_path / "r.json").read_text())
    assert [(r["candidate"], r["members"]) for r in results["validation"]] == [
        ("D", 1), ("E", 3), ("F", 2)]
    assert all(r["train_images"] == 96 and len(r["epochs_kept"]) == r["members"]
               and 0 <= r["val_auc"] <= 1 for r in results["validation"])
    assert {r["cpu"] for r in results["validation"]} == {cpu_name()}
    assert len(list((tmp_path / "w").glob("*.weights.h5"))) == 6
    monkeypatch.setattr(ch03, "load_xrays", real_load)
    assert ch03.main(["choose", *common]) == 0
    chosen = capsys.readouterr().out.split("chosen ")[-1].strip()
    assert chosen in ("D", "E", "F")
    assert ch03.main(["test", *common]) == 0
    (tested,) = json.loads((tmp_path / "r.json").read_text())["test"]
    assert tested["candidate"] == chosen and 0 <= tested["test_accuracy"] <= 1
    assert tested["cpu"] == cpu_name()
    (tmp_path / "w" / f"{chosen}_r0_m0.weights.h5").unlink()
    with pytest.raises(SystemExit) as missing:
        ch03.main(["test", *common])
    assert missing.value.code == 1 and "is missing" in capsys.readouterr().err
