"""Loss functions (chapter 2, Diagnosis and Treatment §3.1.2).

Both losses return the mean over samples, as Keras does, so that the learning rate does not
have to change with the batch size.
"""

from __future__ import annotations

import numpy as np


def _pair(y_true, y_pred, what: str) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{what}: y_true has shape {y_true.shape} but the prediction has shape "
            f"{y_pred.shape}; reshape one of them (e.g. y.reshape(-1)) so that they match."
        )
    if y_true.size == 0:
        raise ValueError(f"{what}: got empty arrays; a loss needs at least one sample.")
    return y_true, y_pred


def mse(y_true, y_pred) -> float:
    """Mean squared error (1/n) Σ (y - ŷ)²."""
    y_true, y_pred = _pair(y_true, y_pred, "mse")
    return float(np.mean((y_true - y_pred) ** 2))


def binary_cross_entropy(y_true, p, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy -(1/n) Σ [y log p + (1 - y) log(1 - p)] (erratum E14).

    ``p`` is clipped to [eps, 1 - eps] so that the loss stays finite at p = 0 and p = 1
    (Keras clips with the same default epsilon).
    """
    y_true, p = _pair(y_true, p, "binary_cross_entropy")
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y_true * np.log(p) + (1.0 - y_true) * np.log(1.0 - p)))


def weighted_binary_cross_entropy(y_true, y_prob, pos_weight, eps: float = 1e-7):
    """Class-weighted binary cross-entropy (chapter 3):

        -(1/n) Σ [pos_weight · y log p + (1 - y) log(1 - p)],

    the mean over all n examples; ``pos_weight`` multiplies the terms of the positive
    examples only (pneumonia, y = 1). With ``pos_weight = n_negative / n_positive`` both
    classes weigh the same in total, as class weights ``n / (2 n_c)`` do, up to a constant
    factor. ``y_prob`` is clipped to [eps, 1 - eps] so that the loss stays finite.

    Written with ``keras.ops`` so that Keras can differentiate it when it trains a network
    with it; on NumPy arrays it returns a 0-d tensor (``float(...)`` gives the number).
    """
    from keras import ops

    p = ops.convert_to_tensor(y_prob)
    if not str(p.dtype).startswith("float"):
        p = ops.cast(p, "float32")
    y = ops.cast(ops.convert_to_tensor(y_true), p.dtype)
    p = ops.clip(p, eps, 1.0 - eps)
    return -ops.mean(pos_weight * y * ops.log(p) + (1.0 - y) * ops.log(1.0 - p))
