"""Gradient descent (chapter 2, Diagnosis and Treatment §3.1.3) and the
logistic-regression gradient it is first used on."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from medai_lessons.nn.activations import sigmoid


def gradient_descent(grad_fn: Callable, w0, lr: float, steps: int):
    """Plain (full-batch) gradient descent: ``w <- w - lr * grad_fn(w)``, ``steps`` times.

    Returns ``(w, history)``: the final weights and a list of ``steps + 1`` arrays, the
    starting point first. ``w0`` is copied, never changed in place.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    w = np.array(w0, dtype=np.float64, copy=True)
    history = [w.copy()]
    for _ in range(int(steps)):
        w = w - lr * np.asarray(grad_fn(w), dtype=np.float64)
        history.append(w.copy())
    return w, history


def logistic_regression_grad(X, y, pos_weight: float = 1.0):
    """Return ``(loss_fn, grad_fn)`` for logistic regression on ``X`` (n, d) and ``y`` (n,).

    The weights ``w`` have d + 1 entries; the last one is the bias. The loss is the mean
    binary cross-entropy, each positive sample (y = 1) weighted by ``pos_weight`` (1 = the
    plain loss), and its gradient is ``X1.T @ (s * (sigmoid(X1 @ w) - y)) / n`` with ``s`` the
    sample weights.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ValueError(f"X must be (n, d) and y (n,); got X {X.shape} and y {y.shape}.")
    X1 = np.hstack([X, np.ones((X.shape[0], 1))])
    n = X1.shape[0]
    s = np.where(y == 1, float(pos_weight), 1.0)

    def loss_fn(w):
        p = np.clip(sigmoid(X1 @ w), 1e-7, 1 - 1e-7)
        return float(-np.mean(s * (y * np.log(p) + (1 - y) * np.log(1 - p))))

    def grad_fn(w):
        return X1.T @ (s * (sigmoid(X1 @ w) - y)) / n

    return loss_fn, grad_fn
