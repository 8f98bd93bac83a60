"""One submission graded as one self-contained job, and the one writer that records it.

:class:`GradingJob` is plain data: the submitted notebook, the chapter's records from the
instructor's gradebook (as a small gradebook file of their own: the assignment, its notebooks
and cells, no student), the course's nbgrader configuration and the limits. :func:`run_job`
grades it anywhere the course package is installed (this process, a local worker process, a
Dask worker on another machine): a temporary course folder, nbgrader's own ``autograde`` with
the course's configuration (the sandboxed kernel, tests decided in the grader's process,
the restored structure, output limits, timeouts), and returns a :class:`JobResult`, plain data
again: the autograded notebook, each cell's automatic score and comment, nbgrader's log. Nothing
travels through a shared disk.

:func:`record` is the only code that writes the instructor's gradebook: it writes the autograded
notebook (atomically), then the submission's scores in one transaction, so that a grading run
stopped half-way leaves every finished submission recorded and none half-recorded.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from medai_lessons.course import CONFIG_NAME, GradingCourse
from medai_lessons.grading import sandbox


@dataclass
class GradingJob:
    chapter: str
    student: str
    notebook: bytes                # the submitted notebook file, as submitted
    gradebook: bytes               # a gradebook file holding only the chapter's records
    config: str                    # the course's nbgrader_config.py
    timestamp: str | None = None   # nbgrader's timestamp.txt of the submission, if any
    timeout: int | None = None     # per-cell limit (None: the configuration's)
    sandbox: bool = True
    salt: int | None = None        # the course's secret for the checks' seeded cases


@dataclass
class JobResult:
    chapter: str
    student: str
    ok: bool
    error: str = ""
    notebook: bytes = b""                              # the autograded notebook
    grades: dict[str, dict] = field(default_factory=dict)      # grade_id -> auto fields
    comments: dict[str, str | None] = field(default_factory=dict)
    timestamp: str | None = None
    log: str = ""
    seconds: float = 0.0
    worker: str = ""
    #: where the time went, in seconds: ``nbgrader`` (its whole autograde step), and within
    #: it the executor's ``kernel start``, ``cells in the kernel``, ``tests in the grader``,
    #: ``executor``, and ``kernel CPU`` where the sandbox counts it (see grading.execute)
    phases: dict[str, float] = field(default_factory=dict)


# --- the chapter's records -----------------------------------------------------------------

def chapter_gradebook(course: GradingCourse, chapter: str) -> bytes:
    """A gradebook file holding only ``chapter``'s assignment records (no students, no
    submissions): what a job needs of the instructor's gradebook."""
    from nbgrader.api import Gradebook
    from sqlalchemy import text

    from medai_lessons.course import stamp_new_gradebook

    with tempfile.TemporaryDirectory(prefix="medai-records-") as tmp:
        path = Path(tmp) / "gradebook.db"
        with course.gradebook() as gb, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assignment = gb.find_assignment(chapter)
            stamp_new_gradebook(path, gb.db.execute(
                text("SELECT version_num FROM alembic_version")).scalar())
            with Gradebook(f"sqlite:///{path}") as out:
                out.update_or_create_assignment(chapter, duedate=assignment.duedate)
                for nb in assignment.notebooks:
                    out.update_or_create_notebook(nb.name, chapter)
                    for c in nb.source_cells:
                        out.update_or_create_source_cell(c.name, nb.name, chapter,
                                                         cell_type=c.cell_type, locked=c.locked,
                                                         source=c.source, checksum=c.checksum)
                    for c in nb.grade_cells:
                        out.update_or_create_grade_cell(c.name, nb.name, chapter,
                                                        max_score=c.max_score,
                                                        cell_type=c.cell_type)
                    for c in nb.solution_cells:
                        out.update_or_create_solution_cell(c.name, nb.name, chapter)
                    for c in nb.task_cells:
                        out.update_or_create_task_cell(c.name, nb.name, chapter,
                                                       max_score=c.max_score,
                                                       cell_type=c.cell_type)
        return path.read_bytes()


def make_job(course: GradingCourse, chapter: str, student: str, records: bytes) -> GradingJob:
    folder = course.root / "submitted" / student / chapter
    stamp = folder / "timestamp.txt"
    return GradingJob(chapter=chapter, student=student,
                      notebook=(folder / f"{chapter}.ipynb").read_bytes(), gradebook=records,
                      config=(course.root / CONFIG_NAME).read_text(encoding="utf-8"),
                      timestamp=stamp.read_text(encoding="utf-8").strip() if stamp.is_file()
                      else None, timeout=course.timeout, sandbox=course.sandbox,
                      salt=submission_salt(course.case_salt(), chapter, student,
                                           (folder / f"{chapter}.ipynb").read_bytes()))


def submission_salt(secret: int, chapter: str, student: str, notebook: bytes) -> int:
    """The salt of one submission's seeded cases: from the course's secret and the
    submission's own bytes, so that the same submission is always checked on the same inputs
    (on any worker) and a resubmission on new ones (the inputs a feedback showed are no use
    for the next try)."""
    import hashlib

    digest = hashlib.sha256(f"{secret}:{chapter}:{student}:".encode() + notebook).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


# --- the job --------------------------------------------------------------------------------

def run_job(job: GradingJob) -> JobResult:
    """Grade one submission in a temporary course folder; never raises (a failure is the
    result's ``error``)."""
    import platform

    from medai_lessons.grading import core

    if job.salt is not None:
        core.CASE_SALT = job.salt
    start = time.monotonic()
    result = JobResult(job.chapter, job.student, ok=False,
                       worker=f"{platform.node()}:{os.getpid()}")
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    with sandbox.temp_dir("medai-job-") as tmp:
        root = Path(tmp)
        (root / CONFIG_NAME).write_text(job.config, encoding="utf-8")
        (root / "source" / job.chapter).mkdir(parents=True)
        (root / "gradebook.db").write_bytes(job.gradebook)
        folder = root / "submitted" / job.student / job.chapter
        folder.mkdir(parents=True)
        (folder / f"{job.chapter}.ipynb").write_bytes(job.notebook)
        if job.timestamp:
            (folder / "timestamp.txt").write_text(job.timestamp, encoding="utf-8")
        course = GradingCourse(root=root, course_dir=root, timeout=job.timeout,
                               sandbox=job.sandbox)
        try:
            from medai_lessons.grading import execute
            from medai_lessons.grading.runner import runner

            execute.LAST_PHASES.clear()
            graded, cpu = time.monotonic(), time.process_time()
            models = runner().cpu_total
            with _captured(handler), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                course.autograde(job.chapter, job.student)
            result.phases = {"nbgrader": time.monotonic() - graded,
                             "grader CPU": time.process_time() - cpu,
                             "model runner CPU": runner().cpu_total - models,
                             **execute.LAST_PHASES}
            _read_back(course, job, result, root)
            result.ok = True
        except Exception as exc:  # noqa: BLE001 - one submission's failure is its result
            result.error = _first_error(exc)
    result.log = buffer.getvalue()[-20_000:]
    result.seconds = time.monotonic() - start
    return result


@contextlib.contextmanager
def _captured(handler):
    logger = logging.getLogger()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _first_error(exc: Exception) -> str:
    errors = [line for line in str(exc).splitlines() if "[ERROR]" in line]
    if errors:
        return "nbgrader could not grade it: " + errors[0].split("[ERROR]", 1)[1].strip()
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:2000]


def _read_back(course: GradingCourse, job: GradingJob, result: JobResult, root: Path) -> None:
    path = root / "autograded" / job.student / job.chapter / f"{job.chapter}.ipynb"
    result.notebook = path.read_bytes()
    with course.gradebook() as gb:
        sub = gb.find_submission(job.chapter, job.student)
        result.timestamp = sub.timestamp.isoformat() if sub.timestamp else None
        for nb in sub.notebooks:
            for grade in nb.grades:
                result.grades[grade.name] = {"auto_score": grade.auto_score,
                                             "needs_manual_grade": grade.needs_manual_grade,
                                             "late_penalty": None}
            for comment in nb.comments:
                result.comments[comment.name] = comment.auto_comment
            result.grades["__late__"] = {"late_penalty": nb.late_submission_penalty}


# --- the one writer -------------------------------------------------------------------------

def record(course: GradingCourse, result: JobResult) -> None:
    """Write a finished job into the instructor's course: the autograded notebook first
    (atomically), then every score of the submission in one transaction."""
    if not result.ok:
        return
    dest = course.root / "autograded" / result.student / result.chapter
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / f".{result.chapter}.ipynb.partial"
    tmp.write_bytes(result.notebook)
    tmp.replace(dest / f"{result.chapter}.ipynb")
    stamp = course.root / "submitted" / result.student / result.chapter / "timestamp.txt"
    if stamp.is_file():
        shutil.copy2(stamp, dest / "timestamp.txt")
    _record_scores(course, result)


def _record_scores(course: GradingCourse, result: JobResult) -> None:
    from nbgrader import utils
    from nbgrader.api import (
        Comment,
        Grade,
        MissingEntry,
        SubmittedAssignment,
        SubmittedNotebook,
    )

    with course.gradebook() as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            gb.find_student(result.student)
        except MissingEntry:
            gb.update_or_create_student(result.student)
        db = gb.db
        try:
            try:
                sub = gb.find_submission(result.chapter, result.student)
            except MissingEntry:
                sub = SubmittedAssignment(assignment=gb.find_assignment(result.chapter),
                                          student=gb.find_student(result.student))
                for notebook in sub.assignment.notebooks:
                    nb = SubmittedNotebook(notebook=notebook, assignment=sub)
                    for cell in notebook.grade_cells:
                        Grade(cell_id=cell.id, notebook=nb)
                    for cell in notebook.solution_cells:
                        Comment(cell_id=cell.id, notebook=nb)
                    for cell in notebook.task_cells:
                        Comment(cell_id=cell.id, notebook=nb)
                        Grade(cell_id=cell.id, notebook=nb)
                db.add(sub)
                db.flush()
            if result.timestamp:
                sub.timestamp = utils.parse_utc(result.timestamp)
            late = result.grades.get("__late__", {}).get("late_penalty")
            for nb in sub.notebooks:
                nb.late_submission_penalty = late
                for grade in nb.grades:
                    fields = result.grades.get(grade.name)
                    if fields is not None:
                        grade.auto_score = fields["auto_score"]
                        grade.needs_manual_grade = fields["needs_manual_grade"]
                for comment in nb.comments:
                    if comment.name in result.comments:
                        comment.auto_comment = result.comments[comment.name]
            db.commit()
        except Exception:
            db.rollback()
            raise


def is_recorded(course: GradingCourse, chapter: str, student: str) -> bool:
    """Whether a submission's grading finished and was recorded (``--only-missing``)."""
    from nbgrader.api import MissingEntry

    if not (course.root / "autograded" / student / chapter / f"{chapter}.ipynb").is_file():
        return False
    if not (course.root / "gradebook.db").is_file() and course.db_url.startswith("sqlite"):
        return False
    with course.gradebook() as gb:
        try:
            sub = gb.find_submission(chapter, student)
        except MissingEntry:
            return False
        return all(g.auto_score is not None or g.cell.cell_type == "markdown"
                   for nb in sub.notebooks for g in nb.grades)
