"""The learner's self-check: run one notebook's visible tests and summarise them per exercise.

``medai-course check NOTEBOOK`` executes a copy of the notebook top to bottom with nbclient,
in the notebook's own folder and in fast mode (``MEDAI_FAST=1``), letting cells fail
(``allow_errors``), and reads each nbgrader test cell's outcome:

- **passed**: the test cell ran without an error;
- **failed**: it raised, most often the checker's ``AssertionError`` whose first lines name
  the case, the expected and the actual value, and a hint;
- **not attempted**: the answer cell still holds its stub (``raise NotImplementedError()``).

Hidden tests (``### BEGIN HIDDEN TESTS``) are removed first with nbgrader's own
``ClearHiddenTests``, as in a released notebook: this checks what the learner can see, and
grading may add stricter cases. As in autograding, the chapter's applied cells (tagged
``not-autograded``, see :mod:`medai_lessons.grading.execute`) are left out; graded and answer
cells always run. The learner's file is read, never written.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from medai_lessons.notebook import FAST_ENV

STUB = "raise NotImplementedError"
TEXT_STUB = "YOUR ANSWER HERE"
MESSAGE_LINES = 6


class CheckError(RuntimeError):
    """The notebook cannot be checked (missing, not a notebook, no tests), with what to do."""


@dataclass
class ExerciseResult:
    grade_id: str
    points: float
    status: str  # "passed", "failed", "not attempted", "not run", "written", "not written"
    message: str = ""


@dataclass
class CheckReport:
    notebook: Path
    results: list[ExerciseResult] = field(default_factory=list)
    seconds: float = 0.0
    problem: str = ""  # the run stopped early (a dead kernel)
    #: lines for which autograding would not run the probe checks (grading.notebook_scan)
    refused_lines: list[str] = field(default_factory=list)
    #: exercises whose function calls a library's implementation of the whole exercise
    #: (grading.LIBRARY_EQUIVALENTS), or holds a line the reading cannot follow: the hidden
    #: tests do not accept them as the learner's own
    library_lines: list[str] = field(default_factory=list)

    def _with(self, *statuses: str) -> list[ExerciseResult]:
        return [r for r in self.results if r.status in statuses]

    @property
    def ok(self) -> bool:
        """Every attempted exercise passed (and the run finished)."""
        return not self.problem and not self._with("failed", "not run")

    def lines(self) -> list[str]:
        width = max((len(r.grade_id) for r in self.results), default=10)
        out = [f"Self-check of {self.notebook} (visible tests, fast mode, "
               f"{self.seconds:.0f} s):"]
        for r in self.results:
            pts = f"{r.points:g} pt" + ("" if r.points == 1 else "s")
            out.append(f"  {r.grade_id.ljust(width)}  {pts:>6}  {r.status.upper()}")
            out += [f"      {line}" for line in r.message.splitlines()]
        tests = self._with("passed", "failed", "not attempted", "not run")
        passed = self._with("passed")
        points = sum(r.points for r in passed)
        total = sum(r.points for r in tests)
        out.append(f"Passed {len(passed)} of {len(tests)} tested exercises ({points:g} of "
                   f"{total:g} points); {len(self._with('failed'))} failed, "
                   f"{len(self._with('not attempted'))} not attempted.")
        written = self._with("written", "not written")
        if written:
            out.append(f"Written answers ({sum(r.points for r in written):g} points) are graded "
                       "by a person; not written yet: "
                       f"{', '.join(r.grade_id for r in self._with('not written')) or 'none'}.")
        if self.problem:
            out.append(f"The run stopped early: {self.problem}")
        if self.refused_lines:
            out.append("While autograding, the checks that run the course's code in your kernel "
                       "would not be graded, because of these lines (remove them before you "
                       "submit):")
            out += [f"  - {line}" for line in self.refused_lines[:10]]
        if self.library_lines:
            out.append("The hidden tests will not count these as your own implementation (a "
                       "library function does the whole computation, or the grader cannot "
                       "read where a line leads):")
            out += [f"  - {line}" for line in self.library_lines[:10]]
        out.append("These are the visible tests; grading adds hidden ones with stricter cases."
                   if self.ok else
                   "Fix the failed exercises (the message says which case and gives a hint), "
                   "then check again.")
        return out


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _error(cell) -> dict | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output
    return None


def _first_lines(text: str, n: int = MESSAGE_LINES) -> str:
    lines = text.strip().splitlines()
    return "\n".join(lines[:n] + (["..."] if len(lines) > n else []))


def read_notebook(path: Path):
    """The notebook at ``path``, or a :class:`CheckError` that says what to do."""
    import nbformat

    if not path.is_file():
        raise CheckError(f"No notebook at {path}. Give the path of a chapter notebook, e.g. "
                         "~/medai-lessons-workspace/ch02_activations_losses/"
                         "ch02_activations_losses.ipynb")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several kinds for a damaged file
        raise CheckError(
            f"{path} is not a readable notebook ({type(exc).__name__}: "
            f"{_first_lines(str(exc), 2)}). Restore it in JupyterLab (File > Revert Notebook to "
            "Checkpoint), or rename the damaged file and run `medai-course workspace` to get "
            "the course's copy again."
        ) from exc


def summarise(nb) -> list[ExerciseResult]:
    """Per-exercise results from an executed notebook's outputs."""
    results = []
    answer_src, answer_err = "", None
    for cell in nb.cells:
        meta = _nbgrader(cell)
        if not meta.get("grade") and not meta.get("solution"):
            continue
        if cell.cell_type == "markdown":
            if meta.get("grade"):
                status = "not written" if cell.source.strip() in ("", TEXT_STUB) else "written"
                results.append(ExerciseResult(meta["grade_id"], float(meta.get("points", 0)),
                                              status))
            continue
        if meta.get("solution"):
            answer_src, answer_err = cell.source, _error(cell)
            continue
        results.append(_test_result(cell, meta, answer_src, answer_err))
    return results


def _test_result(cell, meta, answer_src: str, answer_err: dict | None) -> ExerciseResult:
    result = ExerciseResult(meta["grade_id"], float(meta.get("points", 0)), "passed")
    err = _error(cell)
    if cell.get("execution_count") is None and err is None:
        result.status, result.message = "not run", "the run stopped before this cell"
        return result
    if err is None:
        return result
    name, value = err.get("ename", "Error"), err.get("evalue", "")
    if name == "NotImplementedError" and STUB in answer_src:
        result.status = "not attempted"
        return result
    result.status = "failed"
    if name == "AssertionError":
        result.message = _first_lines(value)
    elif name == "NotImplementedError":
        result.message = ("NotImplementedError: your function calls one that is not written "
                          "yet (an earlier exercise): write that one first.")
    elif name == "KeyboardInterrupt":
        result.message = "the cell took longer than the per-cell time limit and was stopped"
    else:
        result.message = _first_lines(f"{name}: {value}")
    if answer_err is not None and answer_err.get("ename") != "NotImplementedError":
        result.message += (f"\nyour answer cell above raised {answer_err.get('ename')}: "
                           f"{_first_lines(answer_err.get('evalue', ''), 2)}")
    return result


def check_notebook(path: Path | str, timeout: int = 120, kernel_name: str | None = None,
                   log=None) -> CheckReport:
    """Execute a copy of the notebook's visible tests in fast mode and summarise them
    (``log``, e.g. ``print``, hears when the run starts)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError
    from nbgrader.preprocessors import ClearHiddenTests

    from medai_lessons.grading import notebook_scan
    from medai_lessons.grading.execute import SKIP_TAG, is_graded_or_answer, kernel_cells
    from medai_lessons.kernels import kernel_manager_config

    path = Path(path).expanduser().resolve()
    nb = read_notebook(path)
    if not any(_nbgrader(c).get("grade") for c in nb.cells):
        raise CheckError(f"{path} has no test cells (nbgrader grade cells): check a chapter "
                         "notebook of the course, e.g. <workspace>/<chapter>/<chapter>.ipynb")
    probes_used = any(name in c.source for c in nb.cells if _nbgrader(c).get("grade")
                      for name in notebook_scan.PROBE_CHECKS)
    from medai_lessons.grading import EXERCISES, LIBRARY_EQUIVALENTS

    scan = notebook_scan.scan(kernel_cells(nb))
    refused = scan.tampering if probes_used else []
    library = [problem for exercise in EXERCISES for problem in
               scan.library_code(exercise, LIBRARY_EQUIVALENTS.get(exercise, ()))
               + [f"{exercise}: {f}" for f in scan.unreadable_in(exercise)]]
    nb, _ = ClearHiddenTests().preprocess(nb, {})
    for c in nb.cells:      # as in autograding: graded and answer cells always run
        if is_graded_or_answer(c) and SKIP_TAG in c.metadata.get("tags", []):
            c.metadata["tags"] = [t for t in c.metadata["tags"] if t != SKIP_TAG]
    kernel_name = kernel_name or nb.metadata.get("kernelspec", {}).get("name") or "python3"
    _require_kernel(kernel_name)
    # over IPC where it can: no "running over TCP without encryption" warning
    settings = {"config": config} if (config := kernel_manager_config()) else {}
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, allow_errors=True,
                            interrupt_on_timeout=True, skip_cells_with_tag=SKIP_TAG,
                            resources={"metadata": {"path": str(path.parent)}}, **settings)
    report = CheckReport(notebook=path, refused_lines=[str(f) for f in refused],
                         library_lines=library)
    if log:
        log(f"Running the visible tests of {path} with the '{kernel_name}' kernel in fast mode "
            "(your file is not changed)...")
    start = time.monotonic()
    try:
        client.execute(env=dict(os.environ, **{FAST_ENV: "1"}))
    except DeadKernelError as exc:
        report.problem = (f"the kernel died ({_first_lines(str(exc), 1)}): often out of memory "
                          "or a crash in native code; restart and run the notebook in JupyterLab "
                          "to see where")
    report.seconds = time.monotonic() - start
    report.results = summarise(nb)
    return report


def _require_kernel(name: str) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        raise CheckError(
            f"The notebook asks for the kernel '{name}', which is not installed here. Pass "
            "--kernel python3, or install the course's kernels with `medai-course kernels "
            "install`."
        ) from None
