"""The chapter-4 checkers: they accept right answers (also written differently from the
reference), reject the mistakes learners make with a message that names the exercise, the
case and the mistake, in visible and strict mode, and hold up against cheating and patching.

The generic behaviour (references pass, stubs and errors, non-functions, the fallback to the
reference) is tested for every exercise in test_checkers.py.
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

from medai_lessons.grading import (
    EXERCISES,
    assert_own_implementation,
    check_build_gru_classifier,
    check_gru_cell,
    check_gru_forward,
    check_lstm_cell,
    check_split_by_patient,
)
from nbtools import notebook

CHAPTER_4 = ["gru_cell", "gru_forward", "lstm_cell", "build_gru_classifier",
             "split_by_patient"]
FIRST_CELL_CASE = "seeded GRU, 3 inputs -> 4 units, batch of 2"
FIRST_LSTM_CASE = "seeded LSTM, 3 inputs -> 4 units, batch of 2"
FIRST_FORWARD_CASE = "3 sequences of 5 steps, 2 channels -> 4 units"
FIRST_MODEL_CASE = "50 steps of 10 channels, 5 rhythms"


def sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def test_chapter_4_exercises_are_registered_with_their_checkers():
    for name in CHAPTER_4:
        checker, reference = EXERCISES[name]
        assert checker.__name__ == f"check_{name}"
        assert reference.__module__ in ("medai_lessons.nn.rnn", "medai_lessons.models",
                                       "medai_lessons.tabular")


# --- wrong versions, as learners write them --------------------------------------------------


def gru_parts(x, h, p, recurrent_bias=True):
    rb = {g: p[f"rb_{g}"] if recurrent_bias else 0.0 for g in "zrh"}
    z = sig(x @ p["W_z"] + p["b_z"] + h @ p["U_z"] + rb["z"])
    r = sig(x @ p["W_r"] + p["b_r"] + h @ p["U_r"] + rb["r"])
    return z, r, rb


def gru_reset_before(x, h, p):  # the 2014 paper / reset_after=False
    z, r, _ = gru_parts(x, h, p)
    cand = np.tanh(x @ p["W_h"] + p["b_h"] + (r * h) @ p["U_h"] + p["rb_h"])
    return z * h + (1 - z) * cand


def gru_update_swapped(x, h, p):  # h = (1 - z) h + z h~
    z, r, _ = gru_parts(x, h, p)
    cand = np.tanh(x @ p["W_h"] + p["b_h"] + r * (h @ p["U_h"] + p["rb_h"]))
    return (1 - z) * h + z * cand


def gru_no_reset(x, h, p):
    z, _, _ = gru_parts(x, h, p)
    cand = np.tanh(x @ p["W_h"] + p["b_h"] + h @ p["U_h"] + p["rb_h"])
    return z * h + (1 - z) * cand


def gru_no_recurrent_bias(x, h, p):
    z, r, _ = gru_parts(x, h, p, recurrent_bias=False)
    cand = np.tanh(x @ p["W_h"] + p["b_h"] + r * (h @ p["U_h"]))
    return z * h + (1 - z) * cand


def gru_candidate_sigmoid(x, h, p):
    z, r, _ = gru_parts(x, h, p)
    return z * h + (1 - z) * sig(x @ p["W_h"] + p["b_h"] + r * (h @ p["U_h"] + p["rb_h"]))


def gru_right(x, h, p):
    z, r, _ = gru_parts(x, h, p)
    cand = np.tanh(x @ p["W_h"] + p["b_h"] + r * (h @ p["U_h"] + p["rb_h"]))
    return z * h + (1 - z) * cand


def forward_last_only(X, h0, p):
    h = h0
    for t in range(X.shape[1]):
        h = gru_right(X[:, t], h, p)
    return h


def forward_with_h0(X, h0, p):
    states = [h0]
    for t in range(X.shape[1]):
        states.append(gru_right(X[:, t], states[-1], p))
    return np.stack(states, axis=1)


def forward_not_carried(X, h0, p):
    return np.stack([gru_right(X[:, t], h0, p) for t in range(X.shape[1])], axis=1)


def forward_time_major(X, h0, p):
    h, states = h0, []
    for t in range(X.shape[1]):
        h = gru_right(X[:, t], h, p)
        states.append(h)
    return np.stack(states)  # axis 0: (T, n, u)


def forward_reversed(X, h0, p):
    h, states = h0, []
    for t in reversed(range(X.shape[1])):
        h = gru_right(X[:, t], h, p)
        states.append(h)
    return np.stack(states, axis=1)


def lstm_gates(x, h, p):
    """i, f, o and the cell candidate, right."""
    def pre(g):
        return x @ p[f"W_{g}"] + h @ p[f"U_{g}"] + p[f"b_{g}"]

    return sig(pre("i")), sig(pre("f")), sig(pre("o")), np.tanh(pre("c"))


def lstm_gates_swapped(x, h, c, p):
    i, f, o, cand = lstm_gates(x, h, p)
    c_new = i * c + f * cand
    return o * np.tanh(c_new), c_new


def lstm_cell_not_carried(x, h, c, p):
    i, f, o, cand = lstm_gates(x, h, p)
    return o * np.tanh(i * cand), i * cand


def lstm_no_output_tanh(x, h, c, p):
    i, f, o, cand = lstm_gates(x, h, p)
    return o * (f * c + i * cand), f * c + i * cand


def lstm_returns_c_first(x, h, c, p):
    i, f, o, cand = lstm_gates(x, h, p)
    return f * c + i * cand, o * np.tanh(f * c + i * cand)


def lstm_returns_h_only(x, h, c, p):
    i, f, o, cand = lstm_gates(x, h, p)
    return o * np.tanh(f * c + i * cand)


def classifier(name, recurrent=lambda: keras.layers.GRU(64), activation="softmax",
               transposed=False):
    """A learner's build_gru_classifier with one thing changed."""
    def build(T, d, k):
        return keras.Sequential([keras.Input((d, T) if transposed else (T, d)), recurrent(),
                                 keras.layers.Dense(k, activation=activation)])

    build.__name__ = name
    return build


# the source document's GRU (erratum E6)
model_return_sequences = classifier(
    "model_return_sequences", lambda: keras.layers.GRU(64, return_sequences=True))
model_lstm = classifier("model_lstm", lambda: keras.layers.LSTM(64))
model_sigmoid = classifier("model_sigmoid", activation="sigmoid")
model_32_units = classifier("model_32_units", lambda: keras.layers.GRU(32))
model_transposed_input = classifier("model_transposed_input", transposed=True)
model_reset_before = classifier("model_reset_before",
                                lambda: keras.layers.GRU(64, reset_after=False))


def model_without_input(T, d, k):
    return keras.Sequential([keras.layers.GRU(64), keras.layers.Dense(k, activation="softmax")])


def model_embedding(T, d, k):  # the source's Embedding, on a signal
    return keras.Sequential([keras.Input((T,)), keras.layers.Embedding(10000, 64),
                             keras.layers.GRU(64), keras.layers.Dense(k, activation="softmax")])


def model_not_returned(T, d, k):
    keras.Sequential([keras.Input((T, d)), keras.layers.GRU(64),
                      keras.layers.Dense(k, activation="softmax")])


# --- split_by_patient ------------------------------------------------------------------------

PATIENTS_CASE = "20 patients (ids 100-119), 5 to 39 beats each, rows grouped by patient, test 0.25"


def sbp_rows(patient_ids, test_size, seed):
    """A random split of the rows (beats), as for independent samples."""
    order = np.random.default_rng(seed).permutation(len(patient_ids))
    n_test = int(round(test_size * len(patient_ids)))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def sbp_contiguous(patient_ids, test_size, seed):
    """The last rows as the test part."""
    n_test = int(round(test_size * len(patient_ids)))
    idx = np.arange(len(patient_ids))
    return idx[:-n_test], idx[-n_test:]


def _n_test(test_size, n_patients):
    """The contract's number of test patients (the mistakes below are elsewhere)."""
    return min(max(int(round(test_size * n_patients)), 1), n_patients - 1)


def sbp_first_patients(patient_ids, test_size, seed):
    """The first patients (sorted ids), whatever the seed."""
    patients = np.unique(patient_ids)
    test = patients[: _n_test(test_size, len(patients))]
    mask = np.isin(patient_ids, test)
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def sbp_patient_ids(patient_ids, test_size, seed):
    """Returns the patients, not the rows."""
    patients = np.random.default_rng(seed).permutation(np.unique(patient_ids))
    n_test = int(round(test_size * len(patients)))
    return patients[n_test:], patients[:n_test]


def sbp_global_random(patient_ids, test_size, seed):
    """np.random.shuffle: the global state, the seed unused."""
    patients = np.unique(patient_ids).copy()
    np.random.shuffle(patients)
    test = patients[: _n_test(test_size, len(patients))]
    mask = np.isin(patient_ids, test)
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def sbp_rows_fraction(patient_ids, test_size, seed):
    """Test patients added until the test part holds test_size of the *rows*: too many
    patients when the first ones drawn are small."""
    patients = np.random.default_rng(seed).permutation(np.unique(patient_ids))
    chosen, rows = [], 0
    for p in patients:
        if rows >= test_size * len(patient_ids):
            break
        chosen.append(p)
        rows += int(np.sum(np.asarray(patient_ids) == p))
    mask = np.isin(patient_ids, chosen)
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def sbp_floor(patient_ids, test_size, seed):
    """int() cuts 0.8 of a patient to 0: an empty test part."""
    patients = np.random.default_rng(seed).permutation(np.unique(patient_ids))
    in_test = np.isin(patient_ids, patients[: int(test_size * len(patients))])
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)


def sbp_round_only(patient_ids, test_size, seed):
    """round() alone: 0.9 of 3 patients rounds to all 3, nobody left for training."""
    patients = np.random.default_rng(seed).permutation(np.unique(patient_ids))
    in_test = np.isin(patient_ids, patients[: round(test_size * len(patients))])
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)


def sbp_group_shuffle_split(patient_ids, test_size, seed):
    """scikit-learn's GroupShuffleSplit: right, except that it refuses to leave the training
    part empty (it raises) where the contract keeps one patient there."""
    from sklearn.model_selection import GroupShuffleSplit

    splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    return next(splitter.split(np.zeros(len(patient_ids)), groups=patient_ids))


def sbp_group_shuffle_split_bounded(patient_ids, test_size, seed):
    """GroupShuffleSplit with the number of test patients (ceil) kept within 1..n - 1."""
    from sklearn.model_selection import GroupShuffleSplit

    n = len(np.unique(patient_ids))
    n_test = min(max(int(np.ceil(test_size * n)), 1), n - 1)
    splitter = GroupShuffleSplit(n_splits=1, test_size=n_test, random_state=seed)
    return next(splitter.split(np.zeros(len(patient_ids)), groups=patient_ids))


def sbp_pandas(patient_ids, test_size, seed):
    import pandas as pd

    ids = pd.Series(patient_ids)
    patients = ids.drop_duplicates().sample(frac=1.0, random_state=seed)
    n_test = min(max(round(test_size * len(patients)), 1), len(patients) - 1)
    test = set(patients.iloc[:n_test])
    in_test = ids.isin(test).to_numpy()
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)


WRONG = [
    (check_gru_cell, gru_reset_before, FIRST_CELL_CASE, "BEFORE the product"),
    (check_gru_cell, gru_update_swapped, FIRST_CELL_CASE, "update gate works the other way"),
    (check_gru_cell, gru_no_reset, FIRST_CELL_CASE, "reset gate is missing"),
    (check_gru_cell, gru_no_recurrent_bias, FIRST_CELL_CASE, "recurrent biases"),
    (check_gru_cell, gru_candidate_sigmoid, FIRST_CELL_CASE, "uses tanh, not the sigmoid"),
    (check_gru_forward, forward_last_only, FIRST_FORWARD_CASE, "only the last state"),
    (check_gru_forward, forward_with_h0, FIRST_FORWARD_CASE, "h0 is included"),
    (check_gru_forward, forward_not_carried, FIRST_FORWARD_CASE, "started again from h0"),
    (check_gru_forward, forward_time_major, FIRST_FORWARD_CASE, "time-major"),
    (check_gru_forward, forward_reversed, FIRST_FORWARD_CASE, "read backwards"),
    (check_lstm_cell, lstm_gates_swapped, FIRST_LSTM_CASE + ": c_t",
     "forget and input gates are swapped"),
    (check_lstm_cell, lstm_cell_not_carried, FIRST_LSTM_CASE + ": c_t", "is not carried"),
    (check_lstm_cell, lstm_no_output_tanh, FIRST_LSTM_CASE + ": h_t", "tanh of the new cell"),
    (check_lstm_cell, lstm_returns_c_first, FIRST_LSTM_CASE, "hidden state first"),
    (check_lstm_cell, lstm_returns_h_only, FIRST_LSTM_CASE, "return h, c"),
    (check_build_gru_classifier, model_return_sequences, FIRST_MODEL_CASE, "erratum E6"),
    (check_build_gru_classifier, model_lstm, FIRST_MODEL_CASE, "not an LSTM"),
    (check_build_gru_classifier, model_sigmoid, FIRST_MODEL_CASE, "sum to 1"),
    (check_build_gru_classifier, model_32_units, FIRST_MODEL_CASE, "64 units"),
    (check_build_gru_classifier, model_transposed_input, FIRST_MODEL_CASE, "time first"),
    (check_build_gru_classifier, model_without_input, FIRST_MODEL_CASE, "keras.Input"),
    (check_build_gru_classifier, model_reset_before, FIRST_MODEL_CASE, "reset_after=False"),
    (check_build_gru_classifier, model_embedding, FIRST_MODEL_CASE, "no Embedding"),
    (check_build_gru_classifier, model_not_returned, FIRST_MODEL_CASE, "return the model"),
    (check_split_by_patient, sbp_rows, PATIENTS_CASE, "lets one patient's beats into both"),
    (check_split_by_patient, sbp_contiguous, PATIENTS_CASE, "no patient in both parts"),
    (check_split_by_patient, sbp_first_patients, "seeds 0, 1 and 2", "shuffle the patients"),
    (check_split_by_patient, sbp_patient_ids, PATIENTS_CASE, "not the patient ids"),
    (check_split_by_patient, sbp_global_random, "the same seed twice", "default_rng(seed)"),
    (check_split_by_patient, sbp_rows_fraction, PATIENTS_CASE, "not of the rows"),
    (check_split_by_patient, sbp_floor, "4 patients, test 0.2 (0.8 of a patient)",
     "the test part is empty"),
    (check_split_by_patient, sbp_round_only, "3 patients, test 0.9 (2.7 of 3 patients)",
     "the training part is empty"),
    (check_split_by_patient, sbp_group_shuffle_split, "3 patients, test 0.9 (2.7 of 3 patients)",
     "at least one patient in each part"),
]


# the fragments are plain text
test_checker_rejects_realistic_mistake = rejects_mistakes(
    [(checker, wrong, case, re.escape(fragment)) for checker, wrong, case, fragment in WRONG])
test_every_chapter_4_exercise_has_at_least_three_wrong_versions = has_wrong_versions(
    CHAPTER_4, WRONG)
test_build_gru_classifier_hints_point_at_the_idea = hints_without_layer_code(
    [row for row in WRONG if row[0] is check_build_gru_classifier])


def test_a_value_mismatch_states_the_tolerance_and_expected_against_got():
    with pytest.raises(AssertionError) as info:
        check_gru_cell(gru_no_reset)
    message = str(info.value)
    assert "(tolerance: rtol=1e-05, atol=1e-06)" in message
    assert "expected:" in message and "got:" in message


# --- right answers written differently ---------------------------------------------------------


def gru_float32(x, h, p):
    p = {k: v.astype(np.float32) for k, v in p.items()}
    return gru_right(x.astype(np.float32), h.astype(np.float32), p)


def forward_comprehension(X, h0, p):
    states = []
    for t in range(X.shape[1]):
        states.append(gru_right(X[:, t], states[-1] if states else h0, p))
    return np.array(states).transpose(1, 0, 2)


def lstm_textbook(x, h, c, p):
    i = sig(x @ p["W_i"] + h @ p["U_i"] + p["b_i"])
    f = sig(x @ p["W_f"] + h @ p["U_f"] + p["b_f"])
    o = sig(x @ p["W_o"] + h @ p["U_o"] + p["b_o"])
    c = f * c + i * np.tanh(x @ p["W_c"] + h @ p["U_c"] + p["b_c"])
    return o * np.tanh(c), c


def model_functional(T, d, k):
    inputs = keras.Input(shape=(T, d))
    state = keras.layers.GRU(64, name="gru")(inputs)
    return keras.Model(inputs, keras.layers.Dense(k, activation="softmax")(state))


def model_with_dropout(T, d, k):
    return keras.Sequential([keras.Input((T, d)), keras.layers.GRU(64), keras.layers.Dropout(0.2),
                             keras.layers.Dense(k, activation="softmax")])


RIGHT = [(check_gru_cell, gru_right), (check_gru_cell, gru_float32),
         (check_gru_forward, forward_comprehension), (check_lstm_cell, lstm_textbook),
         (check_build_gru_classifier, model_functional),
         (check_build_gru_classifier, model_with_dropout),
         (check_split_by_patient, sbp_group_shuffle_split_bounded),
         (check_split_by_patient, sbp_pandas)]


test_checker_accepts_right_answers_written_differently = accepts_variants(RIGHT)


def test_strict_mode_catches_a_cell_that_changes_its_params():
    def gru_in_place(x, h, p):
        p["b_z"] += 0.0  # harmless numbers, but ...
        p["b_z"] -= 1e-3  # ... the weights changed after the step
        p["b_z"] += 1e-3
        p["U_z"] *= 1.0 + 1e-9
        return gru_right(x, h, p)

    check_gru_cell(gru_in_place)  # values right (within tolerance): the visible check passes
    with pytest.raises(AssertionError, match=r"^gru_cell: failed on case 'params unchanged'"):
        check_gru_cell(gru_in_place, strict=True)


# --- own work, cheats and patches --------------------------------------------------------------

HONEST = """
import numpy as np
import keras

def _sig(v):
    return 0.5 * (1 + np.tanh(0.5 * v))

def gru_cell(x_t, h_prev, params):
    p = params
    z = _sig(x_t @ p["W_z"] + p["b_z"] + h_prev @ p["U_z"] + p["rb_z"])
    r = _sig(x_t @ p["W_r"] + p["b_r"] + h_prev @ p["U_r"] + p["rb_r"])
    h = np.tanh(x_t @ p["W_h"] + p["b_h"] + r * (h_prev @ p["U_h"] + p["rb_h"]))
    return z * h_prev + (1 - z) * h

def gru_forward(X, h0, params):
    h, out = h0, []
    for t in range(X.shape[1]):
        h = gru_cell(X[:, t, :], h, params)
        out.append(h)
    return np.stack(out, axis=1)

def lstm_cell(x_t, h_prev, c_prev, params):
    def pre(g):
        return x_t @ params["W_" + g] + h_prev @ params["U_" + g] + params["b_" + g]
    c = _sig(pre("f")) * c_prev + _sig(pre("i")) * np.tanh(pre("c"))
    return _sig(pre("o")) * np.tanh(c), c

def build_gru_classifier(seq_len, n_channels, n_classes):
    return keras.Sequential([keras.Input(shape=(seq_len, n_channels)), keras.layers.GRU(64),
                             keras.layers.Dense(n_classes, activation="softmax")])
def split_by_patient(patient_ids, test_size, seed):
    patient_ids = np.asarray(patient_ids)
    patients = np.random.default_rng(seed).permutation(np.unique(patient_ids))
    n_test = min(max(1, int(round(test_size * len(patients)))), len(patients) - 1)
    in_test = np.isin(patient_ids, patients[:n_test])
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)
"""


@pytest.mark.parametrize("name", CHAPTER_4)
def test_honest_answers_pass_strict_checks_and_are_the_learners_own(name):
    learner = notebook(HONEST)[name]
    EXERCISES[name][0](learner, strict=True)
    assert assert_own_implementation(learner, name) is None


CHEATS = {
    "gru_cell": """
        from medai_lessons.nn.rnn import gru_cell as _ref

        def gru_cell(x_t, h_prev, params):
            return _ref(x_t, h_prev, params)
    """,
    "gru_forward": """
        import importlib

        def gru_forward(X, h0, params):  # invisible to a name scan, caught when called
            module = importlib.import_module("medai_" + "lessons.nn.rnn")
            return module.gru_forward(X, h0, params)
    """,
    "lstm_cell": """
        def lstm_cell(x_t, h_prev, c_prev, params):
            from medai_lessons.nn import rnn
            return rnn.lstm_cell(x_t, h_prev, c_prev, params)
    """,
    "build_gru_classifier": """
        from medai_lessons import models

        def build_gru_classifier(seq_len, n_channels, n_classes):
            return models.build_gru_classifier(seq_len, n_channels, n_classes)
    """,
    "split_by_patient": """
        from medai_lessons.tabular import split_by_patient as course_split

        def split_by_patient(patient_ids, test_size, seed):
            return course_split(patient_ids, test_size, seed)
    """,
}


@pytest.mark.parametrize("name", CHAPTER_4)
def test_answers_that_call_the_reference_are_caught(name):
    learner = notebook(CHEATS[name])[name]
    EXERCISES[name][0](learner)  # right values ...
    with pytest.raises(AssertionError, match=rf"^{name}: failed on case 'own implementation'"):
        assert_own_implementation(learner, name)  # ... but not the learner's work


def test_a_checker_patched_into_the_package_does_not_survive_the_fresh_reload():
    """Hidden tests reload the checking code; a chapter checker found by the package's
    discovery must come back fresh too, and so must the reference (run in a subprocess:
    reloading changes modules for the rest of a session)."""
    code = textwrap.dedent("""
        import importlib, sys
        import medai_lessons.grading as g, medai_lessons.grading.ch04 as c4
        import medai_lessons.nn.rnn as r
        fake = lambda *a, **k: None
        g.check_gru_cell = c4.check_gru_cell = r.gru_cell = fake
        import medai_lessons.grading.fresh as fresh
        _g = importlib.reload(fresh).grading()
        fresh_ch04 = sys.modules["medai_lessons.grading.ch04"]
        print(_g.check_gru_cell is fresh_ch04.check_gru_cell is not fake,
              _g.EXERCISES["gru_cell"][1] is r.gru_cell is not fake,
              "tensorflow" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "True", "False"], out
