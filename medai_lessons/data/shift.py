"""A simulated change of acquisition, for chapter 3's external-validation experiment.

:func:`simulate_acquisition_shift` turns images into what another hospital's machine *might*
produce: lower or higher contrast around the mid-grey, a brightness offset, a little blur and
sensor noise. It is a simulation, documented as such wherever it is used: real differences
between sites (other devices, exposure, patient positioning, age mix, prevalence) are richer,
and only X-rays from the other site measure them.
"""

from __future__ import annotations

import numpy as np


def simulate_acquisition_shift(images, *, contrast: float = 1.0, brightness: float = -0.05,
                               blur_sigma: float = 1.2, noise_sd: float = 0.01,
                               seed: int = 0) -> np.ndarray:
    """Images ``(N, H, W)`` or ``(N, H, W, C)`` with values in [0, 1], as another machine might
    record them: ``contrast`` scales the deviation from 0.5, ``brightness`` is added, a Gaussian
    blur of ``blur_sigma`` pixels (spatial axes only) and Gaussian noise of ``noise_sd`` follow;
    the result is clipped to [0, 1] and has the input's shape and a float32 dtype. The input is
    not changed. Deterministic for a given ``seed``.

    The defaults (a blurrier, slightly darker image with a little noise) are the shift chapter 3
    shows: one under which its network still ranks the test X-rays as well as before while
    its probabilities and its operating point move (``benchmarks/README.md`` has the figures
    and the stronger shifts that were tried, under which the ranking suffers as well)."""
    from scipy.ndimage import gaussian_filter

    x = np.asarray(images, dtype=np.float32)
    if x.ndim not in (3, 4):
        raise ValueError(f"images must be (N, H, W) or (N, H, W, C); got shape {x.shape}")
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise ValueError(f"images must hold values in [0, 1] (got {x.min():g} to {x.max():g}): "
                         "divide uint8 images by 255 first")
    out = (x - 0.5) * contrast + 0.5 + brightness
    if blur_sigma > 0:
        sigma = (0, blur_sigma, blur_sigma) + ((0,) if x.ndim == 4 else ())
        out = gaussian_filter(out, sigma=sigma, mode="nearest")
    if noise_sd > 0:
        out = out + np.random.default_rng(seed).normal(0.0, noise_sd, out.shape)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
