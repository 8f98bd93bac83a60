"""The reference implementations in medai_lessons.nn against TensorFlow, Keras, scikit-learn
and closed forms, in float64.

TensorFlow is imported once, at the top of this module.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import log_loss

from medai_lessons import nn
from medai_lessons.grading import relative_error
from medai_lessons.grading.ch02 import numerical_gradient

SHAPES = [(), (7,), (2, 3, 4)]
LARGE = np.array([-1000.0, -745.0, -710.0, -100.0, -50.0, -1.0, 0.0, 1.0, 50.0, 100.0, 710.0,
                  745.0, 1000.0])

ACTIVATIONS = {  # reference, TensorFlow op
    "sigmoid": (nn.sigmoid, tf.math.sigmoid),
    "tanh": (nn.tanh, tf.math.tanh),
    "relu": (nn.relu, tf.nn.relu),
}
GRADIENTS = {  # reference derivative, the TensorFlow op it differentiates
    "sigmoid_grad": (nn.sigmoid_grad, tf.math.sigmoid),
    "tanh_grad": (nn.tanh_grad, tf.math.tanh),
    "relu_grad": (nn.relu_grad, tf.nn.relu),
}


def random_x(shape, seed: int, scale: float = 4.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, scale, size=shape)


def tf_gradient_of_sum(op, x: np.ndarray) -> np.ndarray:
    """d/dx of sum(op(x)), i.e. the element-wise derivative of op, by tf.GradientTape."""
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        total = tf.reduce_sum(op(xt))
    return tape.gradient(total, xt).numpy()


class no_numpy_warnings:
    """Every warning is an error, and so is every NumPy overflow, invalid value or division by
    zero. Underflow stays ignored (NumPy's default): exp(-1000) correctly rounds to 0."""

    def __enter__(self):
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("error")
        self._errstate = np.errstate(all="raise", under="ignore")
        self._errstate.__enter__()
        return self

    def __exit__(self, *exc):
        self._errstate.__exit__(*exc)
        return self._warnings.__exit__(*exc)


# --- activations -----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_matches_tensorflow(name, shape):
    reference, op = ACTIVATIONS[name]
    x = random_x(shape, seed=len(shape))
    got = reference(x)  # an ndarray, or a NumPy float64 scalar for a 0-d input
    assert np.shape(got) == x.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, op(tf.constant(x)).numpy(), rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_large_inputs_match_tensorflow_without_warnings(name):
    reference, op = ACTIVATIONS[name]
    with no_numpy_warnings():
        got = reference(LARGE)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, op(tf.constant(LARGE)).numpy(), rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("name", [*ACTIVATIONS, *GRADIENTS])
def test_no_warning_with_numpys_default_error_handling(name):
    reference = {**ACTIVATIONS, **GRADIENTS}[name][0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = reference(np.concatenate([LARGE, LARGE * 1e300]))  # |x| up to 1e303
    assert np.all(np.isfinite(got))


def test_sigmoid_saturates_exactly():
    with no_numpy_warnings():
        s = nn.sigmoid(LARGE)
    assert s[0] == 0.0 and s[-1] == 1.0 and s[LARGE == 0] == 0.5
    assert np.all(np.diff(s) >= 0)
    assert 0 < s[list(LARGE).index(-710.0)] < 1e-300  # a subnormal, not an overflowed 0 or nan


def test_tanh_and_relu_on_large_inputs():
    with no_numpy_warnings():
        assert nn.tanh(LARGE)[0] == -1.0 and nn.tanh(LARGE)[-1] == 1.0
        np.testing.assert_array_equal(nn.relu(LARGE), np.where(LARGE > 0, LARGE, 0.0))


@pytest.mark.parametrize("name", [*ACTIVATIONS, *GRADIENTS])
def test_float32_is_preserved(name):
    reference, op = {**ACTIVATIONS, **GRADIENTS}[name]
    x = random_x((5, 3), seed=11).astype(np.float32)
    x[0] = [-1000.0, 0.0, 1000.0]
    with no_numpy_warnings():
        got = reference(x)
    assert got.dtype == np.float32
    expected = (op(tf.constant(x)).numpy() if name in ACTIVATIONS
                else tf_gradient_of_sum(op, x))
    # 1 - t**2 cancels when |t| is near 1: a few float32 ulps of 1, absolutely
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=5e-7)


@pytest.mark.parametrize("name", [*ACTIVATIONS, *GRADIENTS])
def test_python_scalars_lists_and_integers_give_float64(name):
    reference, _ = {**ACTIVATIONS, **GRADIENTS}[name]
    for x in (2, -3.5, [-1, 0, 4], np.array([-2, 0, 3])):
        got = np.asarray(reference(x))
        assert got.dtype == np.float64
        assert got.shape == np.shape(x)
        np.testing.assert_allclose(got, reference(np.asarray(x, dtype=np.float64)), rtol=0)


# --- derivatives -----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", list(GRADIENTS))
def test_derivative_matches_gradient_tape(name, shape):
    reference, op = GRADIENTS[name]
    x = random_x(shape, seed=10 + len(shape))
    if name == "relu_grad":  # away from the kink, where the derivative is defined
        x = x + np.where(x >= 0, 0.1, -0.1)
    got = reference(x)
    assert np.shape(got) == x.shape and got.dtype == np.float64
    # tanh_grad = 1 - t**2 cancels for large |x|, so compare those absolutely (to 1e-15)
    atol = 1e-15 if name == "tanh_grad" else 1e-300
    np.testing.assert_allclose(got, tf_gradient_of_sum(op, x), rtol=1e-12, atol=atol)


@pytest.mark.parametrize("name", list(GRADIENTS))
def test_derivative_on_large_inputs_matches_gradient_tape(name):
    reference, op = GRADIENTS[name]
    with no_numpy_warnings():
        got = reference(LARGE)
    np.testing.assert_allclose(got, tf_gradient_of_sum(op, LARGE), rtol=1e-12, atol=1e-300)
    if name == "relu_grad":
        np.testing.assert_array_equal(got, LARGE > 0)
    else:
        assert got[0] == 0.0 and got[-1] == 0.0  # flat far out on both sides


def test_derivatives_at_zero():
    zero = np.array([0.0, -0.0])
    assert np.all(nn.sigmoid_grad(zero) == 0.25)
    assert np.all(nn.tanh_grad(zero) == 1.0)
    # ReLU has no derivative at 0; TensorFlow (and the course) use 0 there
    np.testing.assert_array_equal(tf_gradient_of_sum(tf.nn.relu, zero), [0.0, 0.0])
    np.testing.assert_array_equal(nn.relu_grad(zero), [0.0, 0.0])
    np.testing.assert_array_equal(nn.relu_grad([-1e-300, 0.0, 1e-300]), [0.0, 0.0, 1.0])


# --- losses ----------------------------------------------------------------------------------


def keras_loss(loss_cls, y_true, y_pred, **kwargs) -> float:
    loss = loss_cls(dtype="float64", **kwargs)
    return float(loss(np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)))


@pytest.mark.parametrize("shape", [(1,), (9,), (12, 1), (5, 3)], ids=str)
def test_mse_matches_keras(shape):
    rng = np.random.default_rng(sum(shape))
    y_true = rng.normal(size=shape)
    y_pred = y_true + rng.normal(0, 0.7, size=shape)
    got = nn.mse(y_true, y_pred)
    assert isinstance(got, float)
    expected = keras_loss(keras.losses.MeanSquaredError, y_true, y_pred)
    assert got == pytest.approx(expected, rel=1e-12)
    assert got == pytest.approx(np.mean((y_true - y_pred) ** 2), rel=1e-15)
    assert nn.mse(y_true, y_true) == 0.0


def test_mse_on_lists_and_one_sample():
    assert nn.mse([3.0], [1.0]) == 4.0
    assert nn.mse([1, 2, 3], [1, 2, 5]) == pytest.approx(4 / 3, rel=1e-15)


def _bce_cases():
    rng = np.random.default_rng(7)
    yield "random", (rng.random(40) < 0.3).astype(float), rng.uniform(0.02, 0.98, 40)
    yield "column", (rng.random((15, 1)) < 0.5).astype(float), rng.uniform(0.1, 0.9, (15, 1))
    yield "p = 0 and p = 1, right", np.array([1.0, 0.0]), np.array([1.0, 0.0])
    yield "p = 0 and p = 1, wrong", np.array([1.0, 0.0]), np.array([0.0, 1.0])
    yield "mixed with exact 0 and 1", np.array([1.0, 0.0, 1.0, 0.0, 1.0]), \
        np.array([0.0, 0.0, 1.0, 1.0, 0.5])
    yield "soft labels", np.array([0.2, 0.7, 1.0]), np.array([0.3, 0.6, 0.999])


@pytest.mark.parametrize(("y", "p"), [c[1:] for c in _bce_cases()],
                         ids=[c[0] for c in _bce_cases()])
def test_binary_cross_entropy_matches_keras(y, p):
    got = nn.binary_cross_entropy(y, p)
    assert isinstance(got, float) and np.isfinite(got)
    expected = keras_loss(keras.losses.BinaryCrossentropy, y, p, from_logits=False)
    assert got == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_binary_cross_entropy_clips_at_keras_epsilon():
    assert keras.config.epsilon() == 1e-7
    worst = nn.binary_cross_entropy([1.0, 0.0], [0.0, 1.0])
    assert worst == pytest.approx(-np.log(1e-7), rel=1e-9)
    assert nn.binary_cross_entropy([1.0], [0.0], eps=1e-3) == pytest.approx(-np.log(1e-3))
    assert nn.binary_cross_entropy([1.0, 0.0], [1.0, 0.0]) == pytest.approx(1e-7, rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_cross_entropy_matches_sklearn_log_loss(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random(50) < 0.4).astype(float)
    p = rng.uniform(0.01, 0.99, 50)  # far from the clipping
    assert nn.binary_cross_entropy(y, p) == pytest.approx(log_loss(y, p, labels=[0, 1]),
                                                          rel=1e-12)


def test_binary_cross_entropy_needs_both_terms():
    # the erratum: with y = 0 only the (1 - y) log(1 - p) term counts, and it must be positive
    p = np.array([0.1, 0.2, 0.3, 0.4])
    expected = -np.mean(np.log(1 - p))
    assert nn.binary_cross_entropy(np.zeros(4), p) == pytest.approx(expected, rel=1e-14)
    assert expected > 0


@pytest.mark.parametrize("loss", [nn.mse, nn.binary_cross_entropy], ids=["mse", "bce"])
def test_loss_mismatched_shapes_raise_a_helpful_value_error(loss):
    name = loss.__name__
    with pytest.raises(ValueError, match=rf"^{name}: .*\(3,\).*\(3, 1\).*reshape"):
        loss(np.zeros(3), np.full((3, 1), 0.5))
    with pytest.raises(ValueError, match=rf"^{name}: .*\(2,\).*\(3,\)"):
        loss([0.0, 1.0], [0.5, 0.5, 0.5])


@pytest.mark.parametrize("loss", [nn.mse, nn.binary_cross_entropy], ids=["mse", "bce"])
def test_loss_empty_input_raises_a_helpful_value_error(loss):
    with pytest.raises(ValueError, match=rf"^{loss.__name__}: got empty arrays.*at least one"):
        loss(np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError, match="empty"):
        loss([], [])


# --- gradient descent ------------------------------------------------------------------------

A = np.array([[3.0, 0.5, 0.0], [0.5, 2.0, -0.3], [0.0, -0.3, 1.0]])  # symmetric positive definite
B = np.array([1.0, -2.0, 0.5])


def quadratic_grad(w):  # gradient of 0.5 w^T A w - b^T w
    return A @ w - B


def test_gradient_descent_converges_to_the_closed_form_minimum():
    w0 = np.array([4.0, -3.0, 2.0])
    w, history = nn.gradient_descent(quadratic_grad, w0, lr=0.25, steps=300)
    np.testing.assert_allclose(w, np.linalg.solve(A, B), rtol=0, atol=1e-10)
    assert len(history) == 301
    np.testing.assert_array_equal(history[0], w0)
    np.testing.assert_array_equal(history[-1], w)
    # each entry is one step from the one before, so no entry is an alias of another
    for before, after in zip(history[:-1], history[1:], strict=True):
        np.testing.assert_allclose(after, before - 0.25 * quadratic_grad(before), rtol=1e-15)
    assert len({id(h) for h in history}) == len(history)


def test_gradient_descent_does_not_change_w0_and_copies_it():
    w0 = np.array([4.0, -3.0, 2.0])
    before = w0.copy()
    w, history = nn.gradient_descent(quadratic_grad, w0, lr=0.1, steps=5)
    np.testing.assert_array_equal(w0, before)
    assert w is not w0 and history[0] is not w0
    w[:] = 0.0
    history[1][:] = 0.0
    np.testing.assert_array_equal(w0, before)
    assert np.all(history[-1] != 0.0)


def test_gradient_descent_zero_steps():
    w0 = np.array([1.5, -2.0, 0.0])
    w, history = nn.gradient_descent(quadratic_grad, w0, lr=0.1, steps=0)
    np.testing.assert_array_equal(w, w0)
    assert len(history) == 1
    np.testing.assert_array_equal(history[0], w0)
    assert w is not w0


def test_gradient_descent_scalar_integer_start_and_negative_steps():
    w, history = nn.gradient_descent(lambda w: 2 * (w - 3), 0, lr=0.25, steps=60)
    assert w.dtype == np.float64 and w.shape == ()
    assert float(w) == pytest.approx(3.0, abs=1e-12)
    assert [float(h) for h in history[:3]] == [0.0, 1.5, 2.25]
    with pytest.raises(ValueError, match="steps"):
        nn.gradient_descent(quadratic_grad, np.zeros(3), lr=0.1, steps=-1)


# --- logistic regression on the Wisconsin breast cancer data --------------------------------


@pytest.fixture(scope="module")
def breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X, y.astype(np.float64)


def tf_logistic(X, y, w):
    X1 = tf.constant(np.hstack([X, np.ones((X.shape[0], 1))]))
    wt = tf.Variable(w)
    with tf.GradientTape() as tape:
        logits = tf.linalg.matvec(X1, wt)
        loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits))
    return float(loss), tape.gradient(loss, wt).numpy()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_logistic_regression_gradient_matches_gradient_tape(breast_cancer, seed):
    X, y = breast_cancer
    assert X.shape == (569, 30)
    loss_fn, grad_fn = nn.logistic_regression_grad(X, y)
    w = np.random.default_rng(seed).normal(0, 0.1 * (seed + 1), size=31)
    tf_loss, tf_grad = tf_logistic(X, y, w)
    got = grad_fn(w)
    assert got.shape == (31,)
    assert relative_error(got, tf_grad) < 1e-12
    assert loss_fn(w) == pytest.approx(tf_loss, rel=1e-10)


def test_logistic_regression_at_zero_weights(breast_cancer):
    X, y = breast_cancer
    loss_fn, grad_fn = nn.logistic_regression_grad(X, y)
    w = np.zeros(31)
    assert loss_fn(w) == pytest.approx(np.log(2), rel=1e-12)
    # at w = 0 every p is 1/2, so the bias gradient is 1/2 minus the share of positives
    assert grad_fn(w)[-1] == pytest.approx(0.5 - y.mean(), rel=1e-12)


def test_gradient_descent_trains_logistic_regression(breast_cancer):
    X, y = breast_cancer
    loss_fn, grad_fn = nn.logistic_regression_grad(X, y)
    w, history = nn.gradient_descent(grad_fn, np.zeros(31), lr=0.1, steps=300)
    losses = [loss_fn(h) for h in history]
    assert np.all(np.diff(losses) < 0)  # lr is below 1/L, so every step lowers the loss
    assert losses[-1] < 0.1
    accuracy = np.mean((nn.sigmoid(X @ w[:-1] + w[-1]) > 0.5) == y)
    assert accuracy > 0.97
    _, tf_grad = tf_logistic(X, y, w)
    assert relative_error(grad_fn(w), tf_grad) < 1e-10


# --- the two-layer network -------------------------------------------------------------------

MLP_CASES = [  # (seed, n, d, h)
    (0, 6, 4, 5),
    (1, 1, 3, 2),
    (2, 17, 5, 8),
    (3, 40, 10, 3),
]


def mlp_case(seed, n, d, h):
    rng = np.random.default_rng(100 + seed)
    params = nn.init_mlp_params(d, h, seed=seed)
    params["b1"] = rng.normal(0, 0.2, size=h)
    params["b2"] = rng.normal(0, 0.2, size=1)
    X = rng.normal(size=(n, d))
    y = (rng.random(n) < 0.5).astype(np.float64)
    return params, X, y


def tf_mlp(params, X, y):
    variables = {k: tf.Variable(v) for k, v in params.items()}
    with tf.GradientTape() as tape:
        Z1 = tf.constant(X) @ variables["W1"] + variables["b1"]
        A1 = tf.math.tanh(Z1)
        Z2 = A1 @ variables["W2"] + variables["b2"]
        loss = tf.reduce_mean(
            tf.nn.sigmoid_cross_entropy_with_logits(labels=y[:, None], logits=Z2))
    grads = tape.gradient(loss, variables)
    return tf.math.sigmoid(Z2).numpy()[:, 0], float(loss), {k: g.numpy() for k, g in grads.items()}


def test_init_mlp_params_shapes_limits_and_seed():
    params = nn.init_mlp_params(30, 8, seed=3)
    assert {k: v.shape for k, v in params.items()} == {
        "W1": (30, 8), "b1": (8,), "W2": (8, 1), "b2": (1,)}
    assert all(v.dtype == np.float64 for v in params.values())
    assert np.all(np.abs(params["W1"]) <= np.sqrt(6 / 38))
    assert np.all(np.abs(params["W2"]) <= np.sqrt(6 / 9))
    assert not params["b1"].any() and not params["b2"].any()
    again = nn.init_mlp_params(30, 8, seed=3)
    assert all(np.array_equal(params[k], again[k]) for k in params)
    assert not np.array_equal(params["W1"], nn.init_mlp_params(30, 8, seed=4)["W1"])


@pytest.mark.parametrize(("seed", "n", "d", "h"), MLP_CASES)
def test_mlp_forward_matches_tensorflow(seed, n, d, h):
    params, X, y = mlp_case(seed, n, d, h)
    P, cache = nn.mlp_forward(params, X)
    tf_P, _, _ = tf_mlp(params, X, y)
    assert P.shape == (n,)
    assert {k: cache[k].shape for k in ("X", "Z1", "A1", "Z2", "P")} == {
        "X": (n, d), "Z1": (n, h), "A1": (n, h), "Z2": (n, 1), "P": (n,)}
    np.testing.assert_allclose(P, tf_P, rtol=1e-12)
    np.testing.assert_allclose(cache["A1"], np.tanh(cache["Z1"]), rtol=1e-15)


@pytest.mark.parametrize(("seed", "n", "d", "h"), MLP_CASES)
def test_mlp_backward_matches_gradient_tape(seed, n, d, h):
    params, X, y = mlp_case(seed, n, d, h)
    _, cache = nn.mlp_forward(params, X)
    grads = nn.mlp_backward(params, cache, y)
    _, tf_loss, tf_grads = tf_mlp(params, X, y)
    assert nn.binary_cross_entropy(y, cache["P"]) == pytest.approx(tf_loss, rel=1e-10)
    assert set(grads) == {"W1", "b1", "W2", "b2"}
    for key in grads:
        assert grads[key].shape == params[key].shape, key
        assert relative_error(grads[key], tf_grads[key]) < 1e-10, key


@pytest.mark.parametrize(("seed", "n", "d", "h"), MLP_CASES)
def test_mlp_backward_matches_numerical_gradient(seed, n, d, h):
    params, X, y = mlp_case(seed, n, d, h)
    _, cache = nn.mlp_forward(params, X)
    grads = nn.mlp_backward(params, cache, y.reshape(-1, 1))  # a column y works too

    def loss(p):
        Z2 = np.tanh(X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
        return float(np.mean(np.logaddexp(0.0, Z2[:, 0]) - y * Z2[:, 0]))  # stable BCE

    before = {k: v.copy() for k, v in params.items()}
    numeric = numerical_gradient(loss, {k: v.copy() for k, v in params.items()})
    assert all(np.array_equal(before[k], params[k]) for k in params)
    for key in grads:
        assert relative_error(grads[key], numeric[key]) < 1e-6, key
    everything = np.concatenate([grads[k].ravel() for k in grads])
    assert relative_error(everything, np.concatenate([numeric[k].ravel() for k in grads])) < 1e-8


def test_relative_error():
    a = np.array([1.0, 2.0, 3.0])
    assert relative_error(a, a) == 0.0
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(a, -a) == 1.0
    assert relative_error(a, a * (1 + 1e-9)) == pytest.approx(0.5e-9, rel=1e-6)
