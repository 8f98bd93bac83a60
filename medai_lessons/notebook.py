"""The set-up call at the top of every chapter, and the learner-or-reference switch.

    from medai_lessons.notebook import setup
    course = setup(chapter="ch02")

sets the seeds, prints one line (package, Python, TensorFlow and the device, fast or full
mode), and returns a :class:`Course` whose ``course.fast`` and ``course.pick(full, fast)``
the training cells use.
"""

from __future__ import annotations

import os
import platform
import random
import sys
from dataclasses import dataclass

import numpy as np

from medai_lessons import __version__

FAST_ENV = "MEDAI_FAST"
GRADER_ENV = "NBGRADER_EXECUTION"  # set by nbgrader while it autogrades or validates


def fast_mode() -> bool:
    """True under autograding (``NBGRADER_EXECUTION``) or when ``MEDAI_FAST`` is 1/true/yes."""
    if os.environ.get(GRADER_ENV):
        return True
    return os.environ.get(FAST_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Course:
    chapter: str
    seed: int
    fast: bool
    device: str

    def pick(self, full, fast):
        """``full`` in a learner's full run, ``fast`` under tests and autograding."""
        return fast if self.fast else full


def set_seeds(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    if "tensorflow" in sys.modules or "keras" in sys.modules:
        import keras

        keras.utils.set_random_seed(seed)


#: Chapters whose cells that run while autograding never use TensorFlow (the cells that do
#: are applied cells, left out while grading): their grading kernels skip its import, the
#: largest part of a kernel's work (tests/test_notebook_conventions.py keeps this list true).
GRADED_WITHOUT_TENSORFLOW = frozenset({"ch02_activations_losses"})


def grading_kernel() -> bool:
    """Whether this process is a submission's kernel in the autograder's sandbox."""
    return os.environ.get("MEDAI_GRADING_SANDBOX") == "1"


def setup(chapter: str, seed: int = 0, tensorflow: bool = True, quiet: bool = False) -> Course:
    """Seed everything, configure the device, print the one-line report, return a Course."""
    device = "TensorFlow not loaded"
    if tensorflow and grading_kernel() and chapter in GRADED_WITHOUT_TENSORFLOW:
        tensorflow, device = False, "TensorFlow not loaded (not needed for grading)"
    if tensorflow:
        from medai_lessons.device import configure

        device = configure().line()
    set_seeds(seed)
    fast = fast_mode()
    from medai_lessons.tracebacks import install

    install()  # an exercise not attempted yet shows the short message, not the checking code
    try:
        import matplotlib.pyplot as plt

        plt.rcParams.update({"figure.dpi": 100, "figure.figsize": (7, 3.5),
                             "axes.grid": True, "grid.alpha": 0.3})
        from medai_lessons.plotting import use_cjk_font

        use_cjk_font()  # Chinese terms in figures drawn, not boxes, where a font has them
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        pass
    mode = "fast mode (tests/autograding: small runs)" if fast else "full mode"
    if not quiet:
        print(f"MedAI Lessons {__version__} | {chapter} | Python {platform.python_version()} | "
              f"{device} | {mode} | seed {seed}")
    return Course(chapter=chapter, seed=seed, fast=fast, device=device)


def whose(func, name: str, namespace: dict) -> str:
    """How a figure or a printout names the function it ran: ``"your conv2d"`` when ``func``
    is the learner's own ``name`` in ``namespace``, else ``"the course's conv2d"`` (what
    :func:`learner_or_reference` returns when the learner's is not ready)."""
    return f"your {name}" if namespace.get(name) is func else f"the course's {name}"


def learner_or_reference(name: str, namespace: dict, verbose: bool = True):
    """The learner's function ``name`` from ``namespace`` if it passes its checker, else the
    course's reference implementation, with a one-line note, so that one unfinished exercise
    never blocks the rest of the chapter.

    Use a new name for the result (``act = learner_or_reference("sigmoid", globals())``):
    rebinding the learner's own name would hide their work from the graders.
    """
    func = namespace.get(name)
    if grading_kernel():
        # While autograding, the references are stubs and the checkers absent
        # (medai_lessons.grading.sandbox), and nothing here is graded: the cell runs with the
        # learner's function as it is.
        if func is None:
            raise NameError(f"{name} is not defined (while autograding the course's reference "
                            "implementation cannot stand in)")
        return func
    from medai_lessons.grading import EXERCISES

    checker, reference = EXERCISES[name]
    if func is None:
        reason = "is not defined yet"
    else:
        try:
            checker(func)
        except NotImplementedError:
            reason = "is not written yet"
        except AssertionError as exc:
            reason = f"does not pass its check yet ({str(exc).splitlines()[0]})"
        except Exception as exc:  # noqa: BLE001 - any failure of the learner's code falls back
            reason = f"fails its check with {type(exc).__name__}: {exc}"
        else:
            if verbose:
                print(f"Using your {name}.")
            return func
    if verbose:
        print(f"Your {name} {reason}: this cell uses the course's reference implementation.")
    return reference
