"""Recurrent cells in NumPy: the GRU and the LSTM exactly as Keras 3 computes them (chapter 4).

Shapes: a batch of ``n`` sequences, each ``T`` steps of ``d`` input channels, and ``u`` units.

**GRU** (gated recurrent unit, 门控循环单元; Cho et al. 2014), Keras 3's default
``reset_after=True`` form. ``params`` holds three parts, one per gate:
``z`` (update gate), ``r`` (reset gate), ``h`` (candidate state), each cut from Keras'
weights in that order:

- ``W_z, W_r, W_h``, shape ``(d, u)``: input weights, ``kernel[:, :u]``, ``[:, u:2u]``,
  ``[:, 2u:]`` of the Keras layer;
- ``U_z, U_r, U_h``, shape ``(u, u)``: recurrent weights, ``recurrent_kernel``, same split;
- ``b_z, b_r, b_h``, shape ``(u,)``: input biases, ``bias[0]``, same split;
- ``rb_z, rb_r, rb_h``, shape ``(u,)``: recurrent biases, ``bias[1]``, same split
  (``reset_after=True`` keeps two biases; only ``rb_h`` lies inside the reset gate).

One step (sigmoid is the logistic function, ``*`` the element-wise product)::

    z  = sigmoid(x W_z + b_z + h_prev U_z + rb_z)             update gate
    r  = sigmoid(x W_r + b_r + h_prev U_r + rb_r)             reset gate
    h~ = tanh(x W_h + b_h + r * (h_prev U_h + rb_h))          candidate ("reset after")
    h  = z * h_prev + (1 - z) * h~

``z`` close to 1 keeps the old state; close to 0 replaces it by the candidate. The original
paper (and Keras' ``reset_after=False``) resets *before* the product:
``tanh(x W_h + b_h + (r * h_prev) U_h)``; the two give different numbers for the same weights.

**LSTM** (long short-term memory, 长短期记忆; Hochreiter & Schmidhuber 1997), as
``keras.layers.LSTM``: four parts ``i`` (input gate), ``f`` (forget gate), ``c`` (cell
candidate), ``o`` (output gate), Keras order ``i, f, c, o`` in ``kernel``
``(d, 4u)``, ``recurrent_kernel`` ``(u, 4u)`` and ``bias`` ``(4u,)``. ``params`` keys
``W_i, W_f, W_c, W_o`` ``(d, u)``, ``U_i, U_f, U_c, U_o`` ``(u, u)``,
``b_i, b_f, b_c, b_o`` ``(u,)``::

    i  = sigmoid(x W_i + h_prev U_i + b_i)
    f  = sigmoid(x W_f + h_prev U_f + b_f)
    c~ = tanh(x W_c + h_prev U_c + b_c)
    o  = sigmoid(x W_o + h_prev U_o + b_o)
    c  = f * c_prev + i * c~
    h  = o * tanh(c)

``gru_params_from_keras`` / ``lstm_params_from_keras`` turn a Keras layer's weights into these
dicts; ``gru_params_to_keras`` / ``lstm_params_to_keras`` go back (for ``layer.set_weights``).
"""

from __future__ import annotations

import numpy as np

from medai_lessons.nn.activations import _as_float_array as _float
from medai_lessons.nn.activations import sigmoid as _sigmoid

GRU_GATES = ("z", "r", "h")
LSTM_GATES = ("i", "f", "c", "o")
_GRU_WEIGHTS = ("W", "U", "b", "rb")  # kernel, recurrent_kernel, bias[0], bias[1]
_LSTM_WEIGHTS = ("W", "U", "b")  # kernel, recurrent_kernel, bias


# --- one step --------------------------------------------------------------------------------


def gru_cell(x_t, h_prev, params):
    """One GRU step as ``keras.layers.GRU`` (``reset_after=True``) computes it.

    x_t: ``(n, d)`` inputs at this step; h_prev: ``(n, u)`` previous hidden state;
    params: the dict described in this module's docstring. Returns ``h_t`` of shape ``(n, u)``.
    """
    x_t, h_prev = _float(x_t), _float(h_prev)
    p = params
    z = _sigmoid(x_t @ p["W_z"] + p["b_z"] + h_prev @ p["U_z"] + p["rb_z"])
    r = _sigmoid(x_t @ p["W_r"] + p["b_r"] + h_prev @ p["U_r"] + p["rb_r"])
    h_cand = np.tanh(x_t @ p["W_h"] + p["b_h"] + r * (h_prev @ p["U_h"] + p["rb_h"]))
    return z * h_prev + (1.0 - z) * h_cand


def lstm_cell(x_t, h_prev, c_prev, params):
    """One LSTM step as ``keras.layers.LSTM`` computes it.

    x_t: ``(n, d)``; h_prev, c_prev: ``(n, u)`` previous hidden and cell states.
    Returns ``(h_t, c_t)``, each ``(n, u)``.
    """
    x_t, h_prev, c_prev = _float(x_t), _float(h_prev), _float(c_prev)
    p = params

    def pre(g):
        return x_t @ p[f"W_{g}"] + h_prev @ p[f"U_{g}"] + p[f"b_{g}"]

    i, f, o = _sigmoid(pre("i")), _sigmoid(pre("f")), _sigmoid(pre("o"))
    c = f * c_prev + i * np.tanh(pre("c"))
    return o * np.tanh(c), c


# --- whole sequences -------------------------------------------------------------------------


def _scan(step, X, states: tuple):
    """Apply ``states = step(x_t, *states)`` for t = 0 .. T-1 over ``X`` ``(n, T, d)``;
    return the first state after every step, ``(n, T, u)``, and the final states."""
    X = _float(X)
    states = tuple(_float(s) for s in states)
    outputs = []
    for t in range(X.shape[1]):
        new = step(X[:, t, :], *states)
        states = new if isinstance(new, tuple) else (new,)
        outputs.append(states[0])
    if not outputs:
        return np.zeros((X.shape[0], 0, states[0].shape[-1]), dtype=states[0].dtype), states
    return np.stack(outputs, axis=1), states


def gru_forward(X, h0, params):
    """Run the GRU over whole sequences.

    X: ``(n, T, d)`` (batch, time, channels, as Keras); h0: ``(n, u)`` initial state.
    Returns ``H`` of shape ``(n, T, u)``: ``H[:, t]`` is the hidden state after step ``t``
    (``h0`` itself is not included), what ``GRU(u, return_sequences=True)`` returns;
    ``H[:, -1]`` is what ``GRU(u)`` returns.
    """
    return _scan(lambda x, h: gru_cell(x, h, params), X, (h0,))[0]


def lstm_forward(X, h0, c0, params):
    """Run the LSTM over ``X`` ``(n, T, d)``; returns ``(H, c_T)`` with ``H`` ``(n, T, u)``
    the hidden state after every step (as ``LSTM(u, return_sequences=True)``)."""
    H, (_, c) = _scan(lambda x, h, c: lstm_cell(x, h, c, params), X, (h0, c0))
    return H, c


# --- parameters ------------------------------------------------------------------------------


def _init(gates, weights, n_inputs, n_units, seed, scale) -> dict:
    rng = np.random.default_rng(seed)
    shapes = {"W": (n_inputs, n_units), "U": (n_units, n_units)}
    return {f"{w}_{g}": rng.normal(0, scale, size=shapes.get(w, n_units))
            for g in gates for w in weights}


def init_gru_params(n_inputs: int, n_units: int, seed: int = 0, scale: float = 0.5) -> dict:
    """Random GRU parameters (normal, standard deviation ``scale``; biases too, so that every
    term of the formulas matters), in the layout of this module's docstring."""
    return _init(GRU_GATES, _GRU_WEIGHTS, n_inputs, n_units, seed, scale)


def init_lstm_params(n_inputs: int, n_units: int, seed: int = 0, scale: float = 0.5) -> dict:
    """Random LSTM parameters in the layout of this module's docstring."""
    return _init(LSTM_GATES, _LSTM_WEIGHTS, n_inputs, n_units, seed, scale)


def _weights(layer_or_weights):
    """The list of weight arrays of a Keras layer (or the list itself)."""
    get = getattr(layer_or_weights, "get_weights", None)
    weights = get() if callable(get) else layer_or_weights
    return [np.asarray(w) for w in weights]


def _split(blocks, gates, names) -> dict:
    """Keras' concatenated weights cut into one block per gate (along the last axis)."""
    u = blocks[1].shape[0]  # the recurrent kernel is (u, gates * u)
    return {f"{name}_{g}": w[..., k * u:(k + 1) * u]
            for k, g in enumerate(gates) for name, w in zip(names, blocks, strict=True)}


def _join(params, gates, names) -> list[np.ndarray]:
    return [np.concatenate([params[f"{name}_{g}"] for g in gates], axis=-1) for name in names]


def gru_params_from_keras(layer_or_weights) -> dict:
    """The params dict of a Keras GRU layer (``reset_after=True``, with biases): its
    ``kernel``, ``recurrent_kernel`` and ``bias`` split into the z, r and h parts.

    Accepts the layer itself or its ``get_weights()`` list.
    """
    weights = _weights(layer_or_weights)
    if len(weights) != 3 or weights[2].ndim != 2 or weights[2].shape[0] != 2:
        shapes = [w.shape for w in weights]
        raise ValueError("expected a Keras GRU with reset_after=True and use_bias=True "
                         f"(kernel, recurrent_kernel, bias of shape (2, 3u)); got shapes {shapes}")
    kernel, recurrent, bias = weights
    return _split([kernel, recurrent, bias[0], bias[1]], GRU_GATES, _GRU_WEIGHTS)


def gru_params_to_keras(params: dict) -> list[np.ndarray]:
    """``[kernel, recurrent_kernel, bias]`` for ``GRU(u).set_weights(...)``."""
    kernel, recurrent, bias, recurrent_bias = _join(params, GRU_GATES, _GRU_WEIGHTS)
    return [kernel, recurrent, np.stack([bias, recurrent_bias])]


def lstm_params_from_keras(layer_or_weights) -> dict:
    """The params dict of a Keras LSTM layer (with bias): kernel, recurrent_kernel and bias
    split into the i, f, c, o parts (Keras' order)."""
    weights = _weights(layer_or_weights)
    if len(weights) != 3 or weights[2].ndim != 1:
        shapes = [w.shape for w in weights]
        raise ValueError("expected a Keras LSTM with use_bias=True (kernel, recurrent_kernel, "
                         f"bias of shape (4u,)); got shapes {shapes}")
    return _split(weights, LSTM_GATES, _LSTM_WEIGHTS)


def lstm_params_to_keras(params: dict) -> list[np.ndarray]:
    """``[kernel, recurrent_kernel, bias]`` for ``LSTM(u).set_weights(...)``."""
    return _join(params, LSTM_GATES, _LSTM_WEIGHTS)
