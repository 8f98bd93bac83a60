"""Checkers that the course's test cells call.

A test cell imports the checker it uses in that same cell::

    from medai_lessons.grading import check_sigmoid
    check_sigmoid(sigmoid)

so that an answer cell that redefines ``check_sigmoid`` gains nothing. Hidden tests add
``strict=True`` and :func:`assert_own_implementation`.
"""

from medai_lessons.grading.ch01 import (
    check_confusion_counts,
    check_diagnostic_metrics,
    check_missingness_report,
    check_ppv_from_prevalence,
)
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
#: exercise name -> other functions of the course that compute what the exercise asks (found
#: by a test that calls every function of the course's pure modules on each exercise's sample
#: arguments): a grading kernel's copy of the package holds them as stubs, like the references
SAME_AS_REFERENCE: dict[str, tuple] = {}
#: exercise name -> library functions (by their last name) that compute the whole exercise: an
#: answer that calls one is not the learner's own (``tf.nn.softmax`` for ``softmax``,
#: scikit-survival's ``kaplan_meier_estimator`` for ``kaplan_meier``). Exercises that ask for
#: a library (chapter 6's scikit-learn) or allow one (``np.tanh`` for ``tanh``) are not here.
LIBRARY_EQUIVALENTS: dict[str, frozenset] = {
    "sigmoid": frozenset({"expit", "sigmoid"}),
    "relu": frozenset({"relu"}),
    "mse": frozenset({"mean_squared_error", "MeanSquaredError"}),
    "binary_cross_entropy": frozenset({"log_loss", "binary_crossentropy",
                                       "BinaryCrossentropy"}),
    "mlp_backward": frozenset({"GradientTape", "gradient", "grad", "approx_fprime",
                               "check_grad"}),
    "conv2d": frozenset({"conv2d", "Conv2D", "convolve2d", "correlate2d", "fftconvolve",
                         "oaconvolve"}),
    "max_pool2d": frozenset({"max_pool2d", "max_pool", "MaxPooling2D", "block_reduce",
                             "maximum_filter"}),
    "avg_pool2d": frozenset({"avg_pool2d", "avg_pool", "AveragePooling2D", "block_reduce",
                             "uniform_filter"}),
    "softmax": frozenset({"softmax", "log_softmax", "Softmax"}),
    "weighted_binary_cross_entropy": frozenset({"weighted_cross_entropy_with_logits",
                                                "binary_crossentropy", "BinaryCrossentropy",
                                                "log_loss"}),
    "gru_cell": frozenset({"GRUCell", "GRU"}),
    "lstm_cell": frozenset({"LSTMCell", "LSTM"}),
    "kaplan_meier": frozenset({"kaplan_meier_estimator", "KaplanMeierFitter"}),
    "concordance_index": frozenset({"concordance_index_censored", "concordance_index_ipcw",
                                    "concordance_index"}),
}


def _register() -> None:
    from medai_lessons import metrics, nn, tabular

    for name in ("confusion_counts", "diagnostic_metrics", "ppv_from_prevalence"):
        EXERCISES[name] = (globals()[f"check_{name}"], getattr(metrics, name))
    EXERCISES["missingness_report"] = (check_missingness_report, tabular.missingness_report)
    for name in ("sigmoid", "tanh", "relu", "sigmoid_grad", "tanh_grad", "relu_grad", "mse",
                 "binary_cross_entropy", "gradient_descent", "mlp_forward", "mlp_backward"):
        EXERCISES[name] = (globals()[f"check_{name}"], getattr(nn, name))
    SAME_AS_REFERENCE["sigmoid"] = (metrics.sigmoid_of,)
    SAME_AS_REFERENCE["binary_cross_entropy"] = (tabular.binary_log_loss,)


_register()

__all__ = [
    "EXERCISES",
    "LIBRARY_EQUIVALENTS",
    "SAME_AS_REFERENCE",
    "assert_own_implementation",
    "check_binary_cross_entropy",
    "check_confusion_counts",
    "check_diagnostic_metrics",
    "check_gradient_descent",
    "check_missingness_report",
    "check_mlp_backward",
    "check_mlp_forward",
    "check_mse",
    "check_ppv_from_prevalence",
    "check_relu",
    "check_relu_grad",
    "check_sigmoid",
    "check_sigmoid_grad",
    "check_tanh",
    "check_tanh_grad",
    "relative_error",
]


def _discover_chapters() -> None:
    """Chapter checker modules (``grading/chNN*.py``) register themselves: each may define
    ``EXERCISES = {name: (checker, reference)}``; its ``check_*`` functions become names of
    this package, so a new chapter needs no edit here."""
    import importlib
    import pkgutil
    import re

    for info in pkgutil.iter_modules(__path__):
        if not re.fullmatch(r"ch\d\d\w*", info.name):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name, value in vars(module).items():
            if name.startswith("check_") and callable(value):
                # Assigned, never setdefault: on the fresh reload of hidden tests this
                # replaces anything an answer cell assigned into the package.
                globals()[name] = value
                if name not in __all__:
                    __all__.append(name)
        EXERCISES.update(getattr(module, "EXERCISES", {}))
        SAME_AS_REFERENCE.update(getattr(module, "SAME_AS_REFERENCE", {}))


_discover_chapters()
