"""The course's nbgrader folder and thin wrappers over nbgrader's own API.

Everything here drives ``nbgrader.apps.NbGraderAPI`` with the course's
``course/nbgrader_config.py``, in a course folder of the caller's choosing (often a temporary
copy), so that a user of nbgrader recognises each step: generate_assignment, autograde,
generate_feedback, and scores read from the ``Gradebook``.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

CONFIG_NAME = "nbgrader_config.py"


class CourseError(RuntimeError):
    """A problem with the course folder or an nbgrader step, with what to do about it."""


def find_course_dir(start: Path | None = None) -> Path:
    """The ``course/`` folder: ``$MEDAI_COURSE_DIR``, else ``./course``, else the one beside
    this package in a source checkout."""
    candidates = []
    if os.environ.get("MEDAI_COURSE_DIR"):
        candidates.append(Path(os.environ["MEDAI_COURSE_DIR"]))
    candidates.append((start or Path.cwd()) / "course")
    candidates.append(Path(__file__).resolve().parents[1] / "course")
    for c in candidates:
        if (c / CONFIG_NAME).is_file() and (c / "source").is_dir():
            return c.resolve()
    raise CourseError(
        "Cannot find the course folder (a 'course/' with nbgrader_config.py and source/). "
        "Run this from the root of a MedAI Lessons checkout, or set MEDAI_COURSE_DIR to it. "
        f"Looked in: {', '.join(str(c) for c in candidates)}"
    )


def chapters(course_dir: Path) -> list[str]:
    """Chapter ids: every ``source/<id>/`` that holds ``<id>.ipynb``, sorted."""
    src = Path(course_dir) / "source"
    return sorted(d.name for d in src.iterdir()
                  if d.is_dir() and (d / f"{d.name}.ipynb").is_file())


def load_config(course_dir: Path, root: Path | None = None, db_url: str | None = None):
    """The course's nbgrader configuration, with the course root (and database) overridden."""
    from traitlets.config.loader import PyFileConfigLoader

    course_dir = Path(course_dir)
    config = PyFileConfigLoader(CONFIG_NAME, path=str(course_dir)).load_config()
    root = Path(root or course_dir).resolve()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.db_url = db_url or f"sqlite:///{root / 'gradebook.db'}"
    return config


def _ensure_alembic_on_path() -> None:
    # The Gradebook runs the `alembic` command of this interpreter's environment.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


@dataclass
class GradingCourse:
    """An nbgrader course folder (``root``) built from the course's sources."""

    root: Path
    course_dir: Path

    @classmethod
    def create(cls, root: Path, course_dir: Path | None = None,
               chapter_ids: list[str] | None = None) -> GradingCourse:
        """Copy the configuration and the chosen chapters' sources into ``root``."""
        course_dir = Path(course_dir or find_course_dir())
        root = Path(root)
        (root / "source").mkdir(parents=True, exist_ok=True)
        shutil.copy2(course_dir / CONFIG_NAME, root / CONFIG_NAME)
        for ch in chapter_ids or chapters(course_dir):
            src = course_dir / "source" / ch
            if not (src / f"{ch}.ipynb").is_file():
                raise CourseError(f"No chapter '{ch}' in {course_dir / 'source'}; chapters: "
                                  f"{', '.join(chapters(course_dir))}")
            shutil.copytree(src, root / "source" / ch, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        return cls(root=root.resolve(), course_dir=course_dir)

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.root / 'gradebook.db'}"

    def api(self):
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory

        _ensure_alembic_on_path()
        config = load_config(self.course_dir, self.root, self.db_url)
        return NbGraderAPI(CourseDirectory(config=config), config=config)

    def _run(self, what: str, result: dict) -> dict:
        if not result.get("success"):
            raise CourseError(
                f"nbgrader {what} failed:\n{result.get('error')}\n{result.get('log')}")
        return result

    def generate(self, chapter: str) -> Path:
        """``nbgrader generate_assignment``; returns the release folder of the chapter."""
        self._run(f"generate_assignment {chapter}",
                  self.api().generate_assignment(chapter, force=True, create=True))
        return self.root / "release" / chapter

    def submit(self, chapter: str, student: str, notebook: Path) -> Path:
        """Place a notebook as ``submitted/<student>/<chapter>/<chapter>.ipynb``."""
        dest = self.root / "submitted" / student / chapter
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(notebook, dest / f"{chapter}.ipynb")
        return dest / f"{chapter}.ipynb"

    def autograde(self, chapter: str, student: str) -> dict:
        return self._run(f"autograde {chapter} for {student}",
                         self.api().autograde(chapter, student, force=True, create=True))

    def generate_feedback(self, chapter: str, student: str) -> Path:
        self._run(f"generate_feedback {chapter} for {student}",
                  self.api().generate_feedback(chapter, student, force=True))
        return self.root / "feedback" / student / chapter / f"{chapter}.html"

    def scores(self, chapter: str, student: str) -> dict[str, dict]:
        """Per-cell grades from the Gradebook: grade_id -> {auto_score, max_score, kind}."""
        from nbgrader.api import Gradebook

        _ensure_alembic_on_path()
        out = {}
        with Gradebook(self.db_url) as gb:
            nb = gb.find_submission_notebook(chapter, chapter, student)
            for grade in nb.grades:
                kind = "written" if grade.cell.cell_type == "markdown" else "autograded"
                out[grade.name] = {"auto_score": grade.auto_score, "max_score": grade.max_score,
                                   "kind": kind}
        return out
