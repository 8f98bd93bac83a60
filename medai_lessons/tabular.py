"""Helpers for clinical tables (pandas DataFrames): what is missing, before anything is fitted.

Chapter 1 looks at the "messy EHR" export of :func:`medai_lessons.data.load_messy_ehr` with
:func:`missingness_report`; chapter 6 cleans such a table for a model, splits and preprocesses
it without leakage, asks when missing-value indicators help
(:func:`missing_indicator_experiment`), and compares its network with logistic regression, the
network's training setup chosen on each split's training and validation parts only
(:func:`select_mlp_setup`, :func:`fit_mlp`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

REPORT_COLUMNS: tuple[str, ...] = ("n_missing", "fraction_missing")


def missingness_report(df: pd.DataFrame) -> pd.DataFrame:
    """How many values each column is missing.

    A value is missing when pandas' ``isna()`` says so (NaN, None, NaT, ``pd.NA``); an empty
    or misspelt string is a value. Returns a DataFrame **indexed by column name** with

    - ``n_missing`` (int): the number of missing values in that column;
    - ``fraction_missing`` (float): ``n_missing / len(df)``, the share of the *rows* (not of
      all cells) that lack a value in that column;

    holding **only the columns with at least one missing value**, sorted by ``n_missing``,
    largest first (ties keep the table's column order). A table without gaps gives an empty
    report with the same two columns. ``df`` itself is not changed.
    """
    import pandas as pd

    counts = df.isna().sum()
    counts = counts[counts > 0].sort_values(ascending=False, kind="stable").astype("int64")
    fraction = counts / len(df) if len(df) else counts.astype(float)
    return pd.DataFrame({"n_missing": counts, "fraction_missing": fraction.astype(float)},
                        columns=list(REPORT_COLUMNS))


# --- chapter 6: a leakage-free diagnostic pipeline --------------------------------------------

#: what :func:`evaluate_classifier` returns, in this order
EVALUATION_KEYS: tuple[str, ...] = ("sensitivity", "specificity", "ppv", "npv", "accuracy",
                                    "roc_auc")


def stratified_split(X, y, test_size=0.2, val_size=0.2, seed=0):
    """Split patients into training, validation and test parts, each with the class shares of
    ``y`` (stratified), reproducibly for ``seed``.

    ``test_size`` and ``val_size`` are fractions **of the whole** (0.2 and 0.2 leave 60 % for
    training; their sum must be below 1). Part sizes are those of scikit-learn's
    ``train_test_split``: the test part is ``ceil(test_size * n)``, the validation part
    ``ceil(val_size / (1 - test_size) * (n - n_test))``, so each is within one patient of the
    fraction. Rows of ``X`` and ``y`` stay paired; DataFrames and Series stay DataFrames and
    Series (with their index); the inputs are not changed.

    Returns ``(X_train, X_val, X_test, y_train, y_val, y_test)``.
    """
    from sklearn.model_selection import train_test_split

    if not (0 < test_size < 1 and 0 < val_size < 1 and test_size + val_size < 1):
        raise ValueError("test_size and val_size are fractions of the whole, each in (0, 1), "
                         f"with a sum below 1; got {test_size} and {val_size}")
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=test_size, stratify=y,
                                                      random_state=seed)
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=val_size / (1 - test_size), stratify=y_rest,
        random_state=seed)
    return X_train, X_val, X_test, y_train, y_val, y_test


def fit_preprocessor(X_train, *, add_indicator: bool = False):
    """A scikit-learn transformer fitted on the training features only: missing values
    replaced by the training **median** of their column (robust to outliers such as a unit
    error), then every column standardised with the training mean and standard deviation
    (``(x - mean) / sd``). The label is never an input.

    Apply the result with ``.transform`` to every part (training, validation, test, a new
    patient): it uses the training statistics and never refits.

    With ``add_indicator=True`` (chapter 6, section 3.1) the output also has one
    *missing-value indicator* column per column that had at least one gap **in X_train**
    (1 where the value was missing before imputation, else 0), standardised like the others.
    Columns come in this order: every column of ``X_train`` in its order, then the indicators
    in the order of their columns (scikit-learn's ``SimpleImputer(add_indicator=True)``;
    ``get_feature_names_out()`` names them ``missingindicator_<column>``). Which columns get
    an indicator is learnt from the training part: a column with gaps only in later parts
    is imputed but gets no indicator, so every part has the same columns.
    """
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(SimpleImputer(strategy="median", add_indicator=add_indicator),
                         StandardScaler()).fit(X_train)


#: the two arms and the two sites of :func:`missing_indicator_experiment`, in the order of its rows
INDICATOR_ARMS: tuple[str, ...] = ("imputation only", "imputation + indicators")
INDICATOR_SITES: tuple[str, ...] = ("this hospital", "another hospital")


def missing_indicator_experiment(X_gappy, X_true, y, columns, seeds, *, split=None,
                                 preprocessor=fit_preprocessor, n_boot: int = 0,
                                 lost_column: str = "smoothness_mean",
                                 lost_share: float = 0.2):
    """Chapter 6, section 3.1: does a missing-value indicator help, and where?

    For each split seed in ``seeds``: ``split(X_gappy, y, 0.2, 0.2, seed)`` (the chapter's
    stratified split; :func:`stratified_split` when ``split`` is None) gives training,
    validation and test patients. Logistic regression is fitted on the development patients
    (training and validation parts together, ``columns`` only), once after imputation only
    (``preprocessor(X_dev)``) and once with indicators (``preprocessor(X_dev,
    add_indicator=True)``); both are evaluated once on the test patients at two sites:

    - ``"this hospital"``: the test rows of ``X_gappy``, with their gaps;
    - ``"another hospital"``: the same patients' rows of ``X_true`` (no gaps), with
      ``lost_column`` missing at random for a share ``lost_share`` of them (drawn with
      ``np.random.default_rng(seed)``; a simulated site where the gap means nothing).

    Returns a DataFrame indexed by ``(seed, site, arm)`` (the order of ``seeds``,
    :data:`INDICATOR_SITES`, :data:`INDICATOR_ARMS`) with the columns ``roc_auc``,
    ``log_loss`` and ``n_test``, and with ``n_boot > 0`` also ``auc_low`` and ``auc_high``: the
    95 % stratified bootstrap interval of the ROC AUC (:func:`medai_lessons.metrics.
    bootstrap_auc_ci`, ``n_boot`` resamples, the split's seed). ``X_gappy`` and ``X_true``
    share their index and columns; no input is changed.
    """
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from medai_lessons import metrics

    split = stratified_split if split is None else split
    columns, seeds = list(columns), list(seeds)
    rows = {}
    for seed in seeds:
        parts = split(X_gappy, y, 0.2, 0.2, seed)
        X_dev, X_test = pd.concat(parts[:2])[columns], parts[2][columns]
        y_dev, y_test = pd.concat(parts[3:5]), parts[5]
        elsewhere = X_true.loc[X_test.index, columns].copy()
        elsewhere.loc[np.random.default_rng(seed).random(len(elsewhere)) < lost_share,
                      lost_column] = np.nan
        sites = dict(zip(INDICATOR_SITES, (X_test, elsewhere), strict=True))
        for arm, add in zip(INDICATOR_ARMS, (False, True), strict=True):
            prep = preprocessor(X_dev, add_indicator=add)         # learnt on X_dev only
            model = LogisticRegression(max_iter=1000).fit(prep.transform(X_dev), y_dev)
            for site, X_site in sites.items():
                p = model.predict_proba(prep.transform(X_site))[:, 1]
                row = {"roc_auc": roc_auc_score(y_test, p),
                       "log_loss": metrics.log_loss(y_test, p), "n_test": len(y_test)}
                if n_boot:
                    ci = metrics.bootstrap_auc_ci(y_test, p, n_boot=n_boot, seed=seed)
                    row |= {"auc_low": ci.low, "auc_high": ci.high}
                rows[seed, site, arm] = row
    order = [(seed, site, arm) for seed in seeds for site in INDICATOR_SITES
             for arm in INDICATOR_ARMS]
    seed_of, site_of, arm_of = zip(*order, strict=True)
    index = pd.MultiIndex.from_arrays(   # ordered levels: sorted as listed, quick to look up
        [list(seed_of), pd.Categorical(site_of, categories=INDICATOR_SITES, ordered=True),
         pd.Categorical(arm_of, categories=INDICATOR_ARMS, ordered=True)],
        names=["seed", "site", "arm"])
    return pd.DataFrame([rows[key] for key in order], index=index)


def indicator_gain(results):
    """From :func:`missing_indicator_experiment`'s table: for each split seed (rows, in the
    table's order) and site (columns), the test ROC AUC with indicators minus that with
    imputation only."""
    auc = results["roc_auc"].unstack("arm")
    gain = (auc[INDICATOR_ARMS[1]] - auc[INDICATOR_ARMS[0]]).unstack("site")
    gain = gain.reindex(results.index.get_level_values("seed").unique())
    gain.columns = list(gain.columns)                     # plain site names
    return gain[list(INDICATOR_SITES)]


def choose_threshold(y_true, scores, min_sensitivity):
    """The threshold for a screening setting: among the thresholds whose sensitivity is at
    least ``min_sensitivity``, the one with the **best specificity**; of those tied on
    specificity, the one with the best sensitivity (the lowest such threshold).

    Candidate thresholds are the distinct values of ``scores``; a score >= threshold counts as
    positive, so the result is one of the scores. Every requirement in (0, 1] can be met (the
    lowest score calls everyone positive: sensitivity 1). Raises ``ValueError`` when
    ``min_sensitivity`` is outside (0, 1] or when ``y_true`` lacks diseased or healthy patients
    (sensitivity or specificity would be undefined).
    """
    import numpy as np

    from medai_lessons import metrics

    if not 0 < min_sensitivity <= 1:
        raise ValueError(f"min_sensitivity is a fraction in (0, 1], got {min_sensitivity}")
    points = metrics.operating_points(y_true, scores)
    if points.thresholds.size == 0 or np.isnan(points.sensitivity).any() \
            or np.isnan(points.specificity).any():
        raise ValueError("choose_threshold needs diseased (1) and healthy (0) patients in "
                         "y_true: otherwise sensitivity or specificity is undefined")
    reaching = points.sensitivity >= min_sensitivity
    best = reaching & (points.specificity == points.specificity[reaching].max())
    return float(points.thresholds[np.flatnonzero(best)[-1]])




def split_by_patient(patient_ids, test_size, seed):
    """Row indices ``(train_idx, test_idx)`` of a split in which every patient's rows (beats,
    visits, images) fall in one part only (chapter 4): the patients are shuffled with
    ``seed`` and ``round(test_size * n_patients)`` of them (at least 1, and at least 1 left
    for training) go to the test part. Both index arrays are sorted. ``patient_ids`` holds one
    id (number or text) per row, for at least 2 patients.

    The exercise's contract (and its checker) accepts either whole number next to
    ``test_size * n_patients`` (floor or ceil), within 1 and ``n_patients - 1``: neither part
    is ever empty."""
    import numpy as np

    ids = np.asarray(patient_ids)
    if ids.ndim != 1 or ids.size == 0:
        raise ValueError(f"patient_ids must be a non-empty 1-D sequence (one id per row); got "
                         f"shape {ids.shape}")
    if not 0 < test_size < 1:
        raise ValueError(f"test_size is a fraction of the patients in (0, 1), got {test_size}")
    patients = np.unique(ids)
    if patients.size < 2:
        raise ValueError("a split by patient needs at least 2 patients; all rows belong to "
                         f"{patients[0]!r}")
    n_test = min(max(int(round(test_size * patients.size)), 1), patients.size - 1)
    chosen = np.random.default_rng(seed).permutation(patients)[:n_test]
    in_test = np.isin(ids, chosen)
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)

def net_benefit(y_true, scores, threshold):
    """The net benefit of treating the patients whose score is ``>= threshold`` (decision
    curve analysis, Vickers & Elkin 2006): ``TP / n - FP / n * threshold / (1 - threshold)``,
    true positives gained minus false positives, each false positive weighed by the odds at
    the threshold probability (at a threshold of 0.2 a clinician accepts 4 unnecessary
    treatments for one needed one: odds 0.25). ``n`` counts every patient. Raises
    ``ValueError`` for a threshold outside (0, 1)."""
    import numpy as np

    y = np.asarray(y_true).astype(float).reshape(-1)
    s = np.asarray(scores, dtype=float).reshape(-1)
    if y.shape != s.shape or y.size == 0:
        raise ValueError(f"y_true and scores need the same, non-zero length; got {y.size} and "
                         f"{s.size}")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold is a probability in (0, 1), got {threshold}: the odds "
                         "threshold / (1 - threshold) are undefined at 0 and 1")
    treated = s >= threshold
    tp = float(np.sum(treated & (y == 1)))
    fp = float(np.sum(treated & (y == 0)))
    return tp / y.size - fp / y.size * threshold / (1.0 - threshold)

def evaluate_classifier(y_true, scores, threshold=0.5):
    """Sensitivity, specificity, PPV, NPV and accuracy at ``threshold`` (a score >= threshold
    counts as positive) and the ROC AUC of the scores themselves, as a dict with the keys of
    :data:`EVALUATION_KEYS`. A metric whose denominator is 0 is ``nan`` (as in
    :mod:`medai_lessons.metrics`)."""
    from medai_lessons import metrics

    report = metrics.binary_report(y_true, scores, threshold)
    return {key: report[key] for key in EVALUATION_KEYS}



def threshold_table(y_true, scores, thresholds, evaluate=None, prevalence: float = 0.01,
                    missed: str = "missed"):
    """One row per named threshold (``{name: threshold}``) of what it means for these
    patients: the threshold, sensitivity and specificity each with its exact 95 % confidence
    interval (Clopper-Pearson, :func:`medai_lessons.metrics.proportion_ci`), the missed
    diseased patients (the column named ``missed``, e.g. "missed cancers") and the false
    alarms, and the PPV at ``prevalence`` (Bayes' rule), as a DataFrame indexed by name.

    ``evaluate(y_true, scores, threshold)`` gives the sensitivity and specificity (chapter 6
    passes the learner's ``evaluate_classifier``; by default the course's); the counts and
    intervals are the course's.
    """
    import numpy as np
    import pandas as pd

    from medai_lessons import metrics

    evaluate = evaluate or evaluate_classifier
    scores = np.asarray(scores, dtype=float)

    def interval(k, n):
        return "{:.3f}-{:.3f}".format(*metrics.proportion_ci(k, n))

    ppv_column = f"PPV at {100 * prevalence:g} % prevalence"
    rows = {}
    for name, t in thresholds.items():
        r = evaluate(y_true, scores, t)
        tp, fp, tn, fn = metrics.confusion_counts(y_true, scores >= t)
        rows[name] = {"threshold": round(float(t), 4),
                      "sensitivity": round(r["sensitivity"], 3), "95 % CI": interval(tp, tp + fn),
                      "specificity": round(r["specificity"], 3), "95 % CI ": interval(tn, tn + fp),
                      missed: fn, "false alarms": fp,
                      ppv_column: round(metrics.ppv_from_prevalence(
                          r["sensitivity"], r["specificity"], prevalence), 3)}
    return pd.DataFrame(rows).T

# --- chapter 6: training the network, and choosing how without the test part ----------------


@dataclass(frozen=True)
class MLPSetup:
    """One way of training chapter 6's network (the network itself is always
    :func:`medai_lessons.models.build_mlp`, trained by
    :class:`medai_lessons.epoch_trainer.EpochTrainer` with early stopping on the validation
    part).

    - ``l2``: weight penalty ``l2 * sum(kernel ** 2)`` added to the training loss (0: none);
    - ``noise``: standard deviation of Gaussian noise added to the standardised inputs of every
      training mini-batch (0: none);
    - ``refit``: after early stopping, retrain from the same initial weights on training and
      validation parts together for the epoch count early stopping chose (preprocessing refitted
      on those patients too), instead of keeping the early-stopped network.
    """

    l2: float = 0.0
    noise: float = 0.0
    refit: bool = False

    def __str__(self) -> str:
        return (f"L2 {self.l2:g}, input noise {self.noise:g}, "
                f"{'refit on train+val' if self.refit else 'early-stopped network'}")


#: Chapter 6's candidate training setups, fixed before any test result was looked at:
#: L2 in {0, 1e-3, 1e-2, 3e-2} x input noise in {0, 0.1} x refit or not (16, in this order,
#: which also breaks ties in :func:`select_mlp_setup`).
MLP_SETUPS: tuple[MLPSetup, ...] = tuple(
    MLPSetup(l2, noise, refit) for refit in (False, True) for noise in (0.0, 0.1)
    for l2 in (0.0, 1e-3, 1e-2, 3e-2))


@dataclass
class FittedMLP:
    """What :func:`fit_mlp` returns. The trainer's model holds the trained weights;
    ``preprocessor`` (fitted on the patients the final network was trained on) turns a table
    into the network's inputs; ``epochs`` is the epoch count early stopping chose (1-based);
    ``history`` the early-stopping run's :class:`~medai_lessons.epoch_trainer.TrainingHistory`.
    """

    setup: MLPSetup
    preprocessor: object
    epochs: int
    history: object

    def predict(self, trainer, X):
        """The probability of disease for each row of the table ``X``, shape (n,)."""
        return trainer.predict(self.preprocessor.transform(X))


def _stack(first, second):
    """Rows of ``second`` below those of ``first`` (pandas objects stay pandas objects)."""
    import numpy as np
    import pandas as pd

    if isinstance(first, (pd.DataFrame, pd.Series)):
        return pd.concat([first, second])
    return np.concatenate([np.asarray(first), np.asarray(second)])


def binary_log_loss(y_true, p) -> float:
    """Mean binary cross-entropy of probabilities ``p`` for 0/1 labels (clipped to
    [1e-7, 1 - 1e-7], as Keras does): the criterion :func:`select_mlp_setup` minimises."""
    import numpy as np

    y = np.asarray(y_true, dtype=float).ravel()
    p = np.clip(np.asarray(p, dtype=float).ravel(), 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def fit_mlp(trainer, setup: MLPSetup, X_train, y_train, X_val, y_val, *, seed: int,
            epochs: int = 300, patience: int = 20, preprocessor=fit_preprocessor) -> FittedMLP:
    """Train the trainer's network as ``setup`` says: preprocessing fitted on ``X_train``,
    fresh weights (``trainer.reset(seed)``), early stopping on the validation part (at most
    ``epochs`` epochs, ``patience``); with ``setup.refit``, then fresh weights again and
    exactly the chosen number of epochs on training and validation parts together, with the
    preprocessing refitted on them. ``preprocessor`` is the function that fits the
    preprocessing (chapter 6 passes the learner's own). The validation part is used for early
    stopping only; no test data come in."""
    prep = preprocessor(X_train)
    trainer.reset(seed)
    history = trainer.fit(prep.transform(X_train), y_train, prep.transform(X_val), y_val,
                          epochs=epochs, patience=patience, l2=setup.l2, noise=setup.noise,
                          seed=seed)
    chosen = history.best_epoch + 1
    if setup.refit:
        X_dev, y_dev = _stack(X_train, X_val), _stack(y_train, y_val)
        prep = preprocessor(X_dev)
        trainer.reset(seed)
        trainer.fit(prep.transform(X_dev), y_dev, epochs=chosen, l2=setup.l2,
                    noise=setup.noise, seed=seed)
    return FittedMLP(setup, prep, chosen, history)


def select_mlp_setup(trainer, X_train, y_train, X_val, y_val, *, seed: int,
                     setups=MLP_SETUPS, inner_val_size: float = 0.2, epochs: int = 300,
                     patience: int = 20, preprocessor=fit_preprocessor):
    """Choose a training setup for one split **without its test part** (nested selection).

    The protocol of :func:`fit_mlp` is rehearsed one level down: the training part is split
    (stratified, ``inner_val_size`` of it, ``seed``) into an inner training and an inner
    validation part, each setup is run on them (early stopping on the inner validation part;
    with ``refit``, retrained on the whole training part), and the resulting network predicts
    the split's **validation** part, which it never saw. Setups that differ only in ``refit``
    share the early-stopping run. The setup with the lowest validation log-loss
    (:func:`binary_log_loss`) wins; ties go to the earlier one in ``setups``.

    Returns ``(best_setup, scores)``: ``scores`` maps every setup to a dict with the
    validation ``"log_loss"`` and ``"accuracy"`` (threshold 0.5).
    """
    import numpy as np
    from sklearn.model_selection import train_test_split

    X_in, X_in_val, y_in, y_in_val = train_test_split(
        X_train, y_train, test_size=inner_val_size, stratify=y_train, random_state=seed)
    y_val_np = np.asarray(y_val).ravel()
    scores = {}
    for setup in setups:
        if setup in scores:
            continue
        fitted = fit_mlp(trainer, MLPSetup(setup.l2, setup.noise, refit=False), X_in, y_in,
                         X_in_val, y_in_val, seed=seed, epochs=epochs, patience=patience,
                         preprocessor=preprocessor)
        variants = [s for s in setups if (s.l2, s.noise) == (setup.l2, setup.noise)]
        for variant in sorted(variants, key=lambda s: s.refit):    # the early-stopped one first
            if variant.refit:
                prep = preprocessor(X_train)
                trainer.reset(seed)
                trainer.fit(prep.transform(X_train), y_train, epochs=fitted.epochs,
                            l2=variant.l2, noise=variant.noise, seed=seed)
            else:
                prep = fitted.preprocessor
            p = trainer.predict(prep.transform(X_val))
            scores[variant] = {"log_loss": binary_log_loss(y_val_np, p),
                               "accuracy": float(np.mean((p >= 0.5) == (y_val_np == 1)))}
    best = min(setups, key=lambda s: (scores[s]["log_loss"], setups.index(s)))
    return best, {s: scores[s] for s in setups}


def _rows(table, index):
    """Rows ``index`` (positions) of a pandas object or an array."""
    import numpy as np

    return table.iloc[index] if hasattr(table, "iloc") else np.asarray(table)[index]


def out_of_fold_probabilities(trainer, X, y, *, epochs: int, l2: float = 0.0,
                              noise: float = 0.0, n_splits: int = 5, seed: int = 0,
                              preprocessor=fit_preprocessor):
    """Each patient's probability of disease from a network that did not learn from them
    (cross-validation, chapter 6 section 6): the patients are cut into ``n_splits`` stratified
    folds (shuffled with ``seed``); for fold ``k`` the preprocessing is fitted on the other
    folds, the trainer's network starts afresh (``trainer.reset(k)``) and trains on them for
    exactly ``epochs`` epochs (no patient is left for early stopping), then predicts fold
    ``k``. Returns an array of shape (n,), in the order of ``y``."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    y_np = np.asarray(y).ravel()
    out = np.zeros(len(y_np))
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    for k, (fit_rows, held_rows) in enumerate(folds.split(np.zeros(len(y_np)), y_np)):
        prep = preprocessor(_rows(X, fit_rows))
        trainer.reset(k)
        trainer.fit(prep.transform(_rows(X, fit_rows)), _rows(y, fit_rows), epochs=epochs,
                    l2=l2, noise=noise, seed=k)
        out[held_rows] = trainer.predict(prep.transform(_rows(X, held_rows)))
    return out
