"""The ``grading`` part of benchmarks/run.py: a whole class graded three ways.

A class of generated submissions of one chapter (right, wrong, untouched and hostile, in turn)
is graded by serial ``nbgrader autograde`` (the instructor's plain command), once with every
kernel started afresh (``--ExecuteGradedWork.preload=False``: a kernel process of its own that
imports everything itself, as before kernels were forked from a preloaded process) and once as
configured, by ``medai-course autograde --workers N`` and through a Dask scheduler with N
single-threaded worker processes started here, each in its own copy of the course folder.
Reports the wall time of each, the ratios to the serial run as configured (goals: workers <=
0.5, Dask <= 0.6) and to the serial run with kernels started afresh, whether every submission
got the same scores on all paths, CPU seconds per submission beside the
floor (a notebook that only imports TensorFlow and has one trivial test, graded the same way),
and where a submission's time went (``medai-course autograde``'s own summary: the kernel's
start, cells in the kernel, tests in the grader, nbgrader's other steps, kernel and grader
CPU; the CPU column misses the sandboxed kernels, which the summary counts).
"""

from __future__ import annotations

import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

KINDS = ("right", "wrong", "untouched", "hostile")
#: serial grading as before kernels were forked from a preloaded process (each kernel a process
#: of its own that imports everything itself)
FRESH = "serial nbgrader autograde, kernels started afresh"
WORKERS_GOAL, DASK_GOAL = 0.5, 0.6


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _make_class(root: Path, course_dir: Path, chapter: str, n: int) -> None:
    sys.path.insert(0, str(course_dir.parent / "tests"))
    from medai_lessons.course import GradingCourse
    from nbtools import answer_cells, answered, nbg  # the tests' helpers, as the tests use them

    course = GradingCourse.create(root, course_dir, [chapter])
    release = course.generate(chapter)
    source = nbformat.read(root / "source" / chapter / f"{chapter}.ipynb", 4)
    released = nbformat.read(release / f"{chapter}.ipynb", 4)
    first = nbg(answer_cells(source)[0])["grade_id"]
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        nb = released if kind == "untouched" else answered(released, source)
        nb = nbformat.reads(nbformat.writes(nb), as_version=4)
        for c in nb.cells:
            if nbg(c).get("grade_id") == first and kind in ("wrong", "hostile"):
                c.source = "raise ValueError('wrong on purpose')\n"
                if kind == "hostile":
                    c.source = ("import numpy as np\nnp.allclose = lambda *a, **k: True\n"
                                "np.isclose = lambda *a, **k: True\n" + c.source)
        dest = root / "submitted" / f"s{i:03d}" / chapter
        dest.mkdir(parents=True)
        nbformat.write(nb, dest / f"{chapter}.ipynb")


def _scores(root: Path, chapter: str) -> dict:
    from medai_lessons.course import GradingCourse

    course = GradingCourse.open(root)
    out = {}
    for folder in sorted((root / "submitted").iterdir()):
        try:
            out[folder.name] = {k: v["auto_score"] for k, v in
                                course.scores(chapter, folder.name).items()}
        except Exception:  # noqa: BLE001 - not graded
            out[folder.name] = None
    return out


def _timed(cmd: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds of the processes it waited for (a sandboxed kernel's are not
    among them: see the breakdown), and the summary line of where a submission's time went
    that ``medai-course autograde`` prints (empty for nbgrader's own command)."""
    cpu, start = _children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True)
    summary = next((line for line in proc.stdout.splitlines()
                    if line.startswith("Where a submission's time went")), "")
    return time.perf_counter() - start, _children_cpu() - cpu, summary


class _Cluster:
    def __init__(self, folder: Path, workers: int):
        self.folder, self.workers, self.procs = folder, workers, []

    def __enter__(self) -> str:
        from distributed import Client

        self.folder.mkdir(parents=True, exist_ok=True)
        info = self.folder / "scheduler.json"
        dask = str(Path(sys.executable).parent / "dask")
        self.procs.append(subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(info)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        while not info.is_file():
            time.sleep(0.2)
        self.procs.append(subprocess.Popen(
            [dask, "worker", "--scheduler-file", str(info), "--nworkers", str(self.workers),
             "--nthreads", "1", "--no-dashboard", "--local-directory", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with Client(scheduler_file=str(info), timeout="60s") as client:
            client.wait_for_workers(self.workers, timeout=300)
            # one warm-up task per worker: the first job of a worker imports the grader
            client.run(lambda: __import__("medai_lessons.grading.job"))
            return client.scheduler.address

    def __exit__(self, *exc):
        for proc in reversed(self.procs):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def _done(runs: dict) -> None:
    """Say each run's wall time as it ends (a long benchmark's figures are not all lost with a
    later failure)."""
    name, run = list(runs.items())[-1]
    print(f"{name}: {run['wall_s']:.1f} s", file=sys.stderr, flush=True)


def floor_seconds(course_dir: Path, floor_notebook, n: int) -> dict:
    from medai_lessons.course import GradingCourse

    with tempfile.TemporaryDirectory(prefix="medai-floor-") as tmp:
        course = GradingCourse.create(Path(tmp), course_dir, [])
        (course.root / "source" / "floor").mkdir(parents=True)
        floor_notebook(course.root / "source" / "floor" / "floor.ipynb")
        course.generate("floor")
        for i in range(n):
            course.submit("floor", f"f{i}", course.root / "source" / "floor" / "floor.ipynb")
        wall, cpu, summary = _timed([sys.executable, "-m", "medai_lessons.cli", "autograde",
                                     "floor", "--course-root", str(course.root), "--workers",
                                     "1"], course.root)
    return {"wall_per_submission_s": wall / n, "cpu_per_submission_s": cpu / n,
            "breakdown": summary}


def bench_grading(course_dir: Path, chapter: str, n: int, workers: int,
                  floor_notebook, afresh: bool = True) -> dict:
    with tempfile.TemporaryDirectory(prefix="medai-grading-bench-") as tmp:
        base = Path(tmp)
        _make_class(base / "serial", course_dir, chapter, n)
        paths = ("fresh", "serial", "workers", "dask") if afresh else ("serial", "workers",
                                                                         "dask")
        for name in paths:
            if name != "serial":
                shutil.copytree(base / "serial", base / name)
        runs = {}
        if afresh:
            wall, cpu, _ = _timed([sys.executable, "-m", "nbgrader", "autograde", chapter,
                                   "--force", "--ExecuteGradedWork.preload=False"],
                                  base / "fresh")
            runs[FRESH] = {"wall_s": wall, "cpu_per_submission_s": cpu / n}
            _done(runs)
        wall, cpu, _ = _timed([sys.executable, "-m", "nbgrader", "autograde", chapter,
                               "--force"], base / "serial")
        runs["serial nbgrader autograde"] = {"wall_s": wall, "cpu_per_submission_s": cpu / n}
        _done(runs)
        wall, cpu, summary = _timed([sys.executable, "-m", "medai_lessons.cli", "autograde",
                                     chapter, "--course-root", str(base / "workers"),
                                     "--workers", str(workers)], base / "workers")
        runs[f"--workers {workers}"] = {"wall_s": wall, "cpu_per_submission_s": cpu / n,
                                        "breakdown": summary}
        _done(runs)
        with _Cluster(base / "cluster", workers) as address:
            wall, _, _ = _timed([sys.executable, "-m", "medai_lessons.cli", "autograde",
                                 chapter, "--course-root", str(base / "dask"), "--scheduler",
                                 address], base / "dask")
        runs[f"Dask, {workers} workers"] = {"wall_s": wall, "cpu_per_submission_s": None}
        _done(runs)
        scores = {name: _scores(base / name, chapter) for name in paths}
    serial = runs["serial nbgrader autograde"]["wall_s"]
    for run in runs.values():
        run["ratio_to_serial"] = run["wall_s"] / serial
        if afresh:
            run["ratio_to_fresh"] = run["wall_s"] / runs[FRESH]["wall_s"]
    return {"chapter": chapter, "submissions": n, "workers": workers, "runs": runs,
            "same_scores": all(s == scores["serial"] for s in scores.values()),
            "graded": sum(v is not None for v in scores["workers"].values()),
            "floor": floor_seconds(course_dir, floor_notebook, min(n, 6))}


def markdown(g: dict, met) -> list[str]:
    lines = [f"| grading {g['submissions']} submissions of {g['chapter']} (right, wrong, "
             "untouched, hostile) | wall time | ratio to serial (goal) | ratio to serial with "
             "kernels started afresh | CPU s per submission |",
             "|---|---|---|---|---|"]
    goals = {"--workers": WORKERS_GOAL, "Dask": DASK_GOAL}
    for name, r in g["runs"].items():
        goal = next((v for k, v in goals.items() if name.startswith(k)), None)
        ratio = f"{r['ratio_to_serial']:.2f}" + (
            f" (≤ {goal:g}, {met(r['ratio_to_serial'] <= goal)})" if goal else "")
        cpu = "—" if r["cpu_per_submission_s"] is None else f"{r['cpu_per_submission_s']:.1f}"
        afresh = f"{r['ratio_to_fresh']:.2f}" if "ratio_to_fresh" in r else "—"
        lines.append(f"| {name} | {r['wall_s']:.0f} s | {ratio} | {afresh} | {cpu} |")
    f = g["floor"]
    lines += [f"| floor (imports TensorFlow, one trivial test), --workers 1 | "
              f"{f['wall_per_submission_s']:.1f} s per submission | — | — | "
              f"{f['cpu_per_submission_s']:.1f} |",
              *([] if FRESH in g["runs"] else
                ["", "Serial grading with kernels started afresh was left out of this run "
                     "(--grading-without-afresh)."]),
              "", f"Scores identical on all paths: {'yes' if g['same_scores'] else 'NO'} "
              f"({g['graded']} of {g['submissions']} graded).", ""]
    for name, r in [*g["runs"].items(), ("floor", f)]:
        if r.get("breakdown"):  # the CPU column above misses the sandboxed kernels' CPU
            lines += [f"{name}: {r['breakdown']}", ""]
    return lines
