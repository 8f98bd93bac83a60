"""Shared fixtures and the test session's environment.

- ``MEDAI_FAST=1``: notebooks run their training cells in fast mode.
- Jupyter's user folders point into a temporary directory, so that a kernelspec or config a
  user installed by hand can neither help nor break a run: the ``python3`` kernel is this
  interpreter's.
- The interpreter's ``bin/`` goes first on ``PATH`` (nbgrader's Gradebook runs ``alembic``).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "course"
SOURCE = COURSE / "source"
# ../shared/data beside the project, or the nearest one above it (a git worktree of the project
# may sit a few folders deeper than the main checkout)
SHARED_DATA = next((folder / "shared" / "data" for folder in ROOT.parents
                    if (folder / "shared" / "data").is_dir()), ROOT.parent / "shared" / "data")

_jupyter_home = Path(tempfile.mkdtemp(prefix="medai-jupyter-"))
atexit.register(shutil.rmtree, _jupyter_home, True)  # this process's own, gone with it
os.environ["MEDAI_FAST"] = "1"
os.environ["JUPYTER_DATA_DIR"] = str(_jupyter_home / "data")
os.environ["JUPYTER_CONFIG_DIR"] = str(_jupyter_home / "config")
os.environ["JUPYTER_RUNTIME_DIR"] = str(_jupyter_home / "runtime")
os.environ["IPYTHONDIR"] = str(_jupyter_home / "ipython")
os.environ["MPLBACKEND"] = "Agg"
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def chapter_dirs() -> list[Path]:
    """Every chapter folder in course/source that holds its notebook."""
    return sorted(d for d in SOURCE.iterdir() if d.is_dir() and (d / f"{d.name}.ipynb").exists())


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data files of ../shared/data; tests that need them skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is not present on this machine")
    return SHARED_DATA


def need_sandbox() -> None:
    """Skip a test that needs the grading sandbox where none can start (saying why); under CI
    that is a failure: CI installs what the sandbox needs."""
    from medai_lessons.grading.sandbox import availability

    ok, why = availability()
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"CI must be able to start the grading sandbox: {why}")
        pytest.skip(f"no grading sandbox on this machine: {why}")


def pytest_collection_modifyitems(items):
    """Tests that use the real data files carry the ``realdata`` marker (``-m realdata``)."""
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.realdata)


@pytest.fixture(autouse=True)
def _case_salt_restored():
    """A test that grades in its own process sets the checks' case salt for that process (as a
    grader does): later tests there still see the cases they name."""
    from medai_lessons.grading import core

    before = core.CASE_SALT
    yield
    core.CASE_SALT = before
