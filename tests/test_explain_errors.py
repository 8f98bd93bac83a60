"""Bad input to Grad-CAM (medai_lessons.explain) and to the feature-map plot: a clear error
that says what to pass, not one from deep inside TensorFlow or matplotlib."""

from __future__ import annotations

import keras
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from medai_lessons import explain, plotting_images  # noqa: E402


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(3, 3, name="conv"),
                             keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(2, activation="softmax")])


IMAGES = np.random.default_rng(0).random((2, 8, 8, 1)).astype("float32")


def test_grad_cam_says_the_shape_the_model_takes(model):
    with pytest.raises(ValueError, match=r"\(2, 8, 8\).*\(N, 8, 8, 1\).*images\[\.\.\., None\]"):
        explain.grad_cam(model, IMAGES[..., 0])
    with pytest.raises(ValueError, match=r"\(2, 9, 9, 1\)"):
        explain.grad_cam(model, np.zeros((2, 9, 9, 1), "float32"))
    assert explain.grad_cam(model, IMAGES).shape == (2, 8, 8)
    assert explain.grad_cam(model, IMAGES[0]).shape == (8, 8)


@pytest.mark.parametrize("class_index", [5, -1, [0, 1, 1], 1.5])
def test_grad_cam_checks_class_index_against_the_outputs(model, class_index):
    with pytest.raises(ValueError, match="class_index"):
        explain.grad_cam(model, IMAGES, class_index=class_index)


def test_grad_cam_still_takes_an_index_per_image(model):
    per_image = explain.grad_cam(model, IMAGES, class_index=[0, 1])
    np.testing.assert_allclose(per_image[1], explain.grad_cam(model, IMAGES, class_index=1)[1])


def test_feature_maps_with_the_batch_axis_say_to_drop_it():
    with pytest.raises(ValueError, match=r"\(1, 6, 6, 4\).*maps\[0\]"):
        plotting_images.plot_feature_maps(np.zeros((1, 6, 6, 4)))
    with pytest.raises(ValueError, match=r"\(6, 6\)"):
        plotting_images.plot_feature_maps(np.zeros((6, 6)))
    fig = plotting_images.plot_feature_maps(np.zeros((6, 6, 4)), ncols=4)
    assert len(fig.axes[0].images) == 1
    plt.close("all")
