"""Training loops that chapters run on learners' own building blocks.

They take the forward/backward functions as arguments, so a chapter can train with the
learner's ``mlp_forward``/``mlp_backward`` (or the reference, if those are not finished).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tqdm.auto import tqdm

from medai_lessons.nn.losses import binary_cross_entropy


def train_mlp_gd(forward: Callable, backward: Callable, params: dict, X, y, lr: float,
                 steps: int, X_val=None, y_val=None, progress: bool = True):
    """Full-batch gradient descent on a one-hidden-layer MLP.

    Returns ``(params, history)`` where ``history`` has the training loss per step under
    ``"train"`` (and ``"val"`` when a validation set is given). ``params`` is not changed in
    place; the returned dict holds new arrays.
    """
    params = {k: np.array(v, dtype=np.float64, copy=True) for k, v in params.items()}
    history: dict[str, list[float]] = {"train": []}
    if X_val is not None:
        history["val"] = []
    bar = tqdm(range(int(steps)), desc="gradient descent", disable=not progress, leave=False)
    for _ in bar:
        P, cache = forward(params, X)
        history["train"].append(binary_cross_entropy(y, P))
        if X_val is not None:
            history["val"].append(binary_cross_entropy(y_val, forward(params, X_val)[0]))
        grads = backward(params, cache, y)
        for key in params:
            params[key] = params[key] - lr * np.asarray(grads[key])
    return params, history
