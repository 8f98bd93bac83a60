"""Checkers for chapter 6, the tabular case study: a stratified split, a preprocessor fitted
on the training part only, the source document's network compiled with metrics that exist,
a screening threshold, and a clinical evaluation.

Each ``check_*`` takes the learner's function and raises ``AssertionError`` on the first case
that fails, naming the case, what was expected and what came back, with a hint aimed at the
usual mistake (a split that is not stratified or lets patients into two parts, a scaler that
refits on the test data, a softmax over one unit, a TF1 metric, a threshold chosen for
accuracy...). Properties are checked rather than exact rows where several answers are right:
any stratified, disjoint, reproducible split passes, whichever random generator made it.
``strict=True`` adds more cases of the kinds the visible ones show.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from medai_lessons import metrics as ref_metrics
from medai_lessons import models as ref_models
from medai_lessons import tabular as ref
from medai_lessons.grading.ch01 import _metric_hint
from medai_lessons.grading.core import (
    SAMPLE_ARGS,
    CheckFailed,
    _short,
    as_array,
    built_model,
    call,
    case_rng,
    fail,
    metric_dict,
    model_outputs,
    same_metric,
)

PARTS = ("X_train", "X_val", "X_test", "y_train", "y_val", "y_test")
#: a part's number of diseased patients may differ from its share of the whole by this much
STRATIFY_TOLERANCE = 1.5
#: a part's size may differ from its fraction of the whole by this many patients
SIZE_TOLERANCE = 1.5


def _labels(n: int, prevalence: float, seed: int) -> np.ndarray:
    y = np.zeros(n, dtype=np.int64)
    y[case_rng(seed).choice(n, int(round(prevalence * n)), replace=False)] = 1
    return y


# --- stratified_split ------------------------------------------------------------------------


def _split_table(n: int, prevalence: float, seed: int, frame: bool):
    """Features whose first column ``row_id`` says which patient a row is, and labels."""
    rng = case_rng(100 + seed)
    y = _labels(n, prevalence, seed)
    X = np.column_stack([np.arange(n, dtype=float), rng.normal(size=(n, 3))])
    if not frame:
        return X, y
    import pandas as pd

    index = pd.Index([f"P{i:04d}" for i in rng.permutation(n)], name="patient_id")
    return (pd.DataFrame(X, columns=["row_id", "a", "b", "c"], index=index),
            pd.Series(y, index=index, name="malignant"))


def _split_cases(strict: bool):
    """(case, n, prevalence, test_size, val_size, seed, as DataFrame)."""
    cases = [
        ("120 seeded patients, 30 % diseased, test 0.25, val 0.15", 120, 0.3, 0.25, 0.15, 0,
         False),
        ("a DataFrame of 200 patients, 20 % diseased, test 0.2, val 0.3", 200, 0.2, 0.2, 0.3, 1,
         True),
        ("600 seeded patients, 10 % diseased, test 0.2, val 0.1", 600, 0.1, 0.2, 0.1, 2, False),
    ]
    if strict:
        cases += [
            ("a DataFrame of 569 patients, 37 % diseased, test 0.2, val 0.2", 569, 0.37, 0.2,
             0.2, 3, True),
            ("97 seeded patients, 10 % diseased, test 0.3, val 0.3", 97, 0.1, 0.3, 0.3, 4,
             False),
            ("1000 seeded patients, 5 % diseased, test 0.15, val 0.15", 1000, 0.05, 0.15, 0.15,
             5, False),
        ]
    return cases


def _row_ids(part, frame: bool, exercise: str, case: str, name: str) -> np.ndarray:
    if frame:
        import pandas as pd

        if not isinstance(part, pd.DataFrame):
            fail(exercise, case, expected=f"{name} as a DataFrame, like X",
                 got=type(part).__name__,
                 hint="keep DataFrames: select rows with X.iloc[...] (or let scikit-learn's "
                      "train_test_split do it), don't convert to NumPy.")
        return part["row_id"].to_numpy(dtype=float)
    arr = np.asarray(part, dtype=float)
    if arr.ndim != 2:
        fail(exercise, case, expected=f"{name} as a 2-d array of rows", got=f"shape {arr.shape}")
    return arr[:, 0]


def _unpack_split(out, exercise: str, case: str):
    try:
        n_parts = len(out)
    except TypeError:
        n_parts = None
    if isinstance(out, Mapping) or n_parts != 6:
        fail(exercise, case, expected="a tuple of 6 parts " + ", ".join(PARTS),
             got=f"{type(out).__name__} of {n_parts} items" if n_parts is not None else repr(out),
             hint="end with `return X_train, X_val, X_test, y_train, y_val, y_test`.")
    return tuple(out)


def _check_one_split(stratified_split, X, y, y_all, frame, n, test_size, val_size, seed,
                     exercise, case):
    inputs = f"n={n}, test_size={test_size}, val_size={val_size}, seed={seed}"
    before = (np.array(X, copy=True), np.array(y, copy=True))
    out = _unpack_split(call(stratified_split, X, y, test_size, val_size, seed,
                             exercise=exercise, case=case, inputs_unchanged=False),
                        exercise, case)                                  # checked below
    if not (np.array_equal(np.asarray(X), before[0]) and np.array_equal(np.asarray(y),
                                                                         before[1])):
        fail(exercise, case, inputs=inputs, expected="X and y unchanged",
             got="the inputs were changed (shuffled in place?)",
             hint="shuffle a copy or an index array, never the caller's data.")
    ids = [_row_ids(out[i], frame, exercise, case, PARTS[i]) for i in range(3)]
    labels = [np.asarray(out[i]).reshape(-1) for i in range(3, 6)]
    sizes = [len(p) for p in ids]
    for name_x, name_y, i, lab in zip(PARTS[:3], PARTS[3:], ids, labels, strict=True):
        if len(i) != len(lab):
            fail(exercise, case, inputs=inputs, expected=f"{name_y} as long as {name_x}",
                 got=f"{name_x} has {len(i)} rows, {name_y} {len(lab)}",
                 hint="split X and y together (one train_test_split call takes both).")
    all_ids = np.concatenate(ids)
    for name, i in zip(PARTS[:3], ids, strict=True):
        if not np.all(np.isin(i, np.arange(n))) or len(np.unique(i)) != len(i):
            fail(exercise, case, inputs=inputs, expected=f"{name}: distinct rows of X",
                 got=f"{len(i) - len(np.unique(i))} repeated rows",
                 hint="draw without replacement: each patient once.")
    for (a, ia), (b, ib) in [((PARTS[0], ids[0]), (PARTS[1], ids[1])),
                             ((PARTS[0], ids[0]), (PARTS[2], ids[2])),
                             ((PARTS[1], ids[1]), (PARTS[2], ids[2]))]:
        shared = np.intersect1d(ia, ib)
        if shared.size:
            fail(exercise, case, inputs=inputs, expected=f"no patient in both {a} and {b}",
                 got=f"{shared.size} patients in both",
                 hint="a patient in two parts leaks: take the validation part from what is "
                      "left after the test part is removed, not from the whole table.")
    want = {"X_train": n * (1 - test_size - val_size), "X_val": n * val_size,
            "X_test": n * test_size}
    off = [name for name, size in zip(PARTS[:3], sizes, strict=True)
           if abs(size - want[name]) > SIZE_TOLERANCE]
    if off:
        if sorted(sizes) == sorted(round(v) for v in want.values()) or (
                abs(sizes[1] - want["X_test"]) <= SIZE_TOLERANCE
                and abs(sizes[2] - want["X_val"]) <= SIZE_TOLERANCE):
            hint = ("the parts come back in another order: return X_train, X_val, X_test, "
                    "y_train, y_val, y_test.")
        elif abs(sizes[1] - val_size * (n - sizes[2])) <= SIZE_TOLERANCE:
            hint = ("val_size is a fraction of the whole table: in the second split, of the "
                    "remaining patients, ask for val_size / (1 - test_size).")
        else:
            hint = "test_size and val_size are fractions of the whole table."
        fail(exercise, case, inputs=inputs,
             expected="sizes about " + ", ".join(f"{k} {v:.1f}" for k, v in want.items()),
             got=", ".join(f"{k} {s}" for k, s in zip(PARTS[:3], sizes, strict=True)),
             hint=hint)
    if len(all_ids) != n:
        fail(exercise, case, inputs=inputs, expected=f"all {n} patients in one of the parts",
             got=f"{len(all_ids)} patients", hint="every patient belongs to exactly one part.")
    for name, i, lab in zip(PARTS[3:], ids, labels, strict=True):
        if not np.array_equal(lab.astype(float), y_all[i.astype(int)].astype(float)):
            fail(exercise, case, inputs=inputs,
                 expected=f"{name}[k] is the label of row k of the matching X part",
                 got=f"{int(np.sum(lab != y_all[i.astype(int)]))} labels belong to other rows",
                 hint="X and y were shuffled separately: split them in the same call (or with "
                      "the same index array).")
    prevalence = float(np.mean(y_all))
    for name, lab in zip(PARTS[3:], labels, strict=True):
        expected_pos = prevalence * len(lab)
        if abs(lab.sum() - expected_pos) > STRATIFY_TOLERANCE:
            fail(exercise, f"{case}: {name}", inputs=inputs,
                 expected=f"about {expected_pos:.1f} diseased of {len(lab)} "
                          f"({100 * prevalence:.1f} %, the whole table's share)",
                 got=f"{int(lab.sum())} diseased ({100 * lab.mean():.1f} %)",
                 hint="stratify both splits: stratify=y in the first, stratify=y_rest (the "
                      "labels of what is left) in the second.")
    return ids


def check_stratified_split(stratified_split, strict: bool = False) -> None:
    """``stratified_split(X, y, test_size, val_size, seed)`` returns ``(X_train, X_val, X_test,
    y_train, y_val, y_test)``: sizes within 1.5 patients of their fractions **of the whole**,
    no patient in two parts and none lost, X and y rows still paired, each part's number of
    diseased within 1.5 of its share, DataFrames kept, the same parts for the same seed and
    other parts for another seed, the inputs unchanged."""
    exercise = "stratified_split"
    for case, n, prevalence, test_size, val_size, seed, frame in _split_cases(strict):
        X, y = _split_table(n, prevalence, seed, frame)
        y_all = np.array(y, copy=True)
        ids = _check_one_split(stratified_split, X, y, y_all, frame, n, test_size, val_size,
                               seed, exercise, case)
        again = _check_one_split(stratified_split, X, y, y_all, frame, n, test_size, val_size,
                                 seed, exercise, f"{case}, called again with seed {seed}")
        if not all(np.array_equal(a, b) for a, b in zip(ids, again, strict=True)):
            fail(exercise, f"{case}: the same seed twice",
                 expected="the same patients in each part", got="different parts",
                 hint="pass seed as random_state (or seed a NumPy Generator with it); don't "
                      "leave the randomness unseeded.")
        other = _check_one_split(stratified_split, X, y, y_all, frame, n, test_size, val_size,
                                 seed + 1, exercise, f"{case}, with seed {seed + 1}")
        if all(np.array_equal(np.sort(a), np.sort(b)) for a, b in zip(ids, other, strict=True)):
            fail(exercise, f"{case}: another seed", expected="a different split for seed "
                 f"{seed + 1}", got="the same patients in each part",
                 hint="use the seed argument (random_state=seed), not a fixed number.")


# --- fit_preprocessor ------------------------------------------------------------------------


def _prep_table(seed: int, n_train: int, n_test: int, d: int, frame: bool, gaps: float = 0.1):
    """Columns on very different scales, ~10 % missing, a test part from a shifted
    population (so that its own statistics differ from the training ones)."""
    rng = case_rng(200 + seed)
    centre = rng.uniform(-50, 500, size=d)
    spread = 10 ** rng.uniform(-2, 2, size=d)
    X_train = centre + spread * rng.normal(size=(n_train, d))
    X_test = centre + spread * (1.5 + 2 * rng.normal(size=(n_test, d)))
    for X in (X_train, X_test):
        X[rng.random(X.shape) < gaps] = np.nan
    X_train[0, :] = centre  # every column keeps values; one complete row
    if not frame:
        return X_train, X_test
    import pandas as pd

    columns = [f"measure_{j}" for j in range(d)]
    return (pd.DataFrame(X_train, columns=columns),
            pd.DataFrame(X_test, columns=columns, index=np.arange(n_train, n_train + n_test)))


def _expected_prep(X_train, X):
    train = np.asarray(X_train, dtype=float)
    median = np.nanmedian(train, axis=0)
    filled = np.where(np.isnan(train), median, train)
    mean, sd = filled.mean(axis=0), filled.std(axis=0)
    X = np.asarray(X, dtype=float)
    return (np.where(np.isnan(X), median, X) - mean) / np.where(sd > 0, sd, 1.0)


def _prep_variants(X_train, X) -> dict[str, tuple[np.ndarray, str]]:
    """What the usual mistakes compute, with their hints."""
    train, data = np.asarray(X_train, dtype=float), np.asarray(X, dtype=float)
    both = np.vstack([train, data])
    mean_fill = np.nanmean(train, axis=0)
    filled = np.where(np.isnan(train), mean_fill, train)
    scaled_first = (data - np.nanmean(train, axis=0)) / np.nanstd(train, axis=0)
    col_median = np.nanmedian((train - np.nanmean(train, axis=0)) / np.nanstd(train, axis=0),
                              axis=0)
    return {
        "its own statistics": (
            _expected_prep(data, data),
            "transform() used the statistics of the data it was given: a transformer fitted "
            "on the training part must apply the training statistics to every part. Return "
            "the fitted pipeline and call only .transform on other data."),
        "train and test together": (
            _expected_prep(both, data),
            "fitted on more than X_train (the whole table?): fit on the argument X_train "
            "only, so that nothing of the test patients leaks into the preprocessing."),
        "mean imputation": (
            (np.where(np.isnan(data), mean_fill, data) - filled.mean(axis=0))
            / filled.std(axis=0),
            "that is mean imputation; the exercise asks for the training median "
            "(SimpleImputer(strategy='median')), robust to outliers such as a unit error."),
        "scaled, then imputed": (
            np.where(np.isnan(data), col_median, scaled_first),
            "scaling came before imputation: impute first (the median of each training "
            "column), then standardise the completed columns."),
    }


def _check_transform(prep, X_train, X, exercise, case, what):
    if isinstance(prep, np.ndarray) or hasattr(prep, "to_numpy"):
        fail(exercise, case, expected="a fitted transformer", got=type(prep).__name__,
             hint="return the fitted transformer (the pipeline), not the transformed data: "
                  "later cells call its .transform on the validation and test parts.")
    if not hasattr(prep, "transform"):
        fail(exercise, case, expected="an object with a .transform method",
             got=type(prep).__name__,
             hint="return a fitted scikit-learn transformer, e.g. make_pipeline(SimpleImputer("
                  "strategy='median'), StandardScaler()).fit(X_train).")
    got = call(prep.transform, X, exercise=exercise, case=f"{case}: {what}",
               hint="the transformer was not fitted on X_train, or on other columns: fit it on "
                    "the argument X_train only (not a global table, and never with the label).")
    arr = as_array(got, exercise, f"{case}: {what}")
    expected = _expected_prep(X_train, X)
    if arr.shape != expected.shape:
        fail(exercise, f"{case}: {what}", expected=f"shape {expected.shape}",
             got=f"shape {arr.shape}",
             hint="one output column per input column: impute and scale, drop nothing, add "
                  "nothing (the label is not a feature).")
    if np.isnan(arr).any():
        fail(exercise, f"{case}: {what}", expected="no missing values after preprocessing",
             got=f"{int(np.isnan(arr).sum())} nan values",
             hint="impute before scaling: SimpleImputer(strategy='median') in the pipeline.")
    if not np.allclose(arr, expected, rtol=1e-6, atol=1e-8):
        hint = "impute each column with its training median, then (x - mean) / sd of training."
        for variant, (value, variant_hint) in _prep_variants(X_train, X).items():
            if value.shape == arr.shape and np.allclose(arr, value, rtol=1e-6, atol=1e-8) \
                    and not (variant == "its own statistics" and X is X_train):
                hint = variant_hint
                break
        worst = float(np.max(np.abs(arr - expected)))
        fail(exercise, f"{case}: {what} (tolerance: rtol=1e-06, atol=1e-08)",
             expected=expected, got=arr, hint=f"{hint} (largest difference {worst:.3g})")
    return arr


def check_fit_preprocessor(fit_preprocessor, strict: bool = False) -> None:
    """``fit_preprocessor(X_train)`` returns a transformer fitted on ``X_train`` only: the
    training median fills gaps, then each column is standardised with the training mean and
    standard deviation. Checked on its output for the training part, a test part from a
    shifted population (whose own statistics differ), one test patient at a time, after a
    second transform (no refit), on DataFrames and arrays; ``X_train`` must stay unchanged."""
    exercise = "fit_preprocessor"
    cases = [("a DataFrame of 40 training and 15 test patients with gaps", 0, 40, 15, 4, True),
             ("a NumPy array of 25 training and 8 test patients with gaps", 1, 25, 8, 3, False)]
    if strict:
        cases += [("a DataFrame of 300 training and 100 test patients with gaps", 2, 300, 100,
                   30, True),
                  ("a NumPy array of 12 training and 30 test patients with gaps", 3, 12, 30, 6,
                   False)]
    for case, seed, n_train, n_test, d, frame in cases:
        X_train, X_test = _prep_table(seed, n_train, n_test, d, frame)
        before = np.array(X_train, copy=True)
        prep = call(fit_preprocessor, X_train, exercise=exercise, case=case, inputs_unchanged=False,
                    hint="fit on the argument X_train only; the label is not part of it.")
        if prep is None:
            fail(exercise, case, got="None",
                 hint="the function returned nothing: return the fitted transformer.")
        if not np.array_equal(np.asarray(X_train, dtype=float), before, equal_nan=True):
            fail(exercise, case, expected="X_train unchanged", got="X_train was changed",
                 hint="fillna(inplace=True) or assigning into X_train changes the caller's "
                      "table; let the imputer fill a copy.")
        _check_transform(prep, X_train, X_train, exercise, case, "the training part")
        on_test = _check_transform(prep, X_train, X_test, exercise, case,
                                   "the test part (shifted population)")
        if frame:
            rows = [X_test.iloc[[k]] for k in range(min(len(X_test), 5))]
        else:
            rows = [X_test[k:k + 1] for k in range(min(len(X_test), 5))]
        for k, row in enumerate(rows):
            single = as_array(call(prep.transform, row, exercise=exercise,
                                   case=f"{case}: test patient {k} alone"),
                              exercise, f"{case}: test patient {k} alone")
            if single.shape != on_test[k:k + 1].shape or not np.allclose(
                    single, on_test[k:k + 1], rtol=1e-6, atol=1e-8):
                fail(exercise, f"{case}: test patient {k} alone",
                     expected=on_test[k:k + 1], got=single,
                     hint="one patient must be transformed the same way alone as in a batch: "
                          "transform() may only apply what was learnt from X_train.")
        _check_transform(prep, X_train, X_train, exercise, case,
                         "the training part again, after transforming the test part")


# --- build_mlp -------------------------------------------------------------------------------

_BCE_Y = np.array([[1.0], [0.0], [1.0], [0.0], [1.0]], dtype=np.float32)
_BCE_P = np.array([[0.9], [0.2], [0.6], [0.4], [0.05]], dtype=np.float32)


def _loss_value(loss) -> float | None:
    """The model's loss on five fixed predictions (None when it cannot be evaluated)."""
    import keras

    fn = keras.losses.get(loss) if isinstance(loss, (str, dict)) else loss
    if fn is None:
        return None
    return float(np.mean(np.asarray(fn(_BCE_Y, _BCE_P))))


def _loss_hint(value: float) -> str:
    y, p = _BCE_Y.ravel().astype(float), _BCE_P.ravel().astype(float)
    logits = -np.mean(y * np.log(1 / (1 + np.exp(-p))) + (1 - y) * np.log(1 - 1 / (1 + np.exp(-p))))
    known = {
        "mse": (np.mean((y - p) ** 2), "that is mean squared error, a regression loss: a "
                                       "classifier of one probability is trained with the "
                                       "cross-entropy of chapter 2."),
        "logits": (logits, "from_logits=True treats the sigmoid's probabilities as logits: "
                           "keep from_logits=False (the default) after a sigmoid."),
    }
    for expected, hint in known.values():
        if np.isclose(value, expected, rtol=1e-3):
            return hint
    return ("the loss is the cross-entropy of one probability against a 0/1 label, the mean "
            "of the bracketed formula (chapter 2, E14): which Keras loss is that?")


def _metrics_problem(model) -> str | None:
    """Why the compiled metrics would fail at the first fit (None when they are fine)."""
    config = model.get_compile_config() or {}
    if not config.get("metrics"):
        return "no metrics"
    compiled = getattr(model, "_compile_metrics", None)
    y, p = _BCE_Y, _BCE_P
    try:
        if compiled is not None and hasattr(compiled, "build"):
            if not getattr(compiled, "built", False):
                compiled.build(y, p)
        else:  # a Keras without CompileMetrics: let evaluate() resolve them
            model.evaluate(np.zeros((len(y), model.inputs[0].shape[-1]), np.float32), y,
                           verbose=0)
    except (ValueError, TypeError, AttributeError) as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    return None


def _describe_dense(layers: list, i: int) -> str:
    """Dense layer ``i`` of ``[(units, activation), ...]`` in words."""
    if i >= len(layers):
        return "no layer"
    units, activation = layers[i]
    return f"{units} unit{'' if units == 1 else 's'}, activation {activation!r}"


def _mlp_cases(strict: bool):
    cases = [("30 features (the breast-cancer table)", 30), ("7 features", 7)]
    if strict:
        cases += [("1 feature", 1), ("100 features", 100)]
    return cases


def check_build_mlp(build_mlp, strict: bool = False) -> None:
    """``build_mlp(n_features)`` returns a compiled Keras model: input ``(None, n_features)``,
    ``Dense(64, relu)``, ``Dense(32, relu)``, ``Dense(1, sigmoid)`` (output ``(None, 1)``; a
    ``Dropout`` in between is allowed, no other layers), compiled with binary cross-entropy
    and at least one metric that Keras can build (E18). Checked by layer types, units,
    activations, ``model.outputs[0].shape``, the loss's value on fixed predictions, and the
    compiled metrics."""
    import keras

    exercise = "build_mlp"
    for case, n_features in _mlp_cases(strict):
        model, in_shape, out_shape = built_model(
            build_mlp, n_features, exercise=exercise, case=case,
            hint="building or compiling the model raised an error: read its last line. The "
                 "layers are the source's (section 1's box, the table of the exercise); the "
                 "metrics must exist in Keras 3 (tf.metrics.accuracy and recall_at_threshold "
                 "do not, E18: look in keras.metrics).",
            input_hint="the model does not know the shape of its input, so no layer knows its "
                       "output shape: declare the input first (keras.Input), with the shape "
                       "given by the argument.",
            return_hint="the exercise returns the Keras model itself, compiled.")
        if in_shape != (None, n_features):
            fail(exercise, case, expected=f"input shape (None, {n_features})", got=in_shape,
                 hint="use the n_features argument, not a fixed 30 or X_train.shape[1].")
        others = [type(layer).__name__ for layer in model.layers
                  if not isinstance(layer, (keras.layers.Dense, keras.layers.Dropout))]
        if others:
            fail(exercise, case, expected="Dense layers (Dropout allowed)",
                 got=f"also {others}",
                 hint="the source's network is three Dense layers; Conv2D, MaxPooling2D and "
                      "Flatten are for images (the source imports them without using them, "
                      "E19).")
        dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
        got_layers = [(layer.units, layer.get_config().get("activation")) for layer in dense]
        want_layers = [(64, "relu"), (32, "relu"), (1, "sigmoid")]
        if got_layers != want_layers:
            if got_layers and got_layers[-1] == (1, "softmax"):
                hint = ("softmax over one unit is always 1, whatever the patient: the one "
                        "output unit needs an activation that turns any number into a "
                        "probability on its own.")
            elif got_layers and got_layers[-1][1] == "softmax":
                hint = ("two softmax units can describe two classes, but this network ends "
                        "with one unit, P(disease), trained with binary cross-entropy: the "
                        "output shape is (None, 1).")
            elif got_layers and got_layers[-1][0] != 1:
                hint = ("one probability per patient: the output shape is (None, 1), so the "
                        "last layer has one unit.")
            else:
                hint = ("compare each layer's units and activation with the source's network "
                        "(section 1's box, Diagnosis and Treatment §4.2; the table of the "
                        "exercise gives the parameters).")
            pairs = zip(got_layers, want_layers, strict=False)      # the first layer that differs
            first = next((i for i, (a, b) in enumerate(pairs) if a != b),
                         min(len(got_layers), len(want_layers)))
            want_at, got_at = (_describe_dense(layers_, first)
                               for layers_ in (want_layers, got_layers))
            fail(exercise, case,
                 expected=f"{len(want_layers)} Dense layers; Dense layer {first + 1}: {want_at}",
                 got=f"{len(got_layers)} Dense layers; Dense layer {first + 1}: {got_at}",
                 hint=hint)
        if out_shape != (None, 1):
            fail(exercise, case, expected="output shape (None, 1)", got=out_shape,
                 hint="one probability per patient: nothing after the last Dense layer may "
                      "change its shape.")
        if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
            fail(exercise, case, expected="a compiled model", got="not compiled",
                 hint="the exercise returns a compiled model: compile it (optimizer, loss, "
                      "metrics) before you return it.")
        try:
            loss = _loss_value(model.loss)
        except Exception as exc:  # noqa: BLE001 - any loss that cannot run is this case's failure
            fail(exercise, case, expected="a loss that exists",
                 got=f"{type(exc).__name__}: {exc}", hint=_loss_hint(float("nan")))
        want = float(_reference_bce())
        if loss is None or not np.isclose(loss, want, rtol=1e-4):
            fail(exercise, case,
                 expected=f"binary cross-entropy: {want:.5f} on five fixed predictions",
                 got=f"{loss}", hint=_loss_hint(float("nan") if loss is None else loss))
        problem = _metrics_problem(model)
        if problem == "no metrics":
            fail(exercise, case, expected="at least one metric", got="none",
                 hint="pass metrics when you compile: how well the model ranks (the ROC AUC) "
                      "and what it finds (the sensitivity, under a name that says so); "
                      "keras.metrics has both.")
        if problem is not None:
            fail(exercise, case, expected="metrics that exist in Keras 3", got=problem,
                 hint="tf.metrics.accuracy is TensorFlow 1 and recall_at_threshold never "
                      "existed (E18): Keras 3's metrics are in keras.metrics; find the ROC AUC "
                      "and the sensitivity (recall) there.")
        x = case_rng(n_features).normal(size=(4, n_features)).astype("float32")
        p = model_outputs(model, x, exercise, case)
        if p.shape != (4, 1) or np.any(p < 0) or np.any(p > 1):
            fail(exercise, case, expected="4 probabilities in [0, 1], shape (4, 1)",
                 got=p, hint="the last layer's activation is 'sigmoid'.")


def _reference_bce() -> float:
    """Binary cross-entropy of the fixed predictions the loss is checked on (Keras clips
    probabilities to [1e-7, 1 - 1e-7]; none of these is near 0 or 1)."""
    y, p = _BCE_Y.ravel().astype(float), _BCE_P.ravel().astype(float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


# --- choose_threshold ------------------------------------------------------------------------


def _threshold_cases(strict: bool):
    """(case, y_true, scores, min_sensitivity)."""
    rng = case_rng(61)
    y200 = _labels(200, 0.3, 61)
    s200 = np.round(rng.normal(1.5 * y200, 1.0), 3)
    y20 = np.r_[np.ones(20, int), np.zeros(30, int)]
    s20 = np.r_[np.linspace(0.3, 0.95, 20), np.linspace(0.0, 0.62, 30)]
    y_sat = _labels(60, 0.4, 62)
    s_sat = np.where(y_sat == 1, np.minimum(1.0, rng.uniform(0.6, 1.4, 60)),
                     rng.uniform(0.0, 0.8, 60)).round(2)
    cases = [
        ("10 patients: a clear answer (sensitivity >= 0.75)",
         np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0]),
         np.array([0.95, 0.8, 0.6, 0.3, 0.7, 0.4, 0.35, 0.2, 0.1, 0.05]), 0.75),
        ("200 seeded patients, sensitivity >= 0.9", y200, s200, 0.9),
        ("sensitivity reached exactly: 18 of 20 diseased >= 0.9", y20, s20, 0.9),
        ("tied specificity: 4 diseased above 2 healthy, sensitivity >= 0.5",
         np.array([1, 1, 1, 1, 0, 0]), np.array([0.9, 0.8, 0.7, 0.6, 0.95, 0.5]), 0.5),
        ("tied scores (a saturated sigmoid: many exactly 1.0), sensitivity >= 0.7", y_sat,
         s_sat, 0.7),
        ("every cancer found: sensitivity >= 1.0", y200, s200, 1.0),
    ]
    if strict:
        y1000 = _labels(1000, 0.05, 63)
        cases += [
            ("1000 seeded patients, 5 % diseased, sensitivity >= 0.8", y1000,
             rng.normal(2.0 * y1000, 1.0), 0.8),
            ("200 seeded patients, sensitivity >= 0.5", y200, s200, 0.5),
            ("tied scores, sensitivity >= 0.95", y_sat, s_sat, 0.95),
            ("tied scores, sensitivity >= 0.5", y_sat, s_sat, 0.5),
        ]
    return cases


def _operating(y, s, t) -> tuple[float, float]:
    positive = np.asarray(s, float) >= t
    return float(np.mean(positive[y == 1])), float(np.mean(~positive[y == 0]))


def _threshold_hint(y, s, got_t, want_t, min_sens) -> str:
    got_sens, got_spec = _operating(y, s, got_t)
    want_sens, want_spec = _operating(y, s, want_t)
    accuracy = [np.mean((s >= t) == (y == 1))
                for t in ref_metrics.operating_points(y, s).thresholds]
    if np.isclose(np.mean((s >= got_t) == (y == 1)), max(accuracy)):
        return ("that threshold maximises accuracy; a screening threshold first reaches the "
                "required sensitivity, then has the best specificity.")
    if got_sens < min_sens:
        return ("its sensitivity is below the requirement: keep only thresholds whose "
                "sensitivity is >= min_sensitivity (a score >= threshold is positive).")
    if want_sens == min_sens < 1 and np.array_equal(
            s >= got_t, s >= ref.choose_threshold(y, s, np.nextafter(min_sens, 2.0))):
        return ("a sensitivity exactly equal to min_sensitivity reaches it: compare with >=, "
                "not >.")
    if got_spec < want_spec:
        return ("it reaches the sensitivity but another threshold that does has a better "
                "specificity: take the best specificity among all that reach it, not the first "
                "one you meet (from the lowest score up, the first calls almost everyone "
                "positive).")
    if got_spec == want_spec and got_sens < want_sens:
        return ("same specificity, lower sensitivity: of thresholds tied on specificity, "
                "return the one with the best sensitivity (the lowest of them). The first "
                "point of roc_curve that reaches the sensitivity need not be it, with or "
                "without drop_intermediate.")
    return "return one of the scores: the threshold at which a score >= threshold is positive."


def check_choose_threshold(choose_threshold, strict: bool = False) -> None:
    """``choose_threshold(y_true, scores, min_sensitivity)``: of the thresholds (the distinct
    scores; a score >= threshold is positive) whose sensitivity reaches ``min_sensitivity``,
    the one with the best specificity, ties broken by the best sensitivity. Any threshold that
    classifies every patient the same way as that one is accepted. ``ValueError`` when no
    patient has the disease."""
    exercise = "choose_threshold"
    for case, y, s, min_sens in _threshold_cases(strict):
        got = call(choose_threshold, y.copy(), s.copy(), min_sens, exercise=exercise, case=case)
        want = ref.choose_threshold(y, s, min_sens)
        inputs = f"y_true={_short(y, 60)}, scores={_short(s, 70)}, min_sensitivity={min_sens}"
        try:
            got_t = float(np.asarray(got, dtype=float).reshape(()))
        except (TypeError, ValueError):
            fail(exercise, case, inputs=inputs, expected="one number (a threshold)",
                 got=repr(got)[:120], hint="return the threshold itself, e.g. float(t), not "
                                           "its index, a tuple or the metrics.")
        if not np.array_equal(s >= got_t, s >= want):
            got_sens, got_spec = _operating(y, s, got_t)
            want_sens, want_spec = _operating(y, s, want)
            fail(exercise, case, inputs=inputs,
                 expected=f"threshold {want:g} (sensitivity {want_sens:.3f}, specificity "
                          f"{want_spec:.3f})",
                 got=f"threshold {got_t:g} (sensitivity {got_sens:.3f}, specificity "
                     f"{got_spec:.3f})",
                 hint=_threshold_hint(y, s, got_t, want, min_sens))
    case = "no diseased patient (sensitivity undefined): ValueError"
    try:
        got = choose_threshold(np.zeros(6, dtype=np.int64), np.linspace(0.1, 0.6, 6), 0.9)
    except ValueError:
        return
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - any other error is this case's failure
        raise CheckFailed(f"{exercise}: raised {type(exc).__name__} on case '{case}': {exc}\n"
                             "  hint: raise ValueError (with a message) when y_true holds no "
                             "diseased patient.") from exc
    fail(exercise, case, expected="ValueError", got=f"returned {got!r}",
         hint="with no diseased patient no threshold has a sensitivity: raise ValueError "
              "instead of returning a number that would look valid.")


# --- evaluate_classifier ---------------------------------------------------------------------


def _evaluation_cases(strict: bool):
    rng = case_rng(64)
    y100 = _labels(100, 0.35, 64)
    s100 = np.clip(rng.normal(0.3 + 0.4 * y100, 0.2), 0, 1)
    cases = [
        ("10 patients, threshold 0.5 (one score exactly 0.5)",
         np.array([1, 1, 1, 0, 0, 0, 0, 1, 0, 0]),
         np.array([0.9, 0.5, 0.7, 0.2, 0.6, 0.55, 0.1, 0.3, 0.4, 0.05]), 0.5),
        ("100 seeded patients, threshold 0.3", y100, s100, 0.3),
        ("threshold above every score (no positive prediction: PPV is nan)", y100, s100, 1.5),
    ]
    if strict:
        y1000 = _labels(1000, 0.05, 65)
        cases += [
            ("1000 seeded patients, 5 % diseased, threshold 0.2", y1000,
             rng.uniform(0, 1, 1000) ** (2 - y1000), 0.2),
            ("100 seeded patients, threshold 0.7", y100, s100, 0.7),
            ("threshold below every score (everyone positive: NPV is nan)", y100, s100, -1.0),
        ]
    return cases


def check_evaluate_classifier(evaluate_classifier, strict: bool = False) -> None:
    """``evaluate_classifier(y_true, scores, threshold)`` returns a dict with ``sensitivity``,
    ``specificity``, ``ppv``, ``npv`` and ``accuracy`` at the threshold (a score >= threshold
    is positive; ``nan`` where a denominator is 0) and ``roc_auc`` of the scores (extra keys
    are allowed)."""
    exercise = "evaluate_classifier"
    for case, y, s, threshold in _evaluation_cases(strict):
        got = call(evaluate_classifier, y.copy(), s.copy(), threshold, exercise=exercise,
                   case=case, hint="a denominator can be 0: return float('nan') for that "
                                   "metric instead of dividing.")
        expected = ref.evaluate_classifier(y, s, threshold)
        counts = ref_metrics.confusion_counts(y, s >= threshold)
        inputs = (f"y_true={_short(y, 60)}, scores={_short(s, 60)}, threshold={threshold}; "
                  f"(tp, fp, tn, fn) = {counts}")
        values = metric_dict(
            got, {k: expected[k] for k in ref.EVALUATION_KEYS}, exercise=exercise, case=case,
            inputs=inputs, names='{"sensitivity": ..., "specificity": ..., "ppv": ..., '
                                 '"npv": ..., "accuracy": ..., "roc_auc": ...}')
        for key, value in values.items():
            want = expected[key]
            if same_metric(value, want):
                continue
            if key == "roc_auc":
                hint = "the ROC AUC of the scores: roc_auc_score(y_true, scores)."
                if np.isclose(value, ref_metrics.roc_auc(y, (s >= threshold).astype(float))):
                    hint = ("that is the AUC of the 0/1 predictions (one point of the curve): "
                            "compute the ROC AUC from the scores themselves.")
            else:
                strict_counts = ref_metrics.confusion_counts(y, s > threshold)
                if np.isclose(value, ref_metrics.metrics_from_counts(*strict_counts)[key],
                              equal_nan=True) and strict_counts != counts:
                    hint = "a score equal to the threshold counts as positive: use >=, not >."
                else:
                    hint = _metric_hint(key, value, counts, want)
            fail(exercise, f"{case}: {key} (tolerance: rtol=1e-09)", inputs=inputs,
                 expected=f"{want:.6g}", got=f"{value:.6g}", hint=hint)


# --- net_benefit -----------------------------------------------------------------------------


def _net_benefit_cases(strict: bool):
    rng = case_rng(66)
    y200 = _labels(200, 0.3, 66)
    s200 = np.clip(rng.normal(0.25 + 0.4 * y200, 0.2), 0.001, 0.999)
    cases = [
        ("10 patients, threshold 0.2 (one score exactly 0.2)",
         np.array([1, 1, 1, 0, 0, 0, 0, 1, 0, 0]),
         np.array([0.9, 0.2, 0.7, 0.1, 0.6, 0.25, 0.05, 0.15, 0.3, 0.02]), 0.2),
        ("200 seeded patients, threshold 0.1", y200, s200, 0.1),
        ("200 seeded patients, threshold 0.6", y200, s200, 0.6),
        ("threshold above every score (nobody treated: 0)", y200, s200, 0.9995),
    ]
    if strict:
        y1000 = _labels(1000, 0.08, 67)
        cases += [
            ("1000 seeded patients, 8 % diseased, threshold 0.05", y1000,
             rng.uniform(0, 1, 1000) ** (3 - 2 * y1000), 0.05),
            ("200 seeded patients, threshold 0.35", y200, s200, 0.35),
            ("everyone treated: threshold below every score", y200, s200, 0.0005),
        ]
    return cases


def _net_benefit_variants(y, s, t) -> dict:
    n = len(y)
    tp = float(np.sum((s >= t) & (y == 1)))
    fp = float(np.sum((s >= t) & (y == 0)))
    tp_gt = float(np.sum((s > t) & (y == 1)))
    fp_gt = float(np.sum((s > t) & (y == 0)))
    odds = t / (1 - t)
    return {
        "inverted odds": (tp / n - fp / n / odds,
                          "the odds are inverted: a false positive weighs threshold / "
                          "(1 - threshold), the odds at the threshold probability (at 0.2: "
                          "0.25, one needed treatment is worth four unnecessary ones)."),
        "threshold as weight": (tp / n - fp / n * t,
                                "a false positive weighs the odds threshold / (1 - threshold), "
                                "not the threshold itself."),
        "counts": (tp - fp * odds, "divide the true and false positives by n, the number of "
                                    "all patients: net benefit is per patient."),
        "per class": (tp / max(np.sum(y == 1), 1) - fp / max(np.sum(y == 0), 1) * odds,
                      "divide both counts by n (all patients), not by the number of diseased "
                      "or healthy patients: those are sensitivity and 1 - specificity."),
        "no harm": (tp / n, "subtract the false positives' harm: - FP / n * threshold / "
                            "(1 - threshold)."),
        "strict": (tp_gt / n - fp_gt / n * odds,
                   "a score equal to the threshold is treated: use >=, not >."),
    }


def check_net_benefit(net_benefit, strict: bool = False) -> None:
    """``net_benefit(y_true, scores, threshold)`` is ``TP / n - FP / n * threshold /
    (1 - threshold)`` with the patients whose score is ``>= threshold`` treated and ``n`` all
    patients: one number (``rtol=1e-9``)."""
    exercise = "net_benefit"
    for case, y, s, t in _net_benefit_cases(strict):
        got = call(net_benefit, y.copy(), s.copy(), t, exercise=exercise, case=case,
                   hint="y_true and scores are 1-D arrays of the same length; threshold is a "
                        "number in (0, 1).")
        want = ref.net_benefit(y, s, t)
        counts = ref_metrics.confusion_counts(y, s >= t)
        inputs = (f"y_true={_short(y, 50)}, scores={_short(s, 60)}, threshold={t}; "
                  f"(tp, fp, tn, fn) = {counts}, n = {len(y)}")
        try:
            value = float(np.asarray(got, dtype=float).reshape(()))
        except (TypeError, ValueError):
            fail(exercise, case, inputs=inputs, expected="one number", got=repr(got)[:120],
                 hint="return the net benefit as one float.")
        if np.isclose(value, want, rtol=1e-9, atol=1e-12):
            continue
        hint = next((h for v, h in _net_benefit_variants(y, s, t).values()
                     if np.isclose(value, v, rtol=1e-9, atol=1e-12)),
                    "net benefit = TP / n - FP / n * threshold / (1 - threshold), treating "
                    "scores >= threshold.")
        fail(exercise, f"{case} (tolerance: rtol=1e-09)", inputs=inputs, expected=f"{want:.6g}",
             got=f"{value:.6g}", hint=hint)


# --- registry --------------------------------------------------------------------------------

EXERCISES = {
    "stratified_split": (check_stratified_split, ref.stratified_split),
    "fit_preprocessor": (check_fit_preprocessor, ref.fit_preprocessor),
    "build_mlp": (check_build_mlp, ref_models.build_mlp),
    "choose_threshold": (check_choose_threshold, ref.choose_threshold),
    "evaluate_classifier": (check_evaluate_classifier, ref.evaluate_classifier),
    "net_benefit": (check_net_benefit, ref.net_benefit),
}


def _register_samples() -> None:
    SAMPLE_ARGS["stratified_split"] = lambda: (*_split_table(40, 0.3, 0, False), 0.25, 0.25, 0)
    SAMPLE_ARGS["fit_preprocessor"] = lambda: (_prep_table(0, 10, 3, 3, True)[0],)
    SAMPLE_ARGS["build_mlp"] = lambda: (5,)
    SAMPLE_ARGS["net_benefit"] = lambda: (np.array([1, 0, 1, 0]), np.array([0.8, 0.3, 0.1, 0.6]),
                                          0.25)
    SAMPLE_ARGS["choose_threshold"] = lambda: (np.array([1, 1, 0, 0]),
                                               np.array([0.9, 0.4, 0.6, 0.1]), 0.5)
    SAMPLE_ARGS["evaluate_classifier"] = lambda: (np.array([1, 1, 0, 0]),
                                                  np.array([0.9, 0.4, 0.6, 0.1]), 0.5)


_register_samples()

