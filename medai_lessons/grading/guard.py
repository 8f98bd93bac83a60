"""Start-up code of the kernel that grades a submission (not of a learner's own kernel).

nbgrader starts that kernel with ``Execute.extra_arguments`` from course/nbgrader_config.py,
which runs :func:`install` before the notebook's first cell. ``os._exit()`` in an answer would
otherwise kill the kernel, and nbgrader would then record no grade at all for the whole
notebook, right answers included. With the guard it raises ``SystemExit`` in that cell only:
the exercise scores 0 and the rest of the notebook is graded. (``sys.exit()``, ``exit()`` and
``quit()`` are already harmless in a kernel; a crash of the interpreter itself is not
something Python code can prevent: run graders in a container, see the instructor guide.)
"""

from __future__ import annotations

import os

KERNEL_ARGUMENT = ("--IPKernelApp.exec_lines=['import medai_lessons.grading.guard as _guard; "
                   "_guard.install(); del _guard']")


def _exit_disabled(status: int = 0, *args, **kwargs):
    raise SystemExit(f"os._exit({status}) is disabled while grading: it would end the grading "
                     "kernel. This cell counts as failed; the rest of the notebook is graded.")


def install() -> None:
    """Make ``os._exit`` (and ``posix._exit``, the same function) raise ``SystemExit`` in this
    process (the grading kernel)."""
    import posix

    os._exit = _exit_disabled
    posix._exit = _exit_disabled
