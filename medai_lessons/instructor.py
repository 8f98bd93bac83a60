"""Instructor steps of ``medai-course``, each one nbgrader step on a course folder.

- :func:`release`: ``nbgrader generate_assignment`` for all or some chapters, in the course's
  own ``course/`` folder or in a course folder of the instructor's choosing (``--course-root``,
  which receives the course's ``nbgrader_config.py`` and chapter sources the first time, and
  keeps any it already has);
- :func:`autograde`: ``nbgrader autograde`` of every submission in nbgrader's layout
  ``submitted/<student>/<chapter>/<chapter>.ipynb``, one student at a time, so that a broken
  submission (invalid JSON, a missing or misnamed file) is reported and the others are graded;
- :func:`feedback`: ``nbgrader generate_feedback`` of the autograded submissions;
- :func:`export`: ``nbgrader export`` of the Gradebook as CSV (:meth:`GradingCourse.export_csv`),
  with a ``note`` column for the rows whose 0 is not a grade (no submission, or a submission
  that could not be autograded), and an earlier, different CSV of the same name kept beside.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from medai_lessons.course import (
    CONFIG_NAME,
    CourseError,
    GradingCourse,
    chapters,
    find_course_dir,
    load_config,
)


def course_root(root: Path | None, timeout: int | None = None) -> GradingCourse:
    """The course folder to work in: ``root`` if given, else the course's ``course/``."""
    return GradingCourse.open(root or find_course_dir(), timeout=timeout)


def cell_timeout(course: GradingCourse) -> str:
    """The per-cell limit autograding uses, and where it comes from."""
    if course.timeout is not None:
        return f"{course.timeout} s (--timeout)"
    limit = load_config(course.course_dir).Execute.timeout
    return f"{limit} s (Execute.timeout in {course.course_dir / CONFIG_NAME})"


def release(root: Path | None = None, chapter_ids: list[str] | None = None,
            log=print) -> list[Path]:
    """Generate the release of each chapter; returns the release folders."""
    course_dir = find_course_dir()
    root = Path(root or course_dir).expanduser().resolve()
    # The course's chapters, and any the instructor added to their own course folder.
    available = sorted(set(chapters(course_dir))
                       | set(chapters(root) if (root / "source").is_dir() else []))
    unknown = [ch for ch in chapter_ids or [] if ch not in available]
    if unknown:
        raise CourseError(f"No chapter {', '.join(unknown)} in the course; chapters: "
                          f"{', '.join(available)}")
    chapter_ids = chapter_ids or available
    if root != course_dir:
        kept = [ch for ch in chapter_ids if (root / "source" / ch / f"{ch}.ipynb").is_file()]
        had_config = (root / CONFIG_NAME).is_file()
        GradingCourse.create(root, course_dir, chapter_ids, keep_existing=True)
        if had_config:
            log(f"Using the {CONFIG_NAME} already in {root}.")
        for ch in kept:
            log(f"Using the source/{ch} already in {root} (delete it to take the course's).")
    course = GradingCourse.open(root)
    out = []
    for ch in chapter_ids:
        out.append(course.generate(ch))
        log(f"released {ch}: {out[-1]}")
    return out


@dataclass
class GradeRow:
    student: str
    chapter: str
    score: float | None = None
    max_score: float | None = None
    seconds: float = 0.0
    note: str = ""

    @property
    def graded(self) -> bool:
        return not self.note


def submission_problem(folder: Path, chapter: str) -> str | None:
    """Why a submission folder cannot be graded, or None if its notebook looks sound."""
    import nbformat

    path = folder / f"{chapter}.ipynb"
    if not path.is_file():
        others = sorted(p.name for p in folder.glob("*.ipynb"))
        found = f"found {', '.join(others)}" if others else "the folder holds no notebook"
        return (f"missing file: expected {path.name} ({found}); rename the student's notebook "
                "to that name and grade again")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return (f"{path.name} is not valid JSON ({exc}); the file is damaged: ask the student "
                "to submit it again")
    try:
        nbformat.validate(nbformat.reads(json.dumps(data), as_version=4))
    except Exception as exc:  # nbformat raises several kinds for a file that is no notebook
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{path.name} is not a valid notebook ({first}); ask the student to resubmit"
    return None


def _failure_note(problem: str | None, exc: Exception) -> str:
    if problem:
        return problem
    errors = [line for line in str(exc).splitlines() if "[ERROR]" in line]
    return "nbgrader could not grade it: " + (errors[0].split("[ERROR]", 1)[1].strip()
                                               if errors else str(exc).splitlines()[0])


def student_folders(base: Path, chapter_ids: list[str] | None = None,
                    students: list[str] | None = None) -> list[tuple[str, str]]:
    """(student, chapter) of every ``<base>/<student>/<chapter>/`` folder, sorted."""
    pairs = sorted((d.parent.name, d.name) for d in base.glob("*/*") if d.is_dir())
    return [(s, ch) for s, ch in pairs
            if (not chapter_ids or ch in chapter_ids) and (not students or s in students)]


def autograde(course: GradingCourse, chapter_ids: list[str] | None = None,
              students: list[str] | None = None, log=print) -> list[GradeRow]:
    """Autograde every matching submission; one row per submission, broken ones noted."""
    pairs = student_folders(course.root / "submitted", chapter_ids, students)
    if not pairs:
        raise CourseError(
            f"No submissions to grade in {course.root / 'submitted'}: nbgrader expects "
            "submitted/<student>/<chapter>/<chapter>.ipynb there (`nbgrader collect` or "
            "`nbgrader zip_collect` put them in place)."
            + (f" Asked for chapters {chapter_ids}." if chapter_ids else "")
            + (f" Asked for students {students}." if students else ""))
    rows = []
    ready: dict[str, str | None] = {}
    for n, (student, ch) in enumerate(pairs, 1):
        if ch not in ready:
            ready[ch] = _prepare(course, ch, log)
        row = GradeRow(student, ch)
        start = time.monotonic()
        if ready[ch]:
            row.note = ready[ch]
        else:
            problem = submission_problem(course.root / "submitted" / student / ch, ch)
            try:
                with warnings.catch_warnings():
                    # nbgrader's Gradebook under SQLAlchemy 2 warns about this; it is harmless
                    warnings.filterwarnings("ignore", r"Object of type <Submitted\w+> not in")
                    course.autograde(ch, student)
            except Exception as exc:  # one submission's failure must not stop the others
                row.note = _failure_note(problem, exc)
            try:
                row.score, row.max_score = course.total(ch, student) or (None, None)
            except Exception as exc:  # a Gradebook that cannot be read is this row's problem
                row.note = row.note or f"could not read its score from the Gradebook: {exc}"
        row.seconds = time.monotonic() - start
        rows.append(row)
        log(f"  [{n}/{len(pairs)}] {student} / {ch}: "
            + (score_text(row) if row.graded else "not graded (see the table)")
            + f" ({row.seconds:.0f} s)", flush=True)
    return rows


def _prepare(course: GradingCourse, chapter: str, log) -> str | None:
    """Make sure the chapter can be graded; returns why not, or None."""
    if not (course.root / "source" / chapter / f"{chapter}.ipynb").is_file():
        known = sorted(set(chapters(course.root) if (course.root / "source").is_dir() else [])
                       | set(_course_chapters()))
        if chapter not in known:
            return (f"{chapter} is not a chapter (chapters: {', '.join(known)}): rename the "
                    f"folder submitted/<student>/{chapter} to the chapter's id")
        return (f"no source/{chapter} in {course.root}: release it first "
                f"(`medai-course release {chapter} --course-root {course.root}`)")
    if not course.has_assignment(chapter):
        log(f"{chapter} is not in the Gradebook yet: running generate_assignment first.")
        try:
            course.generate(chapter)
        except CourseError as exc:
            return f"generate_assignment failed, so it cannot be graded: {exc}"
    return None


def _course_chapters() -> list[str]:
    try:
        return chapters(find_course_dir())
    except CourseError:
        return []


def score_text(row: GradeRow) -> str:
    if row.score is None or not row.graded:  # nbgrader records 0 for what it could not grade
        return "-"
    return f"{row.score:g}/{row.max_score:g}"


def table(rows: list[GradeRow]) -> list[str]:
    """The score table: student, chapter, score/max, seconds, note."""
    header = ("student", "chapter", "score", "time", "note")
    cells = [(r.student, r.chapter, score_text(r), f"{r.seconds:.0f} s",
              "" if r.graded else f"NOT GRADED: {r.note}") for r in rows]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(4)]
    return ["  ".join(c[i].ljust(widths[i]) for i in range(4)) + "  " + c[4]
            for c in [header, *cells]]


def export(course: GradingCourse, dest: Path, chapter_ids: list[str] | None = None,
           students: list[str] | None = None, log=print) -> tuple[Path, int]:
    """The Gradebook as CSV at ``dest`` (nbgrader's columns, one row per student and chapter,
    plus ``note``); returns the file and its number of rows. Unknown chapters or students are
    an error. An existing, different file at ``dest`` is kept beside it, with the date."""
    import csv
    import io
    import tempfile

    dest = Path(dest).expanduser().resolve()
    if dest.is_dir():
        raise CourseError(f"--to {dest} is a folder: give the CSV file's name, e.g. "
                          f"--to {dest / 'grades.csv'}")
    with course.gradebook() as gb:
        known_chapters = sorted(a.name for a in gb.assignments)
        known_students = sorted(s.id for s in gb.students)
    for asked, known, what in ((chapter_ids, known_chapters, "chapter"),
                               (students, known_students, "student")):
        unknown = [x for x in asked or [] if x not in known]
        if unknown:
            raise CourseError(f"No {what} {', '.join(unknown)} in the Gradebook of "
                              f"{course.root}; {what}s there: {', '.join(known) or 'none'}")
    with tempfile.TemporaryDirectory(prefix="medai-export-") as tmp:
        plain = course.export_csv(Path(tmp) / "grades.csv", chapter_ids, students)
        reader = csv.DictReader(plain.open(encoding="utf-8", newline=""))
        rows, columns = list(reader), list(reader.fieldnames or ["assignment", "student_id"])
    waiting_rows = 0
    for row in rows:
        ch, student = row["assignment"], row["student_id"]
        if (course.root / "autograded" / student / ch / f"{ch}.ipynb").is_file():
            waiting = course.not_graded_yet(ch, student)
            row["note"] = (f"written answers not graded yet ({sum(waiting.values()):g} "
                           "points, counted as 0)" if waiting else "")
            waiting_rows += bool(waiting)
        elif (course.root / "submitted" / student / ch).is_dir():
            row["note"] = ("submitted but not autograded: the 0 is not a grade (see "
                           "`medai-course autograde`)")
        else:
            row["note"] = "no submission"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*columns, "note"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    text = out.getvalue()
    if dest.is_file() and dest.read_text(encoding="utf-8") != text:
        kept = dest.with_name(f"{dest.stem}.previous-{time.strftime('%Y%m%d-%H%M%S')}"
                              f"{dest.suffix}")
        dest.replace(kept)
        log(f"kept the earlier {dest.name} as {kept.name}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text, encoding="utf-8")
    not_graded = sum(bool(r["note"]) for r in rows) - waiting_rows
    if waiting_rows:
        log(f"{waiting_rows} row(s) count written answers not graded yet as 0: grade them in "
            "nbgrader's formgrader, then export again (see the note column)")
    if not_graded:
        log(f"{not_graded} row(s) score 0 without a grade (no submission, or not autograded): "
            "see the note column")
    return dest, len(rows)


def feedback(course: GradingCourse, chapter_ids: list[str] | None = None,
             students: list[str] | None = None, log=print) -> tuple[list[Path], list[str]]:
    """HTML feedback for every autograded submission; returns (files, problems)."""
    base = course.root / "autograded"
    pairs = student_folders(base, chapter_ids, students)
    if not pairs:
        raise CourseError(f"Nothing autograded in {base} yet"
                          + (f" for {', '.join(chapter_ids)}" if chapter_ids else "")
                          + ": run `medai-course autograde` first.")
    files, problems = [], []
    for student, ch in pairs:
        try:
            files.append(course.generate_feedback(ch, student))
            log(f"  feedback {student} / {ch}: {files[-1]}")
        except Exception as exc:  # one student's failure must not stop the others
            problems.append(f"{student} / {ch}: {_failure_note(None, exc)}")
            log(f"  feedback {student} / {ch}: FAILED ({problems[-1]})")
    return files, problems
