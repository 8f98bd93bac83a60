"""The autograder's executor: nbgrader's ``Execute``, minus the chapters' applied cells, and
never minus a graded cell (the course's nbgrader config puts it in place of ``Execute``).

A chapter's applied cells (training a network, a gallery of plots) earn no points and feed no
test: the tests check the learner's functions with the course's checkers. While autograding,
running them costs most of the time per submission, so a chapter tags them
:data:`SKIP_TAG` and :class:`ExecuteGradedWork` leaves them out, with a note in their output.
Cells a learner runs in JupyterLab, the course's tests and the benchmarks run every cell.

A tag is only a request. Cells that carry points or answers (nbgrader ``grade`` or
``solution`` cells) always run, whatever their tags say: otherwise a learner could tag a
failing test cell and, since a test that never runs raises nothing, collect its points.
nbclient, which nbgrader runs notebooks with, skips cells tagged ``skip-execution`` by
default; this executor honours only :data:`SKIP_TAG`, so that tag closes that door too.

This module is imported by ``course/nbgrader_config.py`` (in nbgrader's process), never by a
notebook's kernel.
"""

from __future__ import annotations

from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Unicode

#: the cell tag of applied cells that autograding leaves out
SKIP_TAG = "not-autograded"

#: what a left-out cell shows in the autograded notebook and the feedback
SKIP_NOTE = ("(not run while autograding: this cell applies the chapter's functions and earns "
             "no points; run it in your own notebook to see its output)\n")


def is_graded_or_answer(cell) -> bool:
    """True for a cell that carries points or holds an answer (never left out)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade") or meta.get("solution"))


class ExecuteGradedWork(Execute):
    """nbgrader's ``Execute`` that leaves out code cells tagged :data:`SKIP_TAG` unless they
    carry points or answers."""

    skip_cells_with_tag = Unicode(
        SKIP_TAG,
        help="code cells with this tag are not run while autograding (graded and answer cells "
             "always are)",
    ).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.cell_type == "code" and self.skip_cells_with_tag in tags:
            if is_graded_or_answer(cell):
                self.log.warning("cell %s is graded or holds an answer: it runs although it is "
                                 "tagged %r", index, self.skip_cells_with_tag)
                cell.metadata["tags"] = [t for t in tags if t != self.skip_cells_with_tag]
            else:
                cell.outputs = [new_output("stream", name="stdout", text=SKIP_NOTE)]
                cell.execution_count = None
                return cell, resources
        return super().preprocess_cell(cell, resources, index)
