"""``medai-course kernels install``: the MedAI (CPU) and MedAI (GPU) kernelspecs, installed into
a temporary prefix, and a chapter executed with each (nbclient, fast mode)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager

from conftest import SOURCE, chapter_dirs
from medai_lessons.cli import main
from medai_lessons.kernels import KERNELS, installed

CH = "ch02_activations_losses"


@pytest.fixture
def prefix(tmp_path, monkeypatch, capsys):
    """Both kernels installed with the command line into a temporary prefix that Jupyter
    searches (JUPYTER_PATH)."""
    prefix = tmp_path / "prefix"
    assert main(["kernels", "install", "--prefix", str(prefix)]) == 0
    out = capsys.readouterr().out
    assert "MedAI (CPU)" in out and "MedAI (GPU)" in out
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    return prefix


def test_install_writes_two_kernelspecs_with_their_environments(prefix):
    specs = KernelSpecManager().find_kernel_specs()
    kernels = prefix / "share" / "jupyter" / "kernels"
    for name, display, env in (
        ("medai-cpu", "MedAI (CPU)", {"CUDA_VISIBLE_DEVICES": "-1", "MEDAI_DEVICE": "cpu"}),
        ("medai-gpu", "MedAI (GPU)", {"MEDAI_DEVICE": "gpu", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}),
    ):
        spec = json.loads((kernels / name / "kernel.json").read_text())
        assert spec["display_name"] == display
        assert spec["env"] == env, name
        assert spec["argv"][0] == sys.executable, "the kernel runs this environment's Python"
        assert "ipykernel_launcher" in spec["argv"]
        assert specs[name] == str(kernels / name), "Jupyter finds it in the prefix"
    gpu_hidden = {k.name: "CUDA_VISIBLE_DEVICES" in k.env for k in KERNELS}
    assert gpu_hidden == {"medai-cpu": True, "medai-gpu": False}


def test_install_leaves_nothing_in_the_temporary_folder(tmp_path, monkeypatch, capsys):
    """ipykernel stages a spec under the temporary folder and removes only the spec: two
    empty ``tmp*_kernels`` folders were left behind by every install."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert main(["kernels", "install", "--prefix", str(tmp_path / "prefix")]) == 0
    assert sorted(p.name for p in scratch.iterdir()) == []
    assert tempfile.gettempdir() == str(scratch), "the temporary folder is as it was"
    assert (tmp_path / "prefix" / "share" / "jupyter" / "kernels" / "medai-gpu").is_dir()


def test_kernels_list_shows_the_policy(prefix, capsys):
    assert main(["kernels", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("medai-cpu") and "policy cpu" in line for line in lines), lines
    assert any(line.startswith("medai-gpu") and "policy gpu" in line for line in lines), lines
    assert {k.policy for k in installed() if k.name.startswith("medai-")} == {"cpu", "gpu"}


def test_user_and_default_installs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "user"))
    assert main(["kernels", "install", "--user"]) == 0
    assert (tmp_path / "user" / "kernels" / "medai-gpu" / "kernel.json").is_file()
    # The default is this environment's prefix (sys.prefix), where its own Jupyter looks.
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "env"))
    assert main(["kernels", "install"]) == 0
    assert (tmp_path / "env" / "share" / "jupyter" / "kernels" / "medai-cpu").is_dir()
    assert "installed" in capsys.readouterr().out


def test_install_refuses_two_destinations(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["kernels", "install", "--user", "--prefix", str(tmp_path)])
    assert exc.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_notebooks_keep_the_standard_kernel():
    for chapter in chapter_dirs():
        nb = nbformat.read(chapter / f"{chapter.name}.ipynb", 4)
        assert nb.metadata["kernelspec"]["name"] == "python3", chapter.name


def setup_line(nb) -> str:
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and "MedAI Lessons" in out.get("text", ""):
                return next(line for line in out["text"].splitlines() if "MedAI Lessons" in line)
    raise AssertionError("no set-up line in the executed notebook")


@pytest.mark.slow
@pytest.mark.parametrize("kernel", ["medai-cpu", "medai-gpu"])
def test_chapter_runs_under_each_kernel(prefix, kernel, monkeypatch):
    """The chapter executes clean (an error fails the run) and its set-up line names the
    kernel's device policy; without a GPU the GPU kernel says it falls back to the CPU."""
    from nbclient import NotebookClient

    monkeypatch.setenv("MEDAI_FAST", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.delenv("MEDAI_DEVICE", raising=False)
    nb = nbformat.read(SOURCE / CH / f"{CH}.ipynb", 4)
    NotebookClient(nb, kernel_name=kernel, timeout=300,
                   resources={"metadata": {"path": str(SOURCE / CH)}}).execute()
    line = setup_line(nb)
    assert "fast mode" in line, line
    if kernel == "medai-cpu":
        assert "on CPU (MedAI (CPU) kernel: GPUs hidden)" in line, line
    elif "GPU x" in line:  # a machine with a GPU
        assert "memory growth" in line and "(MedAI (GPU) kernel)" in line, line
    else:
        assert "on CPU (MedAI (GPU) kernel" in line and "falling back to CPU" in line, line


@pytest.mark.skipif(shutil.which("nvidia-smi") is None,
                    reason="needs an NVIDIA GPU (no nvidia-smi on this machine)")
def test_gpu_policy_on_a_real_gpu():
    code = ("from medai_lessons.device import configure; i = configure();"
            "print(i.line()); print(i.memory_growth)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, MEDAI_DEVICE="gpu"))
    assert proc.returncode == 0, proc.stderr
    line, growth = proc.stdout.splitlines()[:2]
    if "GPU x" not in line:
        pytest.skip(f"nvidia-smi exists but TensorFlow sees no GPU: {line}")
    assert growth == "True" and "memory growth" in line and "MedAI (GPU) kernel" in line
