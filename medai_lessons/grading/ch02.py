"""Checkers for chapter 2: activations, losses, gradient descent, backpropagation.

Each ``check_*`` takes the learner's function and raises ``AssertionError`` on the first case
that fails. ``strict=True`` adds the cases that hidden tests use (more shapes, dtypes and
random inputs); the visible cases are enough to find every usual mistake.
"""

from __future__ import annotations

import numpy as np

from medai_lessons import nn as ref
from medai_lessons.grading.core import (
    SAMPLE_ARGS,
    _diagnose,
    as_array,
    assert_close,
    call,
    case_rng,
    fail,
    relative_error,
)

#: norm-wise relative error within which mlp_backward must match the exact gradient: correct
#: backpropagation in float64 agrees to about 1e-16 on the checks' networks; central finite
#: differences at their best step reach about 1e-10, a five-point stencil about 1e-12
EXACT_BACKPROP = 1e-13
_LARGE = np.array([-1000.0, -710.0, -50.0, -1.0, 0.0, 1.0, 50.0, 710.0, 1000.0])


def _rng(seed: int = 2):
    return case_rng(seed)


def _elementwise_cases(strict: bool):
    rng = _rng()
    cases = [
        ("zero", np.array(0.0)),
        ("a small vector", np.array([-2.0, -0.5, 0.0, 0.5, 2.0])),
        ("a seeded random 4x3 matrix", rng.normal(0, 3, size=(4, 3))),
        ("|x| up to 1000", _LARGE),
    ]
    if strict:
        cases += [
            ("a 3-d batch (2, 3, 4)", rng.normal(0, 5, size=(2, 3, 4))),
            ("an integer array", np.array([-3, 0, 2])),
            ("an empty array", np.zeros((0,))),
            ("a seeded random 50x7 matrix, wide range", rng.uniform(-800, 800, size=(50, 7))),
        ]
    return cases


def _check_elementwise(func, reference, exercise: str, strict: bool, hint_large: str,
                       extra=None, hint_any: str = ""):
    for case, x in _elementwise_cases(strict):
        got = call(func, x, exercise=exercise, case=case, strict_numpy=True)
        expected = reference(x)
        assert_close(got, expected, exercise=exercise, case=case, inputs=x,
                     rtol=1e-7, atol=1e-12,
                     hint=hint_large if case == "|x| up to 1000" else hint_any)
        if extra is not None:
            extra(np.asarray(got, dtype=np.float64), np.asarray(x, dtype=np.float64), case)
    if strict:
        x32 = np.linspace(-100, 100, 11, dtype=np.float32)
        got = call(func, x32, exercise=exercise, case="float32 input", strict_numpy=True)
        arr = as_array(got, exercise, "float32 input")
        if not np.all(np.isfinite(arr)):
            fail(exercise, "float32 input", inputs=x32, got=arr,
                 hint="float32 overflows in exp() already above 88: use a stable formula.")


def check_sigmoid(sigmoid, strict: bool = False) -> None:
    """sigmoid(x) = 1 / (1 + e^-x), element-wise, finite and warning-free for |x| <= 1000."""

    def in_range(got, x, case):
        if np.any(got < 0) or np.any(got > 1):
            fail("sigmoid", case, inputs=x, got=got, hint="a sigmoid's values lie in [0, 1].")

    _check_elementwise(
        sigmoid, ref.sigmoid, "sigmoid", strict,
        "1 / (1 + np.exp(-x)) overflows for x < -709, and np.where evaluates both of its "
        "branches, so it cannot hide an overflow. Compute z = np.exp(-np.abs(x)) once (it "
        "never overflows), then np.where(x >= 0, 1 / (1 + z), z / (1 + z)).",
        in_range,
        hint_any="sigmoid(x) = 1 / (1 + e^-x): 0.5 at x = 0, near 1 for large positive x "
                 "(mind the sign in the exponent).",
    )


def check_tanh(tanh, strict: bool = False) -> None:
    """tanh(x), element-wise, finite for |x| <= 1000."""
    _check_elementwise(
        tanh, ref.tanh, "tanh", strict,
        "(e^x - e^-x) / (e^x + e^-x) is inf/inf = nan for |x| > 710: use np.tanh, or rewrite "
        "with e^(-2|x|) only.",
        hint_any="tanh(x) = (e^x - e^-x) / (e^x + e^-x) = 2 sigmoid(2x) - 1 (note the 2x); "
                 "np.tanh computes it.",
    )


def check_relu(relu, strict: bool = False) -> None:
    """relu(x) = max(0, x), element-wise (not ``max(x)``, which takes the largest entry)."""
    hint = "use np.maximum(x, 0) (element-wise), not max() or np.max() (the largest entry)."
    _check_elementwise(relu, ref.relu, "relu", strict, hint, hint_any=hint)


def check_sigmoid_grad(sigmoid_grad, strict: bool = False) -> None:
    """d sigmoid / dx = s (1 - s), element-wise, finite for |x| <= 1000."""
    _check_elementwise(
        sigmoid_grad, ref.sigmoid_grad, "sigmoid_grad", strict,
        "compute s = sigmoid(x) stably first, then s * (1 - s); it is 0.25 at x = 0.",
        hint_any="s * (1 - s) with s = sigmoid(x), not x itself; it is 0.25 at x = 0.",
    )


def check_tanh_grad(tanh_grad, strict: bool = False) -> None:
    """d tanh / dx = 1 - tanh(x)^2, element-wise."""
    _check_elementwise(tanh_grad, ref.tanh_grad, "tanh_grad", strict,
                       "1 - tanh(x)**2; it is 1 at x = 0 and tends to 0 for large |x|.",
                       hint_any="1 - tanh(x)**2: square tanh(x) (not x), and subtract it from "
                                "1; the slope lies in (0, 1].")


def check_relu_grad(relu_grad, strict: bool = False) -> None:
    """d relu / dx = 1 for x > 0 and 0 for x < 0. At exactly 0 the derivative is undefined;
    the course (like TensorFlow) uses 0, and either 0 or 1 is accepted there."""
    exercise = "relu_grad"
    for case, x in _elementwise_cases(strict):
        x = np.asarray(x, dtype=np.float64)
        got = as_array(call(relu_grad, x, exercise=exercise, case=case, strict_numpy=True),
                       exercise, case)
        if got.shape != x.shape:
            fail(exercise, case, inputs=x, expected=f"shape {x.shape}", got=f"shape {got.shape}",
                 hint="return one derivative per input element.")
        neg, pos, zero = x < 0, x > 0, x == 0
        if np.any(got[neg] != 0):
            fail(exercise, f"{case}: negative inputs", inputs=x[neg], expected="0 for every x < 0",
                 got=got[neg], hint="for x < 0 ReLU is flat, so its slope is 0, not x or -1.")
        if np.any(got[pos] != 1):
            fail(exercise, f"{case}: positive inputs", inputs=x[pos], expected="1 for every x > 0",
                 got=got[pos], hint="for x > 0 ReLU is the identity, so its slope is 1 (not x).")
        if np.any((got[zero] != 0) & (got[zero] != 1)):
            fail(exercise, f"{case}: x = 0", expected="0 (or 1)", got=got[zero])


def check_mse(mse, strict: bool = False) -> None:
    """Mean squared error: the mean (not the sum) of (y - ŷ)² over samples."""
    exercise = "mse"
    rng = _rng(3)
    y = rng.normal(size=7)
    cases = [
        ("identical vectors give 0", y, y.copy()),
        ("seeded random vectors of 7", y, y + rng.normal(size=7)),
        ("one sample", np.array([3.0]), np.array([1.0])),
    ]
    if strict:
        cases += [
            ("column vectors (n, 1)", y[:, None], (y + 1.5)[:, None]),
            ("large values", y * 1e6, y * 1e6 + 1e3),
        ]
    for case, yt, yp in cases:
        got = call(mse, yt, yp, exercise=exercise, case=case)
        assert_close(got, ref.mse(yt, yp), exercise=exercise, case=case,
                     inputs=f"y_true={np.asarray(yt).ravel()[:4]}..., "
                            f"y_pred={np.asarray(yp).ravel()[:4]}...",
                     rtol=1e-9, n=len(np.asarray(yt)),
                     hint="(3 - 1)^2 = 4: square the difference." if case == "one sample" else
                     "the mean of the squared differences, np.mean((y_true - y_pred) ** 2): no "
                     "absolute value, no square root.")


def check_binary_cross_entropy(binary_cross_entropy, strict: bool = False) -> None:
    """Mean binary cross-entropy with p clipped to [eps, 1 - eps] (erratum E14)."""
    exercise = "binary_cross_entropy"
    rng = _rng(4)
    y = (rng.random(9) < 0.4).astype(float)
    p = rng.uniform(0.05, 0.95, size=9)
    cases = [
        ("all labels 0 (only the (1 - y) term counts)", np.zeros(4),
         np.array([0.1, 0.2, 0.3, 0.4]), {}),
        ("seeded random labels and probabilities", y, p, {}),
        ("a perfect prediction", np.array([1.0, 0.0]), np.array([1.0, 0.0]), {}),
        ("p = 0 and p = 1, both wrong (must stay finite)", np.array([1.0, 0.0]),
         np.array([0.0, 1.0]), {}),
        ("a different eps", np.array([1.0, 0.0]), np.array([0.0, 1.0]), {"eps": 1e-3}),
    ]
    if strict:
        cases += [
            ("column vectors (n, 1)", y[:, None], p[:, None], {}),
            ("a batch of 1000", (rng.random(1000) < 0.1).astype(float), rng.random(1000), {}),
            ("p exactly 0.5", np.array([1.0, 0.0, 1.0]), np.full(3, 0.5), {}),
        ]
    hints = {
        "all labels 0 (only the (1 - y) term counts)":
            "without brackets, -Σ y log p + (1 - y) log(1 - p) gives the second term the wrong "
            "sign: write -(1/n) Σ [y log p + (1 - y) log(1 - p)].",
        "p = 0 and p = 1, both wrong (must stay finite)":
            "clip p to [eps, 1 - eps] with np.clip before taking logs.",
        "a different eps": "use the eps argument, not a hard-coded constant.",
    }
    for case, yt, pp, kwargs in cases:
        got = call(binary_cross_entropy, yt, pp, exercise=exercise, case=case,
                   strict_numpy=True, **kwargs)
        assert_close(got, ref.binary_cross_entropy(yt, pp, **kwargs), exercise=exercise,
                     case=case,
                     inputs=f"y={np.asarray(yt).ravel()[:5]}, p={np.asarray(pp).ravel()[:5]}",
                     rtol=1e-6, atol=1e-9, hint=hints.get(case, ""), n=len(np.asarray(yt)))


def check_gradient_descent(gradient_descent, strict: bool = False) -> None:
    """``gradient_descent(grad_fn, w0, lr, steps)`` returns ``(w, history)`` with
    ``steps + 1`` entries in ``history`` (the start first) and never changes ``w0`` in place."""
    exercise = "gradient_descent"
    A = np.array([[3.0, 0.5], [0.5, 1.0]])
    b = np.array([1.0, -2.0])

    def grad_fn(w):  # gradient of 0.5 w^T A w - b^T w, minimum at A^-1 b
        return A @ w - b

    cases = [("a 2-d quadratic, 5 steps", np.array([2.0, 2.0]), 0.1, 5),
             ("zero steps", np.array([2.0, 2.0]), 0.1, 0),
             ("a 2-d quadratic, 200 steps (converges)", np.array([-4.0, 3.0]), 0.3, 200)]
    if strict:
        cases += [("a scalar weight", np.array(5.0), 0.5, 3),
                  ("a larger learning rate", np.array([1.0, 1.0]), 0.6, 10)]
    for case, w0, lr, steps in cases:
        w0_before = np.array(w0, copy=True)
        out = call(gradient_descent, grad_fn if w0.ndim else (lambda w: 2 * w), w0, lr, steps,
                   exercise=exercise, case=case, inputs_unchanged=False)  # checked below
        if not (isinstance(out, tuple) and len(out) == 2):
            fail(exercise, case, expected="a tuple (w, history)", got=type(out).__name__,
                 hint="end with `return w, history`.")
        w, history = out
        if isinstance(history, dict) or not hasattr(history, "__getitem__"):
            fail(exercise, case, expected="history as a list of weight arrays",
                 got=type(history).__name__, hint="start with history = [w.copy()] and append.")
        exp_w, exp_hist = ref.gradient_descent(grad_fn if w0.ndim else (lambda w: 2 * w),
                                               w0, lr, steps)
        if not np.array_equal(w0, w0_before):
            fail(exercise, case, expected=f"w0 unchanged {w0_before}", got=w0,
                 hint="`w -= lr * g` changes the caller's array in place; use `w = w - lr * g` "
                      "on a copy.")
        try:
            n_hist = len(history)
        except TypeError:
            fail(exercise, case, expected="a list of weights", got=type(history).__name__)
        if n_hist != steps + 1:
            fail(exercise, case, expected=f"{steps + 1} entries in history (start + each step)",
                 got=f"{n_hist} entries",
                 hint="append the starting point, then one entry per step.")
        assert_close(history[0], exp_hist[0], exercise=exercise, case=f"{case}: history[0]",
                     hint="history[0] should be the starting point w0.")
        assert_close(w, exp_w, exercise=exercise, case=f"{case}: final w", rtol=1e-9,
                     hint="each step is w <- w - lr * grad_fn(w).")
        assert_close(np.asarray(history[-1], dtype=float), exp_w, exercise=exercise,
                     case=f"{case}: history[-1]",
                     hint="the last history entry should be the final weights; append copies "
                          "(w.copy()), not the same array again and again.")
        if steps >= 2:
            assert_close(history[1], exp_hist[1], exercise=exercise, case=f"{case}: history[1]",
                         hint="append a copy after each step; an array changed in place makes "
                              "every entry the same.")


def _mlp_case(seed: int, n: int = 6, d: int = 4, h: int = 5):
    rng = case_rng(seed)
    params = ref.init_mlp_params(d, h, seed=seed)
    params["b1"] = rng.normal(0, 0.1, size=h)
    params["b2"] = rng.normal(0, 0.1, size=1)
    X = rng.normal(size=(n, d))
    y = (rng.random(n) < 0.5).astype(float)
    return params, X, y


def check_mlp_forward(mlp_forward, strict: bool = False) -> None:
    """``mlp_forward(params, X)`` returns ``(P, cache)``: P of shape (n,), and a cache with
    X, Z1, A1, Z2, P (the shapes in :mod:`medai_lessons.nn.mlp`)."""
    exercise = "mlp_forward"
    seeds = [0, 1] if not strict else [0, 1, 2, 3, 4]
    for seed in seeds:
        params, X, _ = _mlp_case(seed, n=6 + seed)
        case = f"seeded network #{seed} on {X.shape[0]} samples"
        out = call(mlp_forward, params, X, exercise=exercise, case=case)
        if not (isinstance(out, tuple) and len(out) == 2):
            fail(exercise, case, expected="a tuple (P, cache)", got=type(out).__name__)
        P, cache = out
        exp_P, exp_cache = ref.mlp_forward(params, X)
        assert_close(P, exp_P, exercise=exercise, case=case, rtol=1e-9,
                     hint="Z1 = X @ W1 + b1, A1 = tanh(Z1), Z2 = A1 @ W2 + b2, "
                          "P = sigmoid(Z2)[:, 0].")
        if not isinstance(cache, dict):
            fail(exercise, case, expected="cache as a dict", got=type(cache).__name__)
        for key in ("X", "Z1", "A1", "Z2", "P"):
            if key not in cache:
                fail(exercise, case, expected=f"cache['{key}']",
                     got=f"keys {sorted(cache)}", hint="the backward pass reads these keys.")
            assert_close(cache[key], exp_cache[key], exercise=exercise,
                         case=f"{case}: cache['{key}']", rtol=1e-9)
    if strict:
        original = {k: v.copy() for k, v in params.items()}
        call(mlp_forward, params, X, exercise=exercise, case="params unchanged")
        for k in original:
            if not np.array_equal(original[k], params[k]):
                fail(exercise, "params unchanged", got=f"params['{k}'] was modified",
                     hint="a forward pass must not change the weights.")


def numerical_gradient(f, params: dict, h: float = 1e-5) -> dict:
    """Central differences of the scalar function ``f(params)`` for every parameter entry."""
    grads = {}
    for key, value in params.items():
        g = np.zeros_like(value)
        it = np.nditer(value, flags=["multi_index"])
        for _ in it:
            idx = it.multi_index
            old = value[idx]
            value[idx] = old + h
            plus = f(params)
            value[idx] = old - h
            minus = f(params)
            value[idx] = old
            g[idx] = (plus - minus) / (2 * h)
        grads[key] = g
    return grads


def check_mlp_backward(mlp_backward, strict: bool = False) -> None:
    """``mlp_backward(params, cache, y)`` returns the gradients of the mean binary
    cross-entropy, a dict with the keys and shapes of ``params``. Checked against a numerical
    gradient (central differences, float64, relative error < 1e-6), then against the exact
    gradient (relative error < 1e-13), which backpropagation in float64 reaches and an estimate
    from nudged parameters does not. The cache comes from the reference forward pass, so this
    check does not depend on your ``mlp_forward``."""
    exercise = "mlp_backward"
    seeds = [0, 1] if not strict else [0, 1, 2, 3, 4, 5]
    for seed in seeds:
        params, X, y = _mlp_case(seed, n=5 + 2 * seed)
        case = f"seeded network #{seed} on {X.shape[0]} samples"
        _, cache = ref.mlp_forward(params, X)
        grads = call(mlp_backward, params, cache, y, exercise=exercise, case=case)
        if not isinstance(grads, dict):
            fail(exercise, case, expected="a dict of gradients", got=type(grads).__name__)

        def loss(p, X=X, y=y):
            return ref.binary_cross_entropy(y, ref.mlp_forward(p, X)[0], eps=1e-15)

        numeric = numerical_gradient(loss, {k: v.copy() for k, v in params.items()})
        n = X.shape[0]
        for key in ("W1", "b1", "W2", "b2"):
            if key not in grads:
                fail(exercise, case, expected=f"grads['{key}']", got=f"keys {sorted(grads)}")
            got = as_array(grads[key], exercise, case)
            if got.shape != params[key].shape:
                assert_close(got, numeric[key], exercise=exercise, case=f"{case}: d{key}", n=n)
            err = relative_error(got, numeric[key])
            if err > 1e-6:
                hint = _diagnose(got, numeric[key], n) or {
                    "W2": "dW2 = A1.T @ dZ2 with dZ2 = (P - y)[:, None] / n.",
                    "b2": "db2 = dZ2.sum(axis=0).",
                    "W1": "dZ1 = (dZ2 @ W2.T) * (1 - A1**2); dW1 = X.T @ dZ1.",
                    "b1": "db1 = dZ1.sum(axis=0); tanh'(z) = 1 - tanh(z)**2.",
                }[key]
                fail(exercise, f"{case}: d{key} against a numerical gradient "
                     f"(relative error must be < 1e-6)",
                     expected=numeric[key], got=got,
                     hint=f"relative error {err:.2e}. {hint}")
        exact = ref.mlp_backward(params, cache, y)
        for key in ("W1", "b1", "W2", "b2"):
            err = relative_error(as_array(grads[key], exercise, case), exact[key])
            if err > EXACT_BACKPROP:
                fail(exercise, f"{case}: d{key} against backpropagation's exact value "
                     f"(relative error must be < {EXACT_BACKPROP:g})",
                     expected=exact[key], got=grads[key],
                     hint=f"relative error {err:.2e}: close to the numerical gradient, but "
                     "backpropagation in float64 gives the exact derivative (to about 1e-15), "
                     "and an estimate from nudged parameters cannot (about 1e-12 at best). "
                     "Compute each gradient from the cache with the chain rule, in float64.")


def _register_samples() -> None:
    def vec():
        return (np.array([-800.0, -1.0, 0.0, 2.0, 800.0]),)

    for name in ("sigmoid", "tanh", "relu", "sigmoid_grad", "tanh_grad", "relu_grad"):
        SAMPLE_ARGS[name] = vec
    SAMPLE_ARGS["mse"] = lambda: (np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 2.0]))
    SAMPLE_ARGS["binary_cross_entropy"] = lambda: (np.array([1.0, 0.0, 1.0]),
                                                   np.array([0.9, 0.2, 0.0]))
    SAMPLE_ARGS["gradient_descent"] = lambda: (lambda w: 2 * w, np.array([1.0, -1.0]), 0.1, 3)

    def mlp_args():
        params, X, y = _mlp_case(0)
        return params, X

    def mlp_backward_args():
        params, X, y = _mlp_case(0)
        return params, ref.mlp_forward(params, X)[1], y

    SAMPLE_ARGS["mlp_forward"] = mlp_args
    SAMPLE_ARGS["mlp_backward"] = mlp_backward_args


_register_samples()
