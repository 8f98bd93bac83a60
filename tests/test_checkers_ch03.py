"""The chapter-3 checkers: conv2d, max_pool2d, avg_pool2d, softmax and build_cnn.

Each checker accepts the reference and other right answers (visible and strict cases), and
rejects the mistakes learners make, written the way a learner would write them, with a message
that names the exercise and the case and carries the hint for that mistake. (The generic
checks of every registered exercise, stubs, errors, non-functions, the own-work check and the
learner-or-reference switch, run in test_checkers.py.)
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from checker_cases import (
    accepts_variants,
    has_wrong_versions,
    hints_without_layer_code,
    rejects_mistakes,
)

from medai_lessons import models
from medai_lessons.grading import (
    EXERCISES,
    assert_own_implementation,
    check_avg_pool2d,
    check_build_cnn,
    check_conv2d,
    check_max_pool2d,
    check_softmax,
    check_temperature_scale,
    check_weighted_binary_cross_entropy,
)
from medai_lessons.grading.core import SAMPLE_ARGS
from medai_lessons.nn import conv as ref
from medai_lessons.notebook import learner_or_reference
from nbtools import notebook

CHAPTER_3 = ["conv2d", "max_pool2d", "avg_pool2d", "softmax", "build_cnn",
             "weighted_binary_cross_entropy", "temperature_scale"]
L = keras.layers


def test_registry_and_samples():
    """Every exercise is registered with its checker, reference and valid sample arguments
    (test_checkers.py runs every registered checker on its reference, visible and strict)."""
    for name in CHAPTER_3:
        checker, reference = EXERCISES[name]
        assert checker.__name__ == f"check_{name}"
        reference(*SAMPLE_ARGS[name]())
    assert EXERCISES["conv2d"][1] is ref.conv2d
    assert EXERCISES["build_cnn"][1] is models.build_cnn


# --- right answers written another way -------------------------------------------------------


def conv2d_loops(x, w, b=None, stride=1, padding="valid"):
    """The loop version most learners write."""
    x = np.asarray(x, dtype=float)
    single = x.ndim == 3
    if single:
        x = x[None]
    kh, kw, _, c_out = w.shape
    n, h, wd, _ = x.shape
    if padding == "same":
        out_h, out_w = -(-h // stride), -(-wd // stride)
        ph = max((out_h - 1) * stride + kh - h, 0)
        pw = max((out_w - 1) * stride + kw - wd, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        out_h, out_w = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, out_h, out_w, c_out))
    for i in range(out_h):
        for j in range(out_w):
            patch = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            out[:, i, j, :] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
    if b is not None:
        out = out + b
    return out[0] if single else out


def conv2d_float32(x, w, b=None, stride=1, padding="valid"):
    out = conv2d_loops(np.asarray(x, np.float32), np.asarray(w, np.float32),
                       None if b is None else np.asarray(b, np.float32), stride, padding)
    return out.astype(np.float32)


def _pool_loops(x, size, stride, reduce):
    x = np.asarray(x, dtype=float)
    h, w = x.shape[-3], x.shape[-2]
    rows, cols = (h - size) // stride + 1, (w - size) // stride + 1
    out = np.empty(x.shape[:-3] + (rows, cols, x.shape[-1]))
    for i in range(rows):
        for j in range(cols):
            window = x[..., i * stride:i * stride + size, j * stride:j * stride + size, :]
            out[..., i, j, :] = reduce(window, axis=(-3, -2))
    return out


def max_pool_loops(x, size=2, stride=2):
    return _pool_loops(x, size, stride, np.max)


def avg_pool_loops(x, size=2, stride=2):
    return _pool_loops(x, size, stride, np.mean)


def softmax_textbook(logits, axis=-1):
    z = logits - np.max(logits, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def build_cnn_as_in_the_source(input_shape, n_classes):
    """AI in Medicine §4.1 copied, with input_shape= on the first layer and n_classes outputs."""
    from keras import layers
    from keras import models as keras_models

    model = keras_models.Sequential()
    model.add(layers.Conv2D(32, (3, 3), activation="relu", input_shape=input_shape))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(64, (3, 3), activation="relu"))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(64, (3, 3), activation="relu"))
    model.add(layers.Flatten())
    model.add(layers.Dense(64, activation="relu"))
    model.add(layers.Dense(n_classes, activation="softmax"))
    return model


def wbce_keras_ops(y_true, y_prob, pos_weight):
    """The answer the chapter asks for: keras.ops, so that Keras can train with it."""
    from keras import ops

    p = ops.clip(ops.convert_to_tensor(y_prob), 1e-7, 1 - 1e-7)
    y = ops.cast(y_true, p.dtype)
    return -ops.mean(pos_weight * y * ops.log(p) + (1 - y) * ops.log(1 - p))


def wbce_numpy_weights(y_true, y_prob, pos_weight):
    """NumPy, with a weight per example and another eps: right values (the chapter's training
    cell then says it cannot differentiate it)."""
    y = np.asarray(y_true, dtype=float)
    p = np.clip(np.asarray(y_prob, dtype=float), 1e-12, 1 - 1e-12)
    weights = np.where(y == 1, pos_weight, 1.0)
    return float(np.mean(-weights * (y * np.log(p) + (1 - y) * np.log(1 - p))))


def wbce_tensorflow(y_true, y_prob, pos_weight):
    import tensorflow as tf

    p = tf.clip_by_value(tf.constant(y_prob, tf.float64), 1e-7, 1 - 1e-7)
    y = tf.cast(y_true, tf.float64)
    return -tf.reduce_mean(pos_weight * y * tf.math.log(p) + (1 - y) * tf.math.log(1 - p))


def _log_loss_at(logits, y, t):
    z = np.asarray(logits, dtype=float) / t
    return np.mean(np.logaddexp(0, -z) * y + np.logaddexp(0, z) * (1 - y))


def temperature_grid(logits_val, y_val):
    """A log-spaced grid of temperatures, the loss at each, the best one."""
    temps = np.exp(np.linspace(np.log(0.05), np.log(20.0), 3000))
    return float(temps[np.argmin([_log_loss_at(logits_val, y_val, t) for t in temps])])


def temperature_scipy(logits_val, y_val):
    from scipy.optimize import minimize_scalar

    found = minimize_scalar(lambda log_t: _log_loss_at(logits_val, y_val, np.exp(log_t)),
                            bounds=(np.log(0.01), np.log(100.0)), method="bounded")
    return float(np.exp(found.x))


def temperature_keras(logits_val, y_val):
    """Gradient descent on log T with TensorFlow (one compiled loop)."""
    import tensorflow as tf

    logits = tf.constant(logits_val, tf.float64)
    y = tf.constant(y_val, tf.float64)

    @tf.function
    def fit():
        log_t = tf.constant(0.0, tf.float64)
        for _ in tf.range(400):
            with tf.GradientTape() as tape:
                tape.watch(log_t)
                loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
                    y, logits / tf.exp(log_t)))
            log_t -= 2.0 * tape.gradient(loss, log_t)
        return tf.exp(log_t)

    return float(fit())

RIGHT = [(check_conv2d, conv2d_loops), (check_conv2d, conv2d_float32),
         (check_max_pool2d, max_pool_loops), (check_avg_pool2d, avg_pool_loops),
         (check_softmax, softmax_textbook), (check_build_cnn, build_cnn_as_in_the_source),
         (check_weighted_binary_cross_entropy, wbce_keras_ops),
         (check_weighted_binary_cross_entropy, wbce_numpy_weights),
         (check_weighted_binary_cross_entropy, wbce_tensorflow),
         (check_temperature_scale, temperature_grid), (check_temperature_scale, temperature_scipy),
         (check_temperature_scale, temperature_keras)]


test_checker_accepts_right_answers_written_another_way = pytest.mark.filterwarnings(
    "ignore:Do not pass an `input_shape`")(accepts_variants(RIGHT))


# --- realistic wrong versions ----------------------------------------------------------------


def conv2d_true_convolution(x, w, b=None, stride=1, padding="valid"):
    return conv2d_loops(x, np.asarray(w)[::-1, ::-1], b, stride, padding)  # flipped (E2)


def conv2d_same_split_before(x, w, b=None, stride=1, padding="valid"):
    x = np.asarray(x, dtype=float)
    if padding == "same":  # the extra row and column go on top/left (TF puts them after)
        kh, kw = w.shape[:2]
        h, wd = x.shape[-3], x.shape[-2]
        ph = max((-(-h // stride) - 1) * stride + kh - h, 0)
        pw = max((-(-wd // stride) - 1) * stride + kw - wd, 0)
        pads = ((ph - ph // 2, ph // 2), (pw - pw // 2, pw // 2), (0, 0))
        x = np.pad(x, pads if x.ndim == 3 else ((0, 0), *pads))
    return conv2d_loops(x, w, b, stride, "valid")


def conv2d_same_symmetric(x, w, b=None, stride=1, padding="valid"):
    x = np.asarray(x, dtype=float)
    if padding == "same":  # (k - 1) // 2 on each side: right for odd kernels at stride 1 only
        ph, pw = (w.shape[0] - 1) // 2, (w.shape[1] - 1) // 2
        pads = ((ph, ph), (pw, pw), (0, 0))
        x = np.pad(x, pads if x.ndim == 3 else ((0, 0), *pads))
    return conv2d_loops(x, w, b, stride, "valid")


def conv2d_bias_per_pixel(x, w, b=None, stride=1, padding="valid"):
    # sum(patch * w + b): the bias is added once per kernel entry
    kh, kw, c_in, _ = w.shape
    scaled = None if b is None else np.asarray(b) * kh * kw * c_in
    return conv2d_loops(x, w, scaled, stride, padding)


def conv2d_bias_per_row(x, w, b=None, stride=1, padding="valid"):
    out = conv2d_loops(x, w, None, stride, padding)  # the source's b_i: one bias per row i
    if b is not None:
        rows = out.shape[-3]
        out = out + np.resize(np.asarray(b), rows)[:, None, None]
    return out


def conv2d_no_stride(x, w, b=None, stride=1, padding="valid"):
    return conv2d_loops(x, w, b, 1, padding)


def conv2d_always_batch(x, w, b=None, stride=1, padding="valid"):
    x = np.asarray(x, dtype=float)
    return conv2d_loops(x if x.ndim == 4 else x[None], w, b, stride, padding)


def max_pool_no_stride(x, size=2, stride=2):
    return max_pool_loops(x, size, 1)  # the source's formula has no stride (E3)


def max_pool_from_zero(x, size=2, stride=2):
    return np.maximum(max_pool_loops(x, size, stride), 0.0)  # best = 0 before the loop


def max_pool_fixed_window(x, size=2, stride=2):
    return max_pool_loops(x, 2, 2)


def max_pool_is_average(x, size=2, stride=2):
    return avg_pool_loops(x, size, stride)


def max_pool_across_channels(x, size=2, stride=2):
    out = max_pool_loops(x, size, stride)
    return np.broadcast_to(out.max(axis=-1, keepdims=True), out.shape)


def avg_pool_divided_by_size(x, size=2, stride=2):
    return avg_pool_loops(x, size, stride) * size


def avg_pool_no_stride(x, size=2, stride=2):
    return avg_pool_loops(x, size, 1)


def avg_pool_sum(x, size=2, stride=2):
    return avg_pool_loops(x, size, stride) * size * size


def avg_pool_source_003(x, size=2, stride=2):
    # Diagnosis and Treatment §3.2.2: (t + 1)^2 terms divided by s * t, window moved by one pixel
    return avg_pool_loops(x, size + 1, 1) * (size + 1) ** 2 / (size * size)


def softmax_in_place(logits, axis=-1):
    logits -= np.max(logits, axis=axis, keepdims=True)   # right values; the caller's logits change
    e = np.exp(logits)
    return e / np.sum(e, axis=axis, keepdims=True)


def softmax_naive(logits, axis=-1):
    e = np.exp(logits)  # exp(1000) = inf
    return e / e.sum(axis=axis, keepdims=True)


def softmax_global_max(logits, axis=-1):
    e = np.exp(logits - np.max(logits))  # the maximum of the whole array
    return e / e.sum(axis=axis, keepdims=True)


def softmax_last_axis_only(logits, axis=-1):
    return softmax_textbook(logits, axis=-1)


def softmax_whole_array(logits, axis=-1):
    e = np.exp(logits - np.max(logits, axis=axis, keepdims=True))
    return e / e.sum()


def softmax_no_keepdims(logits, axis=-1):
    e = np.exp(logits - np.max(logits, axis=axis, keepdims=True))
    return e / e.sum(axis=axis)  # broadcasts against the wrong axis of a matrix


def _seed_layers(input_shape, n_classes, kernel=(3, 3), filters=(32, 64, 64), extra=False,
                 missing_dense=False, last="softmax", padding="valid"):
    layers = [keras.Input(shape=input_shape),
              L.Conv2D(filters[0], kernel, activation="relu", padding=padding),
              L.MaxPooling2D((2, 2)),
              L.Conv2D(filters[1], (3, 3), activation="relu", padding=padding),
              L.MaxPooling2D((2, 2)),
              L.Conv2D(filters[2], (3, 3), activation="relu", padding=padding)]
    if extra:
        layers.append(L.MaxPooling2D((2, 2)))
    layers.append(L.Flatten())
    if not missing_dense:
        layers.append(L.Dense(64, activation="relu"))
    layers.append(L.Dense(n_classes, activation=last))
    return keras.Sequential(layers)


def cnn_source_ten_classes(input_shape, n_classes):
    return _seed_layers(input_shape, 10)  # the source's Dense(10)


def cnn_extra_pooling(input_shape, n_classes):
    return _seed_layers(input_shape, n_classes, extra=True)


def cnn_missing_dense(input_shape, n_classes):
    return _seed_layers(input_shape, n_classes, missing_dense=True)


def cnn_kernel_5(input_shape, n_classes):
    return _seed_layers(input_shape, n_classes, kernel=(5, 5))


def cnn_filters_32_32_64(input_shape, n_classes):
    return _seed_layers(input_shape, n_classes, filters=(32, 32, 64))


def cnn_sigmoid_output(input_shape, n_classes):
    return _seed_layers(input_shape, n_classes, last="sigmoid")


def cnn_same_padding(input_shape, n_classes):
    return _seed_layers(input_shape, n_classes, padding="same")


def cnn_no_input(input_shape, n_classes):
    return keras.Sequential(_seed_layers(input_shape, n_classes).layers)


def cnn_fixed_input(input_shape, n_classes):
    return _seed_layers((28, 28, 1), n_classes)


def _wbce_terms(y_true, y_prob, eps=1e-7):
    y = np.asarray(y_true, dtype=float)
    p = np.clip(np.asarray(y_prob, dtype=float), eps, 1 - eps)
    return y * np.log(p), (1 - y) * np.log(1 - p)


def wbce_weight_on_negatives(y_true, y_prob, pos_weight):
    pos, neg = _wbce_terms(y_true, y_prob)
    return -np.mean(pos + pos_weight * neg)


def wbce_unweighted(y_true, y_prob, pos_weight):
    pos, neg = _wbce_terms(y_true, y_prob)
    return -np.mean(pos + neg)


def wbce_weighted_mean(y_true, y_prob, pos_weight):
    pos, neg = _wbce_terms(y_true, y_prob)
    w = np.where(np.asarray(y_true) == 1, pos_weight, 1.0)
    return -np.sum(pos_weight * pos + neg) / np.sum(w)


def wbce_both_weighted(y_true, y_prob, pos_weight):
    pos, neg = _wbce_terms(y_true, y_prob)
    return -np.mean(pos_weight * (pos + neg))


def wbce_sum(y_true, y_prob, pos_weight):
    pos, neg = _wbce_terms(y_true, y_prob)
    return -np.sum(pos_weight * pos + neg)


def wbce_missing_brackets(y_true, y_prob, pos_weight):
    """Erratum E14 carried over: the minus sign reaches the first term only."""
    pos, neg = _wbce_terms(y_true, y_prob)
    return -np.mean(pos_weight * pos) + np.mean(neg)


def wbce_not_clipped(y_true, y_prob, pos_weight):
    y, p = np.asarray(y_true, dtype=float), np.asarray(y_prob, dtype=float)
    return -np.mean(pos_weight * y * np.log(p) + (1 - y) * np.log(1 - p))


def wbce_per_example(y_true, y_prob, pos_weight):
    pos, neg = _wbce_terms(y_true, y_prob)
    return -(pos_weight * pos + neg)


def temperature_inverted(logits_val, y_val):
    """Multiplies the logits by T instead of dividing."""
    temps = np.exp(np.linspace(np.log(0.05), np.log(20.0), 3000))
    return float(temps[np.argmin([_log_loss_at(np.asarray(logits_val) * t * t, y_val, t)
                                  for t in temps])])


def temperature_only_softens(logits_val, y_val):
    """Searches T >= 1 only."""
    temps = np.linspace(1.0, 10.0, 2000)
    return float(temps[np.argmin([_log_loss_at(logits_val, y_val, t) for t in temps])])


def temperature_by_accuracy(logits_val, y_val):
    """Picks T by accuracy, which no temperature changes: the first T of the grid wins."""
    temps = np.linspace(1.0, 10.0, 100)
    acc = [np.mean((np.asarray(logits_val) / t > 0) == y_val) for t in temps]
    return float(temps[int(np.argmax(acc))])


_TEST_LOGITS = np.random.default_rng(99).normal(0.0, 6.0, 400)
_TEST_LABELS = (np.random.default_rng(98).random(400) < 0.5).astype(int)


def temperature_fitted_on_test(logits_val, y_val):
    """Fits T on the notebook's test split (globals), not on the data passed in."""
    return temperature_grid(_TEST_LOGITS, _TEST_LABELS)


def temperature_coarse(logits_val, y_val):
    """A grid of whole numbers only."""
    temps = np.arange(1.0, 11.0)
    return float(temps[np.argmin([_log_loss_at(logits_val, y_val, t) for t in temps])])


CONV_BATCH = "a batch of 2 images 7x7x3, 3x3 kernels to 4 channels, bias, valid"
CONV_SINGLE = "one 6x6 grey image, a 3x3 kernel, valid"
CONV_STRIDE = "stride 2, a 9x8x2 image, 3x3 kernels to 3 channels, bias, valid"
CONV_SAME_STRIDE = "same padding, stride 2, an 8x9x2 image, 3x3 kernels to 2 channels, bias"
CONV_EVEN = "same padding, an even 2x4 kernel, a 5x7x1 image"
POOL_HAND = "a 4x4 image with 1 channel, size 2, stride 2"
POOL_OVERLAP = "overlapping windows: size 3, stride 2, a batch of 2 images 7x7x1"
POOL_BATCH = "a batch of 2 images 6x6x3, size 2, stride 2"
SOFTMAX_LARGE = "logits of +-1000"
SOFTMAX_AXIS0 = "axis=0 on a 3x4 matrix (each column sums to 1)"
SOFTMAX_BATCH = "a batch of 4 rows of 5 logits, axis=-1"
CNN_XRAY = "28x28 grey chest X-rays, 2 classes"
CNN_COLOUR = "32x32 colour images, 5 classes"
WBCE_3 = "4 examples, pos_weight 3"
T_OVER = "over-confident: 300 logits three times too large"
T_UNDER = "under-confident: 300 logits half as large as they should be"
WBCE_WRONG = "sure and wrong: p = 0 for a positive, p = 1 for a negative"

WRONG = [  # checker, wrong answer, the case it fails on, a fragment of the hint
    (check_conv2d, conv2d_true_convolution, CONV_SINGLE, "true convolution"),
    (check_conv2d, conv2d_same_split_before, CONV_SAME_STRIDE, "split the wrong way"),
    (check_conv2d, conv2d_same_symmetric, CONV_SAME_STRIDE, "SAME padding"),
    (check_conv2d, conv2d_bias_per_pixel, CONV_BATCH, "once per kernel entry"),
    (check_conv2d, conv2d_bias_per_row, CONV_BATCH, "b[o]"),
    (check_conv2d, conv2d_no_stride, CONV_STRIDE, "move by `stride`"),
    (check_conv2d, conv2d_always_batch, CONV_SINGLE, "drop the batch axis"),
    (check_max_pool2d, max_pool_no_stride, POOL_HAND, "without a stride"),
    (check_max_pool2d, max_pool_from_zero, POOL_HAND, "not from 0"),
    (check_max_pool2d, max_pool_fixed_window, POOL_OVERLAP, "maximum of x[i*stride + k"),
    (check_max_pool2d, max_pool_is_average, POOL_HAND, "average pooling"),
    (check_max_pool2d, max_pool_across_channels, POOL_BATCH, "across channels"),
    (check_avg_pool2d, avg_pool_divided_by_size, POOL_HAND, "size**2 values"),
    (check_avg_pool2d, avg_pool_no_stride, POOL_HAND, "without a stride"),
    (check_avg_pool2d, avg_pool_sum, POOL_HAND, "the sum of each window"),
    (check_avg_pool2d, avg_pool_source_003, POOL_HAND, "Diagnosis and Treatment"),
    (check_avg_pool2d, max_pool_loops, POOL_HAND, "max pooling"),
    (check_softmax, softmax_naive, SOFTMAX_LARGE, "exp(1000) overflows"),
    (check_softmax, softmax_in_place, "a vector of 3 logits", "logits changed in place"),
    (check_softmax, softmax_global_max, SOFTMAX_LARGE, "maximum of the whole array"),
    (check_softmax, softmax_last_axis_only, SOFTMAX_AXIS0, "wrong axis"),
    (check_softmax, softmax_whole_array, SOFTMAX_BATCH, "whole array"),
    (check_softmax, softmax_no_keepdims, SOFTMAX_BATCH, "keepdims=True"),
    (check_build_cnn, cnn_source_ten_classes, CNN_XRAY, "ten digits of MNIST"),
    (check_build_cnn, cnn_extra_pooling, CNN_XRAY, "extra layer"),
    (check_build_cnn, cnn_missing_dense, CNN_XRAY, "a layer is missing"),
    (check_build_cnn, cnn_kernel_5, CNN_XRAY, "kernel_size=(5, 5)"),
    (check_build_cnn, cnn_filters_32_32_64, CNN_XRAY, "filters=32"),
    (check_build_cnn, cnn_sigmoid_output, CNN_XRAY, "activation='sigmoid'"),
    (check_build_cnn, cnn_same_padding, CNN_XRAY, "padding='same'"),
    (check_build_cnn, cnn_no_input, CNN_XRAY, "declare the input first"),
    (check_build_cnn, cnn_fixed_input, CNN_COLOUR, "the argument input_shape"),
    (check_weighted_binary_cross_entropy, wbce_weight_on_negatives, WBCE_3, "*positive*"),
    (check_weighted_binary_cross_entropy, wbce_unweighted, WBCE_3, "not used"),
    (check_weighted_binary_cross_entropy, wbce_weighted_mean, WBCE_3, "total weight"),
    (check_weighted_binary_cross_entropy, wbce_both_weighted, WBCE_3, "only rescales"),
    (check_weighted_binary_cross_entropy, wbce_sum, "4 examples, pos_weight 1 (plain binary "
     "cross-entropy)", "instead of taking the mean"),
    (check_weighted_binary_cross_entropy, wbce_missing_brackets, "4 examples, pos_weight 1 "
     "(plain binary cross-entropy)", "E14"),
    (check_weighted_binary_cross_entropy, wbce_not_clipped, WBCE_WRONG, "clip"),
    (check_weighted_binary_cross_entropy, wbce_per_example, "4 examples, pos_weight 1 (plain "
     "binary cross-entropy)", "one number"),
    (check_temperature_scale, temperature_inverted, T_OVER, "this is 1 / T"),
    (check_temperature_scale, temperature_only_softens, T_UNDER, "below 1"),
    (check_temperature_scale, temperature_by_accuracy, T_OVER, "not by accuracy"),
    (check_temperature_scale, temperature_fitted_on_test, T_OVER, "not on the test split"),
    (check_temperature_scale, temperature_coarse, T_OVER, "fine enough"),
]


# the fragments are plain text
test_checker_rejects_realistic_mistake = rejects_mistakes(
    [(checker, wrong, case, re.escape(fragment)) for checker, wrong, case, fragment in WRONG])
test_every_chapter_3_exercise_has_at_least_three_wrong_versions = has_wrong_versions(
    CHAPTER_3, WRONG)
test_build_cnn_hints_point_at_the_idea = hints_without_layer_code(
    [row for row in WRONG if row[0] is check_build_cnn])


def test_strict_adds_cases_the_visible_checks_do_not_have():
    """A conv2d that only handles what the visible cases show (here: kernels up to 4x4)
    passes them and fails a strict case; the strict cases are of the same kinds."""
    def conv2d_small_kernels_only(x, w, b=None, stride=1, padding="valid"):
        if max(w.shape[:2]) > 4:
            return np.zeros(1)
        return conv2d_loops(x, w, b, stride, padding)

    check_conv2d(conv2d_small_kernels_only)
    with pytest.raises(AssertionError, match=r"^conv2d: failed on case 'a batch of 3"):
        check_conv2d(conv2d_small_kernels_only, strict=True)


# --- own work, fallback ----------------------------------------------------------------------

CHEAT = """
    from medai_lessons.nn.conv import conv2d as _reference

    def conv2d(x, w, b=None, stride=1, padding="valid"):
        return _reference(x, w, b, stride, padding)
"""
CHEAT_BUILD = """
    from medai_lessons import models

    def build_cnn(input_shape, n_classes):
        return models.build_cnn(input_shape, n_classes)
"""


CHEAT_WBCE = """
    from medai_lessons.nn import weighted_binary_cross_entropy as wbce

    def weighted_binary_cross_entropy(y_true, y_prob, pos_weight):
        return wbce(y_true, y_prob, pos_weight)
"""


@pytest.mark.parametrize(("source", "name"), [(CHEAT, "conv2d"), (CHEAT_BUILD, "build_cnn"),
                                              (CHEAT_WBCE, "weighted_binary_cross_entropy")])
def test_own_implementation_rejects_the_reference(source, name):
    learner = notebook(source)[name]
    EXERCISES[name][0](learner)  # right values ...
    with pytest.raises(AssertionError, match=rf"^{name}: failed on case 'own implementation'"):
        assert_own_implementation(learner, name)  # ... but not the learner's own


@pytest.mark.parametrize(("name", "answer"),
                         [("conv2d", conv2d_loops), ("max_pool2d", max_pool_loops),
                          ("avg_pool2d", avg_pool_loops), ("softmax", softmax_textbook)])
def test_own_implementation_accepts_honest_numpy(name, answer):
    assert assert_own_implementation(answer, name) is None


def test_own_implementation_accepts_an_honest_keras_model():
    learner = notebook("""
        import keras

        def build_cnn(input_shape, n_classes):
            return keras.Sequential([
                keras.Input(shape=input_shape),
                keras.layers.Conv2D(32, (3, 3), activation="relu"),
                keras.layers.MaxPooling2D((2, 2)),
                keras.layers.Conv2D(64, (3, 3), activation="relu"),
                keras.layers.MaxPooling2D((2, 2)),
                keras.layers.Conv2D(64, (3, 3), activation="relu"),
                keras.layers.Flatten(),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(n_classes, activation="softmax"),
            ])
    """)["build_cnn"]
    check_build_cnn(learner, strict=True)
    assert assert_own_implementation(learner, "build_cnn") is None


def test_learner_or_reference_falls_back_with_the_case_named(capsys):
    assert learner_or_reference("conv2d", {"conv2d": conv2d_true_convolution}) is ref.conv2d
    out = capsys.readouterr().out
    assert f"Your conv2d does not pass its check yet (conv2d: failed on case '{CONV_SINGLE}" in out
    assert learner_or_reference("softmax", {"softmax": softmax_textbook}) is softmax_textbook


def test_fresh_checks_replace_a_checker_that_an_answer_assigned_into_the_package():
    """An answer cell that assigns a lenient checker into the package, the chapter module and
    the reference gains nothing: the hidden tests' fresh reload brings all three back (in a
    subprocess: reloading changes modules for the rest of a session)."""
    code = textwrap.dedent("""
        import importlib, sys
        import numpy as np
        import medai_lessons.grading as g, medai_lessons.grading.ch03 as c3
        import medai_lessons.nn.conv as c
        lenient = lambda *a, **k: None
        g.check_conv2d = c3.check_conv2d = c.conv2d = lenient
        import medai_lessons.grading.fresh as fresh
        _g = importlib.reload(fresh).grading()
        fresh_ch03 = sys.modules["medai_lessons.grading.ch03"]
        flipped = lambda x, w, b=None, stride=1, padding="valid": c.true_convolution(
            x, w, b, stride, padding)
        try:
            _g.check_conv2d(flipped)
            rejected = False
        except AssertionError:
            rejected = True
        print(_g.check_conv2d is fresh_ch03.check_conv2d is not lenient,
              _g.EXERCISES["conv2d"][1] is c.conv2d is not lenient, rejected)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "True", "True"], out
