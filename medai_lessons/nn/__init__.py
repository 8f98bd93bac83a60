"""Reference NumPy implementations of every exercise.

Each function has the name and signature of the exercise it answers, so that later cells and
chapters can call it when a learner's own version is not finished yet. Checkers in
:mod:`medai_lessons.grading` compare learners' functions with these.
"""

from medai_lessons.nn.activations import (
    relu,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    tanh,
    tanh_grad,
)
from medai_lessons.nn.losses import binary_cross_entropy, mse, weighted_binary_cross_entropy
from medai_lessons.nn.mlp import init_mlp_params, mlp_backward, mlp_forward
from medai_lessons.nn.optim import gradient_descent, logistic_regression_grad

__all__ = [
    "binary_cross_entropy",
    "gradient_descent",
    "init_mlp_params",
    "logistic_regression_grad",
    "mlp_backward",
    "mlp_forward",
    "mse",
    "relu",
    "relu_grad",
    "sigmoid",
    "sigmoid_grad",
    "tanh",
    "tanh_grad",
    "weighted_binary_cross_entropy",
]
