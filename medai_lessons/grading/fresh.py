"""A fresh copy of the checkers and reference implementations, for hidden tests.

An answer cell runs in the same Python process as the tests, so it can assign into the
course's modules (``medai_lessons.grading.check_relu = lambda *a, **k: None``, or replace a
reference function). Hidden tests therefore first reload this module with the standard
library, then call :func:`grading`, which re-executes every module of the course's checking
code from its file, in dependency order, and returns the reloaded ``medai_lessons.grading``::

    import importlib, medai_lessons.grading.fresh as _fresh
    _g = importlib.reload(_fresh).grading()
    _g.check_sigmoid(sigmoid, strict=True)
    _g.assert_own_implementation(sigmoid, "sigmoid")

Whatever an answer cell assigned into those modules is gone; what it does to third-party
libraries (NumPy, say) is not undone: the limit of grading inside the learner's process.
"""

from __future__ import annotations

import importlib
import sys

#: Modules whose code the checks depend on, in the order they are reloaded: the reference
#: implementations first, then the grading core, the chapters' checker modules, and the
#: grading package last (its __init__ collects the chapters' checkers).
_PREFIXES = ("medai_lessons.nn", "medai_lessons.metrics", "medai_lessons.tabular",
             "medai_lessons.survival",
             "medai_lessons.models", "medai_lessons.data.tables", "medai_lessons.grading")


def _rank(name: str) -> tuple:
    for i, prefix in enumerate(_PREFIXES):
        if name == prefix or name.startswith(prefix + "."):
            is_package = hasattr(sys.modules[name], "__path__")
            core_first = name != "medai_lessons.grading.core"
            return (i, is_package, core_first, name)
    return (len(_PREFIXES), False, True, name)


def grading():
    """Reload the checking code from its files and return the fresh ``medai_lessons.grading``.

    In the autograder's own process (``medai_lessons.grading.remote``), which no answer cell
    reaches, nothing needs reloading: the loaded package is returned as it is."""
    importlib.import_module("medai_lessons.grading")
    trusted = sys.modules.get("medai_lessons.grading.remote")
    if trusted is not None and getattr(trusted, "TRUSTED_PROCESS", False):
        return sys.modules["medai_lessons.grading"]
    names = [n for n in list(sys.modules)
             if n != __name__ and sys.modules[n] is not None
             and any(n == p or n.startswith(p + ".") for p in _PREFIXES)]
    for name in sorted(names, key=_rank):
        importlib.reload(sys.modules[name])
    return sys.modules["medai_lessons.grading"]
