"""Every source notebook executes clean, top to bottom, in fast mode (nbval).

nbval runs in its own pytest process per notebook, with ``--nbval-lax`` (a cell fails on an
error; outputs are not compared, since source notebooks are committed without outputs) and
``--nbval-current-env`` (the kernel is this interpreter). The environment comes from
conftest.py: ``MEDAI_FAST=1`` and isolated Jupyter folders.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import chapter_dirs

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("chapter", chapter_dirs(), ids=lambda d: d.name)
def test_notebook_executes_clean_in_fast_mode(chapter, tmp_path):
    notebook = chapter / f"{chapter.name}.ipynb"
    env = dict(os.environ, MEDAI_FAST="1")
    env.pop("MPLBACKEND", None)  # the kernel draws inline, as in JupyterLab
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
         "--nbval-cell-timeout=300", "-p", "no:cacheprovider", "-p", "no:xdist", "-q",
         "--rootdir", str(tmp_path), str(notebook)],
        cwd=chapter, env=env, capture_output=True, text=True, timeout=900,
    )
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
    assert proc.returncode == 0, f"{notebook.name} did not execute clean:\n{tail}"
    assert " passed" in proc.stdout and " failed" not in proc.stdout, tail
