"""``medai-course doctor``, run for real against a temporary data cache and kernel prefix."""

from __future__ import annotations

import json

import pytest
from jupyter_client.kernelspec import KernelSpecManager

from medai_lessons import kernels
from medai_lessons.cli import main

real_installed = kernels.installed


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """An empty data cache, and the course's kernels installed into a temporary prefix."""
    monkeypatch.setenv("MEDAI_DATA_DIR", str(tmp_path / "data"))
    prefix = tmp_path / "prefix"
    assert main(["kernels", "install", "--prefix", str(prefix)]) == 0
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    return tmp_path


def doctor(capsys) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(["doctor"])
    return code, capsys.readouterr().out.splitlines()


def test_doctor_reports_versions_devices_kernels_and_data(machine, capsys):
    code, lines = doctor(capsys)
    text = "\n".join(lines)
    assert code == 0, text
    for topic in ("Python", "tensorflow", "keras", "nbgrader", "jupyterlab", "devices",
                  "TensorFlow build", "GPU"):
        assert any(line.startswith("[ok]") and f" {topic}: " in line for line in lines), topic
    assert "built with CUDA" in text or "built without CUDA" in text
    assert 'kernel: medai-cpu "MedAI (CPU)"' in text and 'kernel: python3' in text
    assert f"data cache: {machine / 'data'} (from MEDAI_DATA_DIR)" in text
    # A dataset not downloaded yet is a warning with the way to fetch or stage it.
    [pneumonia] = [line for line in lines if "pneumoniamnist:" in line]
    assert pneumonia.startswith("[warn]") and "missing" in pneumonia
    assert "python -m medai_lessons.data fetch pneumoniamnist" in pneumonia
    assert str(machine / "data" / "medmnist" / "pneumoniamnist.npz") in pneumonia
    for line in lines[:-1]:
        assert line.startswith(("[ok]", "[warn]", "[FAIL]")), line
        if not line.startswith("[ok]"):
            assert " -> " in line, f"a problem without what to do: {line}"
    assert lines[-1].startswith("doctor: 0 problem(s)")


def test_damaged_data_file_is_a_failure(machine, capsys):
    bad = machine / "data" / "medmnist" / "pneumoniamnist.npz"
    bad.parent.mkdir(parents=True)
    bad.write_text("<html>page not found</html>")
    code, lines = doctor(capsys)
    assert code == 1
    [line] = [line for line in lines if "pneumoniamnist:" in line]
    assert line.startswith("[FAIL]") and "bad staged file (the file is a web page" in line
    assert "put there by hand, so the course leaves it as it is" in line
    assert lines[-1].startswith("doctor: 1 problem(s)")
    # the course's own download, damaged since, is moved aside by fetch
    from medai_lessons.data import cache

    cache.mark_downloaded(bad, "0" * 32)
    code, lines = doctor(capsys)
    [line] = [line for line in lines if "pneumoniamnist:" in line]
    assert line.startswith("[FAIL]") and "bad checksum" in line
    assert "fetch pneumoniamnist` moves the damaged download aside" in line
    assert bad.read_text() == "<html>page not found</html>"


def test_doctor_does_not_ask_for_data_no_chapter_uses(machine, capsys):
    code, lines = doctor(capsys)
    text = "\n".join(lines)
    for name in ("breastmnist", "dermamnist", "bloodmnist"):
        assert f"{name}:" not in text
    [line] = [line for line in lines if "mitdb:" in line]
    assert line.startswith("[warn]") and "ch01_background, ch04_rnn" in line


def test_kernel_with_a_missing_python_is_flagged(machine, capsys):
    spec = machine / "prefix" / "share" / "jupyter" / "kernels" / "medai-gpu" / "kernel.json"
    data = json.loads(spec.read_text())
    data["argv"][0] = str(machine / "gone" / "python")
    spec.write_text(json.dumps(data))
    code, lines = doctor(capsys)
    [line] = [line for line in lines if "kernel: medai-gpu" in line]
    assert line.startswith("[warn]") and "cannot import medai_lessons" in line
    assert "medai-course kernels install" in line
    assert code == 0, "a broken optional kernel is a warning"


def test_missing_course_kernels_are_a_warning(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDAI_DATA_DIR", str(tmp_path / "data"))
    # Only the kernels of an empty folder (and ipykernel's own python3) are seen, even where
    # the course's kernels are installed in this environment.
    only_empty = KernelSpecManager(kernel_dirs=[str(tmp_path / "empty")])
    monkeypatch.setattr(kernels, "installed", lambda ksm=None: real_installed(only_empty))
    code, lines = doctor(capsys)
    [line] = [line for line in lines if "not installed" in line and "MedAI" in line]
    assert line.startswith("[warn]") and "medai-course kernels install" in line
    assert code == 0
