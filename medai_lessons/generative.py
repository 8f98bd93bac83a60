"""Training a GAN and judging what it generates (chapter 5).

- :func:`train_gan` runs a ``train_step`` (the learner's or the reference of
  :mod:`medai_lessons.nn.gan`) over shuffled mini-batches, with a progress bar, the two losses
  of every step and the images of a fixed batch of noise at regular steps (the sample grid
  over training);
- :func:`frechet_distance` compares two sets of feature vectors by the means and covariances
  of Gaussians fitted to them (the idea behind the FID of image generation, here on the
  features of a small X-ray classifier instead of an ImageNet network);
- :func:`nearest_neighbours` finds, for each generated image, the closest training image (the
  privacy check: does the generator copy its training data?);
- :func:`mean_correlation` says how alike the images of one set are (mode collapse pushes
  it towards 1); :func:`chase_discriminator` trains a generator against a discriminator
  that no longer learns, which shows the mechanism of mode collapse in a few seconds;
- :func:`copy_model` copies a network with its weights (to experiment on a copy).

TensorFlow is imported by the functions that need it, not by this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import linalg
from tqdm.auto import tqdm


@dataclass
class GANHistory:
    """What :func:`train_gan` saw: the losses of every step, the images generated from the
    fixed noise after the steps in ``snapshots`` (a dict step -> images), what ``on_snapshot``
    returned there, and the seconds spent training (snapshots excluded)."""

    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    snapshots: dict[int, np.ndarray] = field(default_factory=dict)
    measures: dict[int, object] = field(default_factory=dict)
    seconds: float = 0.0


def _without_remapping() -> None:
    """Switch off the remapping pass of TensorFlow's graph optimizer for this process.

    On the gradient of a convolution followed by ``LeakyReLU`` (every DCGAN discriminator)
    that pass gives up with a long ``remapper failed: INVALID_ARGUMENT`` line on the
    terminal and in the notebook. Switching it off removes the message and costs the GAN's step
    nothing measurable (chapter 5's DCGAN on a 2-core CPU: 19.2-19.4 ms per step with the
    pass, 19.2-19.7 ms without, two runs each); graphs built later in the same process may
    lose the pass's fusions (convolution, bias and activation in one kernel).
    """
    import tensorflow as tf

    tf.config.optimizer.set_experimental_options({"remapping": False})


def scale_images(images) -> np.ndarray:
    """uint8 images (N, H, W) or (N, H, W, C) in [0, 255] -> float32 (N, H, W, C) in [-1, 1],
    the range of a generator's ``tanh`` output. Float images are taken when their values lie
    in [0, 255] and reach above 1; images already in [0, 1] or [-1, 1] are refused."""
    x = np.asarray(images)
    if x.dtype != np.uint8 and x.size:
        lo, hi = float(np.min(x)), float(np.max(x))
        if not (np.isfinite(lo) and np.isfinite(hi) and 0 <= lo and 1 < hi <= 255):
            hint = ("already scaled? Pass the raw uint8 images, or use images already in "
                    "[-1, 1] as they are." if hi <= 1 else "bring them to 0 to 255 first.")
            raise ValueError(f"scale_images takes pixel values 0 to 255 (uint8); these are "
                             f"{x.dtype} from {lo:g} to {hi:g}: {hint}")
    x = x.astype("float32") / 127.5 - 1.0
    return x[..., None] if x.ndim == 3 else x


def train_gan(train_step: Callable, generator, discriminator, images, latent_dim: int,
              steps: int, batch_size: int = 64, g_opt=None, d_opt=None, seed: int = 0,
              snapshot_every: int | None = None, fixed_noise=None,
              on_snapshot: Callable | None = None, compile: bool = True,
              progress: bool = True, desc: str = "GAN training") -> GANHistory:
    """Train ``generator`` and ``discriminator`` for ``steps`` calls of
    ``train_step(generator, discriminator, g_opt, d_opt, real_batch, latent_dim)``.

    ``images`` are float32 in [-1, 1], shape (N, H, W, C); batches are drawn from a shuffled,
    repeated copy (``seed``), so ``steps`` need not be a multiple of the epoch. The optimizers
    default to Adam with learning rate 2e-4 and ``beta_1=0.5``, the usual DCGAN setting.
    With ``compile`` the step runs as one ``tf.function`` (several times faster for networks
    this small; the noise must then be drawn with TensorFlow's random functions, which run at
    every call, not NumPy's, which would run once when the function is traced).

    After step 0 (before any training), every ``snapshot_every`` steps and after the last,
    the images of ``fixed_noise`` (default: 64 vectors from ``seed``) are kept in
    ``history.snapshots`` and, when given, ``on_snapshot(step, generator)`` is called and its
    result kept in ``history.measures``.
    """
    import keras
    import tensorflow as tf

    images = np.asarray(images, dtype="float32")
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C) float32 in [-1, 1]; got shape "
                         f"{images.shape}: use scale_images() on uint8 images.")
    if len(images) < batch_size:
        raise ValueError(f"{len(images)} images is less than one batch of {batch_size}: "
                         "lower batch_size.")
    g_opt = g_opt or keras.optimizers.Adam(2e-4, beta_1=0.5)
    d_opt = d_opt or keras.optimizers.Adam(2e-4, beta_1=0.5)
    if fixed_noise is None:
        fixed_noise = np.random.default_rng(seed).normal(size=(64, latent_dim)).astype("float32")
    batches = iter(tf.data.Dataset.from_tensor_slices(images)
                   .shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
                   .repeat().batch(batch_size, drop_remainder=True).prefetch(2))
    _without_remapping()
    step_fn = tf.function(train_step) if compile else train_step
    history = GANHistory()

    def snapshot(step: int) -> None:
        history.snapshots[step] = np.asarray(generator(fixed_noise, training=False))
        if on_snapshot is not None:
            history.measures[step] = on_snapshot(step, generator)

    snapshot(0)
    bar = tqdm(range(1, int(steps) + 1), desc=desc, disable=not progress, mininterval=1.0)
    for step in bar:
        started = time.perf_counter()
        d_loss, g_loss = step_fn(generator, discriminator, g_opt, d_opt, next(batches),
                                 latent_dim)
        history.d_loss.append(float(d_loss))
        history.g_loss.append(float(g_loss))
        history.seconds += time.perf_counter() - started
        if step % 50 == 0:
            bar.set_postfix(d_loss=f"{np.mean(history.d_loss[-50:]):.3f}",
                            g_loss=f"{np.mean(history.g_loss[-50:]):.3f}", refresh=False)
        if step == steps or (snapshot_every and step % snapshot_every == 0):
            snapshot(step)
    return history


def copy_model(model):
    """A new Keras model with the same architecture and a copy of the weights."""
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def chase_discriminator(generator, discriminator, generator_loss: Callable, latent_dim: int,
                        steps: int, batch_size: int = 64, learning_rate: float = 2e-4,
                        seed: int = 0, progress: bool = True) -> list[float]:
    """Update only ``generator`` for ``steps`` steps (Adam), on ``generator_loss`` of the
    frozen ``discriminator``'s logits for fresh noise, and return the losses.

    Against a discriminator that no longer learns, the generator's best move is to send every
    noise vector to whatever image that discriminator rates most real: its samples converge to
    one image (mode collapse), however varied they were, and that image need not look like the
    data at all: it is whatever exploits this discriminator. In real training the discriminator
    reacts and punishes the repeated image, which is why collapse is partial and comes and goes.
    """
    import keras
    import tensorflow as tf

    _without_remapping()
    optimizer = keras.optimizers.Adam(learning_rate)
    noise = tf.random.Generator.from_seed(seed)
    variables = generator.trainable_variables

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            fake = generator(noise.normal([batch_size, latent_dim]), training=True)
            loss = generator_loss(discriminator(fake, training=False))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    return [float(step()) for _ in tqdm(range(int(steps)), desc="generator only",
                                        disable=not progress, mininterval=1.0)]


def frechet_distance(features_a, features_b) -> float:
    """The Fréchet distance between Gaussians fitted to two sets of feature vectors (rows):

    ``|mu_a - mu_b|^2 + trace(S_a + S_b - 2 (S_a S_b)^(1/2))``

    0 for identical statistics. With fewer samples than features, or features that never vary
    (a ReLU unit that is always 0), the covariances are singular; then a small multiple of the
    identity is added to both before the matrix square root, as is usual.
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features must be two 2-D arrays with the same number of columns; "
                         f"got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("each set needs at least 2 feature vectors to estimate a covariance")
    for name, features in (("features_a", a), ("features_b", b)):
        bad = int(np.sum(~np.isfinite(features)))
        if bad:
            raise ValueError(f"{name} holds {bad} nan or inf values: the features must be finite "
                             "(did the generator's training diverge? Look at its losses).")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root = _sqrtm(cov_a @ cov_b)
    if not np.all(np.isfinite(root)):
        eps = 1e-6 * np.eye(len(cov_a))
        root = _sqrtm((cov_a + eps) @ (cov_b + eps))
    value = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b)
                  - 2.0 * np.trace(root))
    return max(value, 0.0)


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "singular matrix": handled by the caller
        root = linalg.sqrtm(matrix)
    return np.real(root)


def nearest_neighbours(queries, references) -> tuple[np.ndarray, np.ndarray]:
    """For each image of ``queries``, the Euclidean distance to the closest image of
    ``references`` (pixel by pixel, images flattened) and that image's index."""
    from sklearn.neighbors import NearestNeighbors

    q = np.asarray(queries, dtype=np.float32).reshape(len(queries), -1)
    r = np.asarray(references, dtype=np.float32).reshape(len(references), -1)
    distances, indices = NearestNeighbors(n_neighbors=1).fit(r).kneighbors(q)
    return distances[:, 0], indices[:, 0]


def mean_correlation(images, pairs: int = 2000, seed: int = 0) -> float:
    """How alike the members of one set are: the mean Pearson correlation between the pixels
    of ``pairs`` random pairs of different images (flattened). 1 means the same picture (up to
    brightness and contrast); real chest X-rays, which share their anatomy, correlate about
    0.5. Mode collapse pushes it towards 1. Unlike a pixel distance it is not fooled by
    high-contrast images whose fine texture differs while their layout is the same."""
    x = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    if len(x) < 2:
        raise ValueError("mean_correlation needs at least 2 images")
    x = x - x.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms > 0, norms, 1.0)
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(x), pairs)
    j = (i + rng.integers(1, len(x), pairs)) % len(x)
    return float(np.mean(np.sum(x[i] * x[j], axis=1)))
