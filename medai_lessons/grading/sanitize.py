"""The notebook's structure is the instructor's, not the submission's.

nbgrader trusts a submission's cell metadata: a cell whose ``nbgrader`` metadata says
``schema_version: 99`` stops nbgrader's run, a learner can add grade cells of their own, give a
test cell more points, or turn a test cell into an answer. :class:`RestoreStructure` runs first
among the sanitizing steps of autograding (the course's nbgrader config puts it there) and
rewrites every cell's ``nbgrader`` metadata from the gradebook, which holds what the instructor
released: a cell whose ``grade_id`` the gradebook knows gets the instructor's flags, points and
cell type; any other ``nbgrader`` metadata (an invented grade cell, an unreadable entry) is
removed, so the cell is an ordinary cell. nbgrader's own ``OverwriteCells`` then restores the
instructor's source of locked cells and adds back deleted test cells, as before.

This module is imported by ``course/nbgrader_config.py`` (in nbgrader's process), never by a
notebook's kernel.
"""

from __future__ import annotations

from nbformat.v4 import new_code_cell, new_markdown_cell
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import NbGraderPreprocessor

_RELEASE_KEYS = {"checksum", "cell_type"}


class RestoreStructure(NbGraderPreprocessor):
    """Every cell's nbgrader metadata from the gradebook; unknown grade cells made plain."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            try:
                source = gb.find_notebook(info["notebook"], info["assignment"])
            except MissingEntry:
                return nb, resources
            cells = {c.name: c for c in source.source_cells}
            grades = {c.name: c.max_score for c in source.grade_cells}
            solutions = {c.name for c in source.solution_cells}
            tasks = {c.name for c in source.task_cells}
        seen = set()
        for index, cell in enumerate(list(nb.cells)):
            meta = cell.get("metadata", {})
            if "nbgrader" not in meta:
                continue
            raw = meta.get("nbgrader")
            grade_id = raw.get("grade_id") if isinstance(raw, dict) else None
            if not isinstance(grade_id, str) or grade_id not in cells or grade_id in seen:
                self.log.warning("cell %d: nbgrader metadata the instructor did not release "
                                 "(grade_id %r) removed", index, grade_id)
                del meta["nbgrader"]
                continue
            seen.add(grade_id)
            record = cells[grade_id]
            restored = {"schema_version": 3, "grade_id": grade_id, "locked": bool(record.locked),
                        "grade": grade_id in grades, "solution": grade_id in solutions,
                        "task": grade_id in tasks}
            if grade_id in grades:
                restored["points"] = grades[grade_id]
            # what nbgrader itself adds on release (the source's checksum, the cell type) is
            # no change; anything else that differs is
            changed = sorted(k for k in set(raw) | set(restored)
                             if k not in _RELEASE_KEYS and raw.get(k) != restored.get(k))
            if changed:
                self.log.warning("cell %s: nbgrader metadata restored from the gradebook (%s)",
                                 grade_id, ", ".join(changed))
            if cell.cell_type != record.cell_type:
                self.log.warning("cell %s: cell type %s restored to %s", grade_id,
                                 cell.cell_type, record.cell_type)
                make = new_code_cell if record.cell_type == "code" else new_markdown_cell
                fresh = make(source=cell.get("source", ""))
                fresh.metadata = meta
                if "id" in cell:
                    fresh["id"] = cell["id"]
                nb.cells[index] = cell = fresh
            cell.metadata["nbgrader"] = restored
        return nb, resources
