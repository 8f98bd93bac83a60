"""Convolution, pooling and softmax in NumPy (chapter 3, AI in Medicine §3.1
and Diagnosis and Treatment §3.2).

The layout is TensorFlow's (``channels_last``): an image is ``(H, W, C)``, a batch of images
``(N, H, W, C)``, a kernel bank ``(kh, kw, C_in, C_out)``. Every function accepts one image or
a batch and returns the same rank, in float64.

- :func:`conv2d` computes what ``tf.nn.conv2d`` (and ``keras.layers.Conv2D``) computes:
  **cross-correlation**, ``y[i, j, o] = sum_{k, l, c} x[i*s + k, j*s + l, c] * w[k, l, c, o]
  + b[o]`` (erratum E2: the kernel is not flipped; one bias per output channel).
  :func:`true_convolution` flips the kernel first, which is the convolution of mathematics.
- :func:`max_pool2d` and :func:`avg_pool2d`: a ``size x size`` window moved by ``stride``
  (erratum E3), no padding ("VALID"), as ``tf.nn.max_pool2d`` / ``tf.nn.avg_pool2d`` with
  ``padding="VALID"``.
- :func:`softmax`: stable for logits of any size (it subtracts the maximum along ``axis``).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _batched(x) -> tuple[np.ndarray, bool]:
    """``x`` as a float64 batch ``(N, H, W, C)``, and whether it was a single image."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3:
        return x[None], True
    if x.ndim == 4:
        return x, False
    raise ValueError(f"expected an image (H, W, C) or a batch (N, H, W, C), got shape {x.shape}")


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding along one axis: the output has ``ceil(size / stride)``
    entries; the padding needed for that is split with the smaller half **before** (top or
    left) and the larger half after (bottom or right)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv2d(x, w, b=None, stride=1, padding="valid"):
    """2-D cross-correlation with ``tf.nn.conv2d``'s layout and result.

    Args:
        x: ``(H, W, C_in)`` or ``(N, H, W, C_in)``.
        w: ``(kh, kw, C_in, C_out)``.
        b: ``(C_out,)``, one bias per output channel, or ``None``.
        stride: the step of the window, the same along rows and columns.
        padding: ``"valid"`` (no padding; output ``floor((H - kh) / stride) + 1``) or
            ``"same"`` (output ``ceil(H / stride)``, zeros added as TensorFlow adds them:
            see :func:`same_padding`).

    Returns:
        ``(H_out, W_out, C_out)`` or ``(N, H_out, W_out, C_out)``, float64.
    """
    xb, single = _batched(x)
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 4 or w.shape[2] != xb.shape[3]:
        raise ValueError(f"kernel shape {w.shape} does not fit input channels {xb.shape[3]}: "
                         "expected (kh, kw, C_in, C_out)")
    kh, kw = w.shape[:2]
    padding = str(padding).lower()
    if padding == "same":
        top, bottom = same_padding(xb.shape[1], kh, stride)
        left, right = same_padding(xb.shape[2], kw, stride)
        xb = np.pad(xb, ((0, 0), (top, bottom), (left, right), (0, 0)))
    elif padding != "valid":
        raise ValueError(f"padding must be 'valid' or 'same', not {padding!r}")
    # windows: (N, H_out, W_out, C_in, kh, kw)
    windows = sliding_window_view(xb, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
    out = np.einsum("nhwcij,ijco->nhwo", windows, w, optimize=True)
    if b is not None:
        out = out + np.asarray(b, dtype=np.float64).reshape(-1)
    return out[0] if single else out


def true_convolution(x, w, b=None, stride=1, padding="valid"):
    """Convolution in the mathematical sense: :func:`conv2d` with the kernel rotated by 180°
    (flipped along both spatial axes). Diagnosis and Treatment §3.2.1.2 writes this form,
    ``C(x, y) = sum K(m, n) I(x - m, y - n)``; deep-learning libraries compute
    cross-correlation instead. For a symmetric kernel the two agree."""
    return conv2d(x, np.asarray(w)[::-1, ::-1], b, stride, padding)


def _pool(x, size: int, stride: int, reduce) -> np.ndarray:
    xb, single = _batched(x)
    windows = sliding_window_view(xb, (size, size), axis=(1, 2))[:, ::stride, ::stride]
    out = reduce(windows, axis=(-2, -1))
    return out[0] if single else out


def max_pool2d(x, size=2, stride=2):
    """Max pooling: ``y[i, j, c] = max_{0 <= k, l < size} x[i*stride + k, j*stride + l, c]``,
    per channel, without padding (``tf.nn.max_pool2d(x, size, stride, "VALID")``).

    ``x``: ``(H, W, C)`` or ``(N, H, W, C)``; output ``floor((H - size) / stride) + 1``
    rows (and columns).
    """
    return _pool(x, size, stride, np.max)


def avg_pool2d(x, size=2, stride=2):
    """Average pooling: the mean of each ``size x size`` window (``size**2`` values), moved by
    ``stride``, per channel, without padding (``tf.nn.avg_pool2d(x, size, stride, "VALID")``)."""
    return _pool(x, size, stride, np.mean)


def softmax(logits, axis=-1):
    """``exp(z_k) / sum_j exp(z_j)`` along ``axis``, computed as ``exp(z_k - max z)`` so that it
    never overflows (logits of +-1000 are fine); every slice along ``axis`` sums to 1."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - np.max(z, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)
