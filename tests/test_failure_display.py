"""A failed check in a notebook shows the checker's message and the learner's own lines, not
some forty lines of traceback through the course's checking code (issue 23, point 1)."""

from __future__ import annotations

import re

import nbformat
import pytest
from nbclient import NotebookClient

ANSI = re.compile(r"\x1b\[[0-9;]*m")

WRONG_SIGMOID = "import numpy as np\n\ndef sigmoid(x):\n    return np.exp(x) / 10\n"
RAISING_SIGMOID = "def sigmoid(x):\n    return 1 / (1 + helper(x))\n"
TEST_CELL = ("from medai_lessons.grading import check_sigmoid\n"
             "check_sigmoid(sigmoid)\n"
             "print('sigmoid: the visible checks passed.')\n")


def run_cells(*sources: str) -> list[dict]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    NotebookClient(nb, kernel_name="python3", timeout=120, allow_errors=True).execute()
    return [o for c in nb.cells for o in c.outputs if o.output_type == "error"]


@pytest.fixture(scope="module")
def failures() -> list[dict]:
    return run_cells(WRONG_SIGMOID, TEST_CELL, RAISING_SIGMOID, TEST_CELL)


def test_a_wrong_answer_shows_the_message_and_the_test_cells_line(failures):
    error = failures[0]
    text = ANSI.sub("", "\n".join(error["traceback"]))
    assert error["ename"] == "AssertionError"      # what the self-check and nbgrader read
    assert text.startswith("AssertionError: sigmoid: failed on case")
    assert "expected:" in text and "got:" in text and "hint:" in text
    assert "check_sigmoid(sigmoid)" in text and re.search(r"Cell In\[2\], line 2", text)
    for internal in ("grading/ch02.py", "grading/core.py", "assert_close", "def fail",
                     "interactiveshell.py"):
        assert internal not in text, f"{internal} shown:\n{text}"
    assert re.search(r"\(\d+ frames? of the course's checking code hidden\)", text)
    assert len(text.splitlines()) <= 15, text


def test_an_answer_that_raises_shows_its_own_line(failures):
    text = ANSI.sub("", "\n".join(failures[1]["traceback"]))
    assert "sigmoid: raised NameError" in text
    assert "Your function raised NameError: name 'helper' is not defined" in text
    assert "return 1 / (1 + helper(x))" in text and "in sigmoid" in text
    assert "grading/core.py" not in text and "grading/ch02.py" not in text


SETUP_CELL = ("from medai_lessons.notebook import setup\n"
              "course = setup(chapter='ch02_activations_losses', tensorflow=False, quiet=True)\n")
STUB_SIGMOID = ("def sigmoid(x):\n"
                "    \"\"\"The logistic function.\"\"\"\n"
                "    # YOUR CODE HERE\n"
                "    raise NotImplementedError()\n")
OWN_RAISE = "raise NotImplementedError('my own reason')\n"


@pytest.fixture(scope="module")
def untouched() -> list[dict]:
    return run_cells(SETUP_CELL, STUB_SIGMOID, TEST_CELL, OWN_RAISE)


def test_an_untouched_exercise_says_so_without_the_checking_code(untouched):
    error = untouched[0]
    text = ANSI.sub("", "\n".join(error["traceback"]))
    assert error["ename"] == "NotImplementedError"  # what the self-check reads: "not attempted"
    assert text.startswith("NotImplementedError: sigmoid is not written yet"), text
    assert "raise NotImplementedError()" in text   # where to write: the learner's own line
    assert re.search(r"Cell In\[2\], line 4, in sigmoid", text), text
    assert "check_sigmoid(sigmoid)" in text and re.search(r"Cell In\[3\], line 2", text)
    for internal in ("grading/ch02.py", "grading/core.py", "def call", "interactiveshell.py"):
        assert internal not in text, f"{internal} shown:\n{text}"
    assert re.search(r"\(\d+ frames? of the course's checking code hidden\)", text)
    assert len(text.splitlines()) <= 15, text


def test_a_not_implemented_error_of_ones_own_keeps_its_traceback(untouched):
    error = untouched[1]
    text = ANSI.sub("", "\n".join(error["traceback"]))
    assert error["ename"] == "NotImplementedError" and error["evalue"] == "my own reason"
    assert "not written yet" not in text and "my own reason" in text
