"""The chapter-6 checkers: stratified_split, fit_preprocessor, build_mlp, choose_threshold and
evaluate_classifier. (That every checker accepts its reference, visible and strict, and that
the own-work check rejects the reference itself, is tested for every registered exercise in
test_checkers.py.)

Each checker accepts the reference and other right answers (visible and strict cases) and
rejects the mistakes learners make, written the way a learner would write them (many straight
from the source document's pipeline, errata E16 and E18), with a message that names the
exercise and the case and carries the hint for that mistake.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pandas as pd
import pytest
from checker_cases import (
    accepts_variants,
    has_wrong_versions,
    hints_without_layer_code,
    rejects_mistakes,
)
from sklearn.impute import SimpleImputer
from sklearn.metrics import accuracy_score, recall_score, roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedShuffleSplit, train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from medai_lessons import metrics, models, tabular
from medai_lessons.grading import (
    EXERCISES,
    assert_own_implementation,
    check_build_mlp,
    check_choose_threshold,
    check_evaluate_classifier,
    check_fit_preprocessor,
    check_net_benefit,
    check_stratified_split,
)
from medai_lessons.grading.core import SAMPLE_ARGS
from medai_lessons.notebook import learner_or_reference
from nbtools import notebook

CHAPTER_6 = ["stratified_split", "fit_preprocessor", "build_mlp", "choose_threshold",
             "evaluate_classifier", "net_benefit"]
NB_HAND = "10 patients, threshold 0.2 (one score exactly 0.2)"
SPLIT_120 = "120 seeded patients, 30 % diseased, test 0.25, val 0.15"
SPLIT_FRAME = "a DataFrame of 200 patients, 20 % diseased, test 0.2, val 0.3"
PREP_FRAME = "a DataFrame of 40 training and 15 test patients with gaps"
MLP_30 = "30 features (the breast-cancer table)"
CLEAR = "10 patients: a clear answer (sensitivity >= 0.75)"
HAND_EVAL = "10 patients, threshold 0.5 (one score exactly 0.5)"


# --- the registry and the references ---------------------------------------------------------


def test_chapter_6_exercises_are_registered_with_their_references_and_sample_arguments():
    for name in CHAPTER_6:
        checker, reference = EXERCISES[name]
        assert checker.__name__ == f"check_{name}"
        assert name in SAMPLE_ARGS
        reference(*SAMPLE_ARGS[name]())                 # the sample arguments are valid
    assert EXERCISES["stratified_split"][1] is tabular.stratified_split
    assert EXERCISES["fit_preprocessor"][1] is tabular.fit_preprocessor
    assert EXERCISES["choose_threshold"][1] is tabular.choose_threshold
    assert EXERCISES["evaluate_classifier"][1] is tabular.evaluate_classifier
    assert EXERCISES["build_mlp"][1] is models.build_mlp



# --- realistic wrong versions ----------------------------------------------------------------
# stratified_split


def _two_splits(X, y, test_size, val_size, seed, stratify_first=True, stratify_second=True,
                val_of_the_whole=True):
    """The two train_test_split calls, with the usual mistakes switchable."""
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y if stratify_first else None, random_state=seed)
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=val_size / (1 - test_size) if val_of_the_whole else val_size,
        stratify=y_rest if stratify_second else None, random_state=seed)
    return X_train, X_val, X_test, y_train, y_val, y_test


def ss_not_stratified(X, y, test_size, val_size, seed):
    return _two_splits(X, y, test_size, val_size, seed, stratify_first=False,
                       stratify_second=False)


def ss_second_split_not_stratified(X, y, test_size, val_size, seed):
    return _two_splits(X, y, test_size, val_size, seed, stratify_second=False)


def ss_validation_from_the_whole_table(X, y, test_size, val_size, seed):
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_size, stratify=y,
                                                        random_state=seed)
    _, X_val, _, y_val = train_test_split(X, y, test_size=val_size, stratify=y,
                                          random_state=seed + 1)   # may hold test patients
    keep = ~np.isin(np.asarray(X_train)[:, 0], np.asarray(X_val)[:, 0])
    return X_train[keep], X_val, X_test, y_train[keep], y_val, y_test


def ss_val_fraction_of_the_rest(X, y, test_size, val_size, seed):
    return _two_splits(X, y, test_size, val_size, seed, val_of_the_whole=False)


def ss_sklearn_order(X, y, test_size, val_size, seed):
    parts = tabular.stratified_split(X, y, test_size, val_size, seed)
    X_train, X_val, X_test, y_train, y_val, y_test = parts
    return X_train, X_test, X_val, y_train, y_test, y_val


def ss_fixed_random_state(X, y, test_size, val_size, seed):
    return tabular.stratified_split(X, y, test_size, val_size, 42)


def ss_unseeded(X, y, test_size, val_size, seed):
    return tabular.stratified_split(X, y, test_size, val_size,
                                    int(np.random.default_rng().integers(1 << 30)))


def ss_shuffled_separately(X, y, test_size, val_size, seed):
    X_train, X_val, X_test, y_train, y_val, y_test = tabular.stratified_split(
        X, y, test_size, val_size, seed)
    rng = np.random.default_rng(seed)
    return (X_train, X_val, X_test, rng.permutation(np.asarray(y_train)),
            rng.permutation(np.asarray(y_val)), rng.permutation(np.asarray(y_test)))


def ss_numpy_only(X, y, test_size, val_size, seed):
    return tabular.stratified_split(np.asarray(X), np.asarray(y), test_size, val_size, seed)


def ss_shuffles_in_place(X, y, test_size, val_size, seed):
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    X, y = np.asarray(X), np.asarray(y)
    X[:], y[:] = X[order], y[order]     # the caller's arrays, shuffled
    return tabular.stratified_split(X.copy(), y.copy(), test_size, val_size, seed)


# fit_preprocessor


def fp_fitted_on_the_whole_table(X_train):
    # the source document: one scaler for the whole table, label column included (E16)
    data = pd.DataFrame(np.random.default_rng(0).normal(size=(50, 31)),
                        columns=[f"feature_{i}" for i in range(30)] + ["malignant"])
    return make_pipeline(SimpleImputer(strategy="median"), StandardScaler()).fit(data)


def fp_own_statistics_each_time(X_train):
    def standardise(X):
        X = pd.DataFrame(X)
        X = X.fillna(X.median())
        return ((X - X.mean()) / X.std(ddof=0)).to_numpy()

    return FunctionTransformer(standardise).fit(X_train)


def fp_no_imputer(X_train):
    return StandardScaler().fit(X_train)


def fp_mean_imputer(X_train):
    return make_pipeline(SimpleImputer(strategy="mean"), StandardScaler()).fit(X_train)


def fp_scale_then_impute(X_train):
    return make_pipeline(StandardScaler(), SimpleImputer(strategy="median")).fit(X_train)


def fp_returns_the_data(X_train):
    return make_pipeline(SimpleImputer(strategy="median"), StandardScaler()).fit_transform(X_train)


def fp_not_fitted(X_train):
    return make_pipeline(SimpleImputer(strategy="median"), StandardScaler())


def fp_fillna_in_place(X_train):
    X_train.fillna(X_train.median(), inplace=True)
    return make_pipeline(SimpleImputer(strategy="median"), StandardScaler()).fit(X_train)


# build_mlp


def _mlp(n_features, output=(1, "sigmoid"), hidden=((64, "relu"), (32, "relu")), extra=(),
         compile_kwargs=None):
    layers = [keras.Input(shape=(n_features,)), *extra]
    layers += [keras.layers.Dense(u, activation=a) for u, a in hidden]
    layers.append(keras.layers.Dense(output[0], activation=output[1]))
    model = keras.Sequential(layers)
    if compile_kwargs is not False:
        model.compile(**(compile_kwargs or {"optimizer": "adam", "loss": "binary_crossentropy",
                                            "metrics": [keras.metrics.AUC()]}))
    return model


def mlp_softmax_one_unit(n_features):
    return _mlp(n_features, output=(1, "softmax"))


def mlp_two_softmax_units(n_features):
    return _mlp(n_features, output=(2, "softmax"),
                compile_kwargs={"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
                                "metrics": ["accuracy"]})


def mlp_metric_that_does_not_exist(n_features):
    return _mlp(n_features, compile_kwargs={"optimizer": "adam", "loss": "binary_crossentropy",
                                            "metrics": ["recall_at_threshold"]})


def mlp_tf1_metric(n_features):
    import tensorflow as tf

    return _mlp(n_features, compile_kwargs={"optimizer": "adam", "loss": "binary_crossentropy",
                                            "metrics": [tf.metrics.accuracy]})  # TF1 (E18)


def mlp_not_compiled(n_features):
    return _mlp(n_features, compile_kwargs=False)


def mlp_input_of_30(n_features):
    return _mlp(30)  # the breast-cancer table's width, hard-coded


def mlp_mse(n_features):
    return _mlp(n_features, compile_kwargs={"optimizer": "adam", "loss": "mse",
                                            "metrics": ["accuracy"]})


def mlp_from_logits(n_features):
    return _mlp(n_features, compile_kwargs={
        "optimizer": "adam", "loss": keras.losses.BinaryCrossentropy(from_logits=True),
        "metrics": [keras.metrics.AUC()]})


def mlp_no_metrics(n_features):
    return _mlp(n_features, compile_kwargs={"optimizer": "adam", "loss": "binary_crossentropy"})


def mlp_with_flatten(n_features):
    return _mlp(n_features, extra=(keras.layers.Flatten(),))  # copied with the E19 imports


def mlp_tanh_hidden(n_features):
    return _mlp(n_features, hidden=((64, "tanh"), (32, "tanh")))


# choose_threshold


def _points(y_true, scores):
    """(threshold, sensitivity, specificity) at every distinct score, lowest first."""
    y_true, scores = np.asarray(y_true), np.asarray(scores, dtype=float)
    out = []
    for t in np.unique(scores):
        positive = scores >= t
        out.append((t, positive[y_true == 1].mean(), (~positive[y_true == 0]).mean()))
    return out


def _require_disease(y_true):
    if np.sum(y_true) == 0:
        raise ValueError("no diseased patient")


def ct_best_accuracy(y_true, scores, min_sensitivity):
    _require_disease(y_true)
    accuracy = [accuracy_score(y_true, scores >= t) for t, _, _ in _points(y_true, scores)]
    return _points(y_true, scores)[int(np.argmax(accuracy))][0]


def ct_first_reaching_from_the_bottom(y_true, scores, min_sensitivity):
    _require_disease(y_true)
    for t, sens, _ in _points(y_true, scores):   # lowest threshold first: sensitivity 1
        if sens >= min_sensitivity:
            return t


def ct_first_point_of_the_full_curve(y_true, scores, min_sensitivity):
    _require_disease(y_true)
    fpr, tpr, thresholds = roc_curve(y_true, scores, drop_intermediate=False)
    return thresholds[np.argmax(tpr >= min_sensitivity)]   # tied specificity: not the best


def ct_roc_curve_first_reaching(y_true, scores, min_sensitivity):
    _require_disease(y_true)
    fpr, tpr, thresholds = roc_curve(y_true, scores)   # keeps some points inside a tie
    return thresholds[np.argmax(tpr >= min_sensitivity)]


def ct_strictly_greater(y_true, scores, min_sensitivity):
    _require_disease(y_true)
    ok = [(spec, sens, t) for t, sens, spec in _points(y_true, scores) if sens > min_sensitivity]
    return max(ok)[2]


def ct_youden(y_true, scores, min_sensitivity):
    _require_disease(y_true)
    best = max(_points(y_true, scores), key=lambda p: p[1] + p[2])
    return best[0]


def ct_returns_the_metrics(y_true, scores, min_sensitivity):
    t = tabular.choose_threshold(y_true, scores, min_sensitivity)
    return t, metrics.sensitivity(y_true, scores >= t)


def ct_nan_without_disease(y_true, scores, min_sensitivity):
    if np.sum(y_true) == 0:
        return float("nan")
    return tabular.choose_threshold(y_true, scores, min_sensitivity)


# evaluate_classifier


def _evaluation(y_true, scores, threshold, strictly=False, **override):
    y_true, scores = np.asarray(y_true), np.asarray(scores, dtype=float)
    pred = scores > threshold if strictly else scores >= threshold
    tp, fp = int(np.sum(pred & (y_true == 1))), int(np.sum(pred & (y_true == 0)))
    tn, fn = int(np.sum(~pred & (y_true == 0))), int(np.sum(~pred & (y_true == 1)))

    def ratio(a, b):
        return a / b if b else float("nan")

    out = {"sensitivity": ratio(tp, tp + fn), "specificity": ratio(tn, tn + fp),
           "ppv": ratio(tp, tp + fp), "npv": ratio(tn, tn + fn),
           "accuracy": ratio(tp + tn, len(y_true)), "roc_auc": roc_auc_score(y_true, scores)}
    for key, formula in override.items():
        out[key] = formula(tp, fp, tn, fn, y_true, scores, pred)
    return out


def ev_auc_of_the_predictions(y_true, scores, threshold):
    return _evaluation(y_true, scores, threshold,
                       roc_auc=lambda tp, fp, tn, fn, y, s, pred: roc_auc_score(y, pred))


def ev_strictly_greater(y_true, scores, threshold):
    return _evaluation(y_true, scores, threshold, strictly=True)


def ev_sensitivity_is_ppv(y_true, scores, threshold):
    return _evaluation(y_true, scores, threshold,
                       sensitivity=lambda tp, fp, tn, fn, *_: tp / (tp + fp))


def ev_specificity_is_npv(y_true, scores, threshold):
    return _evaluation(y_true, scores, threshold,
                       specificity=lambda tp, fp, tn, fn, *_: tn / (tn + fn))


def ev_plain_division(y_true, scores, threshold):
    return _evaluation(y_true, scores, threshold,
                       ppv=lambda tp, fp, tn, fn, *_: tp / (tp + fp))   # 0 / 0 raises


def ev_auc_key(y_true, scores, threshold):
    out = _evaluation(y_true, scores, threshold)
    out["auc"] = out.pop("roc_auc")
    return out


def ev_recall_score_swapped(y_true, scores, threshold):
    pred = (np.asarray(scores) >= threshold).astype(int)
    out = _evaluation(y_true, scores, threshold)
    out["sensitivity"] = recall_score(pred, y_true)   # arguments swapped: that is PPV
    return out


def _treated_counts(y_true, scores, threshold, strict=False):
    y, s = np.asarray(y_true), np.asarray(scores)
    treated = s > threshold if strict else s >= threshold
    return np.sum(treated & (y == 1)), np.sum(treated & (y == 0)), len(y)


def nb_odds_inverted(y_true, scores, threshold):
    tp, fp, n = _treated_counts(y_true, scores, threshold)
    return tp / n - fp / n * (1 - threshold) / threshold


def nb_threshold_as_weight(y_true, scores, threshold):
    tp, fp, n = _treated_counts(y_true, scores, threshold)
    return tp / n - fp / n * threshold


def nb_counts(y_true, scores, threshold):
    tp, fp, _ = _treated_counts(y_true, scores, threshold)
    return tp - fp * threshold / (1 - threshold)


def nb_rates(y_true, scores, threshold):
    """Sensitivity minus the false-positive rate times the odds."""
    tp, fp, _ = _treated_counts(y_true, scores, threshold)
    y = np.asarray(y_true)
    return tp / np.sum(y == 1) - fp / np.sum(y == 0) * threshold / (1 - threshold)


def nb_strict(y_true, scores, threshold):
    tp, fp, n = _treated_counts(y_true, scores, threshold, strict=True)
    return tp / n - fp / n * threshold / (1 - threshold)


def nb_no_harm(y_true, scores, threshold):
    tp, _, n = _treated_counts(y_true, scores, threshold)
    return tp / n


PART = "{}: {}"
WRONG_VERSIONS = [
    # (checker, wrong version, the case it must fail on, another fragment of the message)
    (check_stratified_split, ss_not_stratified, f"{SPLIT_120}: y_", "stratify"),
    (check_stratified_split, ss_second_split_not_stratified, f"{SPLIT_FRAME}: y_",
     "stratify=y_rest"),
    (check_stratified_split, ss_validation_from_the_whole_table, SPLIT_120 + "'",
     "leaks"),
    (check_stratified_split, ss_val_fraction_of_the_rest, SPLIT_120 + "'",
     r"val_size / \(1 - test_size\)"),
    (check_stratified_split, ss_sklearn_order, SPLIT_120 + "'", "another order"),
    (check_stratified_split, ss_fixed_random_state, f"{SPLIT_120}: another seed",
     "random_state=seed"),
    (check_stratified_split, ss_unseeded, f"{SPLIT_120}: the same seed twice", "random_state"),
    (check_stratified_split, ss_shuffled_separately, SPLIT_120 + "'", "shuffled separately"),
    (check_stratified_split, ss_numpy_only, SPLIT_FRAME + "'", "iloc"),
    (check_stratified_split, ss_shuffles_in_place, SPLIT_120 + "'", "in place"),
    (check_fit_preprocessor, fp_fitted_on_the_whole_table, f"{PREP_FRAME}: the training part",
     "not a global table"),
    (check_fit_preprocessor, fp_own_statistics_each_time,
     f"{PREP_FRAME}: the test part (shifted population)", "training statistics"),
    (check_fit_preprocessor, fp_no_imputer, f"{PREP_FRAME}: the training part", "SimpleImputer"),
    (check_fit_preprocessor, fp_mean_imputer, f"{PREP_FRAME}: the training part",
     "mean imputation"),
    (check_fit_preprocessor, fp_scale_then_impute, f"{PREP_FRAME}: the training part",
     "impute first"),
    (check_fit_preprocessor, fp_returns_the_data, PREP_FRAME + "'", "not the transformed data"),
    (check_fit_preprocessor, fp_not_fitted, f"{PREP_FRAME}: the training part", "NotFitted"),
    (check_fit_preprocessor, fp_fillna_in_place, PREP_FRAME + "'", "inplace"),
    (check_build_mlp, mlp_softmax_one_unit, MLP_30, "always 1"),
    (check_build_mlp, mlp_two_softmax_units, MLP_30, "ends with one unit"),
    (check_build_mlp, mlp_metric_that_does_not_exist, MLP_30, "E18"),
    (check_build_mlp, mlp_tf1_metric, MLP_30, "(?s)AttributeError.*E18"),
    (check_build_mlp, mlp_not_compiled, MLP_30, "compile it"),
    (check_build_mlp, mlp_input_of_30, "7 features", "n_features argument"),
    (check_build_mlp, mlp_mse, MLP_30, "mean squared error"),
    (check_build_mlp, mlp_from_logits, MLP_30, "from_logits"),
    (check_build_mlp, mlp_no_metrics, MLP_30, "at least one metric"),
    (check_build_mlp, mlp_with_flatten, MLP_30, "E19"),
    (check_build_mlp, mlp_tanh_hidden, MLP_30, "relu"),
    (check_choose_threshold, ct_best_accuracy, "200 seeded patients, sensitivity >= 0.9",
     "maximises accuracy"),
    (check_choose_threshold, ct_first_reaching_from_the_bottom, CLEAR, "not the first"),
    (check_choose_threshold, ct_first_point_of_the_full_curve, "tied specificity",
     "best sensitivity"),
    (check_choose_threshold, ct_strictly_greater, CLEAR, "not >"),
    (check_choose_threshold, ct_roc_curve_first_reaching, "tied scores", "drop_intermediate"),
    (check_choose_threshold, ct_youden, "200 seeded patients, sensitivity >= 0.9",
     "below the requirement|maximises accuracy"),
    (check_choose_threshold, ct_returns_the_metrics, CLEAR, "one number"),
    (check_choose_threshold, ct_nan_without_disease, "no diseased patient", "raise ValueError"),
    (check_evaluate_classifier, ev_auc_of_the_predictions, f"{HAND_EVAL}: roc_auc",
     "0/1 predictions"),
    (check_evaluate_classifier, ev_strictly_greater, f"{HAND_EVAL}: sensitivity", ">="),
    (check_evaluate_classifier, ev_sensitivity_is_ppv, f"{HAND_EVAL}: sensitivity",
     "that is PPV"),
    (check_evaluate_classifier, ev_specificity_is_npv, f"{HAND_EVAL}: specificity",
     "that is NPV"),
    (check_evaluate_classifier, ev_plain_division, "threshold above every score", "nan"),
    (check_evaluate_classifier, ev_auc_key, HAND_EVAL + "'", r"add \['roc_auc'\]"),
    (check_evaluate_classifier, ev_recall_score_swapped, f"{HAND_EVAL}: sensitivity",
     "that is PPV"),
    (check_net_benefit, nb_odds_inverted, NB_HAND, "odds are inverted"),
    (check_net_benefit, nb_threshold_as_weight, NB_HAND, "not the threshold itself"),
    (check_net_benefit, nb_counts, NB_HAND, "per patient"),
    (check_net_benefit, nb_rates, NB_HAND, "sensitivity and 1 - specificity"),
    (check_net_benefit, nb_strict, NB_HAND, "use >=, not >"),
    (check_net_benefit, nb_no_harm, NB_HAND, "subtract the false positives"),
]


test_checker_rejects_realistic_mistake = rejects_mistakes(WRONG_VERSIONS)
test_every_chapter_6_exercise_has_at_least_three_wrong_versions = has_wrong_versions(
    CHAPTER_6, WRONG_VERSIONS)
test_build_mlp_hints_point_at_the_idea = hints_without_layer_code(
    [row for row in WRONG_VERSIONS if row[0] is check_build_mlp])


def test_a_failure_says_what_was_expected_and_what_came_back():
    with pytest.raises(AssertionError) as info:
        check_choose_threshold(ct_first_reaching_from_the_bottom)
    message = str(info.value)
    assert "expected: threshold 0.6 (sensitivity 0.750, specificity 0.833)" in message
    assert "got:      threshold 0.05 (sensitivity 1.000, specificity 0.000)" in message


def ss_first_split_not_stratified(X, y, test_size, val_size, seed):
    return _two_splits(X, y, test_size, val_size, seed, stratify_first=False)


@pytest.mark.parametrize("half_stratified", [ss_first_split_not_stratified,
                                             ss_second_split_not_stratified])
def test_one_unstratified_split_of_two_fails_on_a_named_part(half_stratified):
    # one of the two splits stratified, the other not: the check names the part whose share of
    # diseased patients is off (the first it looks at: the training part)
    with pytest.raises(AssertionError, match=r"y_(train|val|test)'") as info:
        check_stratified_split(half_stratified)
    assert "the whole table's share" in str(info.value)


# --- right answers written differently -------------------------------------------------------


def ss_shuffle_split(X, y, test_size, val_size, seed):
    y_arr = np.asarray(y)
    first = StratifiedShuffleSplit(1, test_size=test_size, random_state=seed)
    rest, test = next(first.split(np.zeros(len(y_arr)), y_arr))
    second = StratifiedShuffleSplit(1, test_size=val_size / (1 - test_size), random_state=seed)
    train, val = next(second.split(np.zeros(len(rest)), y_arr[rest]))
    train, val = rest[train], rest[val]

    def take(a, idx):
        return a.iloc[idx] if hasattr(a, "iloc") else np.asarray(a)[idx]

    return (take(X, train), take(X, val), take(X, test), take(y, train), take(y, val),
            take(y, test))


def ss_by_hand(X, y, test_size, val_size, seed):
    rng = np.random.default_rng(seed)
    y_arr = np.asarray(y)
    parts = {"train": [], "val": [], "test": []}
    for label in (0, 1):
        rows = rng.permutation(np.flatnonzero(y_arr == label))
        n_test = int(round(test_size * len(rows)))
        n_val = int(round(val_size * len(rows)))
        parts["test"] += list(rows[:n_test])
        parts["val"] += list(rows[n_test:n_test + n_val])
        parts["train"] += list(rows[n_test + n_val:])
    idx = {k: rng.permutation(v) for k, v in parts.items()}

    def take(a, rows):
        return a.iloc[rows] if hasattr(a, "iloc") else np.asarray(a)[rows]

    return (take(X, idx["train"]), take(X, idx["val"]), take(X, idx["test"]),
            take(y, idx["train"]), take(y, idx["val"]), take(y, idx["test"]))


def fp_named_steps_pandas_output(X_train):
    pipeline = Pipeline([("impute", SimpleImputer(strategy="median")),
                         ("scale", StandardScaler())])
    return pipeline.set_output(transform="pandas").fit(X_train)


def fp_by_hand(X_train):
    class Standardiser:
        def fit(self, X):
            X = np.asarray(X, dtype=float)
            self.median_ = np.nanmedian(X, axis=0)
            filled = np.where(np.isnan(X), self.median_, X)
            self.mean_, self.sd_ = filled.mean(axis=0), filled.std(axis=0)
            return self

        def transform(self, X):
            X = np.asarray(X, dtype=float)
            return (np.where(np.isnan(X), self.median_, X) - self.mean_) / self.sd_

    return Standardiser().fit(X_train)


def mlp_as_in_the_source(n_features):
    # the seed's Sequential with input_shape on the first layer, compiled with metrics that exist
    from keras.layers import Dense

    with warnings.catch_warnings():  # Keras 3 prefers keras.Input, and says so
        warnings.simplefilter("ignore", UserWarning)
        model = keras.Sequential([Dense(64, activation="relu", input_shape=(n_features,)),
                                  Dense(32, activation="relu"), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def mlp_loss_object_and_dropout(n_features):
    model = keras.Sequential([keras.Input((n_features,)),
                              keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dropout(0.2),
                              keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.BinaryCrossentropy(),
                  metrics=[keras.metrics.Recall(thresholds=0.5), keras.metrics.AUC(name="auc")])
    return model


def ct_best_pair(y_true, scores, min_sensitivity):
    if np.sum(y_true) == 0:
        raise ValueError("no diseased patient: sensitivity is undefined")
    fpr, tpr, thresholds = roc_curve(y_true, scores, drop_intermediate=False)
    reaching = [(1 - f, t, th) for f, t, th in zip(fpr, tpr, thresholds, strict=True)
                if t >= min_sensitivity]
    return float(max(reaching)[2])   # best specificity, then best sensitivity


def ct_midpoint(y_true, scores, min_sensitivity):
    t = tabular.choose_threshold(y_true, scores, min_sensitivity)
    lower = np.asarray(scores)[np.asarray(scores) < t]
    return (t + lower.max()) / 2 if lower.size else t   # between two scores: the same cut


def ev_with_sklearn(y_true, scores, threshold):
    from sklearn.metrics import confusion_matrix

    pred = (np.asarray(scores) >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y_true, pred, labels=[0, 1]).ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"sensitivity": np.float64(tp) / (tp + fn),
                "specificity": np.float64(tn) / (tn + fp),
                "ppv": np.float64(tp) / (tp + fp), "npv": np.float64(tn) / (tn + fn),
                "accuracy": accuracy_score(y_true, pred), "roc_auc": roc_auc_score(y_true, scores),
                "tp": tp, "fp": fp}


def nb_from_confusion_matrix(y_true, scores, threshold):
    """With scikit-learn's confusion matrix and the odds written as w."""
    from sklearn.metrics import confusion_matrix

    tn, fp, fn, tp = confusion_matrix(y_true, np.asarray(scores) >= threshold,
                                      labels=[0, 1]).ravel()
    w = threshold / (1 - threshold)
    return (tp - w * fp) / len(y_true)


def nb_pandas(y_true, scores, threshold):
    frame = pd.DataFrame({"y": y_true, "treat": np.asarray(scores) >= threshold})
    gained = ((frame.y == 1) & frame.treat).mean()
    harmed = ((frame.y == 0) & frame.treat).mean()
    return float(gained - harmed * threshold / (1 - threshold))


CORRECT_VARIANTS = [
    (check_stratified_split, ss_shuffle_split),
    (check_stratified_split, ss_by_hand),
    (check_fit_preprocessor, fp_named_steps_pandas_output),
    (check_fit_preprocessor, fp_by_hand),
    (check_build_mlp, mlp_as_in_the_source),
    (check_build_mlp, mlp_loss_object_and_dropout),
    (check_choose_threshold, ct_best_pair),
    (check_choose_threshold, ct_midpoint),
    (check_evaluate_classifier, ev_with_sklearn),
    (check_net_benefit, nb_from_confusion_matrix),
    (check_net_benefit, nb_pandas),
]


test_checker_accepts_correct_variant = accepts_variants(CORRECT_VARIANTS)


# --- the notebook's own answers, as a learner writes them ------------------------------------

TEXTBOOK = """
    import keras
    import numpy as np

    def stratified_split(X, y, test_size=0.2, val_size=0.2, seed=0):
        from sklearn.model_selection import train_test_split

        X_rest, X_test, y_rest, y_test = train_test_split(
            X, y, test_size=test_size, stratify=y, random_state=seed)
        X_train, X_val, y_train, y_val = train_test_split(
            X_rest, y_rest, test_size=val_size / (1 - test_size), stratify=y_rest,
            random_state=seed)
        return X_train, X_val, X_test, y_train, y_val, y_test

    def fit_preprocessor(X_train):
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        preprocessor = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
        return preprocessor.fit(X_train)

    def build_mlp(n_features):
        model = keras.Sequential([
            keras.Input(shape=(n_features,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ])
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                      loss="binary_crossentropy",
                      metrics=[keras.metrics.AUC(name="auc"),
                               keras.metrics.Recall(name="sensitivity")])
        return model

    def choose_threshold(y_true, scores, min_sensitivity):
        y_true = np.asarray(y_true)
        scores = np.asarray(scores, dtype=float)
        diseased, healthy = scores[y_true == 1], scores[y_true == 0]
        if diseased.size == 0 or healthy.size == 0:
            raise ValueError("choose_threshold needs diseased and healthy patients")
        best_threshold, best_specificity = None, -1.0
        for t in np.unique(scores):                  # lowest threshold first
            sensitivity = np.mean(diseased >= t)
            specificity = np.mean(healthy < t)
            if sensitivity >= min_sensitivity and specificity > best_specificity:
                best_threshold, best_specificity = t, specificity
        return float(best_threshold)

    def evaluate_classifier(y_true, scores, threshold=0.5):
        from sklearn.metrics import roc_auc_score

        y_true = np.asarray(y_true)
        scores = np.asarray(scores, dtype=float)
        positive = scores >= threshold
        tp = np.sum(positive & (y_true == 1))
        fp = np.sum(positive & (y_true == 0))
        tn = np.sum(~positive & (y_true == 0))
        fn = np.sum(~positive & (y_true == 1))

        def ratio(a, b):
            return float(a / b) if b > 0 else float("nan")

        return {"sensitivity": ratio(tp, tp + fn), "specificity": ratio(tn, tn + fp),
                "ppv": ratio(tp, tp + fp), "npv": ratio(tn, tn + fn),
                "accuracy": ratio(tp + tn, len(y_true)),
                "roc_auc": float(roc_auc_score(y_true, scores))}

    def net_benefit(y_true, scores, threshold):
        y_true = np.asarray(y_true)
        treated = np.asarray(scores, dtype=float) >= threshold
        n = len(y_true)
        tp = np.sum(treated & (y_true == 1))
        fp = np.sum(treated & (y_true == 0))
        return float(tp / n - fp / n * threshold / (1 - threshold))
"""


@pytest.mark.parametrize("strict", [False, True], ids=["visible", "strict"])
@pytest.mark.parametrize("name", CHAPTER_6)
def test_textbook_answer_passes_and_is_the_learners_own(name, strict):
    learner = notebook(TEXTBOOK)[name]
    EXERCISES[name][0](learner, strict=strict)
    if strict:
        assert assert_own_implementation(learner, name) is None


def test_the_notebook_holds_the_textbook_answers():
    """The answers above are the chapter's solutions, so that this file tests what the
    autograder will see."""
    from conftest import SOURCE
    from nbtools import assert_notebook_holds, read

    nb = read(SOURCE / "ch06_tabular_case_study" / "ch06_tabular_case_study.ipynb")
    assert_notebook_holds(nb, TEXTBOOK, CHAPTER_6)


CHEATS = {
    "stratified_split": """
        from medai_lessons import tabular

        def stratified_split(X, y, test_size, val_size, seed):
            return tabular.stratified_split(X, y, test_size, val_size, seed)
    """,
    "fit_preprocessor": """
        from medai_lessons.tabular import fit_preprocessor as course_version

        def fit_preprocessor(X_train):
            return course_version(X_train)
    """,
    "build_mlp": """
        import importlib

        def build_mlp(n_features):
            module = importlib.import_module("medai_" + "lessons.models")  # no name to scan
            return getattr(module, "build_" + "mlp")(n_features)
    """,
    "choose_threshold": """
        from medai_lessons.grading import EXERCISES

        def choose_threshold(y_true, scores, min_sensitivity):
            return EXERCISES["choose_threshold"][1](y_true, scores, min_sensitivity)
    """,
    "evaluate_classifier": """
        from medai_lessons import metrics

        def evaluate_classifier(y_true, scores, threshold=0.5):
            report = metrics.binary_report(y_true, scores, threshold)
            return {k: report[k] for k in ("sensitivity", "specificity", "ppv", "npv",
                                           "accuracy", "roc_auc")}
    """,
    "net_benefit": """
        import medai_lessons.tabular as t

        def net_benefit(y_true, scores, threshold):
            return t.net_benefit(y_true, scores, threshold)
    """,
}


@pytest.mark.parametrize("name", CHAPTER_6)
def test_own_implementation_rejects_calls_into_the_course_code(name):
    learner = notebook(CHEATS[name])[name]
    EXERCISES[name][0](learner)                          # right values ...
    with pytest.raises(AssertionError, match=rf"^{name}: failed on case 'own implementation'"):
        assert_own_implementation(learner, name)         # ... but not the learner's own
    EXERCISES[name][0](EXERCISES[name][1])               # the trap is gone afterwards


def test_learner_or_reference_falls_back_on_a_wrong_choose_threshold(capsys):
    chosen = learner_or_reference("choose_threshold", {"choose_threshold": ct_best_accuracy})
    assert chosen is tabular.choose_threshold
    out = capsys.readouterr().out
    assert "does not pass its check yet (choose_threshold: failed on case '200 seeded" in out
    assert out.count("\n") == 1

