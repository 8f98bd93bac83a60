"""What every checker is made of.

A checker calls the learner's function on named cases and raises an ``AssertionError`` whose
message says which exercise, which case, on which input, what was expected and what came back,
and one hint. ``NotImplementedError`` (an exercise not attempted yet) passes through unchanged,
so that a learner sees the stub's own message.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import warnings
from collections.abc import Callable

import numpy as np

#: mixed into the seed of every seeded case while autograding (the grader's process sets it
#: once, at random): the inputs of the checks cannot be looked up in a table made beforehand
CASE_SALT: int | None = None


def case_rng(seed: int) -> np.random.Generator:
    """The random generator of a checker's seeded case: ``np.random.default_rng(seed)``, with
    :data:`CASE_SALT` (or ``$MEDAI_CASE_SALT``) mixed in when set."""
    import os

    salt = CASE_SALT if CASE_SALT is not None else os.environ.get("MEDAI_CASE_SALT")
    if salt is None or salt == "":
        return np.random.default_rng(seed)
    return np.random.default_rng([abs(int(seed)), int(salt)])


def _short(value, limit: int = 160) -> str:
    if isinstance(value, np.ndarray):
        with np.printoptions(precision=6, threshold=12, edgeitems=3, linewidth=limit):
            text = f"array(shape={value.shape}, dtype={value.dtype}): {value}"
    else:
        text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class CheckFailed(AssertionError):
    """A failed check. In a notebook it shows its message and the learner's own lines, not
    the frames of the checking code (IPython's ``_render_traceback_``; see
    :mod:`medai_lessons.tracebacks`)."""

    def _render_traceback_(self) -> list[str]:
        from medai_lessons.tracebacks import render

        return render(self)


# Shown, and recorded in a notebook's error output (``ename``), as the AssertionError it is:
# the self-check, nbgrader's Validate and the feedback read that name. (Pickling goes by
# ``__qualname__``, which stays ``CheckFailed``.)
CheckFailed.__name__ = "AssertionError"


def fail(exercise: str, case: str, *, inputs=None, expected=None, got=None, hint: str = ""):
    """Raise the course's standard failure message."""
    lines = [f"{exercise}: failed on case '{case}'."]
    for label, value in (("input:   ", inputs), ("expected:", expected), ("got:     ", got)):
        if value is not None:
            text = value if isinstance(value, str) else _short(value)
            if len(text) > 2000:  # a learner's string can be any size
                text = text[:2000] + f"... ({len(text) - 2000:,} more characters)"
            lines.append(f"  {label} {text}")
    if hint:
        lines.append(f"  hint: {hint}")
    raise CheckFailed("\n".join(lines))


def _snapshot(value):
    """A copy of an array or table argument (to see later whether it was changed), else None."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if type(value).__module__.startswith("pandas.") and hasattr(value, "equals"):
        return value.copy(deep=True)
    return None


def _unchanged(value, before) -> bool:
    if isinstance(before, np.ndarray):
        if not isinstance(value, np.ndarray) or value.shape != before.shape \
                or value.dtype != before.dtype:
            return False
        try:
            return bool(np.array_equal(value, before, equal_nan=True))
        except TypeError:                 # object or text arrays: nan compares unequal anyway
            return bool(np.array_equal(value, before))
    return bool(value.equals(before))


def _argument_names(func, args, kwargs) -> list[str]:
    """The parameter name of each positional argument, as the learner's function calls it."""
    try:
        bound = inspect.signature(func).bind(*args, **kwargs).arguments
        names = list(bound)[: len(args)]
    except (TypeError, ValueError):
        names = []
    return names + [f"argument {i + 1}" for i in range(len(names), len(args))]


CHANGED_INPUT_HINT = (
    "your function changed an array it was given (e.g. `x[x < 0] = 0` or `x -= ...`), so the "
    "caller's data changed too: build a new array (`np.maximum(x, 0)`, `y = x - ...`) or work "
    "on a copy (`x = np.array(x, dtype=float)`).")


def require_callable(func, exercise: str, case: str) -> None:
    """Fail the case unless the learner's ``func`` is a function."""
    if not callable(func):
        fail(exercise, case, got=repr(func),
             hint=f"{exercise} should be a function; did an assignment replace it?")


def call(func: Callable, *args, exercise: str, case: str, strict_numpy: bool = False,
         hint: str = "", inputs_unchanged: bool = True, **kwargs):
    """Call a learner's function on one case.

    With ``strict_numpy`` any NumPy overflow/invalid/divide warning becomes a failure of that
    case. Exceptions other than ``NotImplementedError`` become an ``AssertionError`` that names
    the case (the original exception is chained) and ends with ``hint`` when one is given.
    With ``inputs_unchanged`` (the default) an array or table argument that the function
    changed in place fails the case (a checker with its own, more specific check of that
    turns it off).
    """
    require_callable(func, exercise, case)
    before = [_snapshot(a) for a in args] if inputs_unchanged else []
    try:
        if strict_numpy:
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)
                with np.errstate(over="raise", invalid="raise", divide="raise"):
                    result = func(*args, **kwargs)
        else:
            result = func(*args, **kwargs)
    except NotImplementedError:
        raise
    except AssertionError:
        raise
    except (FloatingPointError, RuntimeWarning) as exc:
        if "log" in str(exc) or "divide" in str(exc):
            hint = ("log(0) happened: clip probabilities with np.clip(p, eps, 1 - eps) before "
                    "taking logs.")
        else:
            hint = ("a NumPy overflow or invalid value: rewrite the formula so that it never "
                    "computes exp() of a large positive number.")
        fail(exercise, case, inputs=args[0] if args else None,
             got=f"{type(exc).__name__}: {exc}", hint=hint)
    except Exception as exc:  # noqa: BLE001 - any learner error is reported as this case's failure
        raise CheckFailed(
            f"{exercise}: raised {type(exc).__name__} on case '{case}': {exc}\n"
            f"  input: {_short(args[0]) if args else '(none)'}"
            + (f"\n  hint: {hint}" if hint else "")
        ) from exc
    changed = [i for i, b in enumerate(before) if b is not None and not _unchanged(args[i], b)]
    if inputs_unchanged and not changed:  # a learner's function in the grading kernel
        changed = sorted(getattr(func, "changed_arguments", ()))
    if changed:
        names = _argument_names(func, args, kwargs)
        i = changed[0]
        fail(exercise, case, inputs=before[i], expected=f"{names[i]} left as it was",
             got=f"{names[i]} changed in place: {_short(args[i])}", hint=CHANGED_INPUT_HINT)
    return result


def as_array(got, exercise: str, case: str) -> np.ndarray:
    if got is None:
        fail(exercise, case, got="None",
             hint="the function returned nothing: did you forget the `return` statement?")
    try:
        arr = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        fail(exercise, case, got=repr(got), hint="return a NumPy array (or a number).")
    return arr


def _diagnose(got: np.ndarray, expected: np.ndarray, n: int | None) -> str:
    """A hint for the usual mistakes: sign, a missing 1/n, a transpose."""
    if got.shape != expected.shape:
        if got.shape == expected.shape[::-1] and got.ndim == 2:
            return "the shape is transposed: check the order of the matrix product."
        if got.size == expected.size:
            return "right number of values, wrong shape: reshape (e.g. to the input's shape)."
        return "wrong shape: compare it with the shape the docstring asks for."
    if np.allclose(got, -expected, rtol=1e-6, atol=1e-12) and np.any(expected != 0):
        return "right size, wrong sign."
    if n and n > 1 and np.allclose(got, n * expected, rtol=1e-6, atol=1e-12):
        return f"{n} times too large: did you sum over samples instead of taking the mean?"
    if n and n > 1 and np.allclose(got * n, expected, rtol=1e-6, atol=1e-12):
        return f"{n} times too small: did you divide by n twice?"
    return ""


def assert_close(got, expected, *, exercise: str, case: str, inputs=None, rtol: float = 1e-6,
                 atol: float = 1e-9, hint: str = "", n: int | None = None) -> None:
    """Compare values (and shapes) with a stated tolerance."""
    expected = np.asarray(expected, dtype=np.float64)
    arr = as_array(got, exercise, case)
    tolerance = f"(tolerance: rtol={rtol:g}, atol={atol:g})"
    if arr.shape != expected.shape:
        fail(exercise, case, inputs=inputs, expected=f"shape {expected.shape}",
             got=f"shape {arr.shape}", hint=hint or _diagnose(arr, expected, n))
    # A specific diagnosis (a sign, a missing 1/n) beats the case's general hint.
    if not np.all(np.isfinite(arr[np.isfinite(expected)])):
        fail(exercise, case, inputs=inputs, expected=expected, got=arr,
             hint=hint or "nan or inf in the result: look for exp() overflowing or log(0).")
    if not np.allclose(arr, expected, rtol=rtol, atol=atol, equal_nan=True):
        worst = np.max(np.abs(arr - expected)) if arr.size else 0.0
        fail(exercise, f"{case} {tolerance}", inputs=inputs, expected=expected, got=arr,
             hint=f"{_diagnose(arr, expected, n) or hint} (largest difference {worst:.3g})"
             .strip())


def keras_shape(tensor) -> tuple:
    """A Keras tensor's shape as a tuple of ints, with ``None`` for the batch axis."""
    return tuple(None if s is None else int(s) for s in tensor.shape)


def built_model(builder: Callable, *args, exercise: str, case: str, hint: str,
                input_hint: str,
                return_hint: str = "build it with keras.Sequential([...]) and return it."):
    """Call a learner's model builder on one case and return ``(model, input shape, output
    shape)``; fail unless it returned a ``keras.Model`` whose shapes are defined (Keras 3
    defines ``model.inputs``/``model.outputs``, not ``output_shape``; a Sequential model
    without ``keras.Input`` has none until it is called). ``hint`` goes with an exception,
    ``input_hint`` with a model that has no input yet."""
    import keras

    model = call(builder, *args, exercise=exercise, case=case, hint=hint)
    if model is None:
        fail(exercise, case, got="None", hint="return the model.")
    if not isinstance(model, keras.Model):
        fail(exercise, case, expected="a keras.Model", got=type(model).__name__,
             hint=return_hint)
    try:
        shapes = keras_shape(model.inputs[0]), keras_shape(model.outputs[0])
    except (AttributeError, ValueError, IndexError, TypeError):
        fail(exercise, case, expected="a model with a defined input",
             got="a model that has not been built", hint=input_hint)
    return (model, *shapes)


def model_outputs(model, x, exercise: str, case: str) -> np.ndarray:
    """A learner's model's outputs for ``x`` (in inference mode) as floats. A model sent back
    by a grading kernel runs in the grader's model runner
    (:mod:`medai_lessons.grading.runner`): one too slow or too large to run there fails the
    case."""
    from medai_lessons.grading.runner import ModelRunFailed

    try:
        got = model(x, training=False)
    except ModelRunFailed as exc:
        fail(exercise, case, expected=f"a model that runs on {len(x)} samples within the "
                                      "grader's limits", got=str(exc),
             hint="the exercise needs a small model: compare your layers' output shapes and "
                  "parameter counts (model.summary()) with the ones the chapter describes.")
    return as_array(np.asarray(got), exercise, case)


def assert_class_probabilities(model, x, *, exercise: str, case: str, what: str) -> None:
    """The model's outputs for ``x`` are class probabilities: non-negative, summing to 1 for
    each ``what`` (image, sequence...)."""
    p = model_outputs(model, x, exercise, case)
    if np.any(p < 0) or not np.allclose(p.sum(axis=-1), 1.0, atol=1e-4):
        fail(exercise, case, expected=f"class probabilities that sum to 1 for each {what}",
             got=p.round(3), hint="the last layer's activation decides what the outputs "
                                  "are: here probabilities of classes that exclude each other, "
                                  "so they must sum to 1 over the classes.")


def metric_dict(got, expected: dict, *, exercise: str, case: str, inputs: str,
                names: str, missing_hint: str = "") -> dict[str, float]:
    """A learner's dict of named metrics: fail unless ``got`` is a mapping with every key of
    ``expected``, each one number; return those values as floats (extra keys are allowed).
    ``names`` is the dict the exercise asks for, for the hint."""
    from collections.abc import Mapping

    keys = list(expected)
    if not isinstance(got, Mapping):
        fail(exercise, case, inputs=inputs, expected=f"a dict of {len(keys)} numbers",
             got=type(got).__name__, hint=f"return {names}.")
    missing = [k for k in keys if k not in got]
    if missing:
        fail(exercise, case, inputs=inputs, expected=f"keys {keys}",
             got=f"keys {sorted(map(str, got))}", hint=f"add {missing}{missing_hint}.")
    values = {}
    for key in keys:
        try:
            values[key] = float(got[key])
        except (TypeError, ValueError):
            fail(exercise, f"{case}: {key}", inputs=inputs, expected=expected[key],
                 got=repr(got[key])[:80], hint="each metric is one number (a float).")
    return values


def same_metric(value: float, want: float) -> bool:
    """Equal to ``rtol=1e-9``, or both ``nan`` (a metric whose denominator is 0)."""
    if np.isnan(want):
        return bool(np.isnan(value))
    return bool(np.isclose(value, want, rtol=1e-9, atol=1e-12))


def relative_error(a, b) -> float:
    """Norm-wise relative error ||a - b|| / (||a|| + ||b||), the usual measure in gradient
    checks: around 1e-7 or below means agreement in float64, 1e-2 or above a bug. Unlike an
    entry-wise ratio it does not blow up on entries that are nearly zero."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denom) if denom > 0 else 0.0


# --- "is it the learner's own work?" ---------------------------------------------------------

from medai_lessons.grading.probes import (  # noqa: E402 - kernel-side code, also used here
    _from_package,
    _own_implementation_problems,
    own_implementation_report,
)

_TRAP_MESSAGE = "medai-lessons: the course's reference implementation was called"

#: exercise name -> a function returning sample arguments, for the runtime check of
#: :func:`assert_own_implementation` (each chapter's checker module registers its exercises).
SAMPLE_ARGS: dict[str, Callable[[], tuple]] = {}


@contextlib.contextmanager
def _reference_trapped():
    """While active, every function defined in ``medai_lessons.nn`` and every reference
    registered in ``medai_lessons.grading.EXERCISES`` raises when called, however the caller
    reached it (an alias, a registry, a module attribute)."""
    import medai_lessons.nn as nn_pkg
    from medai_lessons.grading import EXERCISES, SAME_AS_REFERENCE

    def trap(*args, **kwargs):
        raise RuntimeError("medai-lessons: the course's reference implementation was called")

    candidates = [reference for _, reference in EXERCISES.values()]
    candidates += [f for same in SAME_AS_REFERENCE.values() for f in same]
    for module in list(sys.modules.values()):
        name = getattr(module, "__name__", "") or ""
        if name == nn_pkg.__name__ or name.startswith(nn_pkg.__name__ + "."):
            candidates += [obj for obj in vars(module).values()
                           if inspect.isfunction(obj) and obj.__module__ == name]
    saved = {}
    for obj in candidates:
        if inspect.isfunction(obj) and id(obj) not in saved and not obj.__code__.co_freevars:
            saved[id(obj)] = (obj, obj.__code__)
    try:
        for obj, _ in saved.values():
            obj.__code__ = trap.__code__
        yield
    finally:
        for obj, code in saved.values():
            obj.__code__ = code


def assert_own_implementation(func: Callable, exercise: str, sample_args: tuple | None = None
                              ) -> None:
    """Fail if ``func`` is, reaches or calls the course's own code.

    Used by hidden tests: an answer that returns ``medai_lessons.nn.sigmoid(x)`` (directly,
    through an alias, a module, a registry, an import in its body or a helper of the learner's)
    earns nothing. Two checks: the names the function reads as globals, and, when
    ``sample_args`` are given, a call during which every reference function raises.
    """
    if not callable(func):
        fail(exercise, "own implementation", got=repr(func), hint="define the function.")
    from medai_lessons.grading import remote

    if remote.is_remote(func):
        # While autograding: the notebook's text, read in this process, says whether the
        # exercise's name reaches the course's code (grading.notebook_scan); the kernel's own
        # report adds what only the live objects show. The reference implementations are stubs
        # in the grading kernel (medai_lessons.grading.sandbox): calling them fails every check.
        scan = func._kernel.scan
        before = func._kernel.cell_number
        for problem in (scan.course_code(exercise, before) if scan is not None else []):
            fail(exercise, "own implementation", got=problem[:300],
                 hint="the exercise asks for your own implementation: remove the course's "
                      "code from it and write the computation yourself.")
        from medai_lessons.grading import LIBRARY_EQUIVALENTS

        for problem in (scan.library_code(exercise, LIBRARY_EQUIVALENTS.get(exercise, ()),
                                          before) if scan is not None else []):
            fail(exercise, "own implementation", got=problem[:300],
                 hint="the exercise asks you to compute it yourself: a library function that "
                      "does the whole computation is not your own implementation (use it "
                      "afterwards to check yours).")
        for finding in (scan.unreadable_in(exercise, before) if scan is not None else []):
            fail(exercise, "own implementation", got=str(finding)[:300],
                 hint="the grader reads your function to tell that it is your own work, and "
                      "cannot read where this line leads: write the computation with NumPy "
                      "(or TensorFlow) directly.")
        if scan is not None and scan.tampering:
            return  # the kernel's report could be forged there: the text decided
        for problem in remote.run_probe(func, own_implementation_report):
            fail(exercise, "own implementation", got=str(problem)[:300],
                 hint="the exercise asks for your own implementation; write it with NumPy.")
        return
    if _from_package(func) or _from_package(inspect.unwrap(func)):
        fail(exercise, "own implementation", got=f"{func!r} from {func.__module__}",
             hint="this is the course's reference implementation; write your own.")
    for problem in _own_implementation_problems(func, set()):
        fail(exercise, "own implementation", got=problem,
             hint="the exercise asks for your own implementation; write it with NumPy.")
    if sample_args is None and exercise in SAMPLE_ARGS:
        sample_args = SAMPLE_ARGS[exercise]()
    if sample_args is not None:
        with _reference_trapped():
            try:
                func(*sample_args)
            except RuntimeError as exc:
                if str(exc) == _TRAP_MESSAGE:
                    fail(exercise, "own implementation",
                         got="calling your function called the course's reference implementation",
                         hint="write the computation yourself with NumPy.")
            except Exception:  # noqa: BLE001 - only the trap matters here; values are checked elsewhere
                pass
