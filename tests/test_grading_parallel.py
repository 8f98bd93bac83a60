"""A whole class graded serially, by local workers and on a Dask cluster, with one writer.

One mixed class of chapter 1 (right, partly right, untouched, not JSON, hostile) is graded
three ways: ``medai-course autograde --workers 1``, ``--workers 2`` and ``--scheduler`` with a
real Dask scheduler and two worker processes started here. Scores, autograded notebooks and
feedback must be identical submission by submission. A run killed half-way must leave every
finished submission recorded and none half-recorded; ``--only-missing`` then grades the rest.
The PostgreSQL gradebook is tested against a real server started here (Debian's packages).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from conftest import COURSE, need_sandbox
from medai_lessons.course import GradingCourse
from nbtools import answer_cells, answered, cell, expected_scores, nbg, read

pytestmark = pytest.mark.slow
CH = "ch01_background"
CLI = [sys.executable, "-m", "medai_lessons.cli"]


def _class(root: Path) -> dict[str, set[str]]:
    """Release chapter 1 into ``root`` and submit a mixed class; returns student -> the
    answer cells that are wrong or missing (None for a submission that cannot be graded)."""
    course = GradingCourse.create(root, COURSE, [CH])
    release = course.generate(CH)
    source = read(root / "source" / CH / f"{CH}.ipynb")
    released = read(release / f"{CH}.ipynb")
    answers = [nbg(c)["grade_id"] for c in answer_cells(source)]
    plan = {"right": set(), "partly": set(answers[1::2]), "untouched": set(answers),
            "cheats": {"ans_ppv_from_prevalence"}, "loops": {"ans_confusion_counts"},
            "right_too": set()}
    for student, broken in plan.items():
        nb = answered(released, source, set(answers) - broken) if student != "untouched" \
            else released
        if student == "cheats":
            cell(nb, "ans_ppv_from_prevalence").source = (
                "import numpy as np\nnp.allclose = lambda *a, **k: True\n"
                "def ppv_from_prevalence(s, p, q):\n    return 0.5\n")
        if student == "loops":
            cell(nb, "ans_confusion_counts").source = "while True:\n    pass\n"
        dest = root / "submitted" / student / CH
        dest.mkdir(parents=True)
        nbformat.write(nb, dest / f"{CH}.ipynb")
    broken_dir = root / "submitted" / "not_json" / CH
    broken_dir.mkdir(parents=True)
    (broken_dir / f"{CH}.ipynb").write_text('{"cells": [ not JSON')
    config = root / "nbgrader_config.py"
    config.write_text(config.read_text() + "\nc.Execute.timeout = 20\n")
    return {**plan, "not_json": None}


def _autograde(root: Path, *args, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([*CLI, "autograde", CH, "--course-root", str(root), *args],
                          capture_output=True, text=True, timeout=1800)
    if check:
        assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return proc


def _results(root: Path, students) -> dict:
    course = GradingCourse.open(root)
    out = {}
    for student in students:
        nb_path = root / "autograded" / student / CH / f"{CH}.ipynb"
        try:
            scores = {k: v["auto_score"] for k, v in course.scores(CH, student).items()
                      if v["kind"] == "autograded"}
        except Exception:  # noqa: BLE001 - not graded
            scores = None
        out[student] = {"scores": scores,
                        "notebook": nb_path.read_text() if nb_path.is_file() else None}
    return out


@pytest.fixture(scope="module")
def classes(tmp_path_factory):
    need_sandbox()
    base = tmp_path_factory.mktemp("parallel")
    plan = _class(base / "serial")
    for name in ("workers", "dask"):
        shutil.copytree(base / "serial", base / name)
    runs = {"serial": _autograde(base / "serial", "--workers", "1"),
            "workers": _autograde(base / "workers", "--workers", "2")}
    with _dask_cluster(base / "dask-cluster") as address:
        runs["dask"] = _autograde(base / "dask", "--scheduler", address)
    results = {name: _results(base / name, plan) for name in runs}
    return {"base": base, "plan": plan, "runs": runs, "results": results}


class _dask_cluster:
    """A Dask scheduler and two single-threaded worker processes on this machine."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> str:
        pytest.importorskip("distributed")
        self.folder.mkdir(parents=True)
        info = self.folder / "scheduler.json"
        bindir = Path(sys.executable).parent
        log = (self.folder / "cluster.log").open("w")
        self.procs.append(subprocess.Popen(
            [str(bindir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(info)], stdout=log, stderr=log))
        deadline = time.monotonic() + 120
        while not info.is_file() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert info.is_file(), (self.folder / "cluster.log").read_text()
        for _ in range(2):
            self.procs.append(subprocess.Popen(
                [str(bindir / "dask"), "worker", "--scheduler-file", str(info), "--nthreads",
                 "1", "--no-dashboard", "--local-directory", str(self.folder)],
                stdout=log, stderr=log, cwd=self.folder))
        from distributed import Client

        with Client(scheduler_file=str(info), timeout="60s") as client:
            client.wait_for_workers(2, timeout=180)
            return client.scheduler.address

    def __exit__(self, *exc):
        for proc in reversed(self.procs):
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_the_three_paths_grade_the_same(classes):
    results = classes["results"]
    for student in classes["plan"]:
        serial = results["serial"][student]
        for name in ("workers", "dask"):
            other = results[name][student]
            assert other["scores"] == serial["scores"], (name, student)
            assert other["notebook"] == serial["notebook"], (name, student)


def test_each_submission_earns_what_it_deserves(classes):
    source = read(classes["base"] / "serial" / "source" / CH / f"{CH}.ipynb")
    got = classes["results"]["serial"]
    for student, broken in classes["plan"].items():
        if broken is None:
            assert got[student]["notebook"] is None, student
            continue
        assert got[student]["scores"] == expected_scores(source, broken), student


def test_the_table_reports_the_broken_submission_and_the_rest_are_graded(classes):
    for name, proc in classes["runs"].items():
        out = proc.stdout
        assert proc.returncode == 1, (name, out[-2000:], proc.stderr[-2000:])
        assert "not_json" in out and "not valid JSON" in out, out[-2000:]
        assert "1 of 7 submission(s) could not be graded" in out, out[-2000:]


def test_each_run_says_where_a_submissions_time_went(classes):
    import re

    for name, proc in classes["runs"].items():
        found = re.search(r"Where a submission's time went \(mean of (\d+)\): kernel start "
                          r"([\d.]+) s, cells in the kernel ([\d.]+) s, tests in the grader "
                          r"([\d.]+) s, nbgrader's other steps (-?[\d.]+) s(; CPU: (.*))?\.",
                          proc.stdout)
        assert found, (name, proc.stdout[-2000:])
        assert int(found[1]) == 6, found[0]  # the six notebooks that could be graded
        assert all(float(found[i]) > 0 for i in (2, 3, 4)), found[0]
        assert float(found[5]) >= 0, found[0]
        assert found[7] and "grader" in found[7], found[0]
        # the learners' models run in a process of their own, counted apart (ch01 has none)
        assert re.search(r"model runner (\d+\.\d) s", found[7]), found[0]
        if os.geteuid() == 0:  # the sandbox counts its kernel's CPU in a control group
            assert re.search(r"kernel (\d+\.\d) s", found[7])[1] != "0.0", found[0]


def test_feedback_is_identical(classes):
    texts = {}
    for name in ("serial", "workers"):
        course = GradingCourse.open(classes["base"] / name)
        texts[name] = {s: course.generate_feedback(CH, s).read_text()
                       for s in ("right", "partly", "cheats")}
    assert texts["serial"] == texts["workers"]


def test_a_stopped_run_loses_no_finished_grade_and_only_missing_finishes(tmp_path):
    need_sandbox()
    root = tmp_path / "stopped"
    plan = _class(root)
    shutil.rmtree(root / "submitted" / "not_json")
    proc = subprocess.Popen([*CLI, "autograde", CH, "--course-root", str(root), "--workers",
                             "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 900
    done = root / "autograded"
    while time.monotonic() < deadline:
        if done.is_dir() and len(list(done.glob(f"*/{CH}/{CH}.ipynb"))) >= 2:
            break
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    course = GradingCourse.open(root)
    recorded = []
    with course.gradebook() as gb:
        for sub in gb.find_assignment(CH).submissions:
            grades = sub.notebooks[0].grades
            auto = [g for g in grades if g.cell.cell_type == "code"]
            complete = all(g.auto_score is not None for g in auto)
            assert complete, f"{sub.student.id} is recorded without its scores"
            assert (done / sub.student.id / CH / f"{CH}.ipynb").is_file()
            recorded.append(sub.student.id)
    assert recorded, "the run was stopped before any submission was recorded"
    again = _autograde(root, "--workers", "1", "--only-missing")
    assert again.stdout.count("recorded by an earlier run") == len(recorded), again.stdout
    final = _results(root, [s for s in plan if plan[s] is not None])
    source = read(root / "source" / CH / f"{CH}.ipynb")
    for student, broken in plan.items():
        if broken is None:
            continue
        assert final[student]["scores"] == expected_scores(source, broken), student


def test_a_worker_that_dies_loses_no_other_submission(tmp_path):
    """A grading worker process killed while it grades (as the machine's out-of-memory killer
    would kill it) breaks its pool. Only the submissions being graded then are lost from that
    pool; each is graded again alone: the honest ones get their marks, the one that kills its
    worker again is reported with a reason, and the rest of the class is graded."""
    import dataclasses

    from medai_lessons.grading.job import chapter_gradebook, make_job
    from medai_lessons.instructor import _results as results_of

    need_sandbox()
    root = tmp_path / "dies"
    course = GradingCourse.create(root, COURSE, [CH])
    release = course.generate(CH)
    source = read(root / "source" / CH / f"{CH}.ipynb")
    students = ["a_honest", "b_killer", "c_honest", "d_honest", "e_honest"]
    for student in students:
        course.submit(CH, student, release / f"{CH}.ipynb")
        nbformat.write(answered(read(release / f"{CH}.ipynb"), source),
                       root / "submitted" / student / CH / f"{CH}.ipynb")
    records = chapter_gradebook(course, CH)
    jobs = [make_job(course, CH, student, records) for student in students]
    # the worker that loads this job's configuration is killed by a signal it cannot catch
    jobs[1] = dataclasses.replace(jobs[1], config=jobs[1].config + (
        "\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"))
    got = {job.student: result for job, result in results_of(jobs, 2, None)}
    assert sorted(got) == students, sorted(got)             # each submission answered once
    killed = got.pop("b_killer")
    expected = expected_scores(source, set())
    for student, result in got.items():
        assert result.ok, (student, result.error)
        assert {k: result.grades[k]["auto_score"] for k in expected} == expected, student
    assert not killed.ok and "died" in killed.error, killed.error


# --- PostgreSQL -------------------------------------------------------------------------------

def _pg_bin() -> Path | None:
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / "initdb").is_file():
            return folder
    return None


@pytest.fixture
def postgres():
    """A PostgreSQL server of Debian's packages on a Unix socket in a folder of its own."""
    import tempfile

    pytest.importorskip("psycopg")
    bindir = _pg_bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("CI installs PostgreSQL (.ci/run): initdb not found")
        pytest.skip("PostgreSQL's server is not installed (apt-get install postgresql)")
    home = Path(tempfile.mkdtemp(prefix="medai-pg-"))
    data, sock = home / "data", home / "sock"
    sock.mkdir()
    run_as = []
    if os.geteuid() == 0:  # the server refuses to run as root
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("no 'postgres' user to run the server as")
        os.chmod(home, 0o755)
        for path in (home, sock):
            shutil.chown(path, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    try:
        subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U",
                        "medai"], check=True, capture_output=True)
        subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l",
                        str(home / "pg.log"), "-o", f"-k {sock} -c listen_addresses=''",
                        "start"], check=True, capture_output=True, timeout=120)
        subprocess.run([*run_as, str(bindir / "createdb"), "-h", str(sock), "-U", "medai",
                        "gradebook"], check=True, capture_output=True)
        yield f"postgresql://medai@/gradebook?host={sock}"
    finally:
        subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def test_postgresql_gradebook_with_parallel_workers(postgres, tmp_path):
    need_sandbox()
    root = tmp_path / "pg"
    root.mkdir()
    plan = _class(root)
    config = root / "nbgrader_config.py"
    config.write_text(config.read_text() + f"\nc.CourseDirectory.db_url = {postgres!r}\n")
    GradingCourse.open(root).generate(CH)          # the chapter's records in PostgreSQL
    (root / "gradebook.db").unlink(missing_ok=True)
    proc = _autograde(root, "--workers", "2")
    assert "postgresql://" in proc.stdout, proc.stdout[-1500:]
    assert not (root / "gradebook.db").exists(), "graded into SQLite instead of PostgreSQL"
    source = read(root / "source" / CH / f"{CH}.ipynb")
    course = GradingCourse.open(root)
    assert course.database == postgres
    for student, broken in plan.items():
        if broken is None:
            continue
        auto = {k: v["auto_score"] for k, v in course.scores(CH, student).items()
                if v["kind"] == "autograded"}
        assert auto == expected_scores(source, broken), student
