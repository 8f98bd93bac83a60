"""What every checker is made of.

A checker calls the learner's function on named cases and raises an ``AssertionError`` whose
message says which exercise, which case, on which input, what was expected and what came back,
and one hint. ``NotImplementedError`` (an exercise not attempted yet) passes through unchanged,
so that a learner sees the stub's own message.
"""

from __future__ import annotations

import inspect
import types
import warnings
from collections.abc import Callable

import numpy as np


def _short(value, limit: int = 160) -> str:
    if isinstance(value, np.ndarray):
        with np.printoptions(precision=6, threshold=12, edgeitems=3, linewidth=limit):
            text = f"array(shape={value.shape}, dtype={value.dtype}): {value}"
    else:
        text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fail(exercise: str, case: str, *, inputs=None, expected=None, got=None, hint: str = ""):
    """Raise the course's standard failure message."""
    lines = [f"{exercise}: failed on case '{case}'."]
    for label, value in (("input:   ", inputs), ("expected:", expected), ("got:     ", got)):
        if value is not None:
            lines.append(f"  {label} {value if isinstance(value, str) else _short(value)}")
    if hint:
        lines.append(f"  hint: {hint}")
    raise AssertionError("\n".join(lines))


def call(func: Callable, *args, exercise: str, case: str, strict_numpy: bool = False, **kwargs):
    """Call a learner's function on one case.

    With ``strict_numpy`` any NumPy overflow/invalid/divide warning becomes a failure of that
    case. Exceptions other than ``NotImplementedError`` become an ``AssertionError`` that names
    the case (the original exception is chained).
    """
    if not callable(func):
        fail(exercise, case, got=repr(func),
             hint=f"{exercise} should be a function; did an assignment replace it?")
    try:
        if strict_numpy:
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)
                with np.errstate(over="raise", invalid="raise", divide="raise"):
                    return func(*args, **kwargs)
        return func(*args, **kwargs)
    except NotImplementedError:
        raise
    except AssertionError:
        raise
    except (FloatingPointError, RuntimeWarning) as exc:
        fail(exercise, case, inputs=args[0] if args else None,
             got=f"{type(exc).__name__}: {exc}",
             hint="a NumPy overflow or invalid value: rewrite the formula so that it never "
                  "computes exp() of a large positive number or log(0).")
    except Exception as exc:  # noqa: BLE001 - any learner error is reported as this case's failure
        raise AssertionError(
            f"{exercise}: raised {type(exc).__name__} on case '{case}': {exc}\n"
            f"  input: {_short(args[0]) if args else '(none)'}"
        ) from exc


def as_array(got, exercise: str, case: str) -> np.ndarray:
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
    if not np.all(np.isfinite(arr[np.isfinite(expected)])):
        fail(exercise, case, inputs=inputs, expected=expected, got=arr,
             hint=hint or "nan or inf in the result: look for exp() overflowing or log(0).")
    if not np.allclose(arr, expected, rtol=rtol, atol=atol, equal_nan=True):
        worst = np.max(np.abs(arr - expected)) if arr.size else 0.0
        fail(exercise, f"{case} {tolerance}", inputs=inputs, expected=expected, got=arr,
             hint=(hint or _diagnose(arr, expected, n)) + f" (largest difference {worst:.3g})")


def relative_error(a, b) -> float:
    """Norm-wise relative error ||a - b|| / (||a|| + ||b||), the usual measure in gradient
    checks: around 1e-7 or below means agreement in float64, 1e-2 or above a bug. Unlike an
    entry-wise ratio it does not blow up on entries that are nearly zero."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denom) if denom > 0 else 0.0


# --- "is it the learner's own work?" ---------------------------------------------------------

_REFERENCE_PACKAGES = ("medai_lessons.nn",)


def _is_reference(obj) -> bool:
    if isinstance(obj, types.ModuleType):
        return obj.__name__.startswith(_REFERENCE_PACKAGES) or obj.__name__ == "medai_lessons"
    module = getattr(obj, "__module__", None) or ""
    return module.startswith(_REFERENCE_PACKAGES)


def _code_objects(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _referenced_objects(func, seen: set[int], depth: int = 0):
    """Objects a function can reach by name: its globals, closure cells, defaults, and the
    functions it calls in turn (the learner's helpers), a few levels deep."""
    func = inspect.unwrap(func)
    if id(func) in seen or depth > 4:
        return
    seen.add(id(func))
    code = getattr(func, "__code__", None)
    if code is None:
        return
    namespace = getattr(func, "__globals__", {})
    builtins_ns = namespace.get("__builtins__", {})
    for co in _code_objects(code):
        for name in co.co_names:
            if name in namespace:
                obj = namespace[name]
            elif isinstance(builtins_ns, dict) and name in builtins_ns:
                continue
            else:
                continue
            yield name, obj
            if inspect.isfunction(obj) and not _is_reference(obj):
                yield from _referenced_objects(obj, seen, depth + 1)
    for cell in func.__closure__ or ():
        try:
            obj = cell.cell_contents
        except ValueError:
            continue
        yield "<closure>", obj
        if inspect.isfunction(obj):
            yield from _referenced_objects(obj, seen, depth + 1)
    for obj in func.__defaults__ or ():
        yield "<default>", obj


def assert_own_implementation(func: Callable, exercise: str) -> None:
    """Fail if ``func`` is, or reaches, the course's reference implementation.

    Used by hidden tests: an answer that returns ``medai_lessons.nn.sigmoid(x)`` (directly,
    through an alias, a module, or a helper) earns nothing.
    """
    if not callable(func):
        fail(exercise, "own implementation", got=repr(func), hint="define the function.")
    if _is_reference(func) or _is_reference(inspect.unwrap(func)):
        fail(exercise, "own implementation", got=f"{func!r} from {func.__module__}",
             hint="this is the course's reference implementation; write your own.")
    for name, obj in _referenced_objects(func, set()):
        if _is_reference(obj):
            label = getattr(obj, "__name__", repr(obj))
            fail(exercise, "own implementation",
                 got=f"your code uses '{name}', which is the course's reference ({label})",
                 hint="the exercise asks for your own implementation; write it with NumPy.")
