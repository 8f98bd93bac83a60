"""Chapter 4's NumPy recurrent cells against Keras: the GRU (``reset_after=True``) and the
LSTM, step by step and over whole sequences, in float64, for several seeds and shapes; the
weight converters against layers that Keras initialised itself; the Keras builders."""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np
import pytest

from medai_lessons import models
from medai_lessons.nn import rnn

SHAPES = [(1, 1, 1, 1), (2, 5, 3, 4), (3, 8, 1, 6), (4, 3, 7, 16)]  # (n, T, d, u)
IDS = [f"n{n}-T{T}-d{d}-u{u}" for n, T, d, u in SHAPES]


def keras_layer(kind, units, d, params=None, **kwargs):
    cls = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}[kind]
    layer = cls(units, return_sequences=True, return_state=True, dtype="float64",
                use_cudnn=False, **kwargs)
    layer.build((None, None, d))
    if params is not None:
        to_keras = rnn.gru_params_to_keras if kind == "gru" else rnn.lstm_params_to_keras
        layer.set_weights(to_keras(params))
    return layer


def arrays(seed, n, T, d, u):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, T, d)), rng.normal(size=(n, u)), rng.normal(size=(n, u))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("n", "T", "d", "u"), SHAPES, ids=IDS)
def test_gru_cell_and_forward_match_keras(seed, n, T, d, u):
    params = rnn.init_gru_params(d, u, seed=seed)
    X, h0, _ = arrays(seed, n, T, d, u)
    H_keras, h_last = (np.asarray(a) for a in keras_layer("gru", u, d, params)(
        X, initial_state=[h0]))
    np.testing.assert_allclose(rnn.gru_cell(X[:, 0], h0, params), H_keras[:, 0],
                               rtol=1e-10, atol=1e-12)
    H = rnn.gru_forward(X, h0, params)
    assert H.shape == (n, T, u)
    np.testing.assert_allclose(H, H_keras, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(H[:, -1], h_last, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("n", "T", "d", "u"), SHAPES, ids=IDS)
def test_lstm_cell_and_forward_match_keras(seed, n, T, d, u):
    params = rnn.init_lstm_params(d, u, seed=seed)
    X, h0, c0 = arrays(seed, n, T, d, u)
    H_keras, h_last, c_last = (np.asarray(a) for a in keras_layer("lstm", u, d, params)(
        X, initial_state=[h0, c0]))
    layer1 = keras_layer("lstm", u, d, params)
    _, h1, c1 = (np.asarray(a) for a in layer1(X[:, :1], initial_state=[h0, c0]))
    h, c = rnn.lstm_cell(X[:, 0], h0, c0, params)
    np.testing.assert_allclose(h, h1, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c, c1, rtol=1e-10, atol=1e-12)
    H, c_T = rnn.lstm_forward(X, h0, c0, params)
    np.testing.assert_allclose(H, H_keras, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c_T, c_last, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_converters_read_layers_that_keras_initialised(kind):
    """Not only our own set_weights layout: Keras' default initialisation (glorot kernel,
    orthogonal recurrent kernel, the LSTM's forget bias of 1) read into a params dict."""
    keras.utils.set_random_seed(3)
    layer = keras_layer(kind, 5, 2)
    X, h0, c0 = arrays(3, 2, 6, 2, 5)
    if kind == "gru":
        H_keras = np.asarray(layer(X, initial_state=[h0])[0])
        H = rnn.gru_forward(X, h0, rnn.gru_params_from_keras(layer))
    else:
        H_keras = np.asarray(layer(X, initial_state=[h0, c0])[0])
        params = rnn.lstm_params_from_keras(layer)
        np.testing.assert_array_equal(params["b_f"], np.ones(5))  # unit_forget_bias
        H, _ = rnn.lstm_forward(X, h0, c0, params)
    np.testing.assert_allclose(H, H_keras, rtol=1e-10, atol=1e-12)


def test_gru_params_layout_and_round_trip():
    params = rnn.init_gru_params(3, 4, seed=5)
    assert sorted(params) == sorted(f"{w}_{g}" for w in ("W", "U", "b", "rb") for g in "zrh")
    assert params["W_z"].shape == (3, 4) and params["U_h"].shape == (4, 4)
    assert params["rb_r"].shape == (4,)
    kernel, recurrent, bias = rnn.gru_params_to_keras(params)
    assert kernel.shape == (3, 12) and recurrent.shape == (4, 12) and bias.shape == (2, 12)
    np.testing.assert_array_equal(kernel[:, 4:8], params["W_r"])  # z, r, h: Keras' order
    np.testing.assert_array_equal(bias[1, 8:], params["rb_h"])
    back = rnn.gru_params_from_keras([kernel, recurrent, bias])
    assert all(np.array_equal(back[k], params[k]) for k in params)


def test_lstm_params_layout_and_round_trip():
    params = rnn.init_lstm_params(2, 3, seed=6)
    kernel, recurrent, bias = rnn.lstm_params_to_keras(params)
    assert kernel.shape == (2, 12) and recurrent.shape == (3, 12) and bias.shape == (12,)
    np.testing.assert_array_equal(kernel[:, 3:6], params["W_f"])  # i, f, c, o: Keras' order
    back = rnn.lstm_params_from_keras([kernel, recurrent, bias])
    assert all(np.array_equal(back[k], params[k]) for k in params)


def test_the_reset_after_form_is_what_keras_computes_not_the_2014_form():
    """The two GRU forms differ for the same weights; the reference follows Keras' default,
    and the converter refuses a reset_after=False layer instead of misreading it."""
    params = rnn.init_gru_params(2, 3, seed=7)
    X, h0, _ = arrays(7, 2, 1, 2, 3)
    before = keras.layers.GRU(3, reset_after=False, dtype="float64", use_cudnn=False)
    before.build((None, None, 2))
    kernel, recurrent, bias = rnn.gru_params_to_keras(params)
    before.set_weights([kernel, recurrent, bias[0] + bias[1]])
    h_before = np.asarray(before(X, initial_state=[h0]))
    assert np.abs(rnn.gru_cell(X[:, 0], h0, params) - h_before).max() > 1e-3
    with pytest.raises(ValueError, match="reset_after=True"):
        rnn.gru_params_from_keras(before)


def test_float32_inputs_stay_close_and_lists_work():
    params = rnn.init_gru_params(2, 3, seed=8)
    X, h0, _ = arrays(8, 2, 4, 2, 3)
    exact = rnn.gru_forward(X, h0, params)
    H32 = rnn.gru_forward(X.astype(np.float32), h0.astype(np.float32), params)
    np.testing.assert_allclose(H32, exact, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rnn.gru_cell(X[:, 0].tolist(), h0.tolist(), params), exact[:, 0])


def test_zero_steps_give_an_empty_sequence_of_states():
    params = rnn.init_gru_params(2, 3)
    assert rnn.gru_forward(np.zeros((4, 0, 2)), np.zeros((4, 3)), params).shape == (4, 0, 3)


# --- the Keras builders -----------------------------------------------------------------------


@pytest.mark.parametrize("build", [models.build_gru_classifier, models.build_lstm_classifier,
                                   models.build_rnn_classifier, models.build_cnn1d_classifier])
def test_builders_give_one_prediction_per_sequence(build):
    model = build(20, 3, 4)
    assert tuple(model.inputs[0].shape) == (None, 20, 3)
    assert tuple(model.outputs[0].shape) == (None, 4)
    p = np.asarray(model(np.random.default_rng(0).normal(size=(2, 20, 3)).astype("float32")))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_the_gru_classifier_is_the_sources_model_done_right():
    model = models.build_gru_classifier(50, 10, 5)
    gru = next(layer for layer in model.layers if isinstance(layer, keras.layers.GRU))
    assert gru.units == 64 and not gru.return_sequences and gru.reset_after
    assert tuple(gru.output.shape) == (None, 64)
    assert model.layers[-1].get_config()["activation"] == "softmax"


def test_importing_the_models_and_checkers_does_not_start_tensorflow():
    code = ("import sys, medai_lessons.models, medai_lessons.grading, medai_lessons.sequences; "
            "print(any(m in sys.modules for m in ('tensorflow', 'keras')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
