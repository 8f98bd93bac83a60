"""The integrity report (``medai-course integrity``) on a class of real ch02 submissions built
from the release: copies of the reference implementation (renamed, re-commented and re-spaced,
one line moved), a copy of the chapter's solution, two students sharing one answer under other
names, honest answers, untouched stubs and a damaged notebook."""

from __future__ import annotations

import ast
import contextlib
import copy
import csv
import inspect
import io
import json
import os
import re
import statistics
import subprocess
import sys
import textwrap
import tokenize

import nbformat
import pytest

from conftest import COURSE, ROOT
from medai_lessons import nn
from medai_lessons.cli import main
from medai_lessons.course import CourseError, GradingCourse
from medai_lessons.grading import check_mlp_backward
from medai_lessons.integrity import (
    MAX_ANSWER_CHARS,
    MIN_TOKENS,
    REFERENCE,
    SOLUTION,
    THRESHOLD,
    WINDOW,
    Answer,
    ExerciseReport,
    K,
    _spreadsheet_safe,
    build_report,
    normalise,
)
from nbtools import answered, cell, nbg, notebook, read

pytestmark = pytest.mark.slow  # a release is generated (about 10 s)

CH = "ch02_activations_losses"
ANSWER = "ans_mlp_backward"

# Two honest answers, written without looking at the course's code.
HONEST = '''def mlp_backward(params, cache, y):
    """Gradients of the mean binary cross-entropy with respect to W1, b1, W2 and b2."""
    X = cache["X"]
    hidden = cache["A1"]
    probs = cache["P"]
    targets = np.asarray(y, dtype=float).ravel()
    m = len(targets)
    delta_out = (probs - targets).reshape(-1, 1) / m
    grads = {}
    grads["W2"] = np.dot(hidden.T, delta_out)
    grads["b2"] = np.sum(delta_out, axis=0)
    delta_hidden = np.dot(delta_out, params["W2"].T) * (1 - hidden ** 2)
    grads["W1"] = np.dot(X.T, delta_hidden)
    grads["b1"] = np.sum(delta_hidden, axis=0)
    return grads
'''

LOOPS = '''def mlp_backward(params, cache, y):
    """Gradients of the mean binary cross-entropy with respect to W1, b1, W2 and b2."""
    X, A1, P = cache["X"], cache["A1"], cache["P"]
    y = np.asarray(y, dtype=float).reshape(-1)
    n, h = A1.shape
    W1 = np.zeros((X.shape[1], h))
    b1 = np.zeros(h)
    W2 = np.zeros((h, 1))
    b2 = np.zeros(1)
    for i in range(n):
        out_err = (P[i] - y[i]) / n
        W2[:, 0] += out_err * A1[i]
        b2[0] += out_err
        hid_err = out_err * params["W2"][:, 0] * (1 - A1[i] ** 2)
        W1 += np.outer(X[i], hid_err)
        b1 += hid_err
    return {"W1": W1, "b1": b1, "W2": W2, "b2": b2}
'''

# A third honest answer, in matrix form (quin's, beside code of other cells).
QUIN = '''def mlp_backward(params, cache, y):
    """Gradients of the mean binary cross-entropy with respect to W1, b1, W2 and b2."""
    hidden, prob = cache["A1"], np.ravel(cache["P"])
    target = np.ravel(np.asarray(y, dtype=float))
    err = np.expand_dims((prob - target) / target.size, 1)
    hid_err = np.einsum("nk,jk->nj", err, params["W2"]) * (1.0 - hidden * hidden)
    result = dict(W2=np.einsum("nj,nk->jk", hidden, err), b2=np.einsum("nk->k", err))
    result["W1"] = np.einsum("ni,nj->ij", cache["X"], hid_err)
    result["b1"] = np.einsum("nj->j", hid_err)
    return result
'''

# One student's own answer, which a second student hands in under other names.
SHARED = '''def mlp_backward(params, cache, y):
    """Gradients of the mean binary cross-entropy with respect to W1, b1, W2 and b2."""
    y_vec = np.asarray(y, dtype=float).ravel()
    X, H, P = cache["X"], cache["A1"], cache["P"]
    err = (P - y_vec) / len(y_vec)
    err = err.reshape(len(y_vec), 1)
    # output layer first
    grads = {"W2": H.T.dot(err), "b2": err.sum(axis=0)}
    back = err.dot(params["W2"].T)
    back = back * (1 - H * H)  # tanh'
    grads["W1"] = X.T.dot(back)
    grads["b1"] = back.sum(axis=0)
    return grads
'''


def rename(code: str, names: dict[str, str]) -> str:
    """``code`` with the identifiers in ``names`` renamed, layout kept (what a copier does
    first)."""
    lines = code.splitlines(keepends=True)
    found = [t for t in tokenize.generate_tokens(io.StringIO(code).readline)
             if t.type == tokenize.NAME and t.string in names]
    for t in reversed(found):  # right to left, so that earlier columns stay valid
        row, col = t.start
        line = lines[row - 1]
        lines[row - 1] = line[:col] + names[t.string] + line[col + len(t.string):]
    return "".join(lines)


def reference_source() -> str:
    return textwrap.dedent(inspect.getsource(nn.mlp_backward))


def pasted_into(starter: str) -> str:
    """The reference's body pasted below the release's signature and docstring."""
    ref = reference_source()
    body_start = ast.parse(ref).body[0].body[1].lineno  # the line after the docstring
    head = starter.split("# YOUR CODE HERE")[0].rstrip() + "\n"
    return head + "\n".join(ref.splitlines()[body_start - 1:]) + "\n"


def one_line_moved(code: str) -> str:
    lines = code.splitlines()
    i = next(n for n, line in enumerate(lines) if line.strip().startswith("dW2 ="))
    j = next(n for n, line in enumerate(lines) if line.strip().startswith("db2 ="))
    lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines) + "\n"


def partly_rewritten(code: str) -> str:
    """Three lines of the copy written another way (two merged into one, the return)."""
    lines = code.splitlines()
    a = next(n for n, line in enumerate(lines) if line.strip().startswith("dA1 ="))
    assert lines[a + 1].strip().startswith("dZ1 =")
    lines[a:a + 2] = ['    dZ1 = np.dot(dZ2, params["W2"].T) * (1 - np.square(A1))']
    assert lines[-1].strip().startswith("return {")
    lines[-1:] = ["    grads = dict(W1=dW1, b1=db1, W2=dW2, b2=db2)", "    return grads"]
    return "\n".join(lines) + "\n"


def recommented(code: str) -> str:
    """Comments removed and others added, spaces and blank lines changed."""
    code = re.sub(r"  # .*", "", code).replace(" = ", "=").replace(" @ ", "@")
    return code.replace("\n    d", "\n\n    # next gradient, as in the lecture\n    d")


def submission(release, code: str | None):
    nb = copy.deepcopy(release)
    if code is not None:
        cell(nb, ANSWER).source = code
    return nb


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    """A released ch02 and a class of submissions; the report with its default settings."""
    course = GradingCourse.create(tmp_path_factory.mktemp("integrity") / "course", COURSE, [CH])
    release = read(course.generate(CH) / f"{CH}.ipynb")
    source = read(course.root / "source" / CH / f"{CH}.ipynb")
    starter = cell(release, ANSWER).source
    assert "raise NotImplementedError()" in starter
    pasted = pasted_into(starter)
    answers = {
        "alice": HONEST,
        "bob": rename(pasted, {"y": "target", "X": "inputs", "A1": "hid", "P": "prob",
                               "n": "count", "dZ2": "e2", "dW2": "gw2", "db2": "gb2",
                               "dA1": "ah", "dZ1": "e1", "dW1": "gw1", "db1": "gb1"}),
        "carl": recommented(pasted),
        "dora": one_line_moved(reference_source()),
        "emma": SHARED,
        "finn": rename(SHARED, {"y_vec": "labels", "H": "hidden", "err": "delta",
                                "back": "d_hidden", "grads": "out"}
                       ).replace("output layer first", "start at the output"),
        "gina": LOOPS,
        "kate": pasted.replace("(n, 1)", "</pre><script>alert('kate')</script>"),
        "lily": partly_rewritten(pasted),
        "untouched": None,
        "jack": starter.replace("# YOUR CODE HERE", "# I could not do this one\n    # sorry"),
    }
    for student, code in answers.items():
        path = course.root / f"{student}.ipynb"
        nb = submission(release, code)
        if student == "alice":  # she answered relu too, in one line: too short to judge
            relu = cell(nb, "ans_relu")
            relu.source = relu.source.replace(
                "# YOUR CODE HERE\n    raise NotImplementedError()", "return np.maximum(x, 0)")
            assert "np.maximum" in relu.source
        nbformat.write(nb, path)
        course.submit(CH, student, path)
    # Every answer of the chapter's solution, copied into the release.
    nbformat.write(answered(release, source), course.root / "hank.ipynb")
    course.submit(CH, "hank", course.root / "hank.ipynb")
    broken = course.root / "submitted" / "ivan" / CH
    broken.mkdir(parents=True)
    (broken / f"{CH}.ipynb").write_text('{"cells": [', encoding="utf-8")
    # Valid JSON with cells no notebook editor writes.
    odd = course.root / "submitted" / "lena" / CH
    odd.mkdir(parents=True)
    (odd / f"{CH}.ipynb").write_text(json.dumps({"cells": [
        42, {"cell_type": "code", "metadata": ["x"], "source": ["def mlp_backward(", 7]},
        {"cell_type": "code", "metadata": {"nbgrader": "yes"}, "source": None}]}),
        encoding="utf-8")
    # The reference buried in a megabyte of padding.
    padded = pasted + "\n".join(f"# {'padding ' * 12}{n}" for n in range(12_000))
    nbformat.write(submission(release, padded), course.root / "max.ipynb")
    course.submit(CH, "max", course.root / "max.ipynb")
    report = build_report(course.root, CH)
    return {"root": course.root, "report": report, "answers": answers,
            "exercise": next(e for e in report.exercises if e.exercise == "mlp_backward")}


@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    """A class whose copies are kept out of the answer cell, in cells the learner added (the
    answer cell is what a reader of the notebook looks at; the grader runs whatever the name
    is bound to before the exercise's tests), beside an honest answer with cells the answer
    does not use."""
    course = GradingCourse.create(tmp_path_factory.mktemp("moved") / "course", COURSE, [CH])
    release = read(course.generate(CH) / f"{CH}.ipynb")
    reference_copy = rename(reference_source(), {"y": "target", "X": "inputs", "A1": "hid"})
    at = next(n for n, c in enumerate(release.cells) if nbg(c).get("grade_id") == ANSWER)
    olga = submission(release, None)  # the answer cell left as the release's stub
    olga.cells.insert(at + 1, nbformat.v4.new_code_cell(reference_copy))
    pete = submission(release, cell(release, ANSWER).source.replace(
        "# YOUR CODE HERE\n    raise NotImplementedError()", "return _backward(params, cache, y)"))
    pete.cells.insert(at, nbformat.v4.new_code_cell(
        "import numpy as np\n\n" + reference_copy.replace("def mlp_backward(", "def _backward(")))
    # An honest answer, and a copy of the reference in a cell the answer never uses, and one
    # that rebinds the name only after the exercise's tests.
    quin = submission(release, QUIN)
    quin.cells.insert(at + 1, nbformat.v4.new_code_cell(
        reference_copy.replace("def mlp_backward(", "def unused_backward(")))
    quin.cells.append(nbformat.v4.new_code_cell(reference_copy))
    # A red-team helper, round 10: the copy kept in another exercise's answer cell (rita), bound
    # by a def nested in a function that declares the name global (sam), run from a string
    # (tess), or in the answer cell behind lines a line-by-line reading took for magics (uma).
    stub_call = "# YOUR CODE HERE\n    raise NotImplementedError()"
    rita = submission(release, cell(release, ANSWER).source.replace(
        stub_call, "return _backprop(params, cache, y)"))
    relu = cell(rita, "ans_relu")
    relu.source = relu.source.replace(stub_call, "return np.maximum(x, 0)") + "\n\n" + \
        reference_copy.replace("def mlp_backward(", "def _backprop(")
    sam = submission(release, None)
    sam.cells.insert(at + 1, nbformat.v4.new_code_cell(
        "def _install():\n    global mlp_backward\n" + textwrap.indent(reference_copy, "    ")
        + "\n_install()\n"))
    tess = submission(release, f"exec({reference_copy!r})\n")
    uma = submission(release, '_ = (1\n%len("""\n"""))\n' + reference_copy)
    vera = submission(release, '%matplotlib inline\n_ = (1\n%len("""\n"""))\n' + reference_copy)
    for student, nb in {"alice": submission(release, HONEST), "olga": olga, "pete": pete,
                        "quin": quin, "rita": rita, "sam": sam, "tess": tess,
                        "uma": uma, "vera": vera}.items():
        nbformat.write(nb, course.root / f"{student}.ipynb")
        course.submit(CH, student, course.root / f"{student}.ipynb")
    report = build_report(course.root, CH)
    return {"root": course.root,
            "exercise": next(e for e in report.exercises if e.exercise == "mlp_backward")}


def pairs_of(exercise, student):
    return {(p.b.who if p.a.who == student else p.a.who): p for p in exercise.pairs
            if student in (p.a.who, p.b.who)}


@pytest.mark.parametrize("code", [HONEST, LOOPS, SHARED, QUIN],
                         ids=["honest", "loops", "shared", "quin"])
def test_the_honest_answers_are_right_answers(code):
    """The class's own answers pass the course's checker: they are what honest learners hand
    in, not strawmen that differ from the reference only by being wrong."""
    check_mlp_backward(notebook("import numpy as np\n" + code)["mlp_backward"], strict=True)


def test_a_partly_rewritten_copy_is_still_flagged(klass):
    pair = pairs_of(klass["exercise"], "lily")[REFERENCE]
    assert THRESHOLD <= pair.score < 0.9, pair.score


@pytest.mark.parametrize("student", ["bob", "carl", "dora", "kate"])
def test_copies_of_the_reference_are_flagged(klass, student):
    pairs = pairs_of(klass["exercise"], student)
    assert REFERENCE in pairs, (student, {k: round(p.score, 2) for k, p in pairs.items()})
    pair = pairs[REFERENCE]
    assert pair.score >= 0.85 and pair.kind == "copy of the reference implementation"
    assert min(pair.shared_a, pair.shared_b) >= MIN_TOKENS


def test_students_sharing_one_answer_are_flagged_as_a_pair(klass):
    pairs = pairs_of(klass["exercise"], "emma")
    assert "finn" in pairs and pairs["finn"].score >= 0.9, pairs.keys()
    assert pairs["finn"].kind == "two students" and not pairs["finn"].both_near
    assert pairs["finn"] in klass["exercise"].to_read
    # Also when a low threshold lists them with the course's code: they are far closer to each
    # other (1.00) than to it (about 0.3), so their pair is shown, not folded away.
    low = build_report(klass["root"], CH, threshold=0.2)
    ex = next(e for e in low.exercises if e.exercise == "mlp_backward")
    assert SOLUTION in pairs_of(ex, "emma") and pairs_of(ex, "emma")["finn"] in ex.to_read
    # Their own answer is not the reference's.
    assert REFERENCE not in pairs and SOLUTION not in pairs


@pytest.mark.parametrize("student", ["olga", "pete", "rita", "sam"])
def test_a_copy_outside_the_answer_cell_is_flagged(moved, student):
    """The answer cell left as the stub (olga) or reduced to a call (pete): the code the grader
    runs for the exercise is in a cell the learner added, and that cell is compared."""
    ex = moved["exercise"]
    assert student in ex.compared and student not in ex.unanswered
    pair = pairs_of(ex, student)[REFERENCE]
    assert pair.score >= 0.85, pair.score
    assert "which mlp_backward uses" in pair.a.code


@pytest.mark.parametrize("student", ["tess", "uma", "vera"])
def test_a_copy_disguised_from_a_line_by_line_reading_is_flagged(moved, student):
    """Code run from a string is compared as code; lines that start with % inside brackets
    are Python, not magics to leave out (vera's cell also has a real magic)."""
    pair = pairs_of(moved["exercise"], student)[REFERENCE]
    assert pair.score >= 0.85, pair.score


def test_cells_the_exercise_does_not_use_are_not_compared(moved):
    """quin's copy of the reference under another name, and the copy that rebinds the name
    after the exercise's tests, are not part of the answer the tests graded: her code is her
    answer cell alone (read from a pair that any shared token lists)."""
    assert not pairs_of(moved["exercise"], "quin")
    low = build_report(moved["root"], CH, threshold=0.01, min_tokens=1)
    ex = next(e for e in low.exercises if e.exercise == "mlp_backward")
    quin = {a.code for p in ex.pairs for a in (p.a, p.b) if a.who == "quin"}
    assert quin == {QUIN}, quin


def test_two_copies_of_the_reference_are_alike_through_it_not_read_twice(klass):
    pair = pairs_of(klass["exercise"], "bob")["carl"]
    assert pair.score >= 0.9 and pair.both_near == REFERENCE
    assert pair in klass["exercise"].alike_through_course
    assert pair not in klass["exercise"].to_read


def test_the_typical_score_with_the_reference_is_shown(klass):
    ex = klass["exercise"]
    scores = ex.course_scores[REFERENCE]
    assert set(scores) == set(ex.compared)
    assert scores["dora"] > 0.9 and scores["alice"] < 0.5
    assert ex.typical(REFERENCE) == pytest.approx(statistics.median(scores.values()))
    assert ex.converges(THRESHOLD) == []  # most of this class wrote its own
    assert f"median score with the reference implementation: {ex.typical(REFERENCE):.2f}" in \
        "\n".join(klass["report"].lines())


def test_an_exercise_most_answers_write_alike_is_marked_weak_evidence():
    ex = ExerciseReport("gru_cell", course_scores={REFERENCE: {"a": 0.85, "b": 0.9, "c": 0.2}},
                        course=[Answer(REFERENCE, "gru_cell", "", normalise(""))])
    assert ex.typical(REFERENCE) == 0.85
    assert ex.converges(0.7) == [REFERENCE] and ex.converges(0.9) == []
    assert ExerciseReport("x", course_scores={REFERENCE: {"a": 1.0}}).typical(REFERENCE) is None


def test_a_copy_of_the_chapters_solution_is_flagged(klass):
    pairs = pairs_of(klass["exercise"], "hank")
    assert SOLUTION in pairs and pairs[SOLUTION].score == 1.0
    flagged = {e.exercise for e in klass["report"].exercises
               if any(p.a.who == "hank" and p.b.who == SOLUTION for p in e.pairs)}
    assert {"mlp_backward", "mlp_forward", "gradient_descent"} <= flagged, flagged


@pytest.mark.parametrize("student", ["alice", "gina"])
def test_honest_answers_are_not_flagged(klass, student):
    assert student in klass["exercise"].compared
    assert not pairs_of(klass["exercise"], student), {
        k: round(p.score, 2) for k, p in pairs_of(klass["exercise"], student).items()}


def test_honest_answers_score_well_below_the_copies(klass):
    """Not only under the threshold: with it lowered to 0.5 the honest answers still show no
    pair, while every copy stays above 0.85 (the gap the default threshold sits in)."""
    assert 0.5 < THRESHOLD < 0.85
    low = build_report(klass["root"], CH, threshold=0.5)
    ex = next(e for e in low.exercises if e.exercise == "mlp_backward")
    for student in ("alice", "gina"):
        assert not pairs_of(ex, student), student


def test_stubs_and_starter_code_never_match(klass):
    report = klass["report"]
    for ex in report.exercises:
        assert "untouched" in ex.unanswered and "jack" in ex.unanswered, ex.exercise
        for p in ex.pairs:
            assert {p.a.who, p.b.who}.isdisjoint({"untouched", "jack"})
    # Exercises only the solution's copier answered have no pair between students at all.
    others = [e for e in report.exercises if e.exercise != "mlp_backward"]
    assert all(e.compared in ([], ["hank"]) for e in others)
    assert all(p.b.is_course for e in others for p in e.pairs)


def test_short_answers_are_set_aside_not_flagged(klass):
    short = [e for e in klass["report"].exercises if "hank" in e.too_short]
    assert short, "ch02's one-line answers (tanh, relu, mse) are too short to judge"
    assert all(not e.pairs for e in short)
    # an answer, however short, is never counted as unanswered (relu's one line has no
    # fingerprint of its own at all)
    for e in klass["report"].exercises:
        assert "hank" not in e.unanswered, e.exercise
    relu = next(e for e in klass["report"].exercises if e.exercise == "relu")
    assert "alice" in relu.too_short and "alice" not in relu.unanswered, relu


def test_a_broken_notebook_is_reported_and_the_rest_analysed(klass):
    report = klass["report"]
    assert "not valid JSON" in report.unreadable["ivan"]
    assert "ivan" not in report.students
    assert len(report.students) == 14
    assert "NOT READ: ivan" in "\n".join(report.lines())


def test_odd_cells_and_huge_answers_cost_only_their_own_comparison(klass):
    report = klass["report"]
    assert "lena" in report.students and "max" in report.students
    for ex in report.exercises:
        assert "lena" in ex.missing + ex.unanswered + ex.too_short, ex.exercise
        assert all("lena" not in (p.a.who, p.b.who) for p in ex.pairs)
    assert klass["exercise"].too_long == ["max"]
    assert "1 too long to compare: max" in "\n".join(report.lines())


def test_csv_cells_never_become_spreadsheet_formulas():
    assert _spreadsheet_safe("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert _spreadsheet_safe("-1+2") == "'-1+2" and _spreadsheet_safe("@SUM(A1)")[0] == "'"
    assert _spreadsheet_safe("def f(x):") == "def f(x):"


def test_no_submissions_is_a_clear_error(tmp_path):
    course = GradingCourse.create(tmp_path / "empty", COURSE, [CH])
    with pytest.raises(CourseError, match=r"No submissions of ch02_activations_losses in .*"
                                          r"submitted/<student>/ch02_activations_losses/"):
        build_report(course.root, CH)
    with pytest.raises(CourseError, match="No source/ch09_none"):
        build_report(course.root, "ch09_none")
    code, _, err = run(["integrity", CH, "--course-root", str(course.root)])
    assert code == 2 and "medai-course: No submissions of ch02_activations_losses" in err


def test_an_exercise_without_a_registered_reference_is_still_compared(tmp_path):
    """A chapter an instructor added: its answer cells name the exercises; with no reference
    implementation in the course, students are compared with the solution and each other."""
    answer = ("def heart_rate(rr_intervals):\n"
              "    ### BEGIN SOLUTION\n"
              "    rr = np.asarray(rr_intervals, dtype=float)\n"
              "    rr = rr[(rr > 0.25) & (rr < 2.5)]\n"
              "    if rr.size == 0:\n"
              "        return float('nan')\n"
              "    return float(60.0 / np.median(rr))\n"
              "    ### END SOLUTION\n")
    source = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(answer, metadata={
        "nbgrader": {"grade": False, "grade_id": "ans_heart_rate", "locked": False,
                     "schema_version": 3, "solution": True, "task": False}})])
    own = ("def heart_rate(rr_intervals):\n"
           "    beats = [60 / r for r in rr_intervals if 0.3 < r < 2]\n"
           "    beats.sort()\n"
           "    while len(beats) > 2:\n"
           "        beats = beats[1:-1]\n"
           "    return sum(beats) / len(beats) if beats else float('nan')\n")
    root = tmp_path / "course"
    (root / "source" / "ch09_ecg").mkdir(parents=True)
    nbformat.write(source, root / "source" / "ch09_ecg" / "ch09_ecg.ipynb")
    for student, code in (("ann", own), ("ben", rename(own, {"beats": "bpm", "r": "x"})),
                          ("cat", answer.replace("rr", "intervals")),
                          (REFERENCE, own)):  # a folder that happens to bear that name
        nb = copy.deepcopy(source)
        nb.cells[0].source = code
        (root / "submitted" / student / "ch09_ecg").mkdir(parents=True)
        nbformat.write(nb, root / "submitted" / student / "ch09_ecg" / "ch09_ecg.ipynb")
    report = build_report(root, "ch09_ecg", min_tokens=10)
    [ex] = report.exercises
    assert ex.exercise == "heart_rate" and [d.who for d in ex.course] == [SOLUTION]
    found = {(p.a.who, p.b.who, p.kind) for p in ex.pairs}
    assert found == {("ann", "ben", "two students"), ("ann", REFERENCE, "two students"),
                     ("ben", REFERENCE, "two students"),
                     ("cat", SOLUTION, "copy of the chapter solution")}, found


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's errors
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_cli_writes_an_html_report_with_the_code_side_by_side(klass, tmp_path):
    dest = tmp_path / "report.html"
    code, out, err = run(["integrity", CH, "--course-root", str(klass["root"]),
                          "--to", str(dest)])
    assert code == 0, err
    assert "mlp_backward: 10 answer(s) compared" in out and f"report written to {dest}" in out
    assert re.search(r"0\.\d\d  bob ~ reference implementation", out), out
    text = dest.read_text(encoding="utf-8")
    assert "changes no grade" in text and "<table class='side'>" in text
    assert "<mark>    gw1 = inputs.T @ e1" in text  # bob's code, the shared lines marked
    # lily's own lines are not marked, though runs shared with the reference reach into them
    assert "\n    grads = dict(W1=dW1, b1=db1, W2=dW2, b2=db2)\n" in text
    assert "<mark>    grads = dict(" not in text
    assert "<tr><td>bob and carl</td>" in text  # alike through the reference: one row
    # A learner's code is shown, never run by the browser.
    assert "<script>" not in text and "&lt;/pre&gt;&lt;script&gt;alert(" in text


def test_cli_writes_a_csv_of_the_pairs(klass, tmp_path):
    dest = tmp_path / "pairs.csv"
    code, _, err = run(["integrity", CH, "--course-root", str(klass["root"]), "--to", str(dest),
                        "--threshold", "0.9"])
    assert code == 0, err
    rows = list(csv.DictReader(dest.open(encoding="utf-8", newline="")))
    pairs = {(r["student"], r["other"]) for r in rows if r["exercise"] == "mlp_backward"}
    assert {("bob", REFERENCE), ("emma", "finn")} <= pairs
    assert all(float(r["score"]) >= 0.9 for r in rows if r["score"])
    assert not any("alice" in pair or "gina" in pair for pair in pairs)
    assert any(r["student"] == "ivan" and "not valid JSON" in r["kind"] for r in rows)
    bob = next(r for r in rows if (r["student"], r["other"]) == ("bob", REFERENCE))
    assert "e2 = ((prob - target) / count)" in bob["student_code"]
    assert "dZ2 = ((P - y) / n)" in bob["other_code"]


@pytest.mark.parametrize("argv, message", [
    (["--threshold", "1.5"], "expected a share in (0, 1]"),
    (["--to", "report.txt"], "written as .html or .csv"),
    (["--min-tokens", "0"], "expected a whole number > 0"),
])
def test_cli_bad_options_say_what_to_do(klass, tmp_path, argv, message):
    code, _, err = run(["integrity", CH, "--course-root", str(klass["root"]),
                        *[a.replace("report.txt", str(tmp_path / "report.txt")) for a in argv]])
    assert code == 2 and message in err, err


def test_the_report_is_the_same_in_every_process(klass, tmp_path):
    """Fingerprints use a fixed hash: Python's own string hash changes with each process,
    which would change what winnowing keeps, and so the scores, from one run to the next."""
    texts = []
    for seed in ("1", "2"):
        dest = tmp_path / f"run{seed}.csv"
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(ROOT))
        subprocess.run([sys.executable, "-m", "medai_lessons.cli", "integrity", CH,
                        "--course-root", str(klass["root"]), "--to", str(dest)],
                       check=True, env=env, capture_output=True, cwd=tmp_path)
        texts.append(dest.read_text(encoding="utf-8"))
    assert texts[0] == texts[1] and texts[0].count("\n") > 5


def test_the_instructor_guide_states_the_defaults_in_force():
    guide = (ROOT / "docs" / "instructor-guide.md").read_text(encoding="utf-8")
    section = guide.split("## Copies: the integrity report", 1)[1].split("\n## ", 1)[0]
    section = " ".join(section.split())
    for text in (f"`--threshold` (default {THRESHOLD:g})", f"(default {MIN_TOKENS})",
                 f"run of {K + WINDOW - 1} or more tokens", f"fewer than {K} never count",
                 f"over {MAX_ANSWER_CHARS:,} characters", "can open those files"):
        assert text in section, text


def test_normalising_sets_aside_names_literals_comments_and_layout():
    a = normalise('def f(x):\n    """Doc."""\n    y = x * 2.0  # double\n    return y\n')
    b = normalise("def g(value):\n\n    out=value*3\n    return out\n")
    assert a.symbols == b.symbols
    stub = normalise('def f(x):\n    """Doc."""\n    raise NotImplementedError("later")\n')
    assert stub.symbols == ["def", "V", "(", "V", ")", ":", ";", "{", "}"]
    assert normalise("for i in range(3):\n    x = i\n").symbols[:2] == ["for", "V"]
    assert normalise("def f(x):\n    return (x\n").symbols  # unparseable: as far as it goes
    assert json.dumps(normalise("%timeit f(1)\n!ls\n").symbols) == "[]"
