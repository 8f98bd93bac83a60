"""Checkers for chapter 3: convolution, pooling, softmax and the CNN of AI in Medicine §4.1.

The expected values come from TensorFlow itself (``tf.nn.conv2d``, ``tf.nn.max_pool2d``,
``tf.nn.avg_pool2d``, ``tf.nn.softmax``) on seeded random inputs in float64. Tolerance
``rtol=1e-5, atol=1e-6``: loose enough for an answer computed in float32, far tighter than any
of the usual mistakes. When a wrong answer reproduces a known mistake (the flipped kernel of
true convolution, SAME padding split the wrong way, a bias added once per pixel, a window that
does not move by ``stride``, a softmax over the wrong axis, ...) the hint names it.

The model checker reads the structure of the learner's Keras model: layer types in order,
filters, kernel and pool sizes, activations, padding, ``layer.output.shape`` of every layer and
``model.outputs[0].shape`` (Keras 3 has no ``output_shape``), then the probabilities it
returns.

``strict=True`` adds more seeds and sizes of the same kinds.
"""

from __future__ import annotations

import numpy as np

from medai_lessons import metrics as ref_metrics
from medai_lessons import models as ref_models
from medai_lessons.grading.core import (
    SAMPLE_ARGS,
    as_array,
    assert_class_probabilities,
    assert_close,
    built_model,
    call,
    case_rng,
    fail,
    keras_shape,
)
from medai_lessons.nn import conv as ref
from medai_lessons.nn import losses as ref_losses

RTOL, ATOL = 1e-5, 1e-6


def _tf():
    import tensorflow as tf

    return tf


def _known_mistake(got: np.ndarray, variants: dict, hints: dict) -> str:
    """The hint of the first known mistake whose result ``got`` reproduces."""
    for name, value in variants.items():
        value = np.asarray(value, dtype=np.float64)
        if got.shape == value.shape and np.allclose(got, value, rtol=RTOL, atol=ATOL):
            return hints[name]
    return ""


def _compare(got, expected, exercise: str, case: str, inputs: str, variants: dict,
             hints: dict, default_hint: str, shape_hints: dict | None = None) -> None:
    """Shape first (with a hint for the shapes known mistakes produce), then values."""
    arr = as_array(got, exercise, case)
    expected = np.asarray(expected, dtype=np.float64)
    if arr.shape != expected.shape:
        hint = (shape_hints or {}).get(arr.shape, "")
        fail(exercise, case, inputs=inputs, expected=f"shape {expected.shape}",
             got=f"shape {arr.shape}", hint=hint or default_hint)
    hint = _known_mistake(arr, variants, hints)
    assert_close(arr, expected, exercise=exercise, case=case, inputs=inputs, rtol=RTOL,
                 atol=ATOL, hint=hint or default_hint)


# --- conv2d ----------------------------------------------------------------------------------

_CONV_FORMULA = ("y[i, j, o] = sum over k, l, c of x[i*stride + k, j*stride + l, c] * "
                 "w[k, l, c, o], plus b[o]: slide the kernel (not flipped) over the image.")
_CONV_HINTS = {
    "true_convolution": "this is true convolution, with the kernel flipped (erratum E2). "
                        "tf.nn.conv2d computes cross-correlation: use w[k, l] as it is, "
                        "without w[::-1, ::-1].",
    "same_split_before": "SAME padding is split the wrong way: when the total padding is odd "
                         "TensorFlow puts the smaller half on top/left and the extra row or "
                         "column at the bottom/right (pad_top = total // 2).",
    "same_symmetric": "SAME padding must make the output ceil(H / stride) long: pad "
                      "total = max((out - 1) * stride + kh - H, 0), pad_top = total // 2, "
                      "pad_bottom = total - pad_top (not (kh - 1) // 2 on each side).",
    "bias_per_pixel": "the bias was added once per kernel entry (kh * kw * C_in times): add "
                      "b[o] once to each output value, after the sum (erratum E2).",
    "no_bias": "the bias b is missing: add b[o] to output channel o (when b is not None).",
    "kernel_transposed": "the kernel's rows and columns are swapped: w[k, l] multiplies "
                         "x[i + k, j + l] (k along rows, l along columns).",
}


def _conv_cases(strict: bool):
    """(case name, seed, x shape, kernel (kh, kw), C_out, bias, stride, padding)."""
    cases = [
        ("one 6x6 grey image, a 3x3 kernel, valid", 0, (6, 6, 1), (3, 3), 1, False, 1,
         "valid"),
        ("a batch of 2 images 7x7x3, 3x3 kernels to 4 channels, bias, valid", 1, (2, 7, 7, 3),
         (3, 3), 4, True, 1, "valid"),
        ("stride 2, a 9x8x2 image, 3x3 kernels to 3 channels, bias, valid", 2, (9, 8, 2),
         (3, 3), 3, True, 2, "valid"),
        ("same padding, odd sizes: a batch of 2 images 7x9x1, 3x3 kernels to 2 channels", 3,
         (2, 7, 9, 1), (3, 3), 2, False, 1, "same"),
        ("same padding, stride 2, an 8x9x2 image, 3x3 kernels to 2 channels, bias", 4,
         (8, 9, 2), (3, 3), 2, True, 2, "same"),
        ("same padding, an even 2x4 kernel, a 5x7x1 image", 5, (5, 7, 1), (2, 4), 1, False, 1,
         "same"),
    ]
    if strict:
        cases += [
            ("a batch of 3 images 10x10x2, 5x5 kernels to 4 channels, bias, same", 6,
             (3, 10, 10, 2), (5, 5), 4, True, 1, "same"),
            ("same padding, stride 3, a 11x10x1 image, a 4x4 kernel", 7, (11, 10, 1), (4, 4), 1,
             False, 3, "same"),
            ("a 1x1 kernel, a batch of 2 images 4x5x3, bias, valid", 8, (2, 4, 5, 3), (1, 1), 2,
             True, 1, "valid"),
            ("a kernel as large as the image, 5x5x2, valid", 9, (5, 5, 2), (5, 5), 3, True, 1,
             "valid"),
            ("stride 3, a batch of 2 images 13x11x1, a 3x2 kernel, valid", 10, (2, 13, 11, 1),
             (3, 2), 2, True, 3, "valid"),
        ]
    return cases


def _conv_variants(x, w, b, stride, padding) -> dict:
    xb = x if x.ndim == 4 else x[None]
    kh, kw, c_in = w.shape[:3]
    variants = {"true_convolution": ref.true_convolution(x, w, b, stride, padding),
                "kernel_transposed": ref.conv2d(x, w.transpose(1, 0, 2, 3), b, stride, padding)
                if kh == kw else np.full(1, np.nan)}
    if b is not None:
        variants["bias_per_pixel"] = ref.conv2d(x, w, b * kh * kw * c_in, stride, padding)
        variants["no_bias"] = ref.conv2d(x, w, None, stride, padding)
    if padding == "same":
        pads = []
        for size, k in ((xb.shape[1], kh), (xb.shape[2], kw)):
            before, after = ref.same_padding(size, k, stride)
            pads.append((after, before))
        flipped = np.pad(xb, ((0, 0), *pads, (0, 0)))
        out = ref.conv2d(flipped, w, b, stride, "valid")
        variants["same_split_before"] = out if x.ndim == 4 else out[0]
        sym = np.pad(xb, ((0, 0), ((kh - 1) // 2,) * 2, ((kw - 1) // 2,) * 2, (0, 0)))
        out = ref.conv2d(sym, w, b, stride, "valid")
        variants["same_symmetric"] = out if x.ndim == 4 else out[0]
    return variants


def _conv_shape_hints(x, w, stride, padding) -> dict:
    """Shapes that the usual mistakes produce -> hint."""
    hints = {}
    if stride > 1:
        hints[ref.conv2d(x, w, None, 1, padding).shape] = (
            "the window must move by `stride` pixels: keep every stride-th position.")
    other = "valid" if padding == "same" else "same"
    hints.setdefault(ref.conv2d(x, w, None, stride, other).shape,
                     f"this is the shape of padding='{other}': the case asks for "
                     f"padding='{padding}'.")
    if x.ndim == 3:
        hints.setdefault(ref.conv2d(x[None], w, None, stride, padding).shape,
                         "one image (H, W, C) in, one image (H_out, W_out, C_out) out: drop "
                         "the batch axis you added.")
    return hints


def check_conv2d(conv2d, strict: bool = False) -> None:
    """``conv2d(x, w, b=None, stride=1, padding="valid")`` equals ``tf.nn.conv2d(x, w,
    stride, padding.upper()) + b``: cross-correlation, NHWC layout, one image ``(H, W, C_in)``
    or a batch ``(N, H, W, C_in)`` in and the same rank out, TensorFlow's SAME padding."""
    tf = _tf()
    exercise = "conv2d"
    for case, seed, x_shape, (kh, kw), c_out, bias, stride, padding in _conv_cases(strict):
        rng = case_rng(300 + seed)
        x = rng.normal(0.0, 1.0, size=x_shape)
        w = rng.normal(0.0, 1.0, size=(kh, kw, x_shape[-1], c_out))
        b = rng.normal(0.0, 1.0, size=c_out) if bias else None
        xb = x if x.ndim == 4 else x[None]
        expected = tf.nn.conv2d(xb, w, stride, padding.upper()).numpy()
        if b is not None:
            expected = expected + b
        if x.ndim == 3:
            expected = expected[0]
        kwargs = {"stride": stride, "padding": padding}
        got = call(conv2d, x.copy(), w.copy(), None if b is None else b.copy(),
                   exercise=exercise, case=case, **kwargs,
                   hint="x is (H, W, C_in) or (N, H, W, C_in), w is (kh, kw, C_in, C_out), "
                        "b is (C_out,) or None.")
        inputs = (f"x {x.shape}, w {w.shape}, b {'None' if b is None else b.shape}, "
                  f"stride={stride}, padding='{padding}'")
        _compare(got, expected, exercise, case, inputs, _conv_variants(x, w, b, stride, padding),
                 _CONV_HINTS, _CONV_FORMULA, _conv_shape_hints(x, w, stride, padding))
    if strict:
        x = case_rng(320).normal(size=(6, 7, 2)).astype(np.float32)
        w = case_rng(321).normal(size=(3, 3, 2, 2)).astype(np.float32)
        got = call(conv2d, x, w, exercise=exercise, case="float32 input, b left out")
        expected = tf.nn.conv2d(x[None].astype(np.float64), w.astype(np.float64), 1,
                                "VALID").numpy()[0]
        _compare(got, expected, exercise, "float32 input, b left out", "x (6, 7, 2) float32",
                 {}, {}, _CONV_FORMULA)


# --- pooling ---------------------------------------------------------------------------------


def _pool_cases(strict: bool):
    """(case name, x, size, stride)."""
    rng = case_rng(330)
    hand = np.array([[1.0, 3.0, 2.0, 0.0], [4.0, -1.0, 5.0, 1.0], [0.0, 2.0, -3.0, -2.0],
                     [1.0, 1.0, -4.0, -1.0]])[:, :, None]
    cases = [
        ("a 4x4 image with 1 channel, size 2, stride 2", hand, 2, 2),
        ("a batch of 2 images 6x6x3, size 2, stride 2", rng.normal(size=(2, 6, 6, 3)), 2, 2),
        ("all values negative, a 4x6x2 image, size 2, stride 2",
         -np.abs(rng.normal(size=(4, 6, 2))) - 0.5, 2, 2),
        ("odd sizes 7x5x2 (the last row and column are left out), size 2, stride 2",
         rng.normal(size=(7, 5, 2)), 2, 2),
        ("overlapping windows: size 3, stride 2, a batch of 2 images 7x7x1",
         rng.normal(size=(2, 7, 7, 1)), 3, 2),
        ("size 2, stride 1, a 5x6x2 image", rng.normal(size=(5, 6, 2)), 2, 1),
    ]
    if strict:
        cases += [
            ("size 3, stride 3, a batch of 3 images 9x9x2", rng.normal(size=(3, 9, 9, 2)), 3, 3),
            ("size 4, stride 2, a 10x11x1 image", rng.normal(size=(10, 11, 1)), 4, 2),
            ("size 1, stride 1 (the identity), a 3x4x2 image", rng.normal(size=(3, 4, 2)), 1, 1),
            ("a large batch of 16 images 28x28x4, size 2, stride 2",
             rng.normal(size=(16, 28, 28, 4)), 2, 2),
        ]
    return cases


def _pool_variants(x, size, stride, kind: str) -> dict:
    own = ref.max_pool2d if kind == "max" else ref.avg_pool2d
    other = ref.avg_pool2d if kind == "max" else ref.max_pool2d
    right = own(x, size, stride)
    variants = {"other_kind": other(x, size, stride)}
    if kind == "max":
        variants["zero_start"] = np.maximum(right, 0.0)
    else:
        variants["divided_by_size"] = right * size
        variants["sum"] = right * size * size
        h, w = x.shape[-3:-1]
        if size + 1 <= min(h, w):  # (t + 1)^2 values over s * t, moved by one pixel
            variants["source_003"] = ref.avg_pool2d(x, size + 1, 1) * (size + 1) ** 2 / size**2
    if stride != size:
        variants["stride_is_size"] = own(x, size, size)
    across = right.max(axis=-1, keepdims=True) if kind == "max" else right.mean(axis=-1,
                                                                                keepdims=True)
    variants["over_channels"] = np.broadcast_to(across, right.shape)
    return variants


_POOL_HINTS = {
    "max": {
        "other_kind": "this is average pooling: take the maximum of each window.",
        "zero_start": "negative windows came out as 0: start each window's maximum from its "
                      "first value (or use .max()), not from 0.",
        "stride_is_size": "the window moves by `size`, not by `stride`: the i-th output row "
                          "starts at input row i * stride.",
        "over_channels": "the maximum was taken across channels too: pool each channel on "
                         "its own (reduce over the window's two spatial axes only).",
    },
    "avg": {
        "other_kind": "this is max pooling: take the mean of each window.",
        "divided_by_size": "divided by size instead of size * size: a size x size window holds "
                           "size**2 values.",
        "sum": "this is the sum of each window: divide by the size**2 values it holds.",
        "source_003": "this is Diagnosis and Treatment §3.2.2's formula (errata E3 and E25): "
                      "(t + 1)**2 values divided by s * t, the window moved one pixel at a time. "
                      "Average the size x size window (size**2 values) and move it by `stride`.",
        "stride_is_size": "the window moves by `size`, not by `stride`: the i-th output row "
                          "starts at input row i * stride.",
        "over_channels": "the mean was taken across channels too: pool each channel on its "
                         "own (reduce over the window's two spatial axes only).",
    },
}


def _check_pool(func, kind: str, strict: bool) -> None:
    tf = _tf()
    exercise = f"{kind}_pool2d"
    op = tf.nn.max_pool2d if kind == "max" else tf.nn.avg_pool2d
    word = "maximum" if kind == "max" else "mean"
    formula = (f"y[i, j, c] = the {word} of x[i*stride + k, j*stride + l, c] over "
               "0 <= k, l < size (erratum E3): per channel, no padding, output "
               "floor((H - size) / stride) + 1 rows.")
    for case, x, size, stride in _pool_cases(strict):
        xb = x if x.ndim == 4 else x[None]
        expected = op(xb, size, stride, "VALID").numpy()
        expected = expected if x.ndim == 4 else expected[0]
        got = call(func, x.copy(), size, stride, exercise=exercise, case=case,
                   hint="x is (H, W, C) or (N, H, W, C); size and stride are integers.")
        single = x.ndim == 3
        shape_hints = {
            ref.max_pool2d(x, size, 1).shape: "the window must move by `stride` pixels "
                                              "(pooling without a stride barely shrinks the "
                                              "image: erratum E3).",
            ref.max_pool2d(x, 2, 2).shape: "use the `size` and `stride` arguments, not a fixed "
                                           "2x2 window.",
            (*x.shape[:-3], -(-x.shape[-3] // stride), -(-x.shape[-2] // stride), x.shape[-1]):
                "partial windows at the border are left out (VALID): "
                "floor((H - size) / stride) + 1 rows.",
        }
        if single:
            shape_hints[(1, *expected.shape)] = ("one image (H, W, C) in, one image out: drop "
                                                 "the batch axis you added.")
        shape_hints.pop(expected.shape, None)
        _compare(got, expected, exercise, case,
                 f"x {x.shape}, size={size}, stride={stride}",
                 _pool_variants(x, size, stride, kind), _POOL_HINTS[kind], formula, shape_hints)


def check_max_pool2d(max_pool2d, strict: bool = False) -> None:
    """``max_pool2d(x, size=2, stride=2)`` equals ``tf.nn.max_pool2d(x, size, stride,
    "VALID")``: the maximum of each ``size x size`` window, moved by ``stride``, per
    channel; one image ``(H, W, C)`` or a batch ``(N, H, W, C)``."""
    _check_pool(max_pool2d, "max", strict)


def check_avg_pool2d(avg_pool2d, strict: bool = False) -> None:
    """``avg_pool2d(x, size=2, stride=2)`` equals ``tf.nn.avg_pool2d(x, size, stride,
    "VALID")``: the mean of each ``size x size`` window (``size**2`` values), moved by
    ``stride``, per channel."""
    _check_pool(avg_pool2d, "avg", strict)


# --- softmax ---------------------------------------------------------------------------------

_SOFTMAX_HINTS = {
    "wrong_axis": "normalised along the wrong axis: every slice along `axis` must sum to 1 "
                  "(np.sum(e, axis=axis, keepdims=True)).",
    "whole_array": "normalised over the whole array: divide by the sum along `axis` only "
                   "(keepdims=True), so that each row (slice) sums to 1.",
}


def _softmax_cases(strict: bool):
    """(case name, logits, axis)."""
    rng = case_rng(340)
    cases = [
        ("a vector of 3 logits", np.array([2.0, 1.0, 0.1]), -1),
        ("a batch of 4 rows of 5 logits, axis=-1", rng.normal(0, 2, size=(4, 5)), -1),
        ("logits of +-1000", np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -999.0]]),
         -1),
        ("rows on very different scales", np.array([[1000.0, 999.0, 998.0],
                                                    [-1000.0, -1001.0, -1003.0]]), -1),
        ("axis=0 on a 3x4 matrix (each column sums to 1)", rng.normal(0, 2, size=(3, 4)), 0),
    ]
    if strict:
        cases += [
            ("a 3-d array (2, 3, 4), axis=1", rng.normal(0, 3, size=(2, 3, 4)), 1),
            ("a single logit", np.array([[7.0]]), -1),
            ("a batch of 200 rows of 10 logits in [-800, 800]",
             rng.uniform(-800, 800, size=(200, 10)), -1),
            ("float32 logits of +-100", np.array([[100.0, -100.0], [50.0, 60.0]],
                                                 dtype=np.float32), -1),
            ("axis=0 on logits of +-1000", np.array([[1000.0, -5.0], [-1000.0, 5.0]]), 0),
        ]
    return cases


def check_softmax(softmax, strict: bool = False) -> None:
    """``softmax(logits, axis=-1)`` equals ``tf.nn.softmax(logits, axis)``: finite for logits
    of +-1000 (subtract the maximum along ``axis`` first), each slice along ``axis`` sums to
    1, same shape as the input."""
    tf = _tf()
    exercise = "softmax"
    stable = ("subtract the maximum of each slice along axis (np.max(z, axis=axis, "
              "keepdims=True)) before np.exp: exp(1000) overflows to inf (inf / inf is nan), "
              "and the maximum of the whole array makes exp() of the other slices underflow "
              "to 0 (0 / 0 is nan).")
    for case, z, axis in _softmax_cases(strict):
        expected = tf.nn.softmax(z.astype(np.float64), axis=axis).numpy()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            got = call(softmax, z.copy(), axis=axis, exercise=exercise, case=case,
                       hint="sum with keepdims=True, so that the sums broadcast against the "
                            "logits along `axis`.")
            variants = {}
            if z.ndim > 1:
                other = 0 if axis in (-1, z.ndim - 1) else -1
                variants["wrong_axis"] = ref.softmax(z, axis=other)
                e = np.exp(z - z.max(axis=axis, keepdims=True))
                variants["whole_array"] = e / e.sum()
        hint = {"logits of +-1000": stable, "rows on very different scales":
                "subtract each slice's own maximum (keepdims=True), not the maximum of the whole "
                "array: exp(-2000) underflows to 0 and 0 / 0 is nan.",
                }.get(case, "softmax(z)_k = exp(z_k - max z) / sum_j exp(z_j - max z) along axis.")
        _compare(got, expected, exercise, case, f"logits {z.shape}, axis={axis}", variants,
                 _SOFTMAX_HINTS, hint)


# --- the CNN of AI in Medicine §4.1 ---------------------------------------------------------------


def _expected_layers(input_shape, n_classes):
    """(type name, settings, output shape) of every layer of the seed's CNN."""
    h, w, _ = input_shape
    f1, f2, f3 = ref_models.SEED_CNN_FILTERS
    rows = []
    for filters, pool in ((f1, True), (f2, True), (f3, False)):
        h, w = h - 2, w - 2
        rows.append(("Conv2D", {"filters": filters, "kernel_size": (3, 3), "strides": (1, 1),
                                "padding": "valid", "activation": "relu"}, (None, h, w, filters)))
        if pool:
            h, w = h // 2, w // 2
            rows.append(("MaxPooling2D", {"pool_size": (2, 2), "strides": (2, 2),
                                          "padding": "valid"}, (None, h, w, filters)))
    rows.append(("Flatten", {}, (None, h * w * f3)))
    rows.append(("Dense", {"units": ref_models.SEED_CNN_DENSE, "activation": "relu"},
                 (None, ref_models.SEED_CNN_DENSE)))
    rows.append(("Dense", {"units": n_classes, "activation": "softmax"}, (None, n_classes)))
    return rows


#: where the learner finds the layers: the exercise points there, the checker's hints too
_SOURCE_BOX = "the source's code in the box of section 5"


def _build_cases(strict: bool):
    cases = [("28x28 grey chest X-rays, 2 classes", (28, 28, 1), 2),
             ("32x32 colour images, 5 classes", (32, 32, 3), 5)]
    if strict:
        cases += [("64x64 grey images, 3 classes", (64, 64, 1), 3),
                  ("non-square 30x40 grey images, 2 classes", (30, 40, 1), 2)]
    return cases


def _layer_settings(layer) -> dict:
    config = layer.get_config()
    out = {}
    for key in ("filters", "kernel_size", "strides", "padding", "pool_size", "units"):
        if key in config:
            value = config[key]
            out[key] = tuple(value) if isinstance(value, list) else value
    if "activation" in config:
        act = config["activation"]
        out["activation"] = act if isinstance(act, str) else getattr(act, "__name__", str(act))
    return out


def check_build_cnn(build_cnn, strict: bool = False) -> None:
    """``build_cnn(input_shape, n_classes)`` returns a Keras model with the layers of AI in Medicine
    §4.1 in order: Conv2D(32, 3x3, relu), MaxPooling2D(2x2), Conv2D(64, 3x3, relu),
    MaxPooling2D(2x2), Conv2D(64, 3x3, relu), Flatten, Dense(64, relu), Dense(n_classes,
    softmax); valid padding; input ``(None, *input_shape)``, output ``(None, n_classes)``.
    Checked by layer types, settings, ``layer.output.shape`` and ``model.outputs[0].shape``.
    A failure names the layer and the property that differ (type, a setting with the layer's
    parameter count, output shape, input shape) and the hint points at the idea; it does not
    spell out the layers' code, which the source's box in the exercise shows."""
    import keras

    exercise = "build_cnn"
    for case, input_shape, n_classes in _build_cases(strict):
        model, in_shape, out_shape = built_model(
            build_cnn, input_shape, n_classes, exercise=exercise, case=case,
            hint="building the model raised an error: read its last line; the layers, their "
                 f"settings and their order are those of {_SOURCE_BOX}, with the input shape "
                 "and the number of classes taken from the arguments.",
            input_hint="the model does not know the shape of its input, so no layer knows its "
                       "output shape: declare the input first (keras.Input), with the shape "
                       "given as the argument.")
        if in_shape != (None, *input_shape):
            fail(exercise, case, expected=f"input shape {(None, *input_shape)}", got=in_shape,
                 hint="the input shape is the argument input_shape, not a fixed size: the "
                      "checker builds the model for other images too (E26).")
        layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        expected = _expected_layers(input_shape, n_classes)
        got_types = [type(layer).__name__ for layer in layers]
        want_types = [row[0] for row in expected]
        if got_types != want_types:
            pairs = zip(got_types, want_types, strict=False)      # the first layer that differs
            first = next((i for i, (a, b) in enumerate(pairs) if a != b),
                         min(len(got_types), len(want_types)))
            want_at = want_types[first] if first < len(want_types) else "no layer"
            got_at = got_types[first] if first < len(got_types) else "no layer"
            if len(got_types) > len(want_types):
                hint = "there is an extra layer"
            elif len(got_types) < len(want_types):
                hint = "a layer is missing"
            else:
                hint = "the layers are not in the source's order"
            fail(exercise, case, expected=f"{len(want_types)} layers; layer {first + 1}: {want_at}",
                 got=f"{len(got_types)} layers; layer {first + 1}: {got_at}",
                 hint=f"{hint}: go through {_SOURCE_BOX} one layer at a time beside yours "
                      "(model.summary() lists yours).")
        for i, (layer, (kind, settings, shape)) in enumerate(zip(layers, expected, strict=True)):
            have = _layer_settings(layer)
            last = i == len(layers) - 1
            for key, want in settings.items():
                if have.get(key) == want:
                    continue
                if key == "units" and last:
                    fail(exercise, case, expected=f"the last layer with {want} units",
                         got=f"{have.get(key)} units",
                         hint="one output per class, and the number of classes is an argument: "
                              "the source's 10 outputs belong to the ten digits of MNIST, not "
                              "to this task (E26).")
                if key == "activation" and last:
                    hint = ("the last layer's activation turns its outputs into class "
                            "probabilities that sum to 1 over the classes, as in the source's "
                            "code; a sigmoid gives each class a probability of its own, and "
                            "those need not sum to 1.")
                elif key in ("padding", "strides"):
                    hint = ("the source leaves padding and strides at their defaults; with them "
                            "each 3x3 convolution trims one pixel from every border (compare "
                            "the output shapes with the table of the exercise).")
                else:
                    hint = (f"compare layer {i + 1}'s {key} with {_SOURCE_BOX}; the table of "
                            "the exercise gives each layer's parameters, which follow from it.")
                fail(exercise, case, expected=f"layer {i + 1} ({kind}) with {key}={want!r}",
                     got=f"{key}={have.get(key)!r} ({layer.count_params():,} parameters)",
                     hint=hint)
            got_shape = keras_shape(layer.output)
            if got_shape != shape:
                fail(exercise, case, expected=f"layer {i + 1} ({kind}) output {shape}",
                     got=f"{got_shape}", hint="with 3x3 kernels and no padding each convolution "
                                              "takes 2 rows and 2 columns; each 2x2 pooling "
                                              "halves the size (rounding down).")
        if out_shape != (None, n_classes):
            fail(exercise, case, expected=f"model output (None, {n_classes})", got=out_shape,
                 hint="one probability per class: the output shape follows the argument "
                      "n_classes.")
        x = case_rng(sum(input_shape)).random((3, *input_shape)).astype("float32")
        assert_class_probabilities(model, x, exercise=exercise, case=case, what="image")


# --- the class-weighted loss ------------------------------------------------------------------

_WBCE_FORMULA = ("-(1/n) * sum over examples of [pos_weight * y * log(p) + (1 - y) * "
                 "log(1 - p)]: one number, the mean over all n examples.")
_WBCE_HINTS = {
    "weight_on_negatives": "pos_weight multiplies the wrong term: it weighs the *positive* "
                           "examples (y = 1, pneumonia), pos_weight * y * log(p), and leaves "
                           "the negatives' (1 - y) * log(1 - p) as it is.",
    "unweighted": "pos_weight is not used: this is plain binary cross-entropy. Multiply the "
                  "positives' term y * log(p) by pos_weight.",
    "weighted_mean": "divided by the total weight (sum of the weights) instead of n: the "
                     "exercise asks for the mean over all n examples, as Keras computes it.",
    "both_weighted": "pos_weight multiplies both terms, which only rescales the loss: weigh "
                     "the positives' term y * log(p) alone.",
    "inverted_weight": "the weight is inverted: pos_weight (not 1 / pos_weight) multiplies the "
                       "positives' term.",
    "missing_brackets": "the minus sign (or the mean) reaches only the first term, the bug of "
                        "erratum E14: -(1/n) * sum of [pos_weight * y * log(p) + "
                        "(1 - y) * log(1 - p)], with the brackets around both terms.",
}


def _wbce_variants(y, p, w) -> dict:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    pos, neg = y * np.log(p), (1 - y) * np.log(1 - p)
    weights = np.where(y == 1, w, 1.0)
    return {"weight_on_negatives": -np.mean(pos + w * neg),
            "unweighted": -np.mean(pos + neg),
            "weighted_mean": -np.sum(w * pos + neg) / np.sum(weights),
            "both_weighted": -np.mean(w * (pos + neg)),
            "inverted_weight": -np.mean(pos / w + neg),
            "missing_brackets": -np.mean(w * pos) + np.mean(neg)}


def _wbce_cases(strict: bool):
    """(case name, y_true, y_prob, pos_weight)."""
    y4, p4 = np.array([1.0, 0.0, 1.0, 0.0]), np.array([0.9, 0.2, 0.6, 0.4])
    rng = case_rng(350)
    y50 = (rng.random(50) < 0.8).astype(np.int64)
    p50 = np.clip(rng.beta(2, 2, 50) * 0.9 + 0.1 * y50, 0.01, 0.99)
    cases = [
        ("4 examples, pos_weight 1 (plain binary cross-entropy)", y4, p4, 1.0),
        ("4 examples, pos_weight 3", y4, p4, 3.0),
        ("50 examples (80 % positive, integer labels), pos_weight 0.25 = n_neg / n_pos",
         y50, p50, 0.25),
    ]
    if strict:
        rng = case_rng(351)
        y200 = (rng.random(200) < 0.3).astype(np.float64)
        cases += [
            ("200 examples (30 % positive), pos_weight 2.33", y200,
             np.clip(rng.random(200), 0.005, 0.995), 2.33),
            ("one positive example, pos_weight 5", np.array([1.0]), np.array([0.3]), 5.0),
            ("float32 inputs, pos_weight 0.11", y4.astype(np.float32),
             p4.astype(np.float32), 0.11),
        ]
    return cases


def _scalar(got, exercise: str, case: str) -> float:
    arr = as_array(got, exercise, case)
    if arr.shape != ():
        fail(exercise, case, expected="one number (the mean over the examples)",
             got=f"shape {arr.shape}", hint="take the mean over all examples (ops.mean of the "
                                              "per-example terms) and return that one number.")
    return float(arr)


def check_weighted_binary_cross_entropy(weighted_binary_cross_entropy,
                                        strict: bool = False) -> None:
    """``weighted_binary_cross_entropy(y_true, y_prob, pos_weight)`` is
    ``-(1/n) Σ [pos_weight · y log p + (1 - y) log(1 - p)]`` on 1-D arrays of labels (0/1)
    and probabilities: one number, the mean over all n examples, finite when a probability is
    exactly 0 or 1 (clip it). Values are compared on NumPy arrays (rtol 1e-5; an answer may
    return a 0-d array or tensor)."""
    exercise = "weighted_binary_cross_entropy"
    for case, y, p, w in _wbce_cases(strict):
        got = call(weighted_binary_cross_entropy, y.copy(), p.copy(), w, exercise=exercise,
                   case=case, hint="y_true and y_prob are 1-D arrays of the same length; "
                                    "pos_weight is a number.")
        value = _scalar(got, exercise, case)
        yf, pf = y.astype(np.float64), p.astype(np.float64)
        expected = -np.mean(w * yf * np.log(pf) + (1 - yf) * np.log(1 - pf))
        inputs = f"y_true {y.tolist() if y.size <= 6 else y.shape}, y_prob " \
                 f"{np.round(p, 3).tolist() if p.size <= 6 else p.shape}, pos_weight {w}"
        if not np.isclose(value, expected, rtol=1e-5, atol=1e-7):
            hint = next((_WBCE_HINTS[k] for k, v in _wbce_variants(yf, pf, w).items()
                         if np.isclose(value, v, rtol=1e-5, atol=1e-7)), "")
            assert_close(value, expected, exercise=exercise, case=case, inputs=inputs,
                         rtol=1e-5, atol=1e-7, hint=hint or _WBCE_FORMULA, n=len(y))
    # probabilities of exactly 0 and 1: finite, and large when the model is sure and wrong
    edge = [("sure and wrong: p = 0 for a positive, p = 1 for a negative",
             np.array([1.0, 0.0]), np.array([0.0, 1.0]), 2.0, "large"),
            ("sure and right: p = 1 for a positive, p = 0 for a negative",
             np.array([1.0, 0.0]), np.array([1.0, 0.0]), 2.0, "small")]
    if strict:
        edge.append(("a batch of 6 with three probabilities of exactly 0 or 1",
                     np.array([1.0, 1.0, 0.0, 0.0, 1.0, 0.0]),
                     np.array([1.0, 0.0, 0.0, 0.3, 0.8, 1.0]), 0.5, "large"))
    for case, y, p, w, kind in edge:
        with np.errstate(divide="ignore", invalid="ignore"):
            got = call(weighted_binary_cross_entropy, y.copy(), p.copy(), w,
                       exercise=exercise, case=case)
            value = _scalar(got, exercise, case)
        inputs = f"y_true {y.tolist()}, y_prob {p.tolist()}, pos_weight {w}"
        if not np.isfinite(value):
            fail(exercise, case, inputs=inputs, expected="a finite number", got=value,
                 hint="log(0) happened: clip the probabilities to [eps, 1 - eps] (e.g. "
                      "eps = 1e-7, ops.clip(y_prob, eps, 1 - eps)) before taking logs.")
        if kind == "large" and value < 3.0:
            fail(exercise, case, inputs=inputs, expected="a large loss (above 3): the model is "
                 "sure and wrong", got=value, hint="clip with a small eps (1e-7), not a large "
                                                   "one, and keep the minus sign.")
        if kind == "small" and not 0.0 <= value < 0.01:
            fail(exercise, case, inputs=inputs, expected="a loss near 0 (below 0.01)",
                 got=value, hint="a sure and right model has a loss near 0: check the sign "
                                 "and which term goes with y and which with 1 - y.")


# --- temperature scaling ---------------------------------------------------------------------


def _mean_log_loss(logits, y, t) -> float:
    z = np.asarray(logits, dtype=np.float64) / t
    return float(np.mean(np.logaddexp(0.0, -z) * y + np.logaddexp(0.0, z) * (1 - y)))


def _temperature_cases(strict: bool):
    """(case name, logits, labels): labels drawn from sigmoid(z), logits = z * scale, so that
    the best temperature is near ``scale``."""
    def case(name, seed, n, scale, shift=0.0):
        rng = case_rng(seed)
        z = rng.normal(shift, 2.5, n)
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.int64)
        return name, z * scale, y

    cases = [case("over-confident: 300 logits three times too large", 360, 300, 3.0),
             case("under-confident: 300 logits half as large as they should be", 361, 300,
                  0.5),
             case("calibrated: 300 logits", 362, 300, 1.0)]
    if strict:
        cases += [case("over-confident, mostly positive: 500 logits 5 times too large", 363, 500,
                       5.0, shift=2.0),
                  case("under-confident: 80 logits a third as large", 364, 80, 0.33),
                  case("slightly over-confident: 1000 logits", 365, 1000, 1.4, shift=-1.0)]
    return cases


def check_temperature_scale(temperature_scale, strict: bool = False) -> None:
    """``temperature_scale(logits_val, y_val)`` returns the temperature T > 0 that minimises
    the mean log-loss of ``sigmoid(logits_val / T)`` on the data it is given, to within 1 %
    (its log-loss within 1e-4 of the minimum); over-confident logits give T > 1,
    under-confident ones T < 1."""
    exercise = "temperature_scale"
    for case, logits, y in _temperature_cases(strict):
        expected = ref_metrics.temperature_scale(logits, y)
        inputs = f"logits_val {logits.shape} (from {logits.min():.1f} to {logits.max():.1f}), " \
                 f"y_val {y.shape} ({int(y.sum())} positive)"
        got = call(temperature_scale, logits.copy(), y.copy(), exercise=exercise, case=case,
                   hint="logits_val and y_val are 1-D arrays of the same length; return T.")
        t = _scalar(got, exercise, case)
        if not np.isfinite(t) or t <= 0:
            fail(exercise, case, inputs=inputs, expected=f"a positive temperature, {expected:.4f}",
                 got=t, hint="T divides the logits: a positive number (search T, or 1/T, over "
                             "positive values).")
        best, have = _mean_log_loss(logits, y, expected), _mean_log_loss(logits, y, t)
        if abs(t - expected) <= 0.01 * expected or have <= best + 1e-4:
            continue
        if np.isclose(t, 1.0 / expected, rtol=0.02):
            hint = ("this is 1 / T: the logits are *divided* by the temperature, "
                    "sigmoid(logits / T); T > 1 softens over-confident logits.")
        elif expected < 0.95 and t >= 0.99:
            hint = ("the best temperature here is below 1 (the logits are under-confident): "
                    "let the search include T < 1 (e.g. 0.05 to 20), not only T >= 1.")
        elif np.isclose(t, 1.0, atol=1e-6):
            hint = ("T = 1 changes nothing: choose T by the log-loss (cross-entropy) of "
                    "sigmoid(logits / T) against y_val, not by accuracy or ROC AUC, which no "
                    "temperature changes.")
        else:
            hint = ("fit T on the logits and labels passed in (not on the test split or other "
                    "notebook data), by minimising mean log-loss of sigmoid(logits_val / T) "
                    "against y_val, with a fine enough search (within 1 %).")
        fail(exercise, case, inputs=inputs,
             expected=f"T = {expected:.4f} (log-loss {best:.5f})",
             got=f"T = {t:.4f} (log-loss {have:.5f})", hint=hint)


EXERCISES = {
    "conv2d": (check_conv2d, ref.conv2d),
    "max_pool2d": (check_max_pool2d, ref.max_pool2d),
    "avg_pool2d": (check_avg_pool2d, ref.avg_pool2d),
    "softmax": (check_softmax, ref.softmax),
    "build_cnn": (check_build_cnn, ref_models.build_cnn),
    "weighted_binary_cross_entropy": (check_weighted_binary_cross_entropy,
                                      ref_losses.weighted_binary_cross_entropy),
    "temperature_scale": (check_temperature_scale, ref_metrics.temperature_scale),
}


def _register_samples() -> None:
    def conv_args():
        rng = case_rng(0)
        return rng.normal(size=(5, 5, 2)), rng.normal(size=(3, 3, 2, 2)), np.zeros(2), 1, "same"

    def pool_args():
        return (case_rng(0).normal(size=(4, 4, 2)), 2, 2)

    SAMPLE_ARGS["conv2d"] = conv_args
    SAMPLE_ARGS["max_pool2d"] = pool_args
    SAMPLE_ARGS["avg_pool2d"] = pool_args
    SAMPLE_ARGS["softmax"] = lambda: (np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]]),)
    SAMPLE_ARGS["build_cnn"] = lambda: ((28, 28, 1), 2)
    SAMPLE_ARGS["weighted_binary_cross_entropy"] = lambda: (
        np.array([1.0, 0.0, 1.0]), np.array([0.8, 0.3, 0.4]), 2.0)
    SAMPLE_ARGS["temperature_scale"] = lambda: (np.array([3.0, -2.0, 1.0, -0.5, 4.0]),
                                                np.array([1, 0, 0, 0, 1]))


_register_samples()

