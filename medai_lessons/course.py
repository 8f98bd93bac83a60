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


def stamp_new_gradebook(path: Path, version: str | None = None) -> None:
    """Give a SQLite gradebook that does not exist yet its schema version (``version``, else
    nbgrader's newest), so that nbgrader's Gradebook does not start an ``alembic`` subprocess
    to look it up: seconds for every new gradebook, e.g. one per graded submission."""
    import contextlib
    import sqlite3

    path = Path(path)
    if path.exists():
        return
    if version is None:
        import nbgrader
        from alembic.script import ScriptDirectory

        version = ScriptDirectory(str(Path(nbgrader.__file__).parent / "alembic")) \
            .get_current_head()
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        db.execute("INSERT INTO alembic_version VALUES (?)", (version,))


@dataclass
class GradingCourse:
    """An nbgrader course folder (``root``) built from the course's sources."""

    root: Path
    course_dir: Path
    timeout: int | None = None  # per-cell limit (nbgrader's Execute.timeout); None: the config's
    sandbox: bool = True        # grade each submission's kernel in a sandbox (grading/sandbox.py)
    database: str | None = None  # the gradebook's URL; None: the config's db_url, else SQLite

    @classmethod
    def create(cls, root: Path, course_dir: Path | None = None,
               chapter_ids: list[str] | None = None,
               keep_existing: bool = False) -> GradingCourse:
        """Copy the configuration and the chosen chapters' sources into ``root``.

        With ``keep_existing`` a configuration or chapter source already in ``root`` (an
        instructor's own course folder, perhaps edited) is left as it is."""
        course_dir = Path(course_dir or find_course_dir())
        root = Path(root)
        (root / "source").mkdir(parents=True, exist_ok=True)
        if not (keep_existing and (root / CONFIG_NAME).is_file()):
            shutil.copy2(course_dir / CONFIG_NAME, root / CONFIG_NAME)
        for ch in chapter_ids or chapters(course_dir):
            src = course_dir / "source" / ch
            dest = root / "source" / ch
            if keep_existing and (dest / f"{ch}.ipynb").is_file():
                continue
            if not (src / f"{ch}.ipynb").is_file():
                raise CourseError(f"No chapter '{ch}' in {course_dir / 'source'}; chapters: "
                                  f"{', '.join(chapters(course_dir))}")
            shutil.copytree(src, dest, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        return cls(root=root.resolve(), course_dir=course_dir)

    @classmethod
    def open(cls, root: Path, timeout: int | None = None, sandbox: bool = True,
             db_url: str | None = None) -> GradingCourse:
        """An existing nbgrader course folder, with the configuration it holds."""
        root = Path(root).expanduser().resolve()
        if not (root / CONFIG_NAME).is_file():
            raise CourseError(
                f"{root} is not an nbgrader course folder (it has no {CONFIG_NAME}). Pass the "
                "folder you released into with --course-root, or create one with "
                f"`medai-course release --course-root {root}`.")
        if db_url is None:
            from traitlets.config.loader import PyFileConfigLoader

            raw = PyFileConfigLoader(CONFIG_NAME, path=str(root)).load_config()
            configured = str(raw.CourseDirectory.get("db_url", "") or "")
            db_url = configured if configured and not configured.startswith("sqlite") else None
        return cls(root=root, course_dir=root, timeout=timeout, sandbox=sandbox,
                   database=db_url)

    @property
    def db_url(self) -> str:
        return self.database or f"sqlite:///{self.root / 'gradebook.db'}"

    def config(self):
        """The nbgrader configuration this course folder grades with (its file, this
        object's root, database, per-cell limit and sandbox setting)."""
        config = load_config(self.course_dir, self.root, self.db_url)
        if self.timeout is not None:
            config.Execute.timeout = self.timeout
        if not self.sandbox:
            config.ExecuteGradedWork.sandbox = False
        return config

    def api(self):
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory

        self._prepare_gradebook()
        config = self.config()
        return NbGraderAPI(CourseDirectory(config=config), config=config)

    def _prepare_gradebook(self) -> None:
        _ensure_alembic_on_path()
        if self.database is None:
            stamp_new_gradebook(self.root / "gradebook.db")

    def _run(self, what: str, result: dict) -> dict:
        if not result.get("success"):
            raise CourseError(
                f"nbgrader {what} failed:\n{result.get('error')}\n{result.get('log')}")
        return result

    def case_salt(self) -> int:
        """The course's secret for the seeded cases of the checks while autograding
        (``medai_lessons.grading.core.CASE_SALT``), made once and kept in the course folder,
        which no grading kernel can read: every run grades with the same inputs, and no
        learner can know them beforehand. Delete ``.medai-case-salt`` to draw a new one."""
        import secrets

        path = self.root / ".medai-case-salt"
        if not path.is_file():
            tmp = path.with_suffix(".partial")
            tmp.write_text(str(secrets.randbits(31)), encoding="utf-8")
            os.chmod(tmp, 0o600)
            tmp.replace(path)
        return int(path.read_text(encoding="utf-8").strip())

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
        """nbgrader's ``generate_feedback``, then the page made to work offline (formulas as
        MathML) and to say which written answers are not graded yet
        (:func:`medai_lessons.feedback.finish`)."""
        from medai_lessons.feedback import finish

        self._run(f"generate_feedback {chapter} for {student}",
                  self.api().generate_feedback(chapter, student, force=True))
        page = self.root / "feedback" / student / chapter / f"{chapter}.html"
        finish(page, self.not_graded_yet(chapter, student))
        return page

    def gradebook(self):
        """nbgrader's ``Gradebook`` of this course (use it in a ``with`` block)."""
        from nbgrader.api import Gradebook

        self._prepare_gradebook()
        return Gradebook(self.db_url)

    def has_assignment(self, chapter: str) -> bool:
        """Whether ``generate_assignment`` has put the chapter into the Gradebook."""
        from nbgrader.api import MissingEntry

        if self.database is None and not (self.root / "gradebook.db").is_file():
            return False
        with self.gradebook() as gb:
            try:
                gb.find_assignment(chapter)
            except MissingEntry:
                return False
        return True

    def total(self, chapter: str, student: str) -> tuple[float, float] | None:
        """(score, max_score) of a submission in the Gradebook, or None if there is none."""
        from nbgrader.api import MissingEntry

        with self.gradebook() as gb:
            try:
                sub = gb.find_submission(chapter, student)
            except MissingEntry:
                return None
            return float(sub.score), float(sub.max_score)

    def export_csv(self, dest: Path, chapter_ids: list[str] | None = None,
                   students: list[str] | None = None) -> Path:
        """``nbgrader export``: the Gradebook as CSV, with nbgrader's ``CsvExportPlugin``
        (one row per student and chapter; a student with no submission scores 0)."""
        from nbgrader.plugins import CsvExportPlugin

        dest = Path(dest).expanduser().resolve()
        dest.parent.mkdir(parents=True, exist_ok=True)
        plugin = CsvExportPlugin(to=str(dest), assignment=list(chapter_ids or []),
                                 student=list(students or []))
        with self.gradebook() as gb:
            plugin.export(gb)
        return dest

    def not_graded_yet(self, chapter: str, student: str) -> dict[str, float]:
        """The cells of a submission that wait for a person's grade (written answers before
        the formgrader), as grade_id -> points; nbgrader counts each as 0 meanwhile. Empty
        when there is no such submission."""
        from nbgrader.api import MissingEntry

        with self.gradebook() as gb:
            try:
                sub = gb.find_submission(chapter, student)
            except MissingEntry:
                return {}
            return {g.name: float(g.max_score) for nb in sub.notebooks for g in nb.grades
                    if g.manual_score is None and g.auto_score is None}

    def scores(self, chapter: str, student: str) -> dict[str, dict]:
        """Per-cell grades from the Gradebook: grade_id -> {auto_score, max_score, kind}."""
        out = {}
        with self.gradebook() as gb:
            nb = gb.find_submission_notebook(chapter, chapter, student)
            for grade in nb.grades:
                kind = "written" if grade.cell.cell_type == "markdown" else "autograded"
                out[grade.name] = {"auto_score": grade.auto_score, "max_score": grade.max_score,
                                   "kind": kind}
        return out
