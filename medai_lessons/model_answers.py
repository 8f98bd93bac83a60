"""Model answers and rubrics of the written answers, for self-learners and instructors.

Each chapter's written answers are manually graded cells of its source notebook; their
solution text is the model answer. The rubric of each is in ``course/rubrics/<chapter>.md``
(a section ``## <grade_id> (<points> points)`` with one ``- <n> point(s): ...`` line per
criterion). ``medai-course answers <chapter>`` prints the prompt, the model answer and the
rubric, for a learner to open *after* writing their own; the released assignment never holds
them (nbgrader replaces the solution text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from medai_lessons.course import CourseError, chapters, find_course_dir

_CRITERION = re.compile(r"^- (\d+(?:\.\d+)?) points?: ", re.MULTILINE)


@dataclass
class WrittenAnswer:
    """One written answer: its nbgrader id and points, the prompt above it, the model answer
    and the rubric (markdown)."""

    grade_id: str
    points: float
    prompt: str
    model_answer: str
    rubric: str

    def rubric_points(self) -> float:
        """The points of the rubric's criteria, added up."""
        return sum(float(m.group(1)) for m in _CRITERION.finditer(self.rubric))

    def text(self) -> str:
        return (f"{self.prompt.strip()}\n\n### Model answer\n\n{self.model_answer.strip()}\n\n"
                f"### Rubric ({self.points:g} points)\n\n{self.rubric.strip()}\n")


def rubric_sections(path: Path) -> dict[str, str]:
    """``{grade_id: rubric}`` of a chapter's rubric file."""
    text = path.read_text(encoding="utf-8")
    parts = re.split(r"^## (\w+) \([^)]*\)\s*$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}


def written_answers(chapter: str, course_dir: Path | None = None) -> list[WrittenAnswer]:
    """The written answers of ``chapter`` with their model answers and rubrics. Raises
    :class:`CourseError` for an unknown chapter or a written answer without a rubric."""
    import nbformat

    course_dir = Path(course_dir) if course_dir else find_course_dir()
    known = chapters(course_dir)
    if chapter not in known:
        raise CourseError(f"no chapter {chapter!r}; the chapters are: {', '.join(known)}")
    nb = nbformat.read(course_dir / "source" / chapter / f"{chapter}.ipynb", as_version=4)
    rubric_file = course_dir / "rubrics" / f"{chapter}.md"
    rubrics = rubric_sections(rubric_file) if rubric_file.is_file() else {}
    out = []
    for i, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "markdown" or not (meta.get("solution") and meta.get("grade")):
            continue
        grade_id = meta["grade_id"]
        if grade_id not in rubrics:
            raise CourseError(f"{chapter}: the written answer {grade_id!r} has no rubric in "
                              f"{rubric_file} (add a section '## {grade_id} (N points)')")
        prompt = nb.cells[i - 1].source if i > 0 and nb.cells[i - 1].cell_type == "markdown" \
            else ""
        out.append(WrittenAnswer(grade_id, float(meta.get("points", 0)), prompt, cell.source,
                                 rubrics[grade_id]))
    return out
