"""Every source notebook executes clean, top to bottom, in fast mode (nbval).

nbval runs in its own pytest process per notebook, with ``--nbval-lax`` (a cell fails on an
error; outputs are not compared, since source notebooks are committed without outputs) and
``--nbval-current-env`` (the kernel is this interpreter). The environment comes from
conftest.py: ``MEDAI_FAST=1`` and isolated Jupyter folders.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import nbformat
import pytest

from conftest import chapter_dirs

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("chapter", chapter_dirs(), ids=lambda d: d.name)
def test_notebook_executes_clean_in_fast_mode(chapter, tmp_path):
    # Test cells carry the raises-exception tag (so that a learner's Run All goes on past an
    # unanswered exercise); nbval would tolerate their errors, so the copy it runs has none.
    work = tmp_path / chapter.name  # a copy of the chapter folder: the source stays untouched
    shutil.copytree(chapter, work, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    notebook = work / f"{chapter.name}.ipynb"
    nb = nbformat.read(notebook, as_version=4)
    for c in nb.cells:
        if "tags" in c.metadata:
            c.metadata["tags"] = [t for t in c.metadata["tags"] if t != "raises-exception"]
    nbformat.write(nb, notebook)
    # nbval stops its kernel with a kill, before TensorFlow removes the files it writes for
    # each function it converts (``__autograph_generated_file*.py``): a temporary folder of
    # the test's own takes them
    (tmp_path / "tmp").mkdir()
    env = dict(os.environ, MEDAI_FAST="1", TMPDIR=str(tmp_path / "tmp"))
    env.pop("MPLBACKEND", None)  # the kernel draws inline, as in JupyterLab
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
         "--nbval-cell-timeout=300", "-p", "no:cacheprovider", "-p", "no:xdist", "-q",
         "--rootdir", str(work), str(notebook)],
        cwd=work, env=env, capture_output=True, text=True, timeout=900,
    )
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
    assert proc.returncode == 0, f"{notebook.name} did not execute clean:\n{tail}"
    assert " passed" in proc.stdout and " failed" not in proc.stdout, tail
