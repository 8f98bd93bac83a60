"""A one-hidden-layer network, forward and backward by hand (chapter 2,
Diagnosis and Treatment §3.1.4).

Shapes (n samples, d features, h hidden units)::

    params = {"W1": (d, h), "b1": (h,), "W2": (h, 1), "b2": (1,)}
    Z1 = X @ W1 + b1          (n, h)
    A1 = tanh(Z1)             (n, h)
    Z2 = A1 @ W2 + b2         (n, 1)
    P  = sigmoid(Z2)[:, 0]    (n,)   probability of the positive class
    L  = mean binary cross-entropy of P against y

The hidden layer uses tanh: it is smooth everywhere, so a numerical gradient check is exact
to rounding (ReLU's kink at 0 would make the check flaky).
"""

from __future__ import annotations

import numpy as np

from medai_lessons.nn.activations import sigmoid, tanh

PARAM_NAMES = ("W1", "b1", "W2", "b2")


def init_mlp_params(n_features: int, n_hidden: int, seed: int = 0) -> dict:
    """Glorot-uniform weights and zero biases, float64, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    lim1 = np.sqrt(6.0 / (n_features + n_hidden))
    lim2 = np.sqrt(6.0 / (n_hidden + 1))
    return {
        "W1": rng.uniform(-lim1, lim1, size=(n_features, n_hidden)),
        "b1": np.zeros(n_hidden),
        "W2": rng.uniform(-lim2, lim2, size=(n_hidden, 1)),
        "b2": np.zeros(1),
    }


def mlp_forward(params: dict, X):
    """Forward pass. Returns ``(P, cache)``: probabilities of shape (n,) and what the backward
    pass needs (``cache`` holds ``X``, ``Z1``, ``A1``, ``Z2``, ``P``)."""
    X = np.asarray(X, dtype=np.float64)
    Z1 = X @ params["W1"] + params["b1"]
    A1 = tanh(Z1)
    Z2 = A1 @ params["W2"] + params["b2"]
    P = sigmoid(Z2)[:, 0]
    return P, {"X": X, "Z1": Z1, "A1": A1, "Z2": Z2, "P": P}


def mlp_backward(params: dict, cache: dict, y) -> dict:
    """Gradients of the mean binary cross-entropy with respect to every parameter.

    Returns a dict with the keys and shapes of ``params``. The sigmoid and the cross-entropy
    together have the simple derivative dL/dZ2 = (P - y) / n.
    """
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    X, A1, P = cache["X"], cache["A1"], cache["P"]
    n = X.shape[0]
    dZ2 = ((P - y) / n)[:, None]  # (n, 1)
    dW2 = A1.T @ dZ2  # (h, 1)
    db2 = dZ2.sum(axis=0)  # (1,)
    dA1 = dZ2 @ params["W2"].T  # (n, h)
    dZ1 = dA1 * (1.0 - A1**2)  # tanh'(Z1) = 1 - tanh(Z1)^2
    dW1 = X.T @ dZ1  # (d, h)
    db1 = dZ1.sum(axis=0)  # (h,)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
