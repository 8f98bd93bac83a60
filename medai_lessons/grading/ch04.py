"""Checkers for chapter 4: GRU and LSTM cells, a GRU over whole sequences, a GRU classifier.

The expected values come from real Keras layers: each case builds a ``keras.layers.GRU`` or
``keras.layers.LSTM`` in float64, loads seeded random weights into it (biases included, so that
every term of the formulas matters), hands the learner the same weights as a params dict
(:func:`medai_lessons.nn.rnn.gru_params_from_keras`) and compares the learner's numbers with
the layer's output. Tolerance: ``rtol=1e-5, atol=1e-6``, loose enough for an answer computed in
float32, far tighter than any of the usual mistakes (they differ by 1e-2 or more). When a wrong
answer matches a known mistake (the reset gate applied before the product, the update gate the
wrong way round, forget and input gates swapped, ...) the hint names it.

``strict=True`` adds more seeds and sizes of the same kinds.
"""

from __future__ import annotations

import numpy as np

from medai_lessons import models as ref_models
from medai_lessons import tabular as ref_tabular
from medai_lessons.grading.core import (
    SAMPLE_ARGS,
    _short,
    as_array,
    assert_class_probabilities,
    assert_close,
    built_model,
    call,
    case_rng,
    fail,
    keras_shape,
)
from medai_lessons.nn import rnn as ref

RTOL, ATOL = 1e-5, 1e-6
UNITS = ref_models.RNN_UNITS


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -500, 500)))


def _copy(params: dict) -> dict:
    return {k: np.array(v, dtype=np.float64, copy=True) for k, v in params.items()}


def _keras_layer(kind: str, params: dict, n_inputs: int):
    """A float64 Keras GRU/LSTM (all hidden states and the final states returned) holding
    ``params``."""
    import keras

    units = params["U_z" if kind == "gru" else "U_i"].shape[0]
    cls = keras.layers.GRU if kind == "gru" else keras.layers.LSTM
    layer = cls(units, return_sequences=True, return_state=True, dtype="float64",
                use_cudnn=False)
    layer.build((None, None, n_inputs))
    to_keras = ref.gru_params_to_keras if kind == "gru" else ref.lstm_params_to_keras
    layer.set_weights(to_keras(params))
    return layer


def _case_arrays(seed: int, n: int, steps: int, d: int, u: int, zero_state: bool = False):
    rng = case_rng(1000 + seed)
    X = rng.normal(0.0, 1.0, size=(n, steps, d))
    h = np.zeros((n, u)) if zero_state else rng.normal(0.0, 0.8, size=(n, u))
    c = np.zeros((n, u)) if zero_state else rng.normal(0.0, 0.8, size=(n, u))
    return X, h, c


def _cell_cases(strict: bool):
    """(case name, seed, batch n, inputs d, units u, zero initial state)."""
    cases = [("seeded GRU, 3 inputs -> 4 units, batch of 2", 0, 2, 3, 4, False),
             ("the first step (h_prev = 0), 1 input -> 5 units, batch of 3", 1, 3, 1, 5, True),
             ("seeded GRU, 6 inputs -> 8 units, batch of 4", 2, 4, 6, 8, False)]
    if strict:
        cases += [("seeded GRU, one sequence (batch of 1), 2 inputs -> 3 units", 3, 1, 2, 3,
                   False),
                  ("seeded GRU, 10 inputs -> 16 units, batch of 7", 4, 7, 10, 16, False),
                  ("the first step (h_prev = 0), 4 inputs -> 2 units, batch of 5", 5, 5, 4, 2,
                   True)]
    return cases


def _label(case: str, kind: str) -> str:
    return case.replace("GRU", kind.upper())


def _known_mistake(got, variants: dict, hints: dict) -> str:
    """The hint of the first known mistake that reproduces ``got``."""
    for name, value in variants.items():
        value = np.asarray(value, dtype=np.float64)
        if got.shape == value.shape and np.allclose(got, value, rtol=RTOL, atol=ATOL):
            return hints[name]
    return ""


# --- GRU -------------------------------------------------------------------------------------

_GRU_FORMULAS = ("z = sigmoid(x W_z + b_z + h U_z + rb_z), r = sigmoid(x W_r + b_r + h U_r + "
                 "rb_r), h~ = tanh(x W_h + b_h + r * (h U_h + rb_h)), h_new = z * h + (1 - z) "
                 "* h~.")
_GRU_HINTS = {
    "reset_before": "this is the GRU with the reset gate applied BEFORE the product, "
                    "(r * h) U_h (the 2014 paper, Keras' reset_after=False). Keras 3's default "
                    "multiplies after it: r * (h U_h + rb_h).",
    "update_swapped": "the update gate works the other way round: Keras keeps the old state "
                      "with weight z, h_new = z * h + (1 - z) * h~.",
    "no_reset": "the reset gate is missing: the candidate is tanh(x W_h + b_h + r * (h U_h + "
                "rb_h)).",
    "no_recurrent_bias": "the recurrent biases rb_z, rb_r, rb_h are missing: Keras adds them "
                         "to h U_z, h U_r and h U_h.",
    "zr_swapped": "the update and reset gates are swapped: z uses W_z, U_z, b_z, rb_z and r "
                  "uses the _r parameters.",
    "candidate_sigmoid": "the candidate state uses tanh, not the sigmoid.",
}


def _gru_variants(x, h, p) -> dict:
    def gate(g, bias=True):
        return _sigmoid(x @ p[f"W_{g}"] + p[f"b_{g}"] + h @ p[f"U_{g}"]
                        + (p[f"rb_{g}"] if bias else 0.0))

    z, r = gate("z"), gate("r")
    inner = h @ p["U_h"] + p["rb_h"]
    cand = np.tanh(x @ p["W_h"] + p["b_h"] + r * inner)
    z0, r0 = gate("z", False), gate("r", False)
    cand0 = np.tanh(x @ p["W_h"] + p["b_h"] + r0 * (h @ p["U_h"]))
    return {
        "reset_before": z * h + (1 - z) * np.tanh(x @ p["W_h"] + p["b_h"] + (r * h) @ p["U_h"]
                                                  + p["rb_h"]),
        "update_swapped": (1 - z) * h + z * cand,
        "no_reset": z * h + (1 - z) * np.tanh(x @ p["W_h"] + p["b_h"] + inner),
        "no_recurrent_bias": z0 * h + (1 - z0) * cand0,
        "zr_swapped": r * h + (1 - r) * np.tanh(x @ p["W_h"] + p["b_h"] + z * inner),
        "candidate_sigmoid": z * h + (1 - z) * _sigmoid(x @ p["W_h"] + p["b_h"] + r * inner),
    }


def check_gru_cell(gru_cell, strict: bool = False) -> None:
    """``gru_cell(x_t, h_prev, params)`` returns the next hidden state ``(n, u)``, equal to what
    a Keras GRU (``reset_after=True``) with the same weights computes for one step."""
    exercise = "gru_cell"
    for case, seed, n, d, u, zero in _cell_cases(strict):
        params = ref.init_gru_params(d, u, seed=seed)
        X, h, _ = _case_arrays(seed, n, 1, d, u, zero)
        layer = _keras_layer("gru", params, d)
        expected = np.asarray(layer(X, initial_state=[h])[1])
        given = _copy(ref.gru_params_from_keras(layer))
        got = call(gru_cell, X[:, 0, :].copy(), h.copy(), given, exercise=exercise, case=case,
                   hint="params holds W_z, W_r, W_h (d, u), U_z, U_r, U_h (u, u) and b_*, "
                        "rb_* (u,); x_t is (n, d), h_prev is (n, u).")
        arr = as_array(got, exercise, case)
        hint = _known_mistake(arr, _gru_variants(X[:, 0, :], h, params), _GRU_HINTS)
        assert_close(arr, expected, exercise=exercise, case=case, rtol=RTOL, atol=ATOL,
                     inputs=f"x_t {X[:, 0, :].shape}, h_prev {h.shape}, {u} units",
                     hint=hint or _GRU_FORMULAS)
    if strict:
        _check_params_unchanged(gru_cell, exercise, "gru")


def _check_params_unchanged(func, exercise: str, kind: str) -> None:
    X, h, c = _case_arrays(7, 2, 1, 3, 4)
    init = ref.init_gru_params if kind == "gru" else ref.init_lstm_params
    params = init(3, 4, seed=7)
    before = _copy(params)
    states = (h,) if kind == "gru" else (h, c)
    call(func, X[:, 0, :], *states, params, exercise=exercise, case="params unchanged")
    for k, v in before.items():
        if not np.array_equal(v, params[k]):
            fail(exercise, "params unchanged", got=f"params['{k}'] was modified",
                 hint="a step must not change the weights (no in-place += on params).")


_FORWARD_HINTS = {
    "not_carried": "every step started again from h0: pass the state you just computed to "
                   "the next step (h = gru_cell(X[:, t], h, params)).",
    "reversed": "the sequence was read backwards: go from t = 0 to t = T - 1.",
}


def _forward_cases(strict: bool):
    """(case name, seed, n, T, d, u, zero h0)."""
    cases = [("3 sequences of 5 steps, 2 channels -> 4 units", 10, 3, 5, 2, 4, False),
             ("2 sequences of 8 steps, 1 channel -> 3 units, h0 = 0", 11, 2, 8, 1, 3, True)]
    if strict:
        cases += [("one sequence of 12 steps, 3 channels -> 5 units", 12, 1, 12, 3, 5, False),
                  ("4 sequences of 1 step, 2 channels -> 2 units", 13, 4, 1, 2, 2, False),
                  ("5 sequences of 30 steps, 4 channels -> 6 units, h0 = 0", 14, 5, 30, 4, 6,
                   True)]
    return cases


def check_gru_forward(gru_forward, strict: bool = False) -> None:
    """``gru_forward(X, h0, params)`` with X ``(n, T, d)`` returns every hidden state,
    ``(n, T, u)``, equal to a Keras ``GRU(u, return_sequences=True)`` started from ``h0``."""
    exercise = "gru_forward"
    for case, seed, n, T, d, u, zero in _forward_cases(strict):
        params = ref.init_gru_params(d, u, seed=seed)
        X, h0, _ = _case_arrays(seed, n, T, d, u, zero)
        layer = _keras_layer("gru", params, d)
        expected = np.asarray(layer(X, initial_state=[h0])[0])
        got = call(gru_forward, X.copy(), h0.copy(), _copy(ref.gru_params_from_keras(layer)),
                   exercise=exercise, case=case,
                   hint="X is (n, T, d): step t is X[:, t, :]; h0 is (n, u).")
        arr = as_array(got, exercise, case)
        if arr.shape != expected.shape:
            if arr.shape == (n, u):
                hint = "only the last state came back: return all T states, shape (n, T, u)."
            elif arr.shape == (n, T + 1, u):
                hint = "h0 is included: return the T states after each step, not h0."
            elif arr.shape == (T, n, u):
                hint = "time-major result (T, n, u): stack the states along axis 1."
            else:
                hint = "the result should be (n, T, u): batch, time, units."
            fail(exercise, case, inputs=f"X {X.shape}, h0 {h0.shape}",
                 expected=f"shape {expected.shape}", got=f"shape {arr.shape}", hint=hint)
        variants = {
            "not_carried": np.stack([ref.gru_cell(X[:, t], h0, params) for t in range(T)], 1),
            "reversed": ref.gru_forward(X[:, ::-1], h0, params),
        }
        hint = _known_mistake(arr, variants if T > 1 else {}, _FORWARD_HINTS)
        assert_close(arr, expected, exercise=exercise, case=case, rtol=RTOL, atol=ATOL,
                     inputs=f"X {X.shape}, h0 {h0.shape}",
                     hint=hint or "loop over t, h = gru_cell(X[:, t, :], h, params), collect "
                                  "each h, np.stack(states, axis=1). Check gru_cell first.")


# --- LSTM ------------------------------------------------------------------------------------

_LSTM_FORMULAS = ("i, f, o = sigmoid(x W_g + h U_g + b_g) for g = i, f, o; c~ = tanh(x W_c + "
                  "h U_c + b_c); c_new = f * c + i * c~; h_new = o * tanh(c_new).")
_LSTM_HINTS = {
    "if_swapped": "the forget and input gates are swapped: the forget gate f multiplies the "
                  "old cell state, c_new = f * c_prev + i * c~.",
    "not_carried": "the old cell state is not carried: c_new = f * c_prev + i * c~ (the "
                   "f * c_prev term is the LSTM's memory).",
    "no_output_tanh": "h_new = o * tanh(c_new): the tanh of the new cell state is missing.",
    "no_output_gate": "h_new = o * tanh(c_new): the output gate o is missing.",
    "old_cell": "h_new uses the old cell state: compute c_new first, then "
                "h_new = o * tanh(c_new).",
}


def _lstm_variants(x, h, c, p) -> dict:
    def pre(g):
        return x @ p[f"W_{g}"] + h @ p[f"U_{g}"] + p[f"b_{g}"]

    i, f, o, cand = _sigmoid(pre("i")), _sigmoid(pre("f")), _sigmoid(pre("o")), np.tanh(pre("c"))
    c_new = f * c + i * cand
    swapped = i * c + f * cand
    lost = i * cand
    return {
        "if_swapped": (o * np.tanh(swapped), swapped),
        "not_carried": (o * np.tanh(lost), lost),
        "no_output_tanh": (o * c_new, c_new),
        "no_output_gate": (np.tanh(c_new), c_new),
        "old_cell": (o * np.tanh(c), c_new),
    }


def check_lstm_cell(lstm_cell, strict: bool = False) -> None:
    """``lstm_cell(x_t, h_prev, c_prev, params)`` returns ``(h_t, c_t)``, each ``(n, u)``, equal
    to what a Keras LSTM with the same weights computes for one step."""
    exercise = "lstm_cell"
    for case, seed, n, d, u, zero in _cell_cases(strict):
        case = _label(case, "lstm").replace("(h_prev = 0)", "(h_prev = c_prev = 0)")
        params = ref.init_lstm_params(d, u, seed=seed)
        X, h, c = _case_arrays(seed, n, 1, d, u, zero)
        layer = _keras_layer("lstm", params, d)
        _, exp_h, exp_c = (np.asarray(a) for a in layer(X, initial_state=[h, c]))
        got = call(lstm_cell, X[:, 0, :].copy(), h.copy(), c.copy(),
                   _copy(ref.lstm_params_from_keras(layer)), exercise=exercise, case=case,
                   hint="params holds W_i, W_f, W_c, W_o (d, u), U_* (u, u) and b_* (u,).")
        if not (isinstance(got, tuple) and len(got) == 2):
            fail(exercise, case, expected="a tuple (h_t, c_t)", got=type(got).__name__,
                 hint="end with `return h, c`.")
        got_h, got_c = as_array(got[0], exercise, case), as_array(got[1], exercise, case)
        if (got_h.shape == exp_c.shape and np.allclose(got_h, exp_c, rtol=RTOL, atol=ATOL)
                and not np.allclose(got_h, exp_h, rtol=RTOL, atol=ATOL)):
            fail(exercise, case, expected="(h_t, c_t)", got="(c_t, h_t)",
                 hint="return the hidden state first, then the cell state.")
        variants = _lstm_variants(X[:, 0, :], h, c, params)
        hint_c = _known_mistake(got_c, {k: v[1] for k, v in variants.items()}, _LSTM_HINTS)
        assert_close(got_c, exp_c, exercise=exercise, case=f"{case}: c_t", rtol=RTOL, atol=ATOL,
                     inputs=f"x_t {X[:, 0, :].shape}, h_prev {h.shape}, c_prev {c.shape}",
                     hint=hint_c or _LSTM_FORMULAS)
        hint_h = _known_mistake(got_h, {k: v[0] for k, v in variants.items()}, _LSTM_HINTS)
        assert_close(got_h, exp_h, exercise=exercise, case=f"{case}: h_t", rtol=RTOL, atol=ATOL,
                     inputs=f"x_t {X[:, 0, :].shape}, h_prev {h.shape}, c_prev {c.shape}",
                     hint=hint_h or _LSTM_FORMULAS)
    if strict:
        _check_params_unchanged(lstm_cell, exercise, "lstm")


# --- the classifier --------------------------------------------------------------------------


def _classifier_cases(strict: bool):
    cases = [("50 steps of 10 channels, 5 rhythms", 50, 10, 5),
             ("62 steps of 3 channels, 2 beat classes", 62, 3, 2)]
    if strict:
        cases += [("100 steps of 5 channels, 5 rhythms", 100, 5, 5),
                  ("20 steps of 1 channel, 3 classes", 20, 1, 3)]
    return cases


def check_build_gru_classifier(build_gru_classifier, strict: bool = False) -> None:
    """``build_gru_classifier(seq_len, n_channels, n_classes)`` returns a Keras model with input
    ``(None, seq_len, n_channels)``, a ``GRU(64)`` that returns only its last hidden state, and
    a ``Dense(n_classes, softmax)`` output: one prediction per sequence, ``(None, n_classes)``.
    Checked by layer types, units, ``layer.output.shape`` and ``model.outputs[0].shape``
    (Keras 3 has no ``output_shape``)."""
    import keras

    exercise = "build_gru_classifier"
    for case, T, d, k in _classifier_cases(strict):
        model, in_shape, out_shape = built_model(
            build_gru_classifier, T, d, k, exercise=exercise, case=case,
            hint="building the model raised an error: read its last line; the contract is "
                 "an input of (seq_len, n_channels), one GRU of 64 units that hands on its last "
                 "state, and class probabilities out (the table of the exercise).",
            input_hint="the model does not know the shape of its input, so no layer knows its "
                       "output shape: declare the input first (keras.Input), with the shape "
                       "given by the arguments.")
        if in_shape != (None, T, d):
            fail(exercise, case, expected=f"input shape (None, {T}, {d})", got=f"{in_shape}",
                 hint="a sequence input is (time steps, channels per step): time first, then "
                      "channels, both from the arguments; no Embedding (that layer is for word "
                      "ids, not signals).")
        grus = [layer for layer in model.layers if isinstance(layer, keras.layers.GRU)]
        if not grus:
            kinds = [type(layer).__name__ for layer in model.layers]
            fail(exercise, case, expected="a keras.layers.GRU layer", got=f"layers {kinds}",
                 hint="the exercise asks for a GRU (not an LSTM or SimpleRNN).")
        gru = grus[-1]
        if gru.units != UNITS:
            fail(exercise, case, expected=f"GRU({UNITS})", got=f"GRU({gru.units})",
                 hint="use 64 units, as the source document's model does.")
        if not gru.get_config().get("reset_after", True):
            fail(exercise, case, expected="reset_after=True (the Keras default)",
                 got="reset_after=False",
                 hint="keep Keras' default, the form your gru_cell computes.")
        if len(out_shape) == 3 or gru.get_config().get("return_sequences"):
            fail(exercise, case, expected=f"one prediction per sequence, (None, {k})",
                 got=f"model output {out_shape}, GRU output {keras_shape(gru.output)}",
                 hint="the GRU hands on its state at every time step, so the model predicts "
                      "once per step (erratum E6): for one prediction per sequence it must hand "
                      "on only its last state.")
        if keras_shape(gru.output) != (None, UNITS):
            fail(exercise, case, expected=f"GRU output (None, {UNITS})",
                 got=f"{keras_shape(gru.output)}",
                 hint="one vector of 64 numbers per sequence comes out of the GRU: nothing "
                      "between the input and the GRU should change the sequence's shape.")
        if out_shape != (None, k):
            fail(exercise, case, expected=f"model output (None, {k})", got=f"{out_shape}",
                 hint="one probability per class: the last layer has as many outputs as there "
                      "are classes (the argument n_classes).")
        x = case_rng(T).normal(size=(3, T, d)).astype("float32")
        assert_class_probabilities(model, x, exercise=exercise, case=case, what="sequence")


# --- split_by_patient ------------------------------------------------------------------------


def _patient_cases(strict: bool):
    """(case name, patient ids per row, test_size)."""
    rng = case_rng(440)
    beats = rng.integers(5, 40, 20)
    ids20 = np.repeat(np.arange(100, 120), beats)
    cases = [
        ("20 patients (ids 100-119), 5 to 39 beats each, rows grouped by patient, test 0.25",
         ids20, 0.25),
        ("the same beats in random row order, test 0.3", rng.permutation(ids20), 0.3),
        ("8 patients with text ids, test 0.5", np.repeat([f"rec{k}" for k in
                                                           (101, 105, 106, 119, 200, 203, 208,
                                                            210)], 6), 0.5),
    ]
    cases += [  # the edges of the contract: neither part may be empty
        ("4 patients, test 0.2 (0.8 of a patient)", np.repeat([11, 12, 13, 14], [5, 3, 8, 2]),
         0.2),
        ("3 patients, test 0.9 (2.7 of 3 patients)", np.repeat([21, 22, 23], [4, 6, 3]), 0.9),
    ]
    if strict:
        ids44 = np.repeat(np.arange(44), rng.integers(1, 30, 44))
        cases += [("44 patients, test 0.5, shuffled rows", rng.permutation(ids44), 0.5),
                  ("3 patients of very different sizes, test 0.34",
                   np.repeat([7, 8, 9], [200, 3, 40]), 0.34),
                  ("50 patients of one beat each, test 0.2", np.arange(50) * 3, 0.2),
                  ("10 patients, test 0.04 (0.4 of a patient)",
                   rng.permutation(np.repeat(np.arange(10), 3)), 0.04),
                  ("2 patients, test 0.8 (1.6 of 2 patients)", np.repeat([5, 6], [7, 2]), 0.8)]
    return cases


def _allowed_test_patients(test_size: float, n_patients: int) -> tuple[int, int]:
    """How many test patients the contract allows: ``test_size * n_patients`` rounded either
    way (floor or ceil), but at least 1 and at most ``n_patients - 1``."""
    exact = test_size * n_patients
    return (max(1, int(np.floor(exact))), min(n_patients - 1, int(np.ceil(exact))))


def _as_indices(got, n, exercise, case, inputs):
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        fail(exercise, case, inputs=inputs, expected="a pair (train_idx, test_idx)",
             got=type(got).__name__, hint="return train_idx, test_idx: two arrays of row "
                                          "indices.")
    parts = []
    for name, part in zip(("train_idx", "test_idx"), got, strict=True):
        arr = np.asarray(part)
        if arr.dtype.kind not in "iu" or arr.ndim != 1:
            fail(exercise, case, inputs=inputs, expected=f"{name}: a 1-D array of row indices "
                 "(integers)", got=f"dtype {arr.dtype}, shape {arr.shape}: {_short(arr, 60)}",
                 hint="return the positions of the rows (np.flatnonzero(mask)), not the patient "
                      "ids or a boolean mask.")
        if arr.size and (arr.min() < 0 or arr.max() >= n):
            fail(exercise, case, inputs=inputs, expected=f"{name}: row indices in 0..{n - 1}",
                 got=f"values from {arr.min()} to {arr.max()}",
                 hint="return the positions of the rows, not the patient ids.")
        parts.append(arr)
    return parts


def check_split_by_patient(split_by_patient, strict: bool = False) -> None:
    """``split_by_patient(patient_ids, test_size, seed)`` returns ``(train_idx, test_idx)``:
    integer row indices that together hold every row once, with no patient in both parts;
    ``test_size * n_patients`` patients in the test part, rounded either way (floor or ceil)
    but at least 1 and at most ``n_patients - 1``, so that neither part is empty
    (:func:`_allowed_test_patients`); the same split for the same seed, and other splits for
    other seeds."""
    exercise = "split_by_patient"
    for case, ids, test_size in _patient_cases(strict):
        n, patients = len(ids), np.unique(ids)
        inputs = f"patient_ids {_short(ids, 70)} ({n} rows, {patients.size} patients), " \
                 f"test_size={test_size}"
        got = call(split_by_patient, ids.copy(), test_size, 0, exercise=exercise, case=case,
                   hint="patient_ids holds one id per row; return (train_idx, test_idx), with "
                        "at least one patient in each part.")
        train, test = _as_indices(got, n, exercise, case, inputs)
        rows = np.concatenate([train, test])
        if rows.size != n or np.unique(rows).size != n:
            hint = ("each row goes to exactly one part: the rows of the test patients to "
                    "test_idx, all other rows to train_idx.")
            if rows.size == patients.size and np.isin(rows, ids).all():
                hint = ("these are patients, not rows: return the positions of the rows of "
                        "those patients (np.flatnonzero(np.isin(patient_ids, test_patients))), "
                        "not the patient ids.")
            fail(exercise, case, inputs=inputs, expected=f"every one of the {n} rows once",
                 got=f"{rows.size} indices, {np.unique(rows).size} distinct", hint=hint)
        shared = np.intersect1d(ids[train], ids[test])
        if shared.size:
            fail(exercise, case, inputs=inputs, expected="no patient in both parts",
                 got=f"{shared.size} patient(s) with rows in both, e.g. {shared[:3].tolist()}",
                 hint="split the *patients* (np.unique(patient_ids)), then take all rows of "
                      "each: a split of the rows lets one patient's beats into both parts, and "
                      "the test then measures memory of that patient, not generalisation.")
        k = np.unique(ids[test]).size
        low, high = _allowed_test_patients(test_size, patients.size)
        exact = f"{test_size} x {patients.size} = {test_size * patients.size:.3g} patients"
        allowed = (f"{low}" if low == high else f"{low} or {high}") \
            + (" test patient" if high == 1 else " test patients")
        if k == 0 or k == patients.size:
            empty = "test" if k == 0 else "training"
            fail(exercise, case, inputs=inputs,
                 expected=f"{allowed} ({exact}, rounded; never 0, never all)",
                 got=f"{k} test patients: the {empty} part is empty",
                 hint=f"an empty {empty} part {'measures' if k == 0 else 'learns'} nothing: "
                      "when test_size x n_patients "
                      "rounds to 0 or to every patient, the contract still keeps at least one "
                      "patient in each part.")
        if not low <= k <= high:
            fail(exercise, case, inputs=inputs,
                 expected=f"{allowed} ({exact}, rounded)",
                 got=f"{k} patients ({test.size} rows)",
                 hint="test_size is a fraction of the patients, not of the rows: count the "
                      "patients, then round.")
    ids = np.repeat(np.arange(30), 4)
    runs = [tuple(np.asarray(call(split_by_patient, ids.copy(), 0.3, seed, exercise=exercise,
                                  case="seeds")[1]).tolist()) for seed in (0, 0, 1, 2)]
    if runs[0] != runs[1]:
        fail(exercise, "the same seed twice (30 patients, test 0.3)",
             expected="the same test rows", got="different test rows",
             hint="draw the patients with a generator made from seed "
                  "(np.random.default_rng(seed)), not with the global np.random state.")
    if len(set(runs[1:])) == 1:
        fail(exercise, "seeds 0, 1 and 2 (30 patients, test 0.3)",
             expected="different test patients for different seeds",
             got="the same test rows for every seed",
             hint="shuffle the patients with the seed before choosing the test patients; "
                  "taking the first or last patients is always the same split.")


EXERCISES = {
    "gru_cell": (check_gru_cell, ref.gru_cell),
    "gru_forward": (check_gru_forward, ref.gru_forward),
    "lstm_cell": (check_lstm_cell, ref.lstm_cell),
    "build_gru_classifier": (check_build_gru_classifier, ref_models.build_gru_classifier),
    "split_by_patient": (check_split_by_patient, ref_tabular.split_by_patient),
}


def _register_samples() -> None:
    SAMPLE_ARGS["split_by_patient"] = lambda: (np.repeat(np.arange(6), 3), 0.34, 0)
    def gru_args():
        X, h, _ = _case_arrays(0, 2, 4, 3, 4)
        return X[:, 0, :], h, ref.init_gru_params(3, 4, seed=0)

    def forward_args():
        X, h, _ = _case_arrays(0, 2, 4, 3, 4)
        return X, h, ref.init_gru_params(3, 4, seed=0)

    def lstm_args():
        X, h, c = _case_arrays(0, 2, 1, 3, 4)
        return X[:, 0, :], h, c, ref.init_lstm_params(3, 4, seed=0)

    SAMPLE_ARGS["gru_cell"] = gru_args
    SAMPLE_ARGS["gru_forward"] = forward_args
    SAMPLE_ARGS["lstm_cell"] = lstm_args
    SAMPLE_ARGS["build_gru_classifier"] = lambda: (20, 3, 2)


_register_samples()
