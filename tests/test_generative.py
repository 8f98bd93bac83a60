"""medai_lessons.generative: the GAN training loop and the measures that judge its samples."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from medai_lessons import generative, models
from medai_lessons.nn import gan


def test_frechet_distance_matches_its_closed_form():
    """b = 2a + 1 has mean 2 mu_a + 1 and covariance 4 S_a, so
    FD = |mu_a - mu_b|^2 + tr(S_a + 4 S_a - 2 (4 S_a^2)^(1/2)) = |mu_a - mu_b|^2 + tr(S_a)."""
    a = np.random.default_rng(0).normal(size=(4000, 5)) @ np.diag([1.0, 2.0, 0.5, 1.5, 3.0])
    b = 2 * a + 1
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(np.cov(a, rowvar=False))
    assert generative.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert generative.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert generative.frechet_distance(a, a + 0.5) == pytest.approx(5 * 0.25, rel=1e-6)


def test_frechet_distance_with_dead_features_and_bad_shapes():
    a = np.random.default_rng(1).normal(size=(50, 8))
    a[:, 3] = 0.0                      # a ReLU unit that never fires: singular covariance
    b = a + np.random.default_rng(2).normal(scale=0.1, size=a.shape) * (np.arange(8) != 3)
    value = generative.frechet_distance(a, b)
    assert np.isfinite(value) and value >= 0
    with pytest.raises(ValueError, match="same number of columns"):
        generative.frechet_distance(a, b[:, :4])
    with pytest.raises(ValueError, match="at least 2"):
        generative.frechet_distance(a[:1], b)


def test_nearest_neighbours_and_mean_correlation():
    refs = np.random.default_rng(3).uniform(-1, 1, (30, 28, 28, 1))
    queries = np.stack([refs[7], refs[21] + 0.01])
    distances, indices = generative.nearest_neighbours(queries, refs)
    assert indices.tolist() == [7, 21]
    assert distances[0] == pytest.approx(0.0, abs=1e-5)
    assert distances[1] == pytest.approx(0.01 * 28, rel=1e-3)
    same = np.repeat(refs[:1], 10, axis=0) * np.arange(1, 11)[:, None, None, None]
    assert generative.mean_correlation(same) == pytest.approx(1.0)   # contrast does not count
    assert abs(generative.mean_correlation(refs)) < 0.1                # independent noise
    flipped = np.concatenate([refs[:1], -refs[:1]])
    assert generative.mean_correlation(flipped) == pytest.approx(-1.0)


def test_scale_images():
    x = generative.scale_images(np.array([[[0, 255]]], dtype=np.uint8))
    assert x.shape == (1, 1, 2, 1) and x.dtype == np.float32
    assert x.ravel().tolist() == [-1.0, 1.0]


def _tiny(latent_dim=4):
    keras.utils.set_random_seed(0)
    generator = keras.Sequential([keras.Input((latent_dim,)), keras.layers.Dense(16, "tanh"),
                                  keras.layers.Reshape((4, 4, 1))])
    discriminator = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                                      keras.layers.Dense(1)])
    return generator, discriminator


def test_train_gan_records_losses_snapshots_and_measures():
    generator, discriminator = _tiny()
    images = np.random.default_rng(4).uniform(-1, 1, (40, 4, 4, 1)).astype("float32")
    seen = []
    history = generative.train_gan(gan.train_step, generator, discriminator, images, 4, steps=6,
                                   batch_size=8, snapshot_every=3, progress=False,
                                   on_snapshot=lambda step, g: seen.append(step) or step * 10)
    assert len(history.d_loss) == len(history.g_loss) == 6
    assert np.all(np.isfinite(history.d_loss)) and np.all(np.isfinite(history.g_loss))
    assert sorted(history.snapshots) == [0, 3, 6] and seen == [0, 3, 6]
    assert history.measures == {0: 0, 3: 30, 6: 60}
    assert history.snapshots[0].shape == (64, 4, 4, 1)
    assert not np.allclose(history.snapshots[0], history.snapshots[6])
    assert history.seconds > 0


def test_train_gan_rejects_unscaled_or_too_few_images():
    generator, discriminator = _tiny()
    with pytest.raises(ValueError, match="scale_images"):
        generative.train_gan(gan.train_step, generator, discriminator,
                             np.zeros((40, 4, 4), np.uint8), 4, steps=1, progress=False)
    with pytest.raises(ValueError, match="lower batch_size"):
        generative.train_gan(gan.train_step, generator, discriminator,
                             np.zeros((5, 4, 4, 1), np.float32), 4, steps=1, batch_size=8,
                             progress=False)


def test_chase_discriminator_changes_only_the_generator():
    keras.utils.set_random_seed(1)
    generator = models.build_generator(8)
    discriminator = models.build_discriminator((28, 28, 1))
    d_before = [w.copy() for w in discriminator.get_weights()]
    g_before = [w.copy() for w in generator.get_weights()]
    losses = generative.chase_discriminator(generator, discriminator, gan.generator_loss, 8,
                                            steps=60, progress=False)
    assert len(losses) == 60 and losses[-1] < losses[0]
    assert all(np.array_equal(a, b) for a, b in zip(d_before, discriminator.get_weights(),
                                                    strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(g_before, generator.get_weights(),
                                                        strict=True))


def test_copy_model_is_independent():
    generator, _ = _tiny()
    copy = generative.copy_model(generator)
    assert all(np.array_equal(a, b) for a, b in zip(copy.get_weights(),
                                                    generator.get_weights(), strict=True))
    copy.layers[0].kernel.assign(np.zeros_like(copy.layers[0].kernel))
    assert not np.allclose(generator.layers[0].kernel.numpy(), 0.0)


def test_predict_in_batches_matches_one_call_in_inference_mode():
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                              keras.layers.Dropout(0.5), keras.layers.Dense(2)])
    x = np.random.default_rng(6).normal(size=(11, 3)).astype("float32")
    got = models.predict_in_batches(model, x, batch=4)
    assert got.shape == (11, 2)
    np.testing.assert_allclose(got, model(x, training=False).numpy(), rtol=1e-6)


def test_scale_images_refuses_images_that_are_already_scaled():
    raw = np.random.default_rng(7).integers(0, 256, (3, 4, 4), dtype=np.uint8)
    np.testing.assert_array_equal(generative.scale_images(raw.astype(np.float64)),
                                  generative.scale_images(raw))      # floats in [0, 255] too
    for scaled in (raw / 255.0, generative.scale_images(raw)):    # in [0, 1], or done twice
        with pytest.raises(ValueError, match="already scaled"):
            generative.scale_images(scaled)


def test_frechet_distance_says_when_features_are_not_finite():
    a = np.random.default_rng(8).normal(size=(20, 3))
    b = a.copy()
    b[4, 1] = np.nan
    with pytest.raises(ValueError, match="features_b holds 1 nan or inf"):
        generative.frechet_distance(a, b)
