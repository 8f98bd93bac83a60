"""Activation functions and their derivatives (chapter 2, Diagnosis and Treatment §3.1.1).

All functions work element-wise on any NumPy shape (scalars included), return floating-point
arrays, and stay finite without overflow warnings for |x| up to 1000 and beyond.
"""

from __future__ import annotations

import numpy as np


def _as_float_array(x) -> np.ndarray:
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return x


def sigmoid(x):
    """Logistic sigmoid 1 / (1 + exp(-x)), computed without overflow.

    ``exp(-x)`` overflows for x < -709 in float64 (and x < -88 in float32). The stable form
    only ever exponentiates a non-positive number: for x >= 0 it uses 1 / (1 + e^-x), for
    x < 0 the equal e^x / (1 + e^x).
    """
    x = _as_float_array(x)
    z = np.exp(-np.abs(x))  # in (0, 1], never overflows
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z)).astype(x.dtype, copy=False)


def tanh(x):
    """Hyperbolic tangent. ``np.tanh`` is already stable; the seed's
    (e^x - e^-x) / (e^x + e^-x) gives inf/inf = nan for |x| > 710."""
    return np.tanh(_as_float_array(x))


def relu(x):
    """Rectified linear unit max(0, x): piecewise linear, hence non-linear (erratum E13)."""
    x = _as_float_array(x)
    return np.maximum(x, 0).astype(x.dtype, copy=False)


def sigmoid_grad(x):
    """Derivative of the sigmoid with respect to its input: s(x) * (1 - s(x))."""
    s = sigmoid(x)
    return s * (1.0 - s)


def tanh_grad(x):
    """Derivative of tanh with respect to its input: 1 - tanh(x)^2."""
    t = tanh(x)
    return 1.0 - t * t


def relu_grad(x):
    """Derivative of ReLU: 1 where x > 0, else 0 (the convention at x = 0, as in TensorFlow)."""
    x = _as_float_array(x)
    return (x > 0).astype(x.dtype)
