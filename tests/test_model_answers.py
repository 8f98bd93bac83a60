"""Model answers and rubrics of the written answers (medai_lessons.model_answers,
``medai-course answers``): every written answer has a rubric whose criteria add up to its
points, the command prints prompt, model answer and rubric, and the released notebook holds
neither."""

from __future__ import annotations

import nbformat
import pytest

from conftest import COURSE, chapter_dirs
from medai_lessons.cli import main
from medai_lessons.course import CourseError
from medai_lessons.model_answers import rubric_sections, written_answers

CHAPTERS = [d.name for d in chapter_dirs()]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_written_answer_has_a_rubric_worth_its_points(chapter):
    answers = written_answers(chapter, COURSE)
    assert answers, f"{chapter} has no written answer"
    for answer in answers:
        assert answer.rubric_points() == answer.points, (chapter, answer.grade_id)
        assert "Written answer" in answer.prompt and len(answer.model_answer.split()) > 100
    sections = rubric_sections(COURSE / "rubrics" / f"{chapter}.md")
    assert set(sections) == {a.grade_id for a in answers}, "a rubric for a written answer " \
        "that does not exist"


def test_a_missing_rubric_or_chapter_is_a_clear_error(tmp_path):
    import shutil

    course = tmp_path / "course"
    shutil.copytree(COURSE / "source" / CHAPTERS[0], course / "source" / CHAPTERS[0])
    (course / "nbgrader_config.py").write_text("")
    with pytest.raises(CourseError, match="has no rubric"):
        written_answers(CHAPTERS[0], course)
    with pytest.raises(CourseError, match="no chapter 'ch99'"):
        written_answers("ch99", course)


def test_the_command_prints_prompt_model_answer_and_rubric(capsys, monkeypatch):
    monkeypatch.setenv("MEDAI_COURSE_DIR", str(COURSE))
    assert main(["answers", "ch03_cnn"]) == 0
    out = capsys.readouterr().out
    answer = written_answers("ch03_cnn", COURSE)[0]
    for part in (answer.prompt.strip(), answer.model_answer.strip(), answer.rubric.strip(),
                 "### Model answer", "### Rubric (3 points)"):
        assert part in out
    assert main(["answers", "nope"]) == 2
    assert "no chapter 'nope'" in capsys.readouterr().err


def test_the_release_holds_no_model_answer_or_rubric(tmp_path):
    """The release of a chapter (what learners get in their workspace) has the prompt, but
    not the model answer nor the rubric."""
    from medai_lessons.course import GradingCourse

    chapter = "ch02_activations_losses"
    course = GradingCourse.create(tmp_path / "release", COURSE, [chapter])
    released = course.generate(chapter) / f"{chapter}.ipynb"
    text = "\n".join(c.source for c in nbformat.read(released, as_version=4).cells)
    answer = written_answers(chapter, COURSE)[0]
    assert answer.prompt.strip()[:80] in text
    assert answer.model_answer.strip()[:80] not in text
    assert answer.rubric.strip()[:60] not in text
