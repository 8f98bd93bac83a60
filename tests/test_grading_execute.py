"""The grading executor on its own: a notebook's outputs do not depend on how the machine's
load cut the kernel's output into messages."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from conftest import need_sandbox


def _executor():
    need_sandbox()
    from medai_lessons.grading.execute import ExecuteGradedWork

    return ExecuteGradedWork(timeout=120)


def test_a_cells_output_is_one_output_per_stream_however_it_arrived(tmp_path):
    # the kernel sends each flushed piece as its own message, as a busy machine does
    source = ("import sys, time\n"
              "for i in range(4):\n"
              "    print('line', i, flush=True)\n"
              "    print('warn', i, file=sys.stderr, flush=True)\n"
              "    time.sleep(0.3)\n")
    nb = new_notebook(cells=[new_code_cell(source), new_code_cell("print('a', flush=True)\n"
                                                                  "import time; time.sleep(0.3)\n"
                                                                  "print('b\\rc')")])
    out, _ = _executor().preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    first = out.cells[0].outputs
    assert [(o.output_type, o.name) for o in first] == [("stream", "stdout"),
                                                         ("stream", "stderr")], first
    assert first[0].text == "".join(f"line {i}\n" for i in range(4))
    assert first[1].text == "".join(f"warn {i}\n" for i in range(4))
    second = out.cells[1].outputs
    assert len(second) == 1 and second[0].text == "a\nc\n", second
    nbformat.validate(out)


def test_restoring_the_structure_warns_about_changed_metadata_only(tmp_path, caplog):
    import logging

    from conftest import COURSE
    from medai_lessons.course import GradingCourse
    from medai_lessons.grading.sanitize import RestoreStructure

    ch = "ch01_background"
    course = GradingCourse.create(tmp_path / "c", COURSE, [ch])
    released = nbformat.read(course.generate(ch) / f"{ch}.ipynb", 4)
    resources = {"nbgrader": {"db_url": course.db_url, "notebook": ch, "assignment": ch}}
    step = RestoreStructure()
    step.log = logging.getLogger("restore-test")
    with caplog.at_level(logging.WARNING, logger="restore-test"):
        step.preprocess(nbformat.from_dict(released), resources)
    mine = [r.getMessage() for r in caplog.records if r.name == "restore-test"]
    assert mine == []  # an honest submission: nothing to say
    tampered = nbformat.from_dict(released)
    test_cell = next(c for c in tampered.cells
                     if c.metadata.get("nbgrader", {}).get("points"))
    grade_id, points = test_cell.metadata.nbgrader.grade_id, test_cell.metadata.nbgrader.points
    test_cell.metadata.nbgrader.points = 99
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="restore-test"):
        step.preprocess(tampered, resources)
    assert test_cell.metadata.nbgrader.points == points
    assert [r.getMessage() for r in caplog.records if r.name == "restore-test"] == [
        f"cell {grade_id}: nbgrader metadata restored from the "
        "gradebook (points)"]
