"""The chapters' benchmark figures, and the benchmark script's command line (not its timings:
speed is measured by benchmarks/run.py, never asserted by a test)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT
from medai_lessons.benchmarking import OUT_ENV, goal_met, record


def test_record_does_nothing_in_a_learners_session(monkeypatch, tmp_path):
    monkeypatch.delenv(OUT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    record("auc", 0.9, goal=0.8)
    assert list(tmp_path.iterdir()) == []


def test_record_appends_one_json_line_per_figure(monkeypatch, tmp_path):
    out = tmp_path / "m.jsonl"
    monkeypatch.setenv(OUT_ENV, str(out))
    record("auc", 0.91, goal=0.94)
    record("error", 1e-9, goal=1e-6, better="lower", unit="")
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["metric"] for r in rows] == ["auc", "error"]
    assert goal_met(rows[0]["value"], rows[0]["goal"], rows[0]["better"]) is False
    assert goal_met(rows[1]["value"], rows[1]["goal"], rows[1]["better"]) is True
    assert goal_met(0.5, None, "higher") is None
    with pytest.raises(ValueError, match="higher' or 'lower"):
        record("x", 1.0, better="more")


def test_benchmark_script_rejects_unknown_parts_and_too_few_repeats():
    script = ROOT / "benchmarks" / "run.py"
    bad = subprocess.run([sys.executable, str(script), "speed"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown part" in bad.stderr
    few = subprocess.run([sys.executable, str(script), "--fast-repeats", "2"],
                         capture_output=True, text=True)
    assert few.returncode == 2 and "at least 3" in few.stderr


def test_benchmark_table_names_the_machine_and_how_busy_it_was():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    machine = {"cpu": "Test CPU", "cores": 2, "python": "3.11", "tensorflow": "2.x",
               "keras": "3.x", "gpus": 0, "date": "2026-01-01 00:00 UTC",
               "load_before": 0.4, "load_after": 3.5}
    table = bench.markdown({"machine": machine, "chapters": []})
    assert "Test CPU (2 cores)" in table
    assert "load average 0.4 at the start, 3.5 at the end" in table
    load = bench.load_average()
    assert load is None or load >= 0


def test_cpu_name_reads_the_model_name_and_falls_back_without_cpuinfo(monkeypatch, tmp_path):
    import pathlib
    import platform

    from medai_lessons import benchmarking

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: Test\nmodel name\t: Test CPU @ 2.0GHz\n")
    real_path = pathlib.Path
    monkeypatch.setattr(benchmarking, "Path",
                        lambda p: real_path(info) if p == "/proc/cpuinfo" else real_path(p))
    assert benchmarking.cpu_name() == "Test CPU @ 2.0GHz"
    info.unlink()                               # no /proc/cpuinfo (not Linux): the platform's
    monkeypatch.setattr(platform, "processor", lambda: "x86_64")
    assert benchmarking.cpu_name() == "x86_64"
