"""How a failed check looks in a notebook: the checker's message and the learner's own lines.

A checker's ``AssertionError`` (:class:`medai_lessons.grading.core.CheckFailed`) travels
through the course's checking code (``grading/ch03.py -> _compare -> core.assert_close ->
core.fail``): some forty lines of traceback that say nothing to a learner and bury the message
(case, expected, got, hint). IPython asks an exception for ``_render_traceback_()`` before it
formats one; the course's answer is :func:`render`: the message, then only the frames of the
learner's own code (the test cell's line, and their function's lines when it raised), and a
count of the hidden frames. What the kernel prints is also what nbgrader's Validate and the
feedback show.

An exercise not attempted yet raises a plain ``NotImplementedError`` from the learner's stub,
through the same checking code. :func:`install` (called by the chapters' ``setup()``) asks
IPython to show it the same short way (:func:`render_not_written`): which function is not
written yet, the test cell's line and the stub's ``raise`` line. Its name stays
``NotImplementedError``, which the self-check reads as "not attempted". Any other
``NotImplementedError`` (one with a message of its own, or raised outside a learner's function)
keeps IPython's full traceback.
"""

from __future__ import annotations

import linecache
import sys
import sysconfig
import traceback
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_LIBRARIES = tuple(
    str(Path(p).resolve())
    for key in ("stdlib", "platstdlib", "purelib", "platlib")
    if (p := sysconfig.get_paths().get(key))
)
_RED, _GREEN, _CYAN, _RESET = "\x1b[31m", "\x1b[32m", "\x1b[36m", "\x1b[0m"


def _course_or_library(filename: str) -> bool:
    """True for frames of the course's package, the standard library or installed packages
    (IPython's own), which a learner did not write."""
    try:
        path = Path(filename).resolve()
    except (OSError, ValueError):
        return False
    if path == _PACKAGE or _PACKAGE in path.parents:
        return True
    return str(path).startswith(_LIBRARIES)


def _in_package(filename: str) -> bool:
    try:
        path = Path(filename).resolve()
    except (OSError, ValueError):
        return False
    return path == _PACKAGE or _PACKAGE in path.parents


def _where(filename: str) -> str:
    """``Cell In[5]`` for a notebook cell (as IPython names it), else the file's path."""
    shell = sys.modules.get("IPython") and getattr(sys.modules["IPython"], "get_ipython",
                                                   lambda: None)()
    number = getattr(getattr(shell, "compile", None), "_filename_map", {}).get(filename)
    return f"Cell In[{number}]" if number is not None else filename


def learner_frames(tb) -> tuple[list[traceback.FrameSummary], int]:
    """The frames of ``tb`` in the learner's code, and how many others there were."""
    frames = traceback.extract_tb(tb)
    own = [f for f in frames if not _course_or_library(f.filename)]
    return own, len(frames) - len(own)


def _format(frames: list[traceback.FrameSummary]) -> list[str]:
    lines = []
    for f in frames:
        code = (f.line or linecache.getline(f.filename, f.lineno or 0)).strip()
        name = "" if f.name == "<module>" else f", in {f.name}"
        lines.append(f"  {_CYAN}{_where(f.filename)}, line {f.lineno}{name}{_RESET}")
        if code:
            lines.append(f"    {code}")
    return lines


def render(exc: BaseException) -> list[str]:
    """IPython's structured traceback of a failed check: a list of lines, no course frames."""
    out = [f"{_RED}{type(exc).__name__}{_RESET}: {exc}"]
    own, hidden = learner_frames(exc.__traceback__)
    if own:
        out += ["", "Checked here:"] + _format(own)
    cause = exc.__cause__
    if cause is not None:
        cause_own, cause_hidden = learner_frames(cause.__traceback__)
        hidden += cause_hidden
        out += ["", f"Your function raised {type(cause).__name__}: {cause}"] + _format(cause_own)
    if hidden:
        out.append(f"{_GREEN}({hidden} frame{'s' if hidden != 1 else ''} of the course's "
                   f"checking code hidden){_RESET}")
    return out


def render_not_written(exc: BaseException) -> list[str] | None:
    """The short display of an exercise not attempted yet, or None when ``exc`` is not that:
    a ``NotImplementedError`` without a message, raised in a function of the learner's own
    (the stub's ``raise NotImplementedError()``)."""
    if not isinstance(exc, NotImplementedError) or str(exc):
        return None
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames or _course_or_library(frames[-1].filename) or frames[-1].name == "<module>":
        return None
    own, _ = learner_frames(exc.__traceback__)
    hidden = sum(1 for f in frames if _in_package(f.filename))
    name = frames[-1].name
    out = [f"{_RED}NotImplementedError{_RESET}: {name} is not written yet: its answer cell "
           "still raises NotImplementedError.",
           "Write your code in place of `raise NotImplementedError()`, run that cell, then "
           "run this one again."]
    called = own[:-1]
    if called:
        out += ["", "Called here:"] + _format(called)
    out += ["", f"Not written yet, in {name}:"] + _format(own[-1:])
    if hidden:
        out.append(f"{_GREEN}({hidden} frame{'s' if hidden != 1 else ''} of the course's "
                   f"checking code hidden){_RESET}")
    return out


def _show_not_written(shell, etype, value, tb, tb_offset=None):
    """IPython's custom handler for ``NotImplementedError``: the short display for an exercise
    not attempted yet, IPython's own traceback for anything else."""
    lines = render_not_written(value)
    if lines is None:
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    else:
        shell._showtraceback(etype, value, lines)  # how IPython shows a _render_traceback_
    return lines


def install() -> bool:
    """Show an untouched exercise's ``NotImplementedError`` the short way in this IPython
    kernel (a no-op outside IPython). True when installed."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return False
    shell.set_custom_exc((NotImplementedError,), _show_not_written)
    return True
