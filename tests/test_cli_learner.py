"""The learner's commands, run for real: ``medai-course workspace`` (a course update keeps the
learner's edit) and ``medai-course check`` (per-exercise summary of the visible tests)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from test_workspace import publish_update

from conftest import COURSE
from medai_lessons.cli import main

CH = "ch02_activations_losses"
HIDDEN = "### BEGIN HIDDEN TESTS\nraise AssertionError('a hidden test ran')\n### END HIDDEN TESTS"
ANSWERS = {
    # right
    "ans_sigmoid": "def sigmoid(x):\n    return 0.5 * (1 + np.tanh(0.5 * np.asarray(x, float)))",
    # wrong: the identity, not max(0, x)
    "ans_relu": "def relu(x):\n    return np.asarray(x, dtype=float)",
    # does not even parse
    "ans_tanh": "def tanh(x):\n    return np.tanh(x",
}


def learner_edits(path):
    """Answer three exercises (right, wrong, broken) and slip a hidden test into a test cell,
    which the self-check must not run."""
    nb = nbformat.read(path, 4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in ANSWERS:
            cell.source = ANSWERS[gid]
        elif gid == "test_sigmoid":
            cell.source += "\n" + HIDDEN
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """A private course copy; the workspace synced, edited by the learner, then synced again
    after a course update. Returns the paths and the second sync's output."""
    tmp = tmp_path_factory.mktemp("learner")
    course = tmp / "course"
    shutil.copytree(COURSE, course, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    ws = tmp / "ws"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDAI_COURSE_DIR", str(course))
        assert main(["workspace", "--workspace", str(ws), CH]) == 0
        nb_path = ws / CH / f"{CH}.ipynb"
        learner_edits(nb_path)
        mine = nb_path.read_bytes()
        publish_update(course, "A course update.")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["workspace", "--workspace", str(ws), CH]) == 0
    return {"ws": ws, "nb": nb_path, "mine": mine, "second_sync": out.getvalue()}


@pytest.mark.slow
def test_workspace_update_keeps_the_learners_edit(session):
    assert session["nb"].read_bytes() == session["mine"]
    out = session["second_sync"]
    assert f"KEPT YOUR EDITS: {CH}/{CH}.ipynb" in out, out
    [beside] = (session["ws"] / CH).glob(f"{CH}.course-update-*.ipynb")
    assert beside.name in out
    assert "A course update." in beside.read_text()
    assert "A course update." not in session["nb"].read_text()


def summary_rows(out: str) -> dict[str, str]:
    """grade_id -> "<points> <STATUS>" from the check's per-exercise lines."""
    rows = {}
    for line in out.splitlines():
        words = line.split()
        if line.startswith("  ") and len(words) >= 3 and words[2] in ("pt", "pts"):
            rows[words[0]] = " ".join(words[1:])
    return rows


@pytest.mark.slow
def test_check_summarises_each_exercise(session, capsys):
    code = main(["check", str(session["nb"])])
    out = capsys.readouterr().out
    assert code == 1, "a failed exercise makes the exit code 1"
    rows = summary_rows(out)
    assert rows["test_sigmoid"].endswith("PASSED"), "hidden tests are not part of the check"
    assert rows["test_relu"].endswith("FAILED")
    assert "relu: failed on case" in out and "hint:" in out, "the checker's own message"
    assert rows["test_tanh"].endswith("FAILED")
    assert "your answer cell above raised SyntaxError" in out
    for gid in ("test_mse", "test_mlp_backward"):
        assert rows[gid].endswith("NOT ATTEMPTED"), rows[gid]
    assert rows["test_sigmoid"] == "2 pts PASSED" and rows["test_mlp_backward"].startswith("4 pts")
    assert "Passed 1 of 11 tested exercises (2 of 19 points); 2 failed, 8 not attempted." in out
    assert rows["written_weighting"] == "3 pts NOT WRITTEN"
    assert session["nb"].read_bytes() == session["mine"], "the check never writes the notebook"


def small_notebook(path, test_source, answer="def double(x):\n    return 2 * x"):
    """A two-exercise notebook with nbgrader metadata: one answered, one still a stub."""
    def meta(gid, grade, solution, points=None):
        m = {"grade": grade, "grade_id": gid, "locked": not solution, "schema_version": 3,
             "solution": solution, "task": False}
        if points is not None:
            m["points"] = points
        return {"nbgrader": m}

    nb = new_notebook(cells=[
        new_code_cell(answer, metadata=meta("ans_double", False, True)),
        new_code_cell(test_source, metadata=meta("test_double", True, False, 2)),
        new_code_cell("def half(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()",
                      metadata=meta("ans_half", False, True)),
        new_code_cell("assert half(4) == 2", metadata=meta("test_half", True, False, 1)),
        new_markdown_cell("My view.", metadata=meta("written_view", True, True, 1)),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


def test_check_exit_zero_when_everything_attempted_passes(tmp_path, capsys):
    # The test cell reads a file beside the notebook: the check runs in the notebook's folder.
    (tmp_path / "cases.txt").write_text("21")
    path = small_notebook(tmp_path / "mine.ipynb",
                          "assert double(int(open('cases.txt').read())) == 42")
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert summary_rows(out) == {"test_double": "2 pts PASSED", "test_half": "1 pt NOT ATTEMPTED",
                                 "written_view": "1 pt WRITTEN"}
    assert "Passed 1 of 2 tested exercises (2 of 3 points); 0 failed, 1 not attempted." in out


def test_check_starts_its_kernel_without_the_unencrypted_tcp_warning(tmp_path, capfd):
    from medai_lessons import kernels

    path = small_notebook(tmp_path / "mine.ipynb", "assert double(21) == 42")
    assert main(["check", str(path)]) == 0
    err = capfd.readouterr().err
    if kernels.ipc_transport():
        assert "without encryption" not in err, err
    runtime = Path(os.environ["JUPYTER_RUNTIME_DIR"])
    assert not list(runtime.glob("medai-*-ipc-*")), "the kernel's sockets were left behind"
    assert kernels.server_arguments() == (["--KernelManager.transport=ipc"]
                                          if kernels.ipc_transport() else [])


def test_check_leaves_out_applied_cells_but_never_a_tagged_test(tmp_path, capsys):
    """As in autograding: a plain cell tagged not-autograded does not run (its sleep would hit
    the time limit); the same tag on a failing test cell is ignored, so the test still fails."""
    from medai_lessons.grading.execute import SKIP_TAG

    path = small_notebook(tmp_path / "tagged.ipynb", "assert double(2) == 5, 'wrong on purpose'")
    nb = nbformat.read(path, 4)
    applied = new_code_cell("import time\ntime.sleep(60)", metadata={"tags": [SKIP_TAG]})
    nb.cells.insert(2, applied)
    nb.cells[1].metadata["tags"] = [SKIP_TAG]                     # the failing test cell
    nbformat.write(nb, path)
    assert main(["check", "--timeout", "5", str(path)]) == 1
    out = capsys.readouterr().out
    assert summary_rows(out)["test_double"] == "2 pts FAILED"
    assert "per-cell time limit" not in out


def test_check_stops_a_slow_cell_and_reports_it(tmp_path, capsys):
    path = small_notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(60)")
    assert main(["check", "--timeout", "2", str(path)]) == 1
    out = capsys.readouterr().out
    assert "test_double" in out and "per-cell time limit" in out


@pytest.mark.parametrize(("content", "message"), [
    (None, "No notebook at"),
    ("{ not json", "is not a readable notebook"),
    ("NO_TESTS", "has no test cells"),
    ("OTHER_KERNEL", "asks for the kernel 'no-such-kernel', which is not installed"),
])
def test_check_bad_input_says_what_to_do(tmp_path, capsys, content, message):
    path = tmp_path / "nb.ipynb"
    if content == "NO_TESTS":
        nbformat.write(new_notebook(cells=[new_code_cell("1 + 1")]), path)
    elif content == "OTHER_KERNEL":
        small_notebook(path, "assert True")
        nb = nbformat.read(path, 4)
        nb.metadata["kernelspec"]["name"] = "no-such-kernel"
        nbformat.write(nb, path)
    elif content is not None:
        path.write_text(content)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert any(hint in err for hint in ("e.g.", "Restore", "chapter notebook", "--kernel"))


def test_check_lists_the_lines_for_which_autograding_would_not_run_a_probe(tmp_path, capsys):
    # a chapter with checks that run the course's code in the kernel (ch05's losses): a line
    # that reaches the grader's machinery is named before the learner submits
    probe_test = ("from medai_lessons.grading import check_discriminator_loss  # ch05's kind\n"
                  "assert double(21) == 42")
    reaching = small_notebook(tmp_path / "reaching.ipynb", probe_test,
                              answer="import sys\ndef double(x):\n    return 2 * x")
    assert main(["check", str(reaching)]) == 0
    out = capsys.readouterr().out
    assert "would not be graded" in out and "cell 1, line 1: `import sys`" in out, out
    # the same notebook without that line, and the line in a chapter without such checks
    clean = small_notebook(tmp_path / "clean.ipynb", probe_test)
    other = small_notebook(tmp_path / "other.ipynb", "assert double(21) == 42",
                           answer="import sys\ndef double(x):\n    return 2 * x")
    for path in (clean, other):
        assert main(["check", str(path)]) == 0
        assert "would not be graded" not in capsys.readouterr().out


def test_check_names_an_exercise_answered_by_a_librarys_implementation(tmp_path, capsys):
    # the hidden tests refuse it as the learner's own: the learner hears it before submitting
    library = small_notebook(tmp_path / "library.ipynb", "assert softmax is not None",
                             answer="from scipy.special import softmax as s\n"
                                    "def softmax(z):\n    return s(z, axis=1)\n"
                                    "def double(x):\n    return 2 * x")
    assert main(["check", str(library)]) == 0
    out = capsys.readouterr().out
    assert "will not count these as your own" in out, out
    assert "makes 's' the library's scipy.special.softmax (through softmax -> s)" in out, out
    computed = small_notebook(tmp_path / "computed.ipynb", "assert softmax is not None",
                              answer="import scipy.special as sp\ndef softmax(z):\n"
                                     "    return getattr(sp, 'soft' + 'max')(z)\n"
                                     "def double(x):\n    return 2 * x")
    assert main(["check", str(computed)]) == 0
    out = capsys.readouterr().out
    assert "will not count these as your own" in out and "softmax: cell 1, line 3" in out, out
    own = small_notebook(tmp_path / "own.ipynb", "assert softmax is not None",
                         answer="def softmax(z):\n    e = np.exp(z)\n    return e / e.sum()\n"
                                "def double(x):\n    return 2 * x")
    assert main(["check", str(own)]) == 0
    assert "your own" not in capsys.readouterr().out
