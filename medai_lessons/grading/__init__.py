"""Checkers that the course's test cells call.

A test cell imports the checker it uses in that same cell::

    from medai_lessons.grading import check_sigmoid
    check_sigmoid(sigmoid)

so that an answer cell that redefines ``check_sigmoid`` gains nothing. Hidden tests add
``strict=True`` and :func:`assert_own_implementation`.
"""

from medai_lessons.grading.ch02 import (
    check_binary_cross_entropy,
    check_gradient_descent,
    check_mlp_backward,
    check_mlp_forward,
    check_mse,
    check_relu,
    check_relu_grad,
    check_sigmoid,
    check_sigmoid_grad,
    check_tanh,
    check_tanh_grad,
)
from medai_lessons.grading.core import assert_own_implementation, relative_error

#: exercise name -> (checker, reference implementation); used to fall back to the reference
#: when a learner's function is not ready, and by the package's own tests.
EXERCISES = {}


def _register() -> None:
    from medai_lessons import nn

    for name in ("sigmoid", "tanh", "relu", "sigmoid_grad", "tanh_grad", "relu_grad", "mse",
                 "binary_cross_entropy", "gradient_descent", "mlp_forward", "mlp_backward"):
        EXERCISES[name] = (globals()[f"check_{name}"], getattr(nn, name))


_register()

__all__ = [
    "EXERCISES",
    "assert_own_implementation",
    "check_binary_cross_entropy",
    "check_gradient_descent",
    "check_mlp_backward",
    "check_mlp_forward",
    "check_mse",
    "check_relu",
    "check_relu_grad",
    "check_sigmoid",
    "check_sigmoid_grad",
    "check_tanh",
    "check_tanh_grad",
    "relative_error",
]
