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
