"""The simulated change of acquisition of chapter 3 (medai_lessons.data.shift)."""

from __future__ import annotations

import numpy as np
import pytest

from medai_lessons.data.shift import simulate_acquisition_shift


def test_contrast_brightness_blur_and_noise_do_what_they_say():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 0.8, (3, 16, 16, 1)).astype("float32")
    before = x.copy()
    plain = simulate_acquisition_shift(x, contrast=0.5, brightness=0.1, blur_sigma=0,
                                       noise_sd=0)
    assert np.array_equal(x, before), "the input must not change"
    assert plain.shape == x.shape and plain.dtype == np.float32
    assert np.allclose(plain, (x - 0.5) * 0.5 + 0.6, atol=1e-6)
    blurred = simulate_acquisition_shift(x, contrast=1, brightness=0, blur_sigma=1.0, noise_sd=0)
    assert blurred.std() < x.std()                        # a blur smooths
    assert np.allclose(blurred.mean(axis=(1, 2, 3)), x.mean(axis=(1, 2, 3)), atol=0.02)
    # images are blurred one by one: an image's neighbours in the batch do not leak into it
    alone = simulate_acquisition_shift(x[1:2], contrast=1, brightness=0, blur_sigma=1.0,
                                       noise_sd=0)
    assert np.allclose(alone[0], blurred[1], atol=1e-6)
    a = simulate_acquisition_shift(x, seed=1)
    assert np.array_equal(a, simulate_acquisition_shift(x, seed=1))
    assert not np.array_equal(a, simulate_acquisition_shift(x, seed=2))
    assert a.min() >= 0 and a.max() <= 1


def test_bad_input_says_what_to_do():
    with pytest.raises(ValueError, match="divide uint8 images by 255"):
        simulate_acquisition_shift(np.full((2, 4, 4), 200.0))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        simulate_acquisition_shift(np.zeros((4, 4)))
