"""Sequence classification on ECGs (chapter 4): data as sequences, training, honest reports.

- :func:`rhythm_dataset`: synthetic rhythm strips with a chosen number per class (so that a
  set can be as imbalanced as a clinic's), from :mod:`medai_lessons.data.ecg_synthetic`;
- :func:`ecg_to_sequence`: strips resampled and cut into frames, ``(n, steps, samples per
  frame)``, the ``(batch, time, channels)`` layout of Keras' recurrent layers;
- :func:`train_classifier`: Adam with gradient clipping, early stopping on the validation
  loss, optional class weights, a progress bar, the training time; :func:`fit_and_evaluate`
  adds the test report;
- :func:`multiclass_report`: macro-F1, per-class recall and precision, the confusion matrix
  (scikit-learn), because accuracy alone hides a missed rare class;
- :func:`input_gradient_profile`: how far back a trained network listens (vanishing
  gradients); :func:`recurrent_readout`: its hidden states and what it would answer after
  each step;
- :func:`synthetic_beats`: a stand-in for MIT-BIH beats when no record is on this machine;
- :func:`find_mitdb`: where MIT-BIH records are on this machine, if anywhere;
- :func:`beat_and_patient_splits` and :func:`inter_patient_scores`: a quick classifier tested
  on new beats of known patients against new patients (synthetic patients, and the MIT-BIH
  DS1/DS2 division when its records are staged).

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from medai_lessons.data.ecg_synthetic import RHYTHMS, ECGDataset, make_ecg_dataset


def rhythm_dataset(counts: Mapping[str, int], *, seed: int = 0, duration: float = 10.0,
                   fs: float = 250.0, noise: float = 0.02, baseline_wander: float = 0.05,
                   verbose: bool = False) -> ECGDataset:
    """Synthetic strips, ``counts[rhythm]`` of each (codes of ``ecg_synthetic.RHYTHMS``).

    Class ``k`` is the ``k``-th rhythm of ``counts``. Each class has its own seed (``seed``
    plus 1000 times its position), so strips of different classes are independent; the
    result is shuffled deterministically.
    """
    codes = tuple(counts)
    unknown = [c for c in codes if c not in RHYTHMS]
    if unknown:
        raise ValueError(f"unknown rhythm codes {unknown}; choose from {RHYTHMS}")
    parts = [make_ecg_dataset(int(counts[c]), rhythms=[c], duration=duration, fs=fs,
                              noise=noise, baseline_wander=baseline_wander,
                              seed=seed + 1000 * k, shuffle=False)
             for k, c in enumerate(codes)]
    X = np.concatenate([p.X for p in parts])
    y = np.concatenate([np.full(len(p), k, dtype=np.int64) for k, p in enumerate(parts)])
    rates = np.concatenate([p.heart_rates for p in parts])
    order = np.random.default_rng(seed).permutation(len(y))
    ds = ECGDataset(X=X[order], y=y[order], class_names=codes, fs=float(fs),
                    heart_rates=rates[order], seed=seed, noise=noise,
                    baseline_wander=baseline_wander)
    if verbose:
        print(ds.summary())
    return ds


def ecg_to_sequence(X, fs: float, target_fs: float = 50.0, frame: int = 10) -> np.ndarray:
    """ECG strips ``(n, samples)`` as sequences ``(n, steps, frame)`` for a recurrent layer.

    Each strip is resampled to ``target_fs`` with a polyphase anti-aliasing filter
    (``scipy.signal.resample_poly``), standardised on its own (mean 0, standard deviation 1:
    amplitude differs between patients and electrodes), and cut into consecutive frames of
    ``frame`` samples; a step of the sequence is one frame (at 50 Hz and ``frame=10``, 0.2 s
    of signal). Samples that do not fill a last frame are dropped. Returns float32.
    """
    from fractions import Fraction

    from scipy.signal import resample_poly

    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[None, :]
    ratio = Fraction(float(target_fs) / float(fs)).limit_denominator(1000)
    if ratio != 1:
        X = resample_poly(X, ratio.numerator, ratio.denominator, axis=1)
    X = (X - X.mean(axis=1, keepdims=True)) / (X.std(axis=1, keepdims=True) + 1e-6)
    steps = X.shape[1] // frame
    return X[:, : steps * frame].reshape(X.shape[0], steps, frame).astype(np.float32)


def _class_labels(values, n_classes: int, name: str) -> np.ndarray:
    """``values`` as a flat array of class indices 0 .. n_classes - 1, or a ValueError saying
    what to pass (probabilities or one-hot rows are the usual mistake)."""
    given = np.asarray(values)
    if given.ndim == 2 and given.shape[1] > 1:
        raise ValueError(f"{name} has shape {given.shape}, one column per class: pass one class "
                         f"index per case, e.g. {name}.argmax(axis=1)")
    flat = given.reshape(-1)
    if flat.size and not np.all(np.equal(np.mod(flat.astype(float), 1), 0)):
        raise ValueError(f"{name} must hold class indices (whole numbers), not probabilities; "
                         f"got {flat[:3].tolist()}...: take argmax(axis=1) of the probabilities")
    flat = flat.astype(np.int64)
    outside = flat[(flat < 0) | (flat >= n_classes)]
    if outside.size:
        raise ValueError(f"{name} holds class {outside[0]}, but there are {n_classes} classes "
                         f"(0 to {n_classes - 1})")
    return flat


def balanced_class_weights(y, n_classes: int) -> dict[int, float]:
    """Keras ``class_weight``: scikit-learn's "balanced" rule
    (``sklearn.utils.class_weight.compute_class_weight``) over the classes present in ``y``,
    ``n / (n_present * n_c)`` for class ``c``, so that every class present contributes the same
    total weight to the loss and the weights of all beats add up to ``n``. A class absent
    from ``y`` (scikit-learn refuses one) gets 0.0: it has no example to weigh."""
    from sklearn.utils.class_weight import compute_class_weight

    y = _class_labels(y, n_classes, "y")
    present = np.unique(y)
    weights = dict.fromkeys(range(n_classes), 0.0)
    if present.size:
        balanced = compute_class_weight("balanced", classes=present, y=y)
        weights.update({int(c): float(w) for c, w in zip(present, balanced, strict=True)})
    return weights


class _Progress:
    """A tqdm bar over epochs that shows the losses (a Keras callback, made on demand)."""

    def __new__(cls, epochs: int, desc: str, disable: bool):
        import keras
        from tqdm.auto import tqdm

        class Progress(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.bar = tqdm(total=epochs, desc=desc, disable=disable, leave=False)

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                self.bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items()
                                      if k in ("loss", "val_loss")})
                self.bar.update(1)

            def on_train_end(self, logs=None):
                self.bar.close()

        return Progress()


def train_classifier(model, X, y, X_val, y_val, *, epochs: int, batch_size: int = 32,
                     lr: float = 5e-3, class_weight: Mapping[int, float] | None = None,
                     patience: int | None = 5, seed: int = 0, progress: bool = True,
                     desc: str = "training", eager: bool | None = None):
    """Compile and fit a softmax classifier; returns ``(history, seconds)``.

    Adam (learning rate ``lr``) with gradients clipped to norm 1 (recurrent networks can
    produce exploding gradients), sparse categorical cross-entropy, ``class_weight`` passed
    to Keras. With ``patience``, training stops when the validation loss has not improved
    for that many epochs, and the weights of the best epoch are restored.

    ``eager`` (default: on in the course's fast mode) runs Keras eagerly: for the few batches
    of a fast run that is quicker than compiling the training step into a graph.
    """
    import keras

    from medai_lessons.notebook import fast_mode

    keras.utils.set_random_seed(seed)
    model.compile(optimizer=keras.optimizers.Adam(lr, clipnorm=1.0),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  run_eagerly=fast_mode() if eager is None else eager)
    callbacks = [_Progress(epochs, desc, disable=not progress)]
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=patience, restore_best_weights=True))
    start = time.perf_counter()
    history = model.fit(X, y, validation_data=(X_val, y_val), epochs=epochs,
                        batch_size=batch_size, class_weight=dict(class_weight or {}) or None,
                        callbacks=callbacks, verbose=0, shuffle=True)
    return history.history, time.perf_counter() - start


def predict_classes(model, X, batch_size: int = 512) -> np.ndarray:
    """The most probable class of each sequence (of each step, for a per-step model).

    Calls the model directly on batches (:func:`medai_lessons.models.predict_in_batches`:
    ``model.predict`` would compile a new prediction function for every model, and TensorFlow
    warns about that retracing)."""
    from medai_lessons.models import predict_in_batches

    return predict_in_batches(model, np.asarray(X, dtype=np.float32), batch_size).argmax(axis=-1)


def fit_and_evaluate(model, split: Mapping[str, tuple], class_names: Sequence[str], *,
                     name: str, verbose: bool = True, **train_kw) -> dict:
    """Train ``model`` on ``split["train"]`` (early stopping on ``split["val"]``, see
    :func:`train_classifier`, which gets ``train_kw``), evaluate it once on ``split["test"]``.

    Returns ``{"model", "report", "seconds", "epochs", "history"}`` and, with ``verbose``,
    prints the report with the training time and the number of weights.
    """
    (X, y), (X_val, y_val), (X_test, y_test) = (split[k] for k in ("train", "val", "test"))
    history, seconds = train_classifier(model, X, y, X_val, y_val, desc=name, **train_kw)
    report = multiclass_report(y_test, predict_classes(model, X_test), class_names)
    if verbose:
        print(format_multiclass_report(report, name)
              + f"\n    {seconds:.1f} s of training, {len(history['loss'])} "
                f"epoch{'s' if len(history['loss']) != 1 else ''}, "
                f"{model.count_params():,} weights")
    return {"model": model, "report": report, "seconds": seconds,
            "epochs": len(history["loss"]), "history": history}


def multiclass_report(y_true, y_pred, class_names: Sequence[str]) -> dict:
    """Accuracy, macro-F1 (the unweighted mean of the per-class F1 scores), recall (sensitivity)
    and precision (PPV) of each class, and the confusion matrix (rows: true class, columns:
    predicted class), computed with scikit-learn."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score

    labels = list(range(len(class_names)))
    y_true = _class_labels(y_true, len(labels), "y_true")
    y_pred = _class_labels(y_pred, len(labels), "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} labels but y_pred has {y_pred.size}")
    kw = {"labels": labels, "zero_division": 0}
    recall = recall_score(y_true, y_pred, average=None, **kw)
    precision = precision_score(y_true, y_pred, average=None, **kw)
    present = np.bincount(y_true, minlength=len(labels)) > 0
    return {
        "n": int(y_true.size),
        "accuracy": float(np.mean(y_true == y_pred)) if y_true.size else float("nan"),
        # macro-F1 over the classes present in y_true (a class with no case cannot be scored)
        "macro_f1": float(f1_score(y_true, y_pred, average="macro",
                                   labels=[c for c in labels if present[c]], zero_division=0)),
        "recall": {name: float(recall[k]) for k, name in enumerate(class_names)},
        "precision": {name: float(precision[k]) for k, name in enumerate(class_names)},
        "support": {name: int(np.sum(y_true == k)) for k, name in enumerate(class_names)},
        "confusion": confusion_matrix(y_true, y_pred, labels=labels),
    }


def format_multiclass_report(report: dict, name: str = "") -> str:
    """Two lines: accuracy and macro-F1, then recall per class (with its number of cases)."""
    head = f"{name + ': ' if name else ''}accuracy {report['accuracy']:.3f}, " \
           f"macro-F1 {report['macro_f1']:.3f} on {report['n']} cases"
    recalls = ", ".join(f"{c} {r:.2f} (n={report['support'][c]})"
                        for c, r in report["recall"].items() if report["support"][c])
    return f"{head}\n    recall per class: {recalls}"


# --- what the network listens to ------------------------------------------------------------


def input_gradient_profile(model, X, y) -> np.ndarray:
    """How far back a trained classifier listens: for each sequence ``i``, the norm of the
    gradient of its loss ``L_i`` (cross-entropy of the true class) with respect to the input
    at each step, ``||dL_i/dx_t||``, divided by its largest value over ``t``; then the mean
    over sequences. Shape ``(T,)``, values in [0, 1]: 1 where the model is most sensitive.

    Dividing by each sequence's own maximum compares the *shape* of the profile across
    models, not their confidence (a confidently right model has tiny gradients everywhere).
    """
    import keras
    import tensorflow as tf

    x = tf.convert_to_tensor(np.asarray(X, dtype=np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = keras.losses.sparse_categorical_crossentropy(np.asarray(y), model(x))
        total = tf.reduce_sum(loss)  # d total / d x_i = d L_i / d x_i
    g = np.linalg.norm(tape.gradient(total, x).numpy(), axis=-1)
    g = g / np.maximum(g.max(axis=1, keepdims=True), 1e-30)
    return g.mean(axis=0)


def recurrent_readout(model, X, forward):
    """Hidden states of ``model``'s GRU computed by ``forward(X, h0, params)`` (e.g. your
    ``gru_forward``) from the trained layer's weights, and the class probabilities that the
    layers after the GRU give for the state after every step: what the classifier would
    answer if the sequence ended there.

    Returns ``(H, P)``: ``(n, T, units)`` and ``(n, T, n_classes)``. ``P[:, -1]`` is the
    model's own prediction.
    """
    import keras

    from medai_lessons.nn.rnn import gru_params_from_keras

    where = next(i for i, layer in enumerate(model.layers)
                 if isinstance(layer, keras.layers.GRU))
    inputs = np.asarray(X, dtype=np.float32)
    for layer in model.layers[:where]:
        inputs = np.asarray(layer(inputs))
    gru = model.layers[where]
    H = np.asarray(forward(inputs.astype(np.float64), np.zeros((len(inputs), gru.units)),
                           gru_params_from_keras(gru)))
    P = H.astype(np.float32)
    for layer in model.layers[where + 1:]:
        P = np.asarray(layer(P))
    return H, P


# --- where is MIT-BIH? -----------------------------------------------------------------------


def find_mitdb(start: str | Path | None = None, record: str | None = None) -> Path | None:
    """A folder holding MIT-BIH records (with ``record``, one holding that record), or
    ``None``.

    Looks first in the course's data cache (``<cache>/mitdb``, where ``load_mitdb``
    downloads; an instructor may point ``MEDAI_DATA_DIR`` at a staged copy), then for a
    staged ``shared/data/mitdb`` folder next to ``start`` (default: the working folder), the
    course's package or any folder above them
    (:func:`medai_lessons.data.cache.staged_paths`). A cache with other records only does not
    hide a staged folder that has ``record``.
    """
    from medai_lessons.data.cache import data_dir, staged_paths
    from medai_lessons.data.ecg import records_in

    candidates = [data_dir() / "mitdb", *staged_paths("mitdb", start)]
    return next((c for c in candidates if (record in records_in(c) if record is not None
                                           else records_in(c))), None)


def synthetic_beats(n_strips: int = 60, seed: int = 0):
    """Heartbeat windows cut from synthetic "PVC" strips, as MIT-BIH beats are cut (187 samples
    at 125 Hz around each R peak, min-max scaled): ``(X, y, class_names)`` with the AAMI
    classes, normal beats ``N`` and premature ventricular beats ``V``. SYNTHETIC: a stand-in
    used only when no MIT-BIH record is available."""
    from medai_lessons.data.ecg import AAMI_CLASSES, TARGET_FS, extract_beats
    from medai_lessons.data.ecg_synthetic import ecg_strip

    Xs, ys = [], []
    for k, child in enumerate(np.random.SeedSequence(seed).spawn(n_strips)):
        strip = ecg_strip("PVC" if k % 2 == 0 else "NSR", duration=30.0, fs=TARGET_FS,
                          seed=child)
        X, y, *_ = extract_beats(strip.signal, strip.fs, strip.r_peaks, strip.beat_types)
        Xs.append(X)
        ys.append(y)
    return np.concatenate(Xs), np.concatenate(ys), AAMI_CLASSES


# --- whose beats are tested? new beats against new patients ------------------------------------


def quick_beat_classifier():
    """The quick classifier of chapter 4's split experiment: a logistic regression on the 187
    samples of a beat window (quick, and the point is the split, not the model)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=500)


def beat_and_patient_splits(X, y, patient_ids, split_by_patient, *, repeats: int,
                            test_size: float = 0.25) -> dict[str, list[float]]:
    """Test accuracy of :func:`quick_beat_classifier` on ``repeats`` random splits (seeds
    ``0, 1, ...``), two ways: ``"random beats"`` holds out ``int(test_size * n)`` beats chosen
    at random (a patient's beats can be on both sides); ``"random patients"`` holds out the
    rows ``split_by_patient(patient_ids, test_size, seed)`` returns (the learner's function of
    chapter 4, or the course's). Returns ``{way: [accuracy per split]}``."""
    X, y, ids = np.asarray(X), np.asarray(y), np.asarray(patient_ids)
    if not len(X) == len(y) == len(ids):
        raise ValueError(f"X, y and patient_ids need one row per beat; got {len(X)}, {len(y)} "
                         f"and {len(ids)} rows")
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeats is the number of splits, a whole number >= 1; got {repeats!r}")
    if not 0 < test_size < 1:
        raise ValueError(f"test_size is a fraction between 0 and 1; got {test_size!r}")
    n_test = int(len(y) * test_size)
    accuracy: dict[str, list[float]] = {"random beats": [], "random patients": []}
    for seed in range(repeats):
        order = np.random.default_rng(seed).permutation(len(y))
        splits = {"random beats": (order[n_test:], order[:n_test]),
                  "random patients": split_by_patient(ids, test_size, seed)}
        for way, (train, test) in splits.items():
            train, test = np.asarray(train, dtype=np.int64), np.asarray(test, dtype=np.int64)
            clf = quick_beat_classifier().fit(X[train], y[train])
            accuracy[way].append(float(clf.score(X[test], y[test])))
    return accuracy


DS12_LABEL = "DS1 → DS2"


def inter_patient_scores(data, *, repeats: int, seed: int = 0) -> dict[str, dict[str, list[float]]]:
    """Normal (AAMI ``N``) against ventricular ectopic (``V``) beats of the MIT-BIH inter-patient
    division (:func:`medai_lessons.data.ecg.load_inter_patient`), with
    :func:`quick_beat_classifier`; other classes are left out.

    ``"DS1 → DS2"``: trained on the DS1 records, tested on the DS2 records, once (the division
    is fixed, and the classifier is deterministic). ``"random beats"``: the same beats of both
    halves pooled and split at random ``repeats`` times (``seed``), with as many test beats
    as DS2 has, so that the test records' beats are in training too. Returns
    ``{"accuracy": {way: values}, "recall of V": {way: values}}``: with about 7 % V beats,
    a model that calls every beat normal has an accuracy near 0.93 and a recall of V of 0.
    """
    from medai_lessons.data.ecg import AAMI_CLASSES

    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeats is the number of splits, a whole number >= 1; got {repeats!r}")
    normal, ventricular = AAMI_CLASSES.index("N"), AAMI_CLASSES.index("V")

    def n_against_v(beats, half):
        keep = np.isin(beats.y, (normal, ventricular))
        X, y = beats.X[keep], (beats.y[keep] == ventricular).astype(np.int64)
        if y.all() or not y.any():
            raise ValueError(f"the {half} beats need both normal (N) and ventricular (V) beats; "
                             f"they hold {int(np.sum(y == 0))} N and {int(np.sum(y))} V")
        return X, y

    X1, y1 = n_against_v(data.train, "DS1")
    X2, y2 = n_against_v(data.test, "DS2")
    scores: dict[str, dict[str, list[float]]] = {
        "accuracy": {"random beats": [], DS12_LABEL: []},
        "recall of V": {"random beats": [], DS12_LABEL: []},
    }

    def score(way, X_train, y_train, X_test, y_test):
        predicted = quick_beat_classifier().fit(X_train, y_train).predict(X_test)
        scores["accuracy"][way].append(float(np.mean(predicted == y_test)))
        scores["recall of V"][way].append(float(np.mean(predicted[y_test == 1] == 1))
                                          if np.any(y_test == 1) else float("nan"))

    X, y = np.concatenate([X1, X2]), np.concatenate([y1, y2])
    rng = np.random.default_rng(seed)
    for _ in range(repeats):
        order = rng.permutation(len(y))
        test, train = order[:len(y2)], order[len(y2):]
        score("random beats", X[train], y[train], X[test], y[test])
    score(DS12_LABEL, X1, y1, X2, y2)
    return scores


def format_spread(panels: Mapping[str, Mapping[str, Sequence[float]]]) -> str:
    """One line per panel and label: mean ± sd over the splits and the lowest value (a single
    split, such as a fixed division, is shown as its one value)."""
    rows = [(f"{panel} | {label}", np.asarray(values, dtype=float))
            for panel, groups in panels.items() for label, values in groups.items()]
    width = max((len(name) for name, _ in rows), default=0)
    lines = []
    for name, v in rows:
        if v.size == 1:
            lines.append(f"{name:{width}s}: {v[0]:.3f} (one split)")
        else:
            lines.append(f"{name:{width}s}: {np.nanmean(v):.3f} ± {np.nanstd(v):.3f} (mean ± sd "
                         f"over {v.size} splits; lowest {np.nanmin(v):.3f})")
    return "\n".join(lines)
