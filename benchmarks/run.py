"""MedAI Lessons benchmarks: run time, autograding throughput and model quality, in one run.

    python benchmarks/run.py                      # everything
    python benchmarks/run.py runtime quality      # a subset by name
    python benchmarks/run.py --chapters ch02_activations_losses --update-readme

- runtime: every chapter executed top to bottom in full mode once and in fast mode
  (median of --fast-repeats runs, at least 3), and the whole course (the sum).
  Goals from the course design: full mode <= 180 s, fast mode <= 30 s per chapter.
- autograde: seconds per submission for each chapter (its source notebook, i.e. a fully
  answered submission, autograded --submissions times through nbgrader's API) against a floor
  measured in the same run: a notebook that only imports TensorFlow and has one trivial test
  cell, autograded the same way. Goal: at most 2x the floor.
- quality: the figures each chapter reports with medai_lessons.benchmarking.record() during
  its full-mode run, each with the goal the chapter names.
- grading: a class of --grading-submissions generated submissions of --grading-chapter graded
  by serial nbgrader, by `medai-course autograde --workers N` and on a local Dask cluster of N
  workers (benchmarks/grading.py), and by serial nbgrader with every kernel started afresh
  unless --grading-without-afresh. Not part of the default run: name it.

Writes benchmarks/results/latest.json and latest.md (or NAME.json and NAME.md with --name
NAME), with the machine's description; with
--update-readme, replaces the table between the README's benchmark markers. This is a
script, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from medai_lessons.benchmarking import OUT_ENV, cpu_name, goal_met  # noqa: E402
from medai_lessons.course import GradingCourse, chapters  # noqa: E402
from medai_lessons.kernels import kernel_manager_config  # noqa: E402

COURSE = ROOT / "course"
RESULTS = ROOT / "benchmarks" / "results"
FULL_GOAL, FAST_GOAL, FLOOR_RATIO_GOAL = 180.0, 30.0, 2.0
README_START, README_END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"


def machine() -> dict:
    import keras
    import tensorflow as tf

    return {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
            "tensorflow": tf.__version__, "keras": keras.__version__,
            "gpus": len(tf.config.list_physical_devices("GPU")),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load_before": load_average()}


def load_average() -> float | None:
    """The 1-minute load average (how busy the machine is: about the number of processes
    wanting a core), or None where the platform does not tell."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def execute(notebook: Path, fast: bool, metrics_file: Path | None = None) -> float:
    """Execute a notebook top to bottom (errors fail the run); return wall seconds."""
    nb = nbformat.read(notebook, as_version=4)
    env_backup = dict(os.environ)
    os.environ.pop("NBGRADER_EXECUTION", None)
    os.environ.pop("MPLBACKEND", None)
    if fast:
        os.environ["MEDAI_FAST"] = "1"
    else:
        os.environ.pop("MEDAI_FAST", None)
    if metrics_file is not None:
        os.environ[OUT_ENV] = str(metrics_file)
    else:
        os.environ.pop(OUT_ENV, None)
    try:
        # over IPC where it can, as `medai-course check` runs: no warning about TCP
        settings = {"config": config} if (config := kernel_manager_config()) else {}
        start = time.perf_counter()
        NotebookClient(nb, kernel_name="python3", timeout=900,
                       resources={"metadata": {"path": str(notebook.parent)}},
                       **settings).execute()
        return time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(env_backup)


def bench_runtime(chs: list[str], repeats: int) -> tuple[dict, dict]:
    runtime, quality = {}, {}
    for ch in tqdm(chs, desc="run time (full + fast)"):
        nb = COURSE / "source" / ch / f"{ch}.ipynb"
        with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as tmp:
            metrics_file = Path(tmp.name)
        full = execute(nb, fast=False, metrics_file=metrics_file)
        quality[ch] = [json.loads(line) for line in metrics_file.read_text().splitlines()
                       if line.strip()]
        metrics_file.unlink()
        fast_runs = [execute(nb, fast=True) for _ in range(repeats)]
        runtime[ch] = {"full_s": full, "fast_runs_s": fast_runs,
                       "fast_median_s": statistics.median(fast_runs)}
    return runtime, quality


def floor_notebook(path: Path) -> None:
    cells = [new_code_cell("import tensorflow as tf"),
             new_code_cell("assert 1 + 1 == 2")]
    cells[1].metadata["nbgrader"] = {"grade": True, "grade_id": "trivial", "locked": True,
                                     "points": 1, "schema_version": 3, "solution": False,
                                     "task": False}
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)


def bench_autograde(chs: list[str], submissions: int) -> dict:
    out = {}
    with tempfile.TemporaryDirectory(prefix="medai-bench-") as tmp:
        course = GradingCourse.create(Path(tmp), COURSE, chs)
        floor_dir = course.root / "source" / "floor"
        floor_dir.mkdir()
        floor_notebook(floor_dir / "floor.ipynb")
        for ch in tqdm([*chs, "floor"], desc="autograde"):
            course.generate(ch)
            times = []
            for i in range(submissions):
                student = f"bench{i}"
                course.submit(ch, student, course.root / "source" / ch / f"{ch}.ipynb")
                start = time.perf_counter()
                course.autograde(ch, student)
                times.append(time.perf_counter() - start)
            out[ch] = {"runs_s": times, "median_s": statistics.median(times)}
    floor = out["floor"]["median_s"]
    for ch in chs:
        out[ch]["ratio_to_floor"] = out[ch]["median_s"] / floor
    return out


def _met(flag) -> str:
    return "—" if flag is None else ("met" if flag else "**not met**")


def markdown(result: dict) -> str:
    m = result["machine"]
    load = ""
    if m.get("load_before") is not None:
        load = (f" 1-minute load average {m['load_before']} at the start, "
                f"{m.get('load_after')} at the end (on {m['cores']} cores; more than the number "
                "of cores means other work competed for the CPU).")
    lines = [f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores), Python {m['python']}, "
             f"TensorFlow {m['tensorflow']} / Keras {m['keras']}, GPUs: {m['gpus']}." + load,
             ""]
    if "runtime" in result:
        lines += ["| chapter | full mode (goal ≤ 180 s) | fast mode, median of "
                  f"{len(next(iter(result['runtime'].values()))['fast_runs_s'])} (goal ≤ 30 s) |",
                  "|---|---|---|"]
        for ch, r in result["runtime"].items():
            lines.append(f"| {ch} | {r['full_s']:.1f} s, {_met(r['full_s'] <= FULL_GOAL)} | "
                         f"{r['fast_median_s']:.1f} s, {_met(r['fast_median_s'] <= FAST_GOAL)} |")
        total_full = sum(r["full_s"] for r in result["runtime"].values())
        total_fast = sum(r["fast_median_s"] for r in result["runtime"].values())
        lines += [f"| whole course | {total_full:.1f} s | {total_fast:.1f} s |", ""]
    if "autograde" in result:
        a = result["autograde"]
        lines += ["| autograding | seconds per submission (median) | ratio to floor "
                  f"(goal ≤ {FLOOR_RATIO_GOAL:g}) |", "|---|---|---|",
                  f"| floor (imports TensorFlow, one trivial test) | "
                  f"{a['floor']['median_s']:.1f} s | 1.0 |"]
        for ch, r in a.items():
            if ch != "floor":
                lines.append(f"| {ch} | {r['median_s']:.1f} s | {r['ratio_to_floor']:.2f}, "
                             f"{_met(r['ratio_to_floor'] <= FLOOR_RATIO_GOAL)} |")
        lines.append("")
    if "grading" in result:
        from grading import markdown as grading_markdown

        lines += grading_markdown(result["grading"], _met)
    if "quality" in result:
        lines += ["| chapter | figure | value | goal | |", "|---|---|---|---|---|"]
        for ch, entries in result["quality"].items():
            if not entries:
                lines.append(f"| {ch} | (reports no quality figure) | | | |")
            for e in entries:
                goal = "—" if e["goal"] is None else (
                    f"{'≥' if e['better'] == 'higher' else '≤'} {e['goal']:g}")
                note = f" ({e['note']})" if e.get("note") else ""
                lines.append(f"| {ch} | {e['metric']}{note} | {e['value']:.4g}{e['unit']} | "
                             f"{goal} | {_met(goal_met(e['value'], e['goal'], e['better']))} |")
        lines.append("")
    return "\n".join(lines)


def update_readme(table: str, command: str) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if README_START not in text:
        raise SystemExit(f"README.md has no {README_START} ... {README_END} markers")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\nProduced by `{command}`:\n\n{table}\n"
                      f"{README_END}{tail}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", metavar="PART",
                        help="runtime, autograde and/or quality (default: all); quality comes "
                             "from the full-mode runs of runtime")
    parser.add_argument("--chapters", default="", help="comma-separated chapter ids")
    parser.add_argument("--fast-repeats", type=int, default=3)
    parser.add_argument("--submissions", type=int, default=3)
    parser.add_argument("--update-readme", action="store_true")
    parser.add_argument("--grading-chapter", default="ch03_cnn")
    parser.add_argument("--grading-submissions", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--grading-without-afresh", action="store_true",
                        help="leave out the serial run with kernels started afresh (for a "
                             "large class it takes about twice the serial run)")
    parser.add_argument("--name", default="latest",
                        help="results go to benchmarks/results/NAME.json and NAME.md (a run of "
                             "some parts or chapters keeps the whole course's 'latest')")
    args = parser.parse_args(argv)
    unknown = set(args.parts) - {"runtime", "autograde", "quality", "grading"}
    if unknown:
        parser.error(f"unknown part(s) {sorted(unknown)}: choose runtime, autograde, quality, "
                     "grading")
    parts = set(args.parts or ["runtime", "autograde", "quality"])
    if "quality" in parts:
        parts.add("runtime")
    if args.fast_repeats < 3:
        parser.error("--fast-repeats must be at least 3 (the median of at least 3 runs)")
    chs = [c for c in args.chapters.split(",") if c] or chapters(COURSE)
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]

    result = {"machine": machine(), "chapters": chs}
    if "runtime" in parts:
        result["runtime"], quality = bench_runtime(chs, args.fast_repeats)
        result["quality"] = quality
    if "autograde" in parts:
        result["autograde"] = bench_autograde(chs, args.submissions)
    if "grading" in parts:
        from grading import bench_grading

        result["grading"] = bench_grading(COURSE, args.grading_chapter,
                                          args.grading_submissions, args.workers,
                                          floor_notebook,
                                          afresh=not args.grading_without_afresh)
    result["machine"]["load_after"] = load_average()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    table = markdown(result)
    (RESULTS / f"{args.name}.md").write_text(table)
    print(table)
    if args.update_readme:
        command = "python benchmarks/run.py " + " ".join(argv if argv is not None
                                                         else sys.argv[1:])
        update_readme(table, command.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
