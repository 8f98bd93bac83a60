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
from dataclasses import dataclass, field
from pathlib import Path

from medai_lessons.course import (
    CONFIG_NAME,
    CourseError,
    GradingCourse,
    chapters,
    find_course_dir,
    load_config,
)


def course_root(root: Path | None, timeout: int | None = None, sandbox: bool = True,
                db_url: str | None = None) -> GradingCourse:
    """The course folder to work in: ``root`` if given, else the course's ``course/``."""
    return GradingCourse.open(root or find_course_dir(), timeout=timeout, sandbox=sandbox,
                              db_url=db_url)


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
    reused: bool = False  # recorded by an earlier run (--only-missing)
    phases: dict = field(default_factory=dict)  # where its grading time went (JobResult.phases)

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
              students: list[str] | None = None, log=print, workers: int = 1,
              scheduler: str | None = None, only_missing: bool = False,
              progress: bool = True) -> list[GradeRow]:
    """Autograde every matching submission; one row per submission, broken ones noted.

    Each submission is one job (:mod:`medai_lessons.grading.job`), graded in this process
    (``workers=1``), by ``workers`` local processes, or by the Dask cluster at ``scheduler``;
    this process alone records the results in the gradebook, each as it finishes."""
    from medai_lessons.grading.job import chapter_gradebook, is_recorded, make_job

    pairs = student_folders(course.root / "submitted", chapter_ids, students)
    if not pairs:
        raise CourseError(
            f"No submissions to grade in {course.root / 'submitted'}: nbgrader expects "
            "submitted/<student>/<chapter>/<chapter>.ipynb there (`nbgrader collect` or "
            "`nbgrader zip_collect` put them in place)."
            + (f" Asked for chapters {chapter_ids}." if chapter_ids else "")
            + (f" Asked for students {students}." if students else ""))
    if course.sandbox:
        from medai_lessons.grading.sandbox import availability

        ok, why = availability()
        if not ok:
            raise CourseError(f"Refusing to autograde without a sandbox: {why}. Where no "
                              "sandbox can start and every submission is trusted, pass "
                              "--unsandboxed.")
    rows: dict[tuple[str, str], GradeRow] = {}
    jobs = []
    ready: dict[str, str | None] = {}
    records: dict[str, bytes] = {}
    for student, ch in pairs:
        row = rows[(student, ch)] = GradeRow(student, ch)
        if ch not in ready:
            ready[ch] = _prepare(course, ch, log)
        if ready[ch]:
            row.note = ready[ch]
            continue
        if only_missing and is_recorded(course, ch, student):
            row.score, row.max_score = course.total(ch, student) or (None, None)
            row.reused = True
            continue
        problem = submission_problem(course.root / "submitted" / student / ch, ch)
        if problem:
            row.note = problem
            continue
        if ch not in records:
            records[ch] = chapter_gradebook(course, ch)
        jobs.append(make_job(course, ch, student, records[ch]))
    _run_jobs(course, jobs, rows, log, workers, scheduler, progress)
    _register_students(course, [s for (s, _), row in rows.items() if not row.graded])
    return [rows[p] for p in pairs]


def _register_students(course: GradingCourse, students: list[str]) -> None:
    """Students whose submission could not be graded are still in the gradebook, so that the
    export lists them (with a note that their 0 is not a grade)."""
    if not students:
        return
    import warnings

    from nbgrader.api import MissingEntry

    with course.gradebook() as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for student in sorted(set(students)):
            try:
                gb.find_student(student)
            except MissingEntry:
                gb.update_or_create_student(student)


def _results(jobs, workers: int, scheduler: str | None):
    """(job, result) as each job finishes: here, in local processes, or on a Dask cluster."""
    from medai_lessons.grading.job import run_job

    if scheduler:
        try:
            from distributed import Client, as_completed
        except ImportError as exc:
            raise CourseError("--scheduler needs Dask: pip install 'dask[distributed]' (and "
                              "the course package on every worker)") from exc
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as exc:
            raise CourseError(f"No Dask scheduler answers at {scheduler}: {exc}. Start one "
                              "(`dask scheduler`) and its workers (`dask worker ADDRESS`), or "
                              "grade here with --workers.") from exc
        with client:
            futures = {client.submit(run_job, job, pure=False, key=f"grade-{job.chapter}-"
                                     f"{job.student}-{id(job)}"): job for job in jobs}
            for future in as_completed(futures):
                try:
                    yield futures[future], future.result()
                except Exception as exc:  # noqa: BLE001 - a lost worker: this job's failure
                    yield futures[future], _lost(futures[future], exc)
        return
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield job, run_job(job)
        return
    yield from _pooled(jobs, workers)


def _pooled(jobs, workers: int):
    """(job, result) from ``workers`` local processes, with no more jobs handed out than there
    are workers: when a worker process dies (the machine's out-of-memory killer, a signal), the
    pool breaks and takes every job it holds with it, so only the jobs that were being graded
    are lost. Each of those is graded again alone, in a pool of its own: the one that kills
    its worker again is that submission's failure, and the others are graded; the rest of the
    class goes on in a new pool."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from medai_lessons.grading.job import run_job

    context = multiprocessing.get_context("spawn")
    waiting = list(reversed(jobs))
    while waiting:
        lost = []
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            running = {}
            while (waiting or running) and not lost:
                _fill(pool, workers, waiting, running, lost)
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                finished = []
                for future in done:
                    job = running.pop(future)
                    try:
                        finished.append((job, future.result()))
                    except BrokenProcessPool:
                        lost.append(job)
                    except Exception as exc:  # noqa: BLE001 - this job's failure
                        finished.append((job, _lost(job, exc)))
                _fill(pool, workers, waiting, running, lost)  # before recording what finished
                yield from finished
            lost += running.values()  # the pool is broken: what it held is lost too
        for job in lost:  # alone, so that a worker that dies again names its submission
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as alone:
                try:
                    yield job, alone.submit(run_job, job).result()
                except Exception as exc:  # noqa: BLE001 - it killed its worker again
                    yield job, _lost(job, exc, again=True)


def _fill(pool, workers: int, waiting: list, running: dict, lost: list) -> None:
    """Hand ``pool`` jobs from ``waiting`` until ``workers`` are being graded; a job the pool
    refuses (it broke since) goes to ``lost``."""
    from concurrent.futures.process import BrokenProcessPool

    from medai_lessons.grading.job import run_job

    while waiting and len(running) < workers and not lost:
        job = waiting.pop()
        try:
            running[pool.submit(run_job, job)] = job
        except BrokenProcessPool:
            lost.append(job)


def _lost(job, exc, again: bool = False):
    from medai_lessons.grading.job import JobResult

    what = ("the grading worker process died while grading this submission alone (it had "
            "died once already with it): " if again else "the grading worker failed: ")
    return JobResult(job.chapter, job.student, ok=False,
                     error=f"{what}{type(exc).__name__}: {exc}")


def _run_jobs(course, jobs, rows, log, workers, scheduler, progress) -> None:
    from tqdm.auto import tqdm

    from medai_lessons.grading.job import record

    bar = tqdm(total=len(jobs), desc="autograding", unit="submission", disable=not progress
               or not jobs, dynamic_ncols=True)
    failed = 0
    for n, (job, result) in enumerate(_results(jobs, workers, scheduler), 1):
        row = rows[(job.student, job.chapter)]
        row.seconds, row.phases = result.seconds, dict(result.phases)
        if result.ok:
            try:
                record(course, result)
                row.score, row.max_score = course.total(job.chapter, job.student) or (None,
                                                                                      None)
            except Exception as exc:  # noqa: BLE001 - a gradebook that cannot be written
                row.note = f"could not record it in the gradebook: {exc}"
        else:
            row.note = result.error or "not graded"
        failed += not row.graded
        bar.update()
        bar.set_postfix(graded=n - failed, failed=failed)
        line = (f"  [{n}/{len(jobs)}] {shown(job.student)} / {shown(job.chapter)}: "
                + (score_text(row) if row.graded else "not graded (see the table)")
                + f" ({row.seconds:.0f} s)")
        if progress and jobs:
            bar.write(line)
        else:
            log(line, flush=True)
    bar.close()


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


def shown(text: str) -> str:
    """``text`` as a terminal may print it: a character that is not printable (a newline,
    an escape sequence that moves the cursor or clears a line, a right-to-left override) is
    written as its escape (``\\x1b``). A student's folder or file name could otherwise
    rewrite the lines of the score table above it."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in str(text))


def score_text(row: GradeRow) -> str:
    if row.score is None or not row.graded:  # nbgrader records 0 for what it could not grade
        return "-"
    return f"{row.score:g}/{row.max_score:g}"


def table(rows: list[GradeRow]) -> list[str]:
    """The score table: student, chapter, score/max, seconds, note."""
    header = ("student", "chapter", "score", "time", "note")
    cells = [tuple(shown(c) for c in (
                 r.student, r.chapter, score_text(r), f"{r.seconds:.0f} s",
                 ("recorded by an earlier run (--only-missing)" if r.reused else "")
                 if r.graded else f"NOT GRADED: {r.note}")) for r in rows]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(4)]
    return ["  ".join(c[i].ljust(widths[i]) for i in range(4)) + "  " + c[4]
            for c in [header, *cells]]


def time_summary(rows: list[GradeRow]) -> str | None:
    """Where the graded submissions' time went, on average: the kernel's start (its imports
    included), the cells run in it, the tests run here, nbgrader's other steps, and the CPU
    seconds of the kernel (where the sandbox counts them), of the grader, and of the process
    that runs the learners' models for the checks (as it measures its requests)."""
    timed = [r.phases for r in rows if r.graded and r.phases.get("executor")]
    if not timed:
        return None

    def mean(key):
        values = [p[key] for p in timed if key in p]
        return sum(values) / len(values) if values else None

    other = mean("nbgrader") - mean("kernel start") - mean("cells in the kernel") \
        - mean("tests in the grader")
    parts = [f"kernel start {mean('kernel start'):.1f} s",
             f"cells in the kernel {mean('cells in the kernel'):.1f} s",
             f"tests in the grader {mean('tests in the grader'):.1f} s",
             f"nbgrader's other steps {other:.1f} s"]
    cpu = [f"{name} {value:.1f} s" for name, value in
           (("kernel", mean("kernel CPU")), ("grader", mean("grader CPU")),
            ("model runner", mean("model runner CPU"))) if value is not None]
    return (f"Where a submission's time went (mean of {len(timed)}): " + ", ".join(parts)
            + (f"; CPU: {', '.join(cpu)}" if cpu else "") + ".")


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
            log(f"  feedback {shown(student)} / {shown(ch)}: {shown(files[-1])}")
        except Exception as exc:  # one student's failure must not stop the others
            problems.append(shown(f"{student} / {ch}: {_failure_note(None, exc)}"))
            log(f"  feedback {shown(student)} / {shown(ch)}: FAILED ({problems[-1]})")
    return files, problems
