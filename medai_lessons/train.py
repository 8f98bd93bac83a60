"""Training loops of the chapters.

- :func:`train_mlp_gd` runs on learners' own building blocks: it takes the forward/backward
  functions as arguments, so a chapter can train with the learner's
  ``mlp_forward``/``mlp_backward`` (or the reference, if those are not finished).
- :func:`train_xray_cnn` is chapter 3's recipe for its chest X-ray classifier (class weights,
  or the learner's own class-weighted loss; a cosine learning-rate decay, early stopping on the
  validation ROC AUC); the chapter and the study that chose the recipe
  (``benchmarks/studies/ch03_recipe.py``) both train with it. :func:`trainable_loss` makes sure
  a learner's loss can be differentiated by Keras before the chapter trains with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from medai_lessons.nn.losses import binary_cross_entropy


def train_mlp_gd(forward: Callable, backward: Callable, params: dict, X, y, lr: float,
                 steps: int, X_val=None, y_val=None, progress: bool = True):
    """Full-batch gradient descent on a one-hidden-layer MLP.

    Returns ``(params, history)`` where ``history`` has the training loss per step under
    ``"train"`` (and ``"val"`` when a validation set is given). ``params`` is not changed in
    place; the returned dict holds new arrays.
    """
    params = {k: np.array(v, dtype=np.float64, copy=True) for k, v in params.items()}
    history: dict[str, list[float]] = {"train": []}
    if X_val is not None:
        history["val"] = []
    bar = tqdm(range(int(steps)), desc="gradient descent", disable=not progress, leave=False)
    for _ in bar:
        P, cache = forward(params, X)
        history["train"].append(binary_cross_entropy(y, P))
        if X_val is not None:
            history["val"].append(binary_cross_entropy(y_val, forward(params, X_val)[0]))
        grads = backward(params, cache, y)
        for key in params:
            params[key] = params[key] - lr * np.asarray(grads[key])
    return params, history


@dataclass
class XrayTraining:
    """What :func:`train_xray_cnn` did: the class weights, the training loss and the validation
    ROC AUC of every epoch run, the epoch kept (1-based) and its AUC, and the seconds spent in
    ``fit`` (validation predictions included)."""

    class_weight: dict[int, float] | None
    loss: list[float] = field(default_factory=list)
    val_auc: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_auc: float = float("-inf")
    seconds: float = 0.0
    pos_weight: float | None = None


def loss_problem(loss: Callable) -> str | None:
    """Why Keras could not train with ``loss(y_true, y_prob, pos_weight)``, or ``None``.

    The loss is called inside a ``tf.function`` on tensors (as ``model.fit`` calls it) and
    differentiated with respect to the probabilities; a loss written with NumPy (``np.log``)
    fails there, or gives no gradient, although its values on NumPy arrays may be right.
    """
    import tensorflow as tf

    probabilities = tf.Variable([[0.3, 0.7], [0.6, 0.4], [0.2, 0.8]])
    labels = tf.constant([1.0, 0.0, 1.0])

    @tf.function
    def gradient():
        with tf.GradientTape() as tape:
            value = loss(labels, probabilities[:, 1], 2.0)
        return value, tape.gradient(value, probabilities)

    try:
        value, grad = gradient()
    except Exception as exc:  # noqa: BLE001 - any failure means: not usable in training
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    if grad is None or not bool(tf.reduce_any(grad != 0)):
        return "it gives Keras no gradient"
    if tuple(value.shape) != ():
        return f"it returns shape {tuple(value.shape)}, not one number"
    return None


def trainable_loss(loss: Callable, name: str = "weighted_binary_cross_entropy",
                   verbose: bool = True) -> Callable:
    """``loss`` if Keras can train with it (:func:`loss_problem`), else the course's
    reference, with a one-line note that says why and what to change."""
    from medai_lessons.nn.losses import weighted_binary_cross_entropy

    if loss is weighted_binary_cross_entropy:
        return loss
    problem = loss_problem(loss)
    if problem is None:
        return loss
    if verbose:
        print(f"Keras cannot train with your {name} ({problem}): write it with keras.ops "
              "(ops.log, ops.clip, ops.mean), not NumPy. This training uses the course's "
              "reference implementation.")
    return weighted_binary_cross_entropy


def train_xray_cnn(model, x_train, y_train, x_val, y_val, *, epochs: int, batch_size: int = 64,
                   learning_rate: float = 2e-3, patience: int = 8, verbose: bool = True,
                   loss: Callable | None = None, pos_weight: float | None = None
                   ) -> XrayTraining:
    """Chapter 3's recipe, on a softmax classifier of two classes (index 1 = pneumonia).

    - without ``loss``: sparse categorical cross-entropy with class weights ``n / (2 n_c)``
      (both classes weigh the same in total);
    - with ``loss``, a class-weighted binary cross-entropy ``loss(y_true, y_prob, pos_weight)``
      on P(pneumonia) (chapter 3's exercise, written with ``keras.ops``): no class weights;
      ``pos_weight`` defaults to ``n_normal / n_pneumonia``, which weighs the classes as the
      class weights do, up to a constant factor (Adam hardly notices such a factor);
    - Adam with a cosine decay of the learning rate from ``learning_rate`` to 2 % of it over
      ``epochs`` epochs; shuffled batches of ``batch_size``;
    - after every epoch the validation ROC AUC of P(pneumonia); training stops when it has not
      improved for ``patience`` epochs, and the model is left with the weights of its best
      epoch. With ``verbose``, one line per epoch.

    The model is compiled here (any earlier compile is replaced). Returns an
    :class:`XrayTraining`. Raises ``ValueError`` when ``y_val`` lacks one of the classes.
    """
    import keras

    from medai_lessons.metrics import roc_auc
    from medai_lessons.models import predict_in_batches
    from medai_lessons.sequences import balanced_class_weights

    y_train = np.asarray(y_train).astype(np.int64).reshape(-1)
    missing = [name for k, name in enumerate(("normal (0)", "pneumonia (1)"))
               if not np.any(y_train == k)]
    if missing:
        raise ValueError(f"the training split has no {missing[0]} image, so the network cannot "
                         "learn that class (its class weight would be 0). A slice such as "
                         "x_train[:1000] may hold one class only (the file's images are sorted "
                         "by class): take a random subset instead, e.g. "
                         "idx = np.random.default_rng(0).choice(len(x_train), 1000, replace=False)")
    if len(np.unique(np.asarray(y_val))) < 2:
        raise ValueError("the validation split needs normal (0) and pneumonia (1) images: "
                         "early stopping follows its ROC AUC, which is undefined otherwise")
    if loss is None:
        result = XrayTraining(class_weight=balanced_class_weights(y_train, 2))
        keras_loss = "sparse_categorical_crossentropy"
    else:
        if pos_weight is None:
            pos_weight = float(np.sum(y_train == 0) / np.sum(y_train == 1))
        result = XrayTraining(class_weight=None, pos_weight=float(pos_weight))

        def keras_loss(y_true, y_pred):
            y = keras.ops.reshape(keras.ops.cast(y_true, y_pred.dtype), (-1,))
            return loss(y, y_pred[:, 1], result.pos_weight)
    best_weights = []
    start = time.perf_counter()

    class KeepBest(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            auc = roc_auc(y_val, predict_in_batches(self.model, x_val)[:, 1])
            result.val_auc.append(auc)
            result.loss.append(float((logs or {}).get("loss", float("nan"))))
            if auc > result.best_auc:
                result.best_auc, result.best_epoch = auc, epoch + 1
                best_weights[:] = self.model.get_weights()
            if verbose:
                best = " (best so far)" if result.best_epoch == epoch + 1 else ""
                print(f"epoch {epoch + 1:2d}: training loss {result.loss[-1]:.3f}, validation "
                      f"ROC AUC {auc:.4f}{best}, {time.perf_counter() - start:4.0f} s")
            if epoch + 1 - result.best_epoch >= patience:
                self.model.stop_training = True

    steps = int(epochs) * int(np.ceil(len(y_train) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=keras_loss)
    model.fit(x_train, y_train, epochs=int(epochs), batch_size=batch_size,
              class_weight=result.class_weight, callbacks=[KeepBest()], verbose=0)
    result.seconds = time.perf_counter() - start
    if best_weights:
        model.set_weights(best_weights)
    return result
