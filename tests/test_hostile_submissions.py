"""Grading that survives hostile and broken submissions.

One temporary course, one batch of submissions generated from the pilot chapter, graded by
nbgrader's own ``nbgrader autograde <chapter>`` over all students at once (as an instructor
runs it), each with the exact score it must receive. The course's configuration is used as it
is, except for a shorter per-cell limit (15 s instead of 120 s) so that the infinite loop
costs the test seconds, not minutes.

What each case shows (the conventions are in docs/design-notes.md):
- an infinite loop: the per-cell limit interrupts it; that exercise (and the tests that need
  it) score 0; the rest of the notebook is graded;
- an exception, ``sys.exit()``, ``os._exit(1)`` (the grading kernel's guard turns it into an
  exception), 50 MB of output: the same, or full marks where the answer is right (and the
  50 MB are cut to 20,000 characters in the autograded notebook);
- an edited test cell: nbgrader RESTORES it from the gradebook, so a wrong answer still fails;
- a deleted test cell: nbgrader RESTORES it (``OverwriteCells.add_missing_cells``) and grades
  it, with a warning in the log and a note in the cell;
- a deleted answer cell: nothing to restore; the tests that need it score 0;
- an answer that calls the reference implementation: the hidden test catches it;
- an answer cell that redefines a checker or assigns into ``medai_lessons.grading`` (or into the
  reference implementation): hidden tests reload the checking code, so it does not pass;
- a notebook that is not JSON: nbgrader reports an error for that student and records no grade;
  every other submission in the batch is graded;
- a test cell tagged to be skipped (nbclient's ``skip-execution`` or the course's own
  ``not-autograded``) after a wrong answer: graded cells always run, so the test still fails;
- a different kernelspec: graded on the course's ``python3`` kernel, full marks.
"""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest

from conftest import COURSE, ROOT
from medai_lessons.course import GradingCourse
from medai_lessons.grading.execute import SKIP_TAG
from nbtools import answered, cell, expected_scores, grade_cells, nbg, read

pytestmark = pytest.mark.slow
CH = "ch02_activations_losses"
WRONG_TANH = "def tanh(x):\n    return x  # wrong on purpose"
WRONG_RELU = "def relu(x):\n    return x  # wrong on purpose"
WRONG_SIGMOID = "def sigmoid(x):\n    return x  # wrong on purpose"


def _edit(nb, grade_id, source=None, append=None):
    c = cell(nb, grade_id)
    c.source = source if source is not None else c.source + append
    return nb


def _tag(nb, grade_id, tag):
    c = cell(nb, grade_id)
    c.metadata["tags"] = [*c.metadata.get("tags", []), tag]
    return nb


def _delete(nb, grade_id):
    nb.cells = [c for c in nb.cells if nbg(c).get("grade_id") != grade_id]
    return nb


# student -> (how to make the submission from a fully answered notebook, broken answers)
CASES = {
    "complete": (lambda nb: nb, set()),
    "infinite_loop": (lambda nb: _edit(nb, "ans_tanh", "while True:\n    pass"), {"ans_tanh"}),
    "exception": (lambda nb: _edit(nb, "ans_relu", "raise RuntimeError('not finished')"),
                  {"ans_relu"}),
    "sys_exit": (lambda nb: _edit(nb, "ans_mse", "import sys\nsys.exit()"), {"ans_mse"}),
    "os_exit": (lambda nb: _edit(nb, "ans_tanh", "import os\nos._exit(1)"), {"ans_tanh"}),
    "prints_50_mb": (lambda nb: _edit(nb, "ans_relu", append="\nprint('x' * 50_000_000)"),
                     set()),
    "edited_test_cell": (lambda nb: _edit(_edit(nb, "ans_tanh", WRONG_TANH), "test_tanh",
                                          "print('all tests passed')"), {"ans_tanh"}),
    "deleted_test_cell": (lambda nb: _delete(nb, "test_mse"), set()),
    "deleted_answer_cell": (lambda nb: _delete(nb, "ans_binary_cross_entropy"),
                            {"ans_binary_cross_entropy"}),
    "calls_reference": (lambda nb: _edit(nb, "ans_sigmoid", (
        "def sigmoid(x):\n    from medai_lessons.nn import sigmoid as reference\n"
        "    return reference(x)")), {"ans_sigmoid"}),
    "redefines_checker": (lambda nb: _edit(nb, "ans_sigmoid", WRONG_SIGMOID + (
        "\n\ncheck_sigmoid = lambda f, strict=False: None\n"
        "assert_own_implementation = lambda *a, **k: None")), {"ans_sigmoid"}),
    "patches_grading_package": (lambda nb: _edit(nb, "ans_relu", WRONG_RELU + (
        "\n\nimport medai_lessons.grading, medai_lessons.grading.ch02, "
        "medai_lessons.grading.core, medai_lessons.nn\n"
        "medai_lessons.grading.check_relu = lambda *a, **k: None\n"
        "medai_lessons.grading.ch02.check_relu = lambda *a, **k: None\n"
        "medai_lessons.grading.core.assert_close = lambda *a, **k: None\n"
        "medai_lessons.nn.relu = relu")), {"ans_relu"}),
    "tags_failing_test_skip_execution": (lambda nb: _tag(_edit(nb, "ans_tanh", WRONG_TANH),
                                                         "test_tanh", "skip-execution"),
                                         {"ans_tanh"}),
    "tags_failing_test_not_autograded": (lambda nb: _tag(_edit(nb, "ans_relu", WRONG_RELU),
                                                         "test_relu", SKIP_TAG), {"ans_relu"}),
    "other_kernelspec": (lambda nb: (nb.metadata.__setitem__(
        "kernelspec", {"name": "ir", "display_name": "R", "language": "R"}), nb)[1], set()),
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    course = GradingCourse.create(root, COURSE, [CH])
    config = root / "nbgrader_config.py"
    config.write_text(config.read_text() + "\nc.Execute.timeout = 15\n")
    release = course.generate(CH)
    source_nb = read(root / "source" / CH / f"{CH}.ipynb")
    complete = answered(read(release / f"{CH}.ipynb"), source_nb)
    for student, (make, _) in CASES.items():
        nb = make(nbformat.reads(nbformat.writes(complete), as_version=4))  # a deep copy
        dest = root / "submitted" / student / CH
        dest.mkdir(parents=True)
        nbformat.write(nb, dest / f"{CH}.ipynb")
    broken = root / "submitted" / "not_json" / CH
    broken.mkdir(parents=True)
    (broken / f"{CH}.ipynb").write_text('{"cells": [ this is not JSON')

    proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", CH, "--force"],
                          cwd=root, capture_output=True, text=True, timeout=1500)
    log = proc.stdout + proc.stderr
    (root / "autograde.log").write_text(log)
    scores = {}
    for student in [*CASES, "not_json"]:
        try:
            scores[student] = {k: v["auto_score"] for k, v in course.scores(CH, student).items()
                               if v["kind"] == "autograded"}
        except Exception as exc:  # noqa: BLE001 - a missing submission record is a result too
            scores[student] = exc
    return {"root": root, "source": source_nb, "scores": scores, "log": log,
            "returncode": proc.returncode}


@pytest.mark.parametrize("student", list(CASES))
def test_each_submission_earns_exactly_what_its_work_deserves(batch, student):
    _, broken = CASES[student]
    expected = expected_scores(batch["source"], broken)
    got = batch["scores"][student]
    assert not isinstance(got, Exception), (
        f"{student} was not graded: {got}\n{batch['log'][-3000:]}")
    assert got == expected, f"{student}: got {got}, expected {expected}"


def test_broken_notebook_is_reported_and_the_batch_goes_on(batch):
    assert batch["returncode"] != 0, "nbgrader should report the broken submission"
    assert "not_json" in batch["log"] and "does not appear to be JSON" in batch["log"]
    got = batch["scores"]["not_json"]
    assert isinstance(got, Exception) or all(v is None for v in got.values()), got
    graded = [s for s in CASES if not isinstance(batch["scores"][s], Exception)]
    assert graded == list(CASES), "every other submission was graded"


def test_infinite_loop_was_ended_by_the_per_cell_limit(batch):
    nb = read(batch["root"] / "autograded" / "infinite_loop" / CH / f"{CH}.ipynb")
    errors = [o.get("ename") for o in cell(nb, "ans_tanh").outputs if o.output_type == "error"]
    assert errors, "the looping answer cell should end in an error"
    assert "Timeout waiting for execute reply" in batch["log"]


def test_deleted_test_cell_is_restored_with_a_note(batch):
    assert "Missing grade cell test_mse encountered, adding to notebook" in batch["log"]
    nb = read(batch["root"] / "autograded" / "deleted_test_cell" / CH / f"{CH}.ipynb")
    restored = cell(nb, "test_mse")
    assert "was missing from the submission" in restored.source


def test_os_exit_is_caught_by_the_kernel_guard(batch):
    nb = read(batch["root"] / "autograded" / "os_exit" / CH / f"{CH}.ipynb")
    names = [o.get("ename") for o in cell(nb, "ans_tanh").outputs if o.output_type == "error"]
    assert names == ["SystemExit"], names


def test_total_points_are_the_sum_of_the_test_cells(batch):
    total = sum(float(nbg(c)["points"]) for c in grade_cells(batch["source"]))
    assert sum(batch["scores"]["complete"].values()) == total > 0


def test_config_starts_grading_kernels_with_the_guard():
    from medai_lessons.course import load_config
    from medai_lessons.grading.guard import KERNEL_ARGUMENT

    config = load_config(COURSE, ROOT / "course")
    assert KERNEL_ARGUMENT in config.Execute.extra_arguments
    assert config.OverwriteCells.add_missing_cells is True


def test_fifty_megabytes_of_output_are_cut_in_the_autograded_notebook(batch):
    nb = read(batch["root"] / "autograded" / "prints_50_mb" / CH / f"{CH}.ipynb")
    text = "".join(o.get("text", "") for o in cell(nb, "ans_relu").outputs
                   if o.output_type == "stream")
    assert ("characters of output cut by the course's grader" in text
            or "further output of this cell dropped by the course's grader" in text), text[-300:]
    assert len(text) < 25_000, len(text)
    assert batch["scores"]["prints_50_mb"] == batch["scores"]["complete"]


def test_config_replaces_nbgraders_executor_and_output_limit_in_their_places():
    from nbgrader.converters.autograde import Autograde

    from medai_lessons.course import load_config
    from medai_lessons.grading.execute import ExecuteGradedWork
    from medai_lessons.grading.limits import LimitOutputSize

    steps = load_config(COURSE, ROOT / "course").Autograde.autograde_preprocessors
    defaults = Autograde.class_traits()["autograde_preprocessors"].default()
    replaced = {"LimitOutput": "LimitOutputSize", "Execute": "ExecuteGradedWork"}
    assert [s.__name__ for s in steps] == [replaced.get(d.__name__, d.__name__) for d in defaults]
    assert LimitOutputSize in steps and ExecuteGradedWork in steps
