"""Survival analysis and treatment effects: the reference implementations of chapter 7.

Exercises (the chapter's answer cells have the same names and signatures):

- :func:`kaplan_meier`: the Kaplan-Meier estimate at each distinct event time;
- :func:`concordance_index`: Harrell's C of a risk score;
- :func:`cox_partial_likelihood_loss`: the negative mean Cox partial log-likelihood (Breslow
  ties), written with ``keras.ops`` so that it works on NumPy arrays and as a Keras loss;
- :func:`restricted_mean_survival_time`: the area under the Kaplan-Meier curve up to ``tau``;
- :func:`treatment_effect_t_learner`: predicted benefit per patient from two Cox regressions,
  one per arm (a "T-learner").

Helpers the chapter's applied cells use: :func:`survival_at` (Kaplan-Meier at a horizon with
Greenwood's standard error), :func:`survival_difference`, :func:`breslow_survival` (predicted
survival at a horizon from log-risks), :func:`bootstrap_concordance`,
:func:`calibration_at_horizon`, :func:`benefit_by_group` and :func:`as_keras_loss`.

Conventions: ``time`` is the follow-up (days), ``event`` 1 when the endpoint was observed and
0 when the patient was censored (follow-up ended first). A patient censored at time ``t`` is
still at risk at ``t``: censoring at the same time as an event counts as later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054


def _survival_arrays(time, event, name: str = "time") -> tuple[np.ndarray, np.ndarray]:
    time = np.asarray(time, dtype=float).reshape(-1)
    event = np.asarray(event).reshape(-1)
    if time.shape != event.shape:
        raise ValueError(f"{name} and event differ in length ({time.size} vs {event.size}); "
                         "give one follow-up time and one event indicator per patient")
    if np.isnan(time).any() or np.any(time < 0):
        raise ValueError(f"{name} must be non-negative numbers without nan")
    if not np.isin(event, (0, 1, True, False)).all():
        raise ValueError("event must be 1 (endpoint observed) or 0 (censored)")
    return time, event.astype(bool)


# --- exercises --------------------------------------------------------------------------------


def kaplan_meier(time, event):
    """Kaplan-Meier estimate: ``(times, survival)``, the distinct times at which an event was
    observed (ascending) and the estimated probability of surviving beyond each of them.

    At each event time t: S(t) = S(t-) x (1 - d / n), d = events at t, n = patients at risk at
    t (follow-up >= t, censored ones included). Empty arrays when no event was observed.
    """
    time, event = _survival_arrays(time, event)
    times = np.unique(time[event])
    ordered = np.sort(time)
    at_risk = time.size - np.searchsorted(ordered, times, side="left")
    event_times = np.sort(time[event])
    deaths = (np.searchsorted(event_times, times, side="right")
              - np.searchsorted(event_times, times, side="left"))
    return times, np.cumprod(1.0 - deaths / at_risk)


def concordance_index(time, event, risk):
    """Harrell's C: the share of comparable pairs that the risk score orders correctly.

    A pair (i, j) is comparable when patient i had the event and j was still followed after
    i's event time (j's time is later, or equal with j censored). It is concordant when i has
    the higher risk; a tie in risk (within 1e-8) counts 1/2. Raises ``ValueError`` when no
    pair is comparable.
    """
    time, event = _survival_arrays(time, event)
    risk = np.asarray(risk, dtype=float).reshape(-1)
    if risk.shape != time.shape:
        raise ValueError(f"risk has {risk.size} values for {time.size} patients")
    later = (time[:, None] < time[None, :]) | (
        (time[:, None] == time[None, :]) & ~event[None, :])
    comparable = event[:, None] & later
    n_pairs = comparable.sum()
    if n_pairs == 0:
        raise ValueError("no comparable pair: the C-index needs at least one event followed "
                         "by a patient still at risk")
    diff = risk[:, None] - risk[None, :]
    tied = np.abs(diff) <= 1e-8
    concordant = (diff > 0) & ~tied
    return float(((concordant & comparable).sum() + 0.5 * (tied & comparable).sum())
                 / n_pairs)


def cox_partial_likelihood_loss(time, event, log_risk):
    """Negative mean Cox partial log-likelihood, Breslow's handling of tied times.

    loss = -(1 / number of events) x sum over patients i with an event of
    [log_risk_i - log(sum over j with time_j >= time_i of exp(log_risk_j))], and 0 when there
    is no event. Written with ``keras.ops``: NumPy arrays in give a float back; tensors in
    (a Keras loss, inside ``fit``) give a scalar tensor that gradients flow through.
    """
    from keras import ops

    plain = all(not hasattr(v, "dtype") or isinstance(v, np.ndarray | np.generic)
                for v in (time, event, log_risk))
    if plain:
        log_risk = np.asarray(log_risk, dtype=float)
    log_risk = ops.reshape(ops.convert_to_tensor(log_risk), (-1,))
    dtype = log_risk.dtype
    time = ops.reshape(ops.cast(ops.convert_to_tensor(time), dtype), (-1,))
    event = ops.reshape(ops.cast(ops.convert_to_tensor(event), dtype), (-1,))
    at_risk = ops.expand_dims(time, 0) >= ops.expand_dims(time, 1)       # [i, j]: j at risk at t_i
    scores = ops.where(at_risk, ops.expand_dims(log_risk, 0),
                       ops.cast(-np.inf, dtype) * ops.ones_like(ops.expand_dims(log_risk, 0)))
    log_denominator = ops.logsumexp(scores, axis=1)
    n_events = ops.sum(event)
    loss = -ops.sum(event * (log_risk - log_denominator)) / ops.maximum(n_events, 1.0)
    return float(ops.convert_to_numpy(loss)) if plain else loss


def restricted_mean_survival_time(time, event, tau):
    """The area under the Kaplan-Meier curve from 0 to ``tau``: the expected number of days
    (the unit of ``time``) lived within the first ``tau``. The curve is a step function: 1
    before the first event time, then constant between event times."""
    tau = float(tau)
    if not tau > 0:
        raise ValueError(f"tau must be a positive time, got {tau}")
    times, surv = kaplan_meier(time, event)
    before = times < tau
    knots = np.concatenate([[0.0], times[before], [tau]])
    level = np.concatenate([[1.0], surv[before]])
    return float(np.sum(level * np.diff(knots)))


def treatment_effect_t_learner(X, time, event, treated, X_new, horizon, alpha=0.1):
    """Predicted benefit per patient of ``X_new``: S(horizon | x, treated) - S(horizon | x,
    control), each from a Cox regression (scikit-survival's ``CoxPHSurvivalAnalysis(alpha=
    alpha)``, Breslow ties) fitted on that arm's patients only. Positive = the treatment is
    predicted to raise the chance of being event-free at ``horizon``."""
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.util import Surv

    X = np.asarray(X, dtype=float)
    X_new = np.asarray(X_new, dtype=float)
    time, event = _survival_arrays(time, event)
    treated = np.asarray(treated).reshape(-1).astype(bool)
    surv = {}
    for arm in (True, False):
        rows = treated == arm
        model = CoxPHSurvivalAnalysis(alpha=alpha).fit(
            X[rows], Surv.from_arrays(event[rows], time[rows]))
        surv[arm] = np.array([fn(horizon) for fn in model.predict_survival_function(X_new)])
    return surv[True] - surv[False]


# --- helpers for the applied cells -----------------------------------------------------------


def survival_at(time, event, horizon) -> tuple[float, float]:
    """Kaplan-Meier survival at ``horizon`` and its standard error (Greenwood's formula)."""
    time, event = _survival_arrays(time, event)
    times, surv = kaplan_meier(time, event)
    keep = times <= horizon
    if not keep.any():
        return 1.0, 0.0
    ordered = np.sort(time)
    at_risk = time.size - np.searchsorted(ordered, times[keep], side="left")
    deaths = np.array([np.sum(event & (time == t)) for t in times[keep]])
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(at_risk > deaths, deaths / (at_risk * (at_risk - deaths)), 0.0)
    s = float(surv[keep][-1])
    return s, float(s * np.sqrt(np.sum(terms)))


def survival_difference(time, event, group, horizon) -> tuple[float, float, float]:
    """Kaplan-Meier survival at ``horizon`` of group 1 minus group 0, with a 95 % interval
    (independent Greenwood standard errors): ``(difference, low, high)``."""
    group = np.asarray(group).astype(bool)
    time, event = _survival_arrays(time, event)
    s1, se1 = survival_at(time[group], event[group], horizon)
    s0, se0 = survival_at(time[~group], event[~group], horizon)
    diff, se = s1 - s0, float(np.hypot(se1, se0))
    return diff, diff - Z95 * se, diff + Z95 * se


def breslow_survival(time, event, log_risk, log_risk_new, horizon) -> np.ndarray:
    """Predicted S(horizon | x) = exp(-H0(horizon) exp(log_risk_new)), with Breslow's baseline
    cumulative hazard H0 estimated from the training patients' ``time``, ``event`` and
    ``log_risk``."""
    time, event = _survival_arrays(time, event)
    log_risk = np.asarray(log_risk, dtype=float).reshape(-1)
    shift = log_risk.max()
    times = np.unique(time[event & (time <= horizon)])
    risk = np.exp(log_risk - shift)
    h0 = 0.0
    for t in times:
        h0 += np.sum(event & (time == t)) / np.sum(risk[time >= t])
    return np.exp(-h0 * np.exp(np.asarray(log_risk_new, dtype=float).reshape(-1) - shift))


def bootstrap_concordance(time, event, risk, n_boot: int = 200, seed: int = 0
                          ) -> tuple[float, float, float]:
    """Harrell's C and a 95 % percentile bootstrap interval over patients."""
    time, event = _survival_arrays(time, event)
    risk = np.asarray(risk, dtype=float).reshape(-1)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, time.size, time.size)
        value = _concordance_by_event(time[idx], event[idx], risk[idx])
        if np.isfinite(value):
            values.append(value)
    low, high = np.percentile(values, [2.5, 97.5])
    return concordance_index(time, event, risk), float(low), float(high)


def _concordance_by_event(time, event, risk) -> float:
    """Harrell's C as :func:`concordance_index`, one event at a time (fast when events are
    few, as in the bootstrap of a trial with 96 events); nan without comparable pairs."""
    numerator = denominator = 0.0
    for i in np.flatnonzero(event):
        later = (time > time[i]) | ((time == time[i]) & ~event)
        if not later.any():
            continue
        diff = risk[i] - risk[later]
        tied = np.abs(diff) <= 1e-8
        numerator += np.sum((diff > 0) & ~tied) + 0.5 * np.sum(tied)
        denominator += later.sum()
    return numerator / denominator if denominator else float("nan")


@dataclass
class GroupTable:
    """Rows of a by-group comparison: the group's label, size, predicted and observed value
    with its 95 % interval."""

    labels: list[str]
    n: np.ndarray
    predicted: np.ndarray
    observed: np.ndarray
    low: np.ndarray
    high: np.ndarray


def _groups(score, n_groups: int) -> np.ndarray:
    edges = np.quantile(score, np.linspace(0, 1, n_groups + 1)[1:-1])
    return np.searchsorted(edges, score, side="right")


def calibration_at_horizon(time, event, predicted_survival, horizon, n_groups: int = 5
                           ) -> GroupTable:
    """Patients in ``n_groups`` groups of predicted survival at ``horizon``: mean predicted
    against the Kaplan-Meier survival observed in each group (Greenwood 95 % interval)."""
    time, event = _survival_arrays(time, event)
    predicted_survival = np.asarray(predicted_survival, dtype=float).reshape(-1)
    group = _groups(predicted_survival, n_groups)
    rows = []
    for g in range(n_groups):
        m = group == g
        s, se = survival_at(time[m], event[m], horizon)
        rows.append((f"group {g + 1}", m.sum(), predicted_survival[m].mean(), s,
                     max(s - Z95 * se, 0.0), min(s + Z95 * se, 1.0)))
    labels, n, pred, obs, low, high = zip(*rows, strict=True)
    return GroupTable(list(labels), np.array(n), np.array(pred), np.array(obs), np.array(low),
                      np.array(high))


def benefit_by_group(time, event, treated, predicted_benefit, horizon, n_groups: int = 3
                     ) -> GroupTable:
    """Patients in ``n_groups`` groups of predicted benefit: in each, the mean predicted
    benefit and the observed one, Kaplan-Meier survival at ``horizon`` of the treated minus
    the controls of that group, with its 95 % interval. Honest only on patients the models
    did not learn from, and only when treatment was randomised."""
    time, event = _survival_arrays(time, event)
    treated = np.asarray(treated).reshape(-1).astype(bool)
    benefit = np.asarray(predicted_benefit, dtype=float).reshape(-1)
    group = _groups(benefit, n_groups)
    names = {3: ["least", "middle", "most"], 2: ["less", "more"]}.get(
        n_groups, [f"group {g + 1}" for g in range(n_groups)])
    rows = []
    for g in range(n_groups):
        m = group == g
        diff, low, high = survival_difference(time[m], event[m], treated[m], horizon)
        rows.append((f"{names[g]} predicted benefit", m.sum(), benefit[m].mean(), diff, low,
                     high))
    labels, n, pred, obs, low, high = zip(*rows, strict=True)
    return GroupTable(list(labels), np.array(n), np.array(pred), np.array(obs), np.array(low),
                      np.array(high))


def as_keras_loss(loss_fn):
    """A Keras loss ``(y_true, y_pred)`` from ``loss_fn(time, event, log_risk)``: ``y_true``
    holds two columns, follow-up time and event; ``y_pred`` the network's log-risk. Train
    with the whole training set as one batch (the risk sets are taken within a batch)."""

    def cox_loss(y_true, y_pred):
        return loss_fn(y_true[:, 0], y_true[:, 1], y_pred[:, 0])

    return cox_loss


def fit_cox_model(model, X, time, event, *, steps: int, loss_fn=None, learning_rate=0.01,
                  compile: bool = True):
    """Train a Keras model whose output is a log-risk with a Cox loss (the reference's, or
    ``loss_fn(time, event, log_risk)``), the whole training set as one batch, ``steps``
    Adam steps (weight penalties: the layers' own ``kernel_regularizer``). With ``compile=
    False`` a model compiled before goes on training with its optimiser's state. Returns the
    Keras history."""
    import keras
    import tensorflow as tf

    if compile or not model.compiled:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                      loss=as_keras_loss(loss_fn or cox_partial_likelihood_loss))
    X = np.asarray(X, dtype="float32")
    y = np.column_stack([np.asarray(time, float), np.asarray(event, float)]).astype("float32")
    data = tf.data.Dataset.from_tensors((X, y)).repeat(steps)
    return model.fit(data, epochs=1, verbose=0, shuffle=False)


def train_cox_network(model, X_train, time_train, event_train, X_val, time_val, event_val, *,
                      max_steps: int, block: int = 25, loss_fn=None, learning_rate=0.01):
    """Train ``model`` (output: log-risk) with a Cox loss in blocks of ``block`` full-batch
    steps, up to ``max_steps``, and keep the weights with the lowest loss on the validation
    part (early stopping). Returns ``(steps chosen, validation losses per block)``."""
    loss = loss_fn or cox_partial_likelihood_loss
    X_val = np.asarray(X_val, dtype="float32")
    best, best_steps, best_weights, losses = np.inf, 0, model.get_weights(), []
    for done in range(block, max_steps + 1, block):
        fit_cox_model(model, X_train, time_train, event_train, steps=block, loss_fn=loss,
                      learning_rate=learning_rate, compile=done == block)
        log_risk = np.asarray(model(X_val, training=False)).reshape(-1)
        value = cox_partial_likelihood_loss(np.asarray(time_val, float),
                                            np.asarray(event_val, float), log_risk)
        losses.append(value)
        if value < best:
            best, best_steps, best_weights = value, done, model.get_weights()
    model.set_weights(best_weights)
    return best_steps, losses


def loss_for_training(loss_fn, verbose: bool = True):
    """``loss_fn`` when it works on TensorFlow tensors with a finite gradient (what Keras
    needs to train with it), else the reference loss, with a one-line note. A loss written
    with NumPy passes the value checks but cannot be differentiated by TensorFlow."""
    import tensorflow as tf

    time = tf.constant([1.0, 2.0, 2.0, 3.0])
    event = tf.constant([1.0, 1.0, 0.0, 1.0])
    log_risk = tf.Variable([0.1, -0.2, 0.3, 0.0])
    try:
        with tf.GradientTape() as tape:
            value = loss_fn(time, event, log_risk)
        grad = tape.gradient(value, log_risk)
        ok = grad is not None and bool(np.all(np.isfinite(np.asarray(grad))))
        reason = "gives no gradient on tensors (NumPy code cannot be differentiated)"
    except Exception as exc:  # noqa: BLE001 - any failure on tensors falls back
        ok, reason = False, f"fails on tensors ({type(exc).__name__}: {str(exc)[:80]})"
    if ok:
        return loss_fn
    if verbose:
        print(f"Your loss {reason}: training uses the course's reference loss. Write it with "
              "keras.ops to train with your own.")
    return cox_partial_likelihood_loss


def network_t_learner(build, X, time, event, treated, X_new, horizon, *, max_steps: int,
                      loss_fn=None, seed: int = 0, val_share: float = 0.25):
    """A T-learner of two Cox networks: for each arm, ``build(n_features, seed)`` trained with
    a Cox loss on that arm's patients (early-stopped on a random ``val_share`` of them), its
    survival at ``horizon`` predicted with Breslow's baseline from the arm's training part.
    Returns S_treated(horizon | x) - S_control(horizon | x) for each row of ``X_new``."""
    X = np.asarray(X, dtype="float32")
    X_new = np.asarray(X_new, dtype="float32")
    time, event = _survival_arrays(time, event)
    treated = np.asarray(treated).reshape(-1).astype(bool)
    rng = np.random.default_rng(seed)
    surv = {}
    for arm in (True, False):
        rows = np.flatnonzero(treated == arm)
        val = rng.random(rows.size) < val_share
        fit_rows, val_rows = rows[~val], rows[val]
        model = build(X.shape[1], seed + int(arm))
        train_cox_network(model, X[fit_rows], time[fit_rows], event[fit_rows], X[val_rows],
                          time[val_rows], event[val_rows], max_steps=max_steps, block=20,
                          loss_fn=loss_fn)
        log_risk = np.asarray(model(X[fit_rows], training=False)).reshape(-1)
        log_risk_new = np.asarray(model(X_new, training=False)).reshape(-1)
        surv[arm] = breslow_survival(time[fit_rows], event[fit_rows], log_risk, log_risk_new,
                                     horizon)
    return surv[True] - surv[False]
