"""How a failed check looks in a notebook: the checker's message and the learner's own lines.

A checker's ``AssertionError`` (:class:`medai_lessons.grading.core.CheckFailed`) travels
through the course's checking code (``grading/ch03.py -> _compare -> core.assert_close ->
core.fail``): some forty lines of traceback that say nothing to a learner and bury the message
(case, expected, got, hint). IPython asks an exception for ``_render_traceback_()`` before it
formats one; the course's answer is :func:`render`: the message, then only the frames of the
learner's own code (the test cell's line, and their function's lines when it raised), and a
count of the hidden frames. What the kernel prints is also what nbgrader's Validate and the
feedback show.
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
