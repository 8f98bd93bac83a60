"""The instructor's commands, run for real on a temporary course root: ``release``,
``autograde`` (with a broken and a misnamed submission beside a good one), ``export`` and
``feedback``, each a step of nbgrader."""

from __future__ import annotations

import contextlib
import csv
import io
import re
import shutil
import tempfile
from pathlib import Path

import nbformat
import pytest

from conftest import COURSE, SOURCE
from medai_lessons.cli import main
from medai_lessons.course import GradingCourse
from medai_lessons.instructor import cell_timeout, course_root, submission_problem

CH = "ch02_activations_losses"


def submit(root, student, name=f"{CH}.ipynb", text=None):
    folder = root / "submitted" / student / CH
    folder.mkdir(parents=True, exist_ok=True)
    if text is None:
        shutil.copy2(SOURCE / CH / f"{CH}.ipynb", folder / name)
    else:
        (folder / name).write_text(text)
    return folder


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Release into a fresh course root, then autograde three submissions: the source (full
    marks on the autograded cells), invalid JSON, and a notebook under the wrong name."""
    root = tmp_path_factory.mktemp("instructor") / "my-course"
    runs = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDAI_COURSE_DIR", str(COURSE))
        runs["release"] = run(["release", "--course-root", str(root), CH])
        submit(root, "alice")
        submit(root, "bob", text='{"cells": [')
        submit(root, "carol", name="Untitled.ipynb")
        runs["autograde"] = run(["autograde", "--course-root", str(root)])
    return root, runs


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.slow
def test_release_generates_into_the_chosen_root(graded):
    root, runs = graded
    code, out, _ = runs["release"]
    assert code == 0 and f"released {CH}" in out
    released = (root / "release" / CH / f"{CH}.ipynb").read_text()
    assert "BEGIN SOLUTION" not in released and "raise NotImplementedError()" in released
    config = "nbgrader_config.py"
    assert (root / config).read_bytes() == (COURSE / config).read_bytes()
    assert (root / "gradebook.db").is_file()


@pytest.mark.slow
def test_autograde_prints_a_table_and_survives_broken_submissions(graded):
    _, runs = graded
    code, out, _ = runs["autograde"]
    assert code == 1, "a submission that could not be graded makes the exit code 1"
    assert "per-cell limit 120 s (Execute.timeout" in out
    rows = {line.split()[0]: line for line in out.splitlines()
            if line.split() and line.split()[0] in ("alice", "bob", "carol")
            and CH in line}
    assert rows["alice"].split()[2] == "19/22", rows["alice"]  # 3 written points wait for a person
    assert "NOT GRADED" not in rows["alice"]
    assert "NOT GRADED" in rows["bob"] and "not valid JSON" in rows["bob"]
    assert rows["bob"].split()[2] == "-", "nbgrader's 0 for what it could not grade is no score"
    assert "NOT GRADED" in rows["carol"] and "found Untitled.ipynb" in rows["carol"]
    assert "rename" in rows["carol"]
    assert "2 of 3 submission(s) could not be graded" in out
    # one progress line per submission graded (the two broken ones are in the table only)
    progress = [line for line in out.splitlines() if line.strip().startswith("[")]
    assert len(progress) == 1 and all(re.search(r"\(\d+ s\)$", line) for line in progress), (
        progress)                                            # how long each submission took


@pytest.mark.slow
def test_export_writes_nbgraders_csv(graded, tmp_path):
    root, _ = graded
    dest = tmp_path / "grades" / "ch02.csv"
    code, out, _ = run(["export", "--course-root", str(root), "--to", str(dest), CH])
    assert code == 0 and str(dest) in out
    rows = {r["student_id"]: r for r in csv.DictReader(dest.open())}
    assert set(rows) == {"alice", "bob", "carol"}
    assert float(rows["alice"]["score"]) == 19 and float(rows["alice"]["max_score"]) == 22
    assert float(rows["bob"]["score"]) == 0
    # nbgrader's 0 for a submission it could not grade is marked as no grade, and so is the
    # 0 of a written answer no one has graded yet
    assert rows["alice"]["note"] == "written answers not graded yet (3 points, counted as 0)"
    assert "1 row(s) count written answers not graded yet as 0" in out
    assert all("not autograded" in rows[s]["note"] for s in ("bob", "carol"))
    assert "2 row(s) score 0 without a grade" in out
    first = dest.read_bytes()
    code, out, _ = run(["export", "--course-root", str(root), "--to", str(dest), "--student",
                        "alice"])
    assert code == 0 and [r["student_id"] for r in csv.DictReader(dest.open())] == ["alice"]
    [kept] = dest.parent.glob("ch02.previous-*.csv")       # the earlier export is not lost
    assert kept.read_bytes() == first and f"kept the earlier ch02.csv as {kept.name}" in out
    run(["export", "--course-root", str(root), "--to", str(dest), "--student", "alice"])
    assert len(list(dest.parent.glob("ch02.previous-*.csv"))) == 1   # same content: no copy


@pytest.mark.slow
@pytest.mark.parametrize(("args", "message"), [
    (["ch1"], f"No chapter ch1 in the Gradebook of .*; chapters there: {CH}"),
    (["--student", "zed"], "No student zed in the Gradebook of .*; students there: alice, bob"),
    (["--to", "{tmp}"], "is a folder: give the CSV file's name"),
])
def test_export_refuses_what_is_not_there(graded, tmp_path, args, message):
    root, _ = graded
    dest = tmp_path / "g.csv"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, _, err = run(["export", "--course-root", str(root), "--to", str(dest), *argv])
    assert code == 2 and re.search(message, err), err
    assert not dest.exists()


@pytest.mark.slow
def test_a_submission_folder_named_after_no_chapter_says_to_rename_it(graded):
    from medai_lessons.instructor import _prepare

    root, _ = graded
    note = _prepare(course_root(root), "ch1", print)
    assert note.startswith("ch1 is not a chapter (chapters: ") and CH in note
    assert "rename the folder submitted/<student>/ch1" in note


@pytest.mark.slow
def test_feedback_is_generated_for_graded_submissions(graded):
    root, _ = graded
    code, out, _ = run(["feedback", "--course-root", str(root), CH])
    assert code == 0, out
    html = root / "feedback" / "alice" / CH / f"{CH}.html"
    assert html.is_file() and "<html" in html.read_text(encoding="utf-8")[:2000].lower()
    page = html.read_text(encoding="utf-8")
    # offline: no MathJax from a CDN, every formula of the text drawn as MathML
    assert "cdnjs" not in page and "mathjax/2" not in page.lower()
    assert page.count("<math") >= 50
    assert "$z = w^\\top x + b$" not in page and "$a = f(z)$" not in page
    # the written answer waits for a person: not a 0
    assert "(not graded yet, 3 points)" in page
    assert "Score: not graded yet (3 points)" in page
    assert "3 points of written answers not graded yet, counted as 0" in page
    assert not (root / "feedback" / "bob").exists(), "nothing was graded for bob"
    assert "1 feedback file(s)" in out


@pytest.mark.slow
def test_release_keeps_an_instructors_own_source(graded):
    root, _ = graded
    path = root / "source" / CH / f"{CH}.ipynb"
    nb = nbformat.read(path, 4)
    nb.cells[0].source += "\n\nNote from the instructor."
    nbformat.write(nb, path)
    mine = path.read_bytes()
    code, out, _ = run(["release", "--course-root", str(root), CH])
    assert code == 0 and f"Using the source/{CH} already in" in out
    assert path.read_bytes() == mine
    assert "Note from the instructor." in (root / "release" / CH / f"{CH}.ipynb").read_text()


@pytest.mark.parametrize(("argv", "message"), [
    (["autograde"], "is not an nbgrader course folder"),
    (["export"], "is not an nbgrader course folder"),
    (["feedback"], "is not an nbgrader course folder"),
    (["release", "ch99_nothing"], "No chapter ch99_nothing in the course; chapters: "),
])
def test_bad_course_root_or_chapter_says_what_to_do(tmp_path, monkeypatch, argv, message):
    monkeypatch.setenv("MEDAI_COURSE_DIR", str(COURSE))
    code, out, err = run([*argv, "--course-root", str(tmp_path / "nowhere")])
    assert code == 2 and message in err, err
    assert "--course-root" in err or CH in err
    assert not (tmp_path / "nowhere").exists(), "bad input creates nothing"


def test_empty_course_root_has_nothing_to_grade_or_send(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDAI_COURSE_DIR", str(COURSE))
    root = tmp_path / "c"
    root.mkdir()
    shutil.copy2(COURSE / "nbgrader_config.py", root)
    code, _, err = run(["autograde", "--course-root", str(root)])
    assert code == 2 and "submitted/<student>/<chapter>/<chapter>.ipynb" in err
    code, _, err = run(["feedback", "--course-root", str(root)])
    assert code == 2 and "run `medai-course autograde` first" in err
    code, _, err = run(["export", "--course-root", str(root)])
    assert code == 2 and "No Gradebook" in err


def test_a_path_of_the_wrong_kind_is_a_one_line_error(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    code, _, err = run(["workspace", "--workspace", str(a_file)])
    assert code == 2 and err.startswith("medai-course: cannot use") and str(a_file) in err
    assert "Traceback" not in err


def test_submission_problems_are_named(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    assert "the folder holds no notebook" in submission_problem(folder, CH)
    (folder / f"{CH}.ipynb").write_text('{"cells": 3}')
    assert "is not a valid notebook" in submission_problem(folder, CH)
    shutil.copy2(SOURCE / CH / f"{CH}.ipynb", folder)
    assert submission_problem(folder, CH) is None


def test_timeout_option_reaches_nbgraders_execute(tmp_path, capsys):
    shutil.copy2(COURSE / "nbgrader_config.py", tmp_path)
    course = course_root(tmp_path, timeout=7)
    assert course.api().config.Execute.timeout == 7
    assert cell_timeout(course) == "7 s (--timeout)"
    default = course_root(tmp_path)
    assert default.api().config.Execute.timeout == 120
    assert cell_timeout(default).startswith("120 s (Execute.timeout in ")
    with pytest.raises(SystemExit):
        main(["autograde", "--timeout", "-5", "--course-root", str(tmp_path)])
    assert "seconds > 0" in capsys.readouterr().err


def test_export_with_no_students_keeps_nbgraders_columns(tmp_path):
    from medai_lessons.course import GradingCourse
    from medai_lessons.instructor import export

    course = GradingCourse.create(tmp_path / "course", COURSE, [CH])
    with course.gradebook() as gb:
        gb.add_assignment(CH)                       # released, but nobody enrolled yet
    dest, n_rows = export(course, tmp_path / "grades.csv", log=lambda *_: None)
    header = dest.read_text().splitlines()[0].split(",")
    assert n_rows == 0
    assert header[:2] == ["assignment", "duedate"] and "student_id" in header and "score" in header
    assert header[-1] == "note"


def test_a_new_gradebook_gets_nbgraders_schema_version_without_an_alembic_subprocess(
        tmp_path, monkeypatch):
    import sqlite3

    import nbgrader.api

    expected = nbgrader.api.get_alembic_version()  # what nbgrader itself would write

    def refuse():
        raise AssertionError("a new gradebook started alembic in a subprocess")

    monkeypatch.setattr(nbgrader.api, "get_alembic_version", refuse)
    course = GradingCourse.create(tmp_path / "c", COURSE, ["ch01_background"])
    with course.gradebook() as gb:
        assert gb.assignments == []
    path = tmp_path / "c" / "gradebook.db"
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(expected,)]
        assert "grade_cells" in {r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")}
    course.generate("ch01_background")  # nbgrader's own app works on it
    with course.gradebook() as gb:
        assert [a.name for a in gb.assignments] == ["ch01_background"]


#: a red-team helper, round 11: a file name (or a student's folder name) holding a newline and
#: terminal escapes moved the cursor up and rewrote the rows above it ("dave ... not graded",
#: "mallory ... 12/12")
FORGING_NAMES = [
    "x\n\x1b[2A\x1b[2Kdave  ch02  0\u221522  NOT GRADED\n\x1b[2Kmallory  ch02  22\u221522.ipynb",
    "x\r\x1b[1;1Hmallory 22\u221522\u202e.ipynb",      # (\u2215 looks like a slash)
]


@pytest.mark.parametrize("name", FORGING_NAMES)
def test_the_score_table_prints_no_terminal_control_from_a_submission(name):
    from medai_lessons.instructor import GradeRow, submission_problem, table

    folder = Path(tempfile.mkdtemp(prefix="medai-names-"))
    try:
        (folder / name).write_text("{}")
        note = submission_problem(folder, CH)
    finally:
        shutil.rmtree(folder)
    rows = [GradeRow(student="mal\x1b[2Klory\n", chapter=CH, note=note),
            GradeRow(student="dave", chapter=CH, score=19, max_score=22)]
    lines = table(rows)
    assert len(lines) == 3 and lines[2].split()[:3] == ["dave", CH, "19/22"], lines
    text = "\n".join(lines)
    assert not any(not c.isprintable() for line in lines for c in line), text
    assert "\\x1b[2A" in lines[1] or "\\x1b[1;1H" in lines[1], lines[1]
    assert lines[1].startswith("mal\\x1b[2Klory\\n "), lines[1]
