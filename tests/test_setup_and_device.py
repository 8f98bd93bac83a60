"""The notebook set-up call and the device report."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from medai_lessons.notebook import fast_mode, setup


@pytest.mark.parametrize(("env", "expected"), [
    ({}, False), ({"MEDAI_FAST": "1"}, True), ({"MEDAI_FAST": "yes"}, True),
    ({"MEDAI_FAST": "0"}, False), ({"NBGRADER_EXECUTION": "autograde"}, True),
])
def test_fast_mode_switches(monkeypatch, env, expected):
    monkeypatch.delenv("MEDAI_FAST", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert fast_mode() is expected


def test_setup_seeds_and_reports(capsys, monkeypatch):
    monkeypatch.setenv("MEDAI_FAST", "1")
    course = setup(chapter="chXX_test", seed=7, tensorflow=False)
    a = np.random.rand(3)
    setup(chapter="chXX_test", seed=7, tensorflow=False)
    assert np.array_equal(a, np.random.rand(3))
    line = capsys.readouterr().out.splitlines()[0]
    assert "chXX_test" in line and "fast mode" in line and "seed 7" in line
    assert course.fast and course.pick(full=100, fast=3) == 3


def test_device_report_is_one_clean_line():
    """On a machine without a GPU: one line that says CPU, and none of TensorFlow's native
    start-up noise on the process's standard error."""
    code = ("from medai_lessons.device import configure; info = configure(); print(info.line());"
            "import tensorflow as tf; print(tf.reduce_sum(tf.ones(3)).numpy())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0].startswith("TensorFlow ") and " on " in out[0]
    assert out[1] == "3.0"
    if "GPU x" not in out[0]:
        assert "CPU" in out[0]
        for noise in ("cuInit", "absl::InitializeLog", "cudart_stub"):
            assert noise not in proc.stderr, proc.stderr
