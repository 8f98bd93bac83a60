"""Figures a chapter reports to the benchmark (benchmarks/run.py), and nothing otherwise.

A chapter calls ``record("test_auc", auc, goal=0.94)`` next to the number it prints. When the
benchmark executes the notebook it sets ``MEDAI_BENCHMARK_OUT`` to a file, and each call appends
one JSON line there; in a learner's session the call does nothing.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

OUT_ENV = "MEDAI_BENCHMARK_OUT"


def record(metric: str, value: float, *, goal: float | None = None, better: str = "higher",
           unit: str = "", note: str = "") -> None:
    """Report one figure. ``goal`` with ``better`` ("higher" or "lower") says when it is met."""
    path = os.environ.get(OUT_ENV)
    if not path:
        return
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', not {better!r}")
    entry = {"metric": metric, "value": float(value), "goal": goal, "better": better,
             "unit": unit, "note": note, "time": time.time()}
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")


def goal_met(value: float, goal: float | None, better: str) -> bool | None:
    if goal is None:
        return None
    return value >= goal if better == "higher" else value <= goal


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo where there is one): results of the same
    training can differ between processors, so every benchmark and study record names it."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return cpu
