"""The nbgrader cycle for every chapter in course/source, in a temporary course folder.

Generic over chapters: a new chapter folder is covered without new test code. For each one:
generate_assignment; the release holds no solution code and no hidden-test text; autograding
the source scores full marks on every autograded test cell; the untouched release scores zero;
a partly answered submission scores exactly the points of the tests it should pass;
generate_feedback writes HTML. Scores come from nbgrader's Gradebook.

Which answers a test needs: by default the nearest answer cell above it; a test cell's
metadata ``medai.requires`` (a list of answer-cell grade_ids) overrides that, e.g. when the
learner's ``sigmoid_grad`` is expected to call their ``sigmoid``.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from conftest import COURSE, chapter_dirs
from medai_lessons.course import GradingCourse
from nbtools import answer_cells, answered, grade_cells, nbg, requirements

pytestmark = pytest.mark.slow

CHAPTERS = [d.name for d in chapter_dirs()]
SOLUTION_BLOCK = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
HIDDEN_BLOCK = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)


def test_course_has_chapters():
    assert "ch02_activations_losses" in CHAPTERS, f"chapters found: {CHAPTERS}"


@pytest.fixture(scope="module", params=CHAPTERS)
def graded(request, tmp_path_factory):
    chapter = request.param
    course = GradingCourse.create(tmp_path_factory.mktemp(chapter), COURSE, [chapter])
    release_dir = course.generate(chapter)
    source_nb = nbformat.read(course.root / "source" / chapter / f"{chapter}.ipynb", 4)
    release_path = release_dir / f"{chapter}.ipynb"
    release_nb = nbformat.read(release_path, 4)

    # A partly answered submission: every other answer cell filled in.
    filled = {nbg(c)["grade_id"] for c in answer_cells(source_nb)[::2]}
    partial = answered(release_nb, source_nb, filled)
    partial_path = course.root / "partial.ipynb"
    nbformat.write(partial, partial_path)

    course.submit(chapter, "reference", course.root / "source" / chapter / f"{chapter}.ipynb")
    course.submit(chapter, "untouched", release_path)
    course.submit(chapter, "partial", partial_path)
    scores = {}
    for student in ("reference", "untouched", "partial"):
        course.autograde(chapter, student)
        scores[student] = course.scores(chapter, student)
    return {"chapter": chapter, "course": course, "source": source_nb, "release": release_nb,
            "filled": filled, "scores": scores}


def autograded(scores: dict) -> dict:
    return {k: v for k, v in scores.items() if v["kind"] == "autograded"}


def test_release_has_no_solutions_or_hidden_tests(graded):
    text = nbformat.writes(graded["release"])
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text, f"release of {graded['chapter']} contains '{marker}'"
    release_cells = {nbg(c).get("grade_id"): c for c in graded["release"].cells if nbg(c)}
    for c in graded["source"].cells:
        gid = nbg(c).get("grade_id")
        if not gid:
            continue
        released = release_cells[gid].source
        blocks = SOLUTION_BLOCK.findall(c.source) + HIDDEN_BLOCK.findall(c.source)
        if c.cell_type == "markdown" and nbg(c).get("solution"):
            blocks = [c.source]
        for block in blocks:
            for line in block.splitlines():
                line = line.strip()
                if len(line) > 8 and not line.startswith("#"):
                    assert line not in released, (
                        f"{graded['chapter']}: cell {gid} of the release still contains the "
                        f"hidden line {line!r}")
    stubs = [c for c in answer_cells(graded["release"])]
    assert stubs and all("raise NotImplementedError()" in c.source for c in stubs)


def test_reference_scores_full_marks(graded):
    scores = autograded(graded["scores"]["reference"])
    expected = {nbg(c)["grade_id"] for c in grade_cells(graded["source"])}
    assert set(scores) == expected
    lost = {k: v for k, v in scores.items() if v["auto_score"] != v["max_score"]}
    assert not lost, f"the source notebook lost points on {lost}"


def test_autograding_leaves_out_the_tagged_applied_cells_and_nothing_else_fails(graded):
    """The reference submission, as autograded: each cell tagged for autograding to leave out
    shows the note instead of running; every other code cell ran without an error."""
    from medai_lessons.grading.execute import SKIP_NOTE, SKIP_TAG

    chapter = graded["chapter"]
    path = graded["course"].root / "autograded" / "reference" / chapter / f"{chapter}.ipynb"
    nb = nbformat.read(path, 4)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    tagged = [SKIP_TAG in c.metadata.get("tags", []) for c in graded["source"].cells
              if c.cell_type == "code" and c.source.strip()]
    assert len(tagged) == len(code)
    for c, left_out in zip(code, tagged, strict=True):
        texts = [o.get("text", "") for o in c.outputs if o.output_type == "stream"]
        if left_out:
            assert texts == [SKIP_NOTE] and c.execution_count is None, c.source[:80]
        else:
            assert c.execution_count is not None, c.source[:80]
            errors = [o.ename for o in c.outputs if o.output_type == "error"]
            assert not errors, f"{chapter}: {errors} in\n{c.source[:300]}"


def test_the_grading_kernel_loads_tensorflow_only_where_a_graded_cell_needs_it(graded):
    """setup()'s line in the autograded notebook: chapters whose cells that run while graded
    need no TensorFlow are graded without importing it (the largest part of a kernel's work)."""
    from medai_lessons.grading.sandbox import availability
    from medai_lessons.notebook import GRADED_WITHOUT_TENSORFLOW

    chapter = graded["chapter"]
    path = graded["course"].root / "autograded" / "reference" / chapter / f"{chapter}.ipynb"
    setup_cell = nbformat.read(path, 4).cells[1]
    line = "".join(o.get("text", "") for o in setup_cell.outputs)
    assert "MedAI Lessons" in line, setup_cell.outputs
    if "tensorflow=False" in graded["source"].cells[1].source:
        assert "TensorFlow not loaded" in line
    elif chapter in GRADED_WITHOUT_TENSORFLOW and graded["course"].sandbox and availability()[0]:
        assert "TensorFlow not loaded (not needed for grading)" in line
    else:
        assert "TensorFlow 2." in line, line


def test_untouched_release_scores_zero(graded):
    scores = autograded(graded["scores"]["untouched"])
    assert scores and all(v["auto_score"] == 0 for v in scores.values()), scores


def test_an_untouched_exercise_says_it_is_not_written_yet(graded):
    """A test cell of an exercise left as released says so, not a bare NotImplementedError."""
    from medai_lessons.grading.remote import NOT_WRITTEN

    chapter = graded["chapter"]
    path = graded["course"].root / "autograded" / "untouched" / chapter / f"{chapter}.ipynb"
    errors = [o for c in nbformat.read(path, 4).cells if nbg(c).get("grade")
              and not nbg(c).get("solution")
              for o in c.get("outputs", []) if o.output_type == "error"
              and o.ename == "NotImplementedError"]
    assert errors, "the untouched release raised no NotImplementedError"
    assert all(o.evalue == NOT_WRITTEN for o in errors), [o.evalue for o in errors][:3]


def test_partial_submission_scores_exactly_its_tests(graded):
    needs = requirements(graded["source"])
    scores = autograded(graded["scores"]["partial"])
    should_pass = {gid for gid, req in needs.items() if req <= graded["filled"]}
    assert 0 < len(should_pass) < len(needs), "a partial submission passes some tests, not all"
    assert set(scores) == set(needs), f"{graded['chapter']}: gradebook {sorted(scores)}"
    for gid, v in scores.items():
        want = v["max_score"] if gid in should_pass else 0
        assert v["auto_score"] == want, (
            f"{graded['chapter']}: {gid} scored {v['auto_score']} of {v['max_score']}, expected "
            f"{want} (answers filled: {sorted(graded['filled'])}, it needs {sorted(needs[gid])})")


def test_written_answers_wait_for_a_person(graded):
    written = {k: v for k, v in graded["scores"]["reference"].items() if v["kind"] == "written"}
    assert written, "every chapter has at least one written, manually graded answer"
    assert all(v["auto_score"] is None for v in written.values())


def test_feedback_is_html(graded):
    for student in ("reference", "partial"):
        html = graded["course"].generate_feedback(graded["chapter"], student)
        text = html.read_text(encoding="utf-8")
        assert text.lstrip().lower().startswith("<!doctype html") or "<html" in text[:500]
        assert graded["chapter"] in text
