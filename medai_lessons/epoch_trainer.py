"""Mini-batch training of a small Keras binary classifier, one compiled TensorFlow call per
epoch, for experiments that train the same network many times (chapter 6 trains it on 20
splits of a table).

``model.fit`` spends most of its time outside the arithmetic when the network and the data
are this small: on a 2-core CPU about 0.1 s per epoch of 11 batches, where the 11 Adam steps
themselves take about a millisecond. :class:`EpochTrainer` runs the same steps (the model's own
optimizer, binary cross-entropy, shuffled mini-batches, early stopping on the validation loss
with the best weights restored, like ``keras.callbacks.EarlyStopping(restore_best_weights=True)``)
inside one ``tf.function`` per epoch, and re-initialises the model between runs without
building or compiling it again::

    trainer = EpochTrainer(model)          # a compiled model; its optimizer is used
    for seed in range(20):
        trainer.reset(seed)                # fresh initial weights and optimizer state
        history = trainer.fit(X_train, y_train, X_val, y_val, epochs=300, patience=20, seed=seed)

TensorFlow is imported when a trainer is created, not when this module is imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TrainingHistory:
    """Mean training loss (with the weight penalty) and validation cross-entropy per epoch;
    ``best_epoch`` is the 0-based epoch whose weights the model holds after early stopping
    (the last epoch when there was no validation data); ``stopped_early`` says whether the
    patience ran out before ``epochs``."""

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False


class EpochTrainer:
    """Train a compiled binary classifier (sigmoid output, one unit) on arrays.

    ``l2`` in :meth:`fit` adds ``l2 * sum(kernel ** 2)`` over the Dense kernels to the
    training loss (what ``kernel_regularizer=keras.regularizers.L2(l2)`` does), and ``noise``
    adds Gaussian noise of that standard deviation to the inputs of every training mini-batch
    (what a ``keras.layers.GaussianNoise(noise)`` input layer does), so that one built model can
    be trained with and without either.
    """

    def __init__(self, model):
        import keras
        import tensorflow as tf

        if model.optimizer is None:
            raise ValueError("compile the model first: EpochTrainer uses its optimizer")
        self.model = model
        self._optimizer = model.optimizer
        self._optimizer.build(model.trainable_variables)
        self._optimizer_start = [v.numpy() for v in self._optimizer.variables]
        self._kernels = [layer.kernel for layer in model.layers
                         if isinstance(layer, keras.layers.Dense)]
        bce = keras.losses.BinaryCrossentropy()
        n_features = model.inputs[0].shape[-1]
        x_spec = tf.TensorSpec([None, n_features], tf.float32)
        y_spec = tf.TensorSpec([None, 1], tf.float32)
        scalar = tf.TensorSpec([], tf.float32)

        @tf.function(input_signature=[x_spec, y_spec, tf.TensorSpec([], tf.int32),
                                      tf.TensorSpec([2], tf.int32), scalar, scalar])
        def one_epoch(X, y, batch_size, seed, l2, noise):
            n = tf.shape(X)[0]
            order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=seed)
            total = tf.constant(0.0)
            for b in tf.range((n + batch_size - 1) // batch_size):
                rows = order[b * batch_size:(b + 1) * batch_size]
                inputs = tf.gather(X, rows)
                inputs += noise * tf.random.stateless_normal(
                    tf.shape(inputs), seed=tf.stack([seed[0] + 1, seed[1] * 4096 + b]))
                with tf.GradientTape() as tape:
                    loss = bce(tf.gather(y, rows), model(inputs, training=True))
                    loss += l2 * tf.add_n([tf.reduce_sum(k ** 2) for k in self._kernels])
                    if model.losses:
                        loss += tf.add_n(model.losses)
                grads = tape.gradient(loss, model.trainable_variables)
                self._optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
                total += loss * tf.cast(tf.shape(rows)[0], tf.float32)
            return total / tf.cast(n, tf.float32)

        @tf.function(input_signature=[x_spec, y_spec])
        def cross_entropy(X, y):
            return bce(y, model(X, training=False))

        self._one_epoch, self._cross_entropy = one_epoch, cross_entropy

    def reset(self, seed: int) -> None:
        """New initial weights (each layer's own initializers, seeded from ``seed``) and the
        optimizer's starting state (step count and moments back to zero)."""
        for i, layer in enumerate(self.model.layers):
            for name in ("kernel", "bias"):
                variable = getattr(layer, name, None)
                initializer = getattr(layer, f"{name}_initializer", None)
                if variable is None or initializer is None:
                    continue
                config = initializer.get_config()
                if "seed" in config:
                    config["seed"] = int(seed) * 1000 + i
                variable.assign(type(initializer).from_config(config)(variable.shape))
        for variable, value in zip(self._optimizer.variables, self._optimizer_start,
                                   strict=True):
            variable.assign(value)

    def fit(self, X, y, X_val=None, y_val=None, *, epochs: int = 200, batch_size: int = 32,
            patience: int = 20, l2: float = 0.0, noise: float = 0.0,
            seed: int = 0) -> TrainingHistory:
        """Up to ``epochs`` epochs of shuffled mini-batches. With validation data, stop when
        the validation cross-entropy has not improved for ``patience`` epochs and restore the
        weights of its best epoch; without, train exactly ``epochs`` epochs. ``l2`` and
        ``noise`` as in the class description (0: none); the validation data get no noise."""
        import tensorflow as tf

        def tensors(features, labels):
            return (tf.constant(np.asarray(features, dtype=np.float32)),
                    tf.constant(np.asarray(labels, dtype=np.float32).reshape(-1, 1)))

        X, y = tensors(X, y)
        validation = None if X_val is None else tensors(X_val, y_val)
        history = TrainingHistory()
        best_loss, best_weights, waited = np.inf, None, 0
        for epoch in range(int(epochs)):
            history.loss.append(float(self._one_epoch(
                X, y, tf.constant(int(batch_size)), tf.constant([int(seed), epoch]),
                tf.constant(float(l2)), tf.constant(float(noise)))))
            if validation is None:
                history.best_epoch = epoch
                continue
            history.val_loss.append(float(self._cross_entropy(*validation)))
            if history.val_loss[-1] < best_loss:
                best_loss, best_weights, waited = history.val_loss[-1], self.model.get_weights(), 0
                history.best_epoch = epoch
            else:
                waited += 1
                if waited >= patience:
                    history.stopped_early = True
                    break
        if best_weights is not None:
            self.model.set_weights(best_weights)
        return history

    def predict(self, X) -> np.ndarray:
        """Predicted probabilities, shape (n,)."""
        return np.asarray(self.model(np.asarray(X, dtype=np.float32), training=False))[:, 0]
