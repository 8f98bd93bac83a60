"""Chapter 3's reference code against TensorFlow: convolution, pooling and softmax
(medai_lessons.nn.conv), the seed's CNN (medai_lessons.models.build_cnn) and Grad-CAM
(medai_lessons.explain), on seeded inputs in float64.

TensorFlow is imported once, at the top of this module; every tensor is tiny.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from medai_lessons import explain, models
from medai_lessons.nn import conv

TOL = {"rtol": 1e-10, "atol": 1e-10}


def seeded(shape, seed):
    return np.random.default_rng(seed).normal(size=shape)


# --- conv2d ----------------------------------------------------------------------------------

CONV_CASES = [  # x shape (N, H, W, C_in), kernel (kh, kw), C_out, stride, padding
    ((1, 6, 6, 1), (3, 3), 1, 1, "valid"),
    ((2, 7, 9, 3), (3, 3), 4, 1, "same"),
    ((2, 8, 9, 2), (3, 3), 2, 2, "same"),  # odd total padding along H: 0 before, 1 after
    ((1, 5, 7, 1), (2, 4), 3, 1, "same"),  # even kernels
    ((3, 11, 10, 2), (4, 4), 2, 3, "same"),
    ((2, 9, 8, 2), (3, 2), 3, 2, "valid"),
    ((1, 5, 5, 2), (5, 5), 1, 1, "valid"),  # kernel as large as the image
    ((2, 4, 5, 3), (1, 1), 2, 1, "valid"),
]


@pytest.mark.parametrize(("x_shape", "k", "c_out", "stride", "padding"), CONV_CASES)
def test_conv2d_equals_tf_nn_conv2d(x_shape, k, c_out, stride, padding):
    x = seeded(x_shape, 1)
    w = seeded((*k, x_shape[-1], c_out), 2)
    b = seeded((c_out,), 3)
    expected = tf.nn.conv2d(x, w, stride, padding.upper()).numpy() + b
    np.testing.assert_allclose(conv.conv2d(x, w, b, stride, padding), expected, **TOL)
    # one image in, one image out, the same numbers
    np.testing.assert_allclose(conv.conv2d(x[0], w, b, stride, padding), expected[0], **TOL)
    assert conv.conv2d(x[0], w, b, stride, padding).shape == expected.shape[1:]


def test_conv2d_equals_a_keras_conv2d_layer_with_the_same_weights():
    x = seeded((2, 9, 9, 2), 4).astype("float32")
    layer = keras.layers.Conv2D(3, (3, 3), strides=2, padding="same")
    layer.build(x.shape)
    w, b = seeded((3, 3, 2, 3), 5), seeded((3,), 6)
    layer.set_weights([w.astype("float32"), b.astype("float32")])
    np.testing.assert_allclose(conv.conv2d(x, w, b, 2, "same"), layer(x).numpy(), rtol=1e-5,
                               atol=1e-5)


def test_uppercase_padding_and_no_bias():
    x, w = seeded((6, 6, 1), 7), seeded((3, 3, 1, 2), 8)
    np.testing.assert_allclose(conv.conv2d(x, w, padding="SAME"), conv.conv2d(x, w, None, 1,
                                                                              "same"))
    with pytest.raises(ValueError, match="padding"):
        conv.conv2d(x, w, padding="full")
    with pytest.raises(ValueError, match="kernel shape"):
        conv.conv2d(x, seeded((3, 3, 2, 2), 9))


@pytest.mark.parametrize(("size", "kernel", "stride", "split"),
                         [(8, 3, 2, (0, 1)), (7, 3, 2, (1, 1)), (5, 2, 1, (0, 1)),
                          (5, 4, 1, (1, 2)), (6, 1, 2, (0, 0)), (4, 5, 1, (2, 2))])
def test_same_padding_puts_the_extra_row_after(size, kernel, stride, split):
    assert conv.same_padding(size, kernel, stride) == split


def test_true_convolution_flips_the_kernel():
    impulse = np.zeros((5, 5, 1))
    impulse[2, 2, 0] = 1.0
    kernel = np.arange(1.0, 10.0).reshape(3, 3, 1, 1)
    # convolving an impulse reproduces the kernel; cross-correlation rotates it by 180 degrees
    convolved = conv.true_convolution(impulse, kernel, padding="same")
    np.testing.assert_array_equal(convolved[1:4, 1:4, 0], kernel[:, :, 0, 0])
    np.testing.assert_array_equal(conv.conv2d(impulse, kernel, padding="same")[1:4, 1:4, 0],
                                  kernel[::-1, ::-1, 0, 0])
    symmetric = np.ones((3, 3, 1, 1))
    np.testing.assert_allclose(conv.true_convolution(seeded((6, 6, 1), 1), symmetric),
                               conv.conv2d(seeded((6, 6, 1), 1), symmetric))


# --- pooling ---------------------------------------------------------------------------------

POOL_CASES = [((1, 4, 4, 1), 2, 2), ((2, 7, 5, 3), 2, 2), ((2, 7, 7, 1), 3, 2),
              ((1, 5, 6, 2), 2, 1), ((3, 9, 9, 2), 3, 3), ((1, 3, 4, 2), 1, 1)]


@pytest.mark.parametrize(("x_shape", "size", "stride"), POOL_CASES)
def test_pooling_equals_tensorflow(x_shape, size, stride):
    x = seeded(x_shape, 11)
    for ours, theirs in ((conv.max_pool2d, tf.nn.max_pool2d), (conv.avg_pool2d, tf.nn.avg_pool2d)):
        expected = theirs(x, size, stride, "VALID").numpy()
        # TensorFlow's float64 max pooling agrees to float32 precision only
        np.testing.assert_allclose(ours(x, size, stride), expected, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(ours(x[0], size, stride), expected[0], rtol=1e-6, atol=1e-7)


def test_max_pool_of_negative_values_and_defaults():
    x = -np.arange(1.0, 17.0).reshape(4, 4, 1)
    np.testing.assert_array_equal(conv.max_pool2d(x)[..., 0], [[-1.0, -3.0], [-9.0, -11.0]])
    np.testing.assert_array_equal(conv.avg_pool2d(x)[..., 0], [[-3.5, -5.5], [-11.5, -13.5]])


# --- softmax ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "axis", "scale"),
                         [((3,), -1, 2.0), ((4, 5), -1, 2.0), ((3, 4), 0, 2.0),
                          ((2, 3, 4), 1, 3.0), ((50, 10), -1, 800.0)])
def test_softmax_equals_tf_nn_softmax(shape, axis, scale):
    z = seeded(shape, 12) * scale
    with np.errstate(all="raise", under="ignore"):
        got = conv.softmax(z, axis=axis)
    np.testing.assert_allclose(got, tf.nn.softmax(z, axis=axis).numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got.sum(axis=axis), 1.0)


def test_softmax_is_finite_for_logits_of_1000():
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -999.0]])
    with np.errstate(all="raise", under="ignore"):
        p = conv.softmax(z)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p, tf.nn.softmax(z).numpy(), rtol=1e-12)


# --- the seed's CNN --------------------------------------------------------------------------


def test_build_cnn_has_the_layers_of_seed_000_section_4_1():
    model = models.build_cnn((28, 28, 1), 2)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D", "Flatten",
                     "Dense", "Dense"]
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [32, 64, 64]
    assert all(tuple(c.kernel_size) == (3, 3) and c.get_config()["activation"] == "relu"
               for c in convs)
    shapes = [tuple(layer.output.shape) for layer in model.layers]
    assert shapes == [(None, 26, 26, 32), (None, 13, 13, 32), (None, 11, 11, 64),
                      (None, 5, 5, 64), (None, 3, 3, 64), (None, 576), (None, 64), (None, 2)]
    assert tuple(model.outputs[0].shape) == (None, 2)
    assert model.count_params() == 320 + 18496 + 36928 + 36928 + 130
    p = model(seeded((3, 28, 28, 1), 13).astype("float32")).numpy()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_build_cnn_follows_its_arguments():
    model = models.build_cnn((32, 40, 3), 5)
    assert tuple(model.inputs[0].shape) == (None, 32, 40, 3)
    assert tuple(model.outputs[0].shape) == (None, 5)


def test_the_improved_network_names_its_last_feature_map():
    model = models.build_xray_cnn(augment=False)
    assert explain.last_spatial_layer(model).name == "last_conv_relu"
    assert tuple(model.outputs[0].shape) == (None, 2)
    augmenting = models.build_xray_cnn()
    x = np.full((2, 28, 28, 1), 0.5, dtype="float32")
    # augmentation only acts in training: at inference the two models see the same image
    augmenting.set_weights(model.get_weights())
    np.testing.assert_allclose(augmenting(x, training=False), model(x, training=False),
                               rtol=1e-5)


# --- Grad-CAM --------------------------------------------------------------------------------


def planted_feature_model():
    """A tiny network with hand-set weights: filter 0 detects a bright 3x3 square (the
    "lesion"), filter 1 a bright vertical bar (a "distractor" that the output ignores);
    global average pooling; a two-class softmax whose "lesion" logit reads filter 0 only."""
    inputs = keras.Input((16, 16, 1))
    features = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="detect")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    outputs = keras.layers.Dense(2, activation="softmax")(pooled)
    model = keras.Model(inputs, outputs)
    square = np.full((3, 3), 1.0 / 9)
    bar = np.array([[-1.0, 2.0, -1.0]] * 3) / 3
    kernel = np.stack([square, bar], axis=-1)[:, :, None, :]
    model.layers[1].set_weights([kernel.astype("float32"), np.array([-0.5, -0.5], "float32")])
    model.layers[3].set_weights([np.array([[0.0, 40.0], [0.0, 0.0]], "float32"),
                                 np.zeros(2, "float32")])
    return model


def planted_images():
    x = np.zeros((3, 16, 16, 1), dtype="float32")
    x[0, 2:5, 3:6] = 1.0  # lesion top left, bar on the right
    x[0, 8:16, 13] = 1.0
    x[1, 10:13, 10:13] = 1.0  # lesion bottom right, bar on the left
    x[1, 0:9, 2] = 1.0
    x[2, 6:9, 7:10] = 1.0  # lesion in the middle only
    return x


def test_grad_cam_shape_range_and_non_negativity():
    model = planted_feature_model()
    x = planted_images()
    cam = explain.grad_cam(model, x, class_index=1)
    assert cam.shape == (3, 16, 16) and cam.dtype == np.float32
    assert np.all(cam >= 0) and np.allclose(cam.max(axis=(1, 2)), 1.0)
    raw = explain.grad_cam(model, x, class_index=1, normalize=False)
    assert np.all(raw >= 0) and raw.max() > 0
    assert explain.grad_cam(model, x[0], class_index=1).shape == (16, 16)


def test_grad_cam_highlights_the_planted_feature_not_the_distractor():
    model = planted_feature_model()
    x = planted_images()
    cam = explain.grad_cam(model, x, class_index=1, layer_name="detect")
    lesions = [(slice(2, 5), slice(3, 6)), (slice(10, 13), slice(10, 13)),
               (slice(6, 9), slice(7, 10))]
    bars = [(slice(8, 16), 13), (slice(0, 9), 2)]
    for i, (rows, cols) in enumerate(lesions):
        peak = np.unravel_index(np.argmax(cam[i]), cam[i].shape)
        assert rows.start - 1 <= peak[0] <= rows.stop and cols.start - 1 <= peak[1] <= cols.stop
        outside = np.ones(cam[i].shape, bool)
        outside[rows.start - 1:rows.stop + 1, cols.start - 1:cols.stop + 1] = False
        assert cam[i][rows, cols].max() > 0.99 and cam[i][outside].max() < 0.1
    for i, (rows, col) in enumerate(bars):
        assert cam[i][rows, col].max() < 0.2, "the distractor, which the output ignores, lit up"


def test_grad_cam_default_class_is_the_predicted_one():
    model = planted_feature_model()
    x = planted_images()
    predicted = np.argmax(model(x).numpy(), axis=1)
    np.testing.assert_allclose(explain.grad_cam(model, x),
                               explain.grad_cam(model, x, class_index=predicted.tolist()))


def test_grad_cam_on_the_seed_cnn_reads_its_last_convolution():
    model = models.build_cnn((28, 28, 1), 2)
    assert explain.last_spatial_layer(model).name == "conv3"
    cam = explain.grad_cam(model, seeded((2, 28, 28, 1), 14).astype("float32") ** 2)
    assert cam.shape == (2, 28, 28) and np.all(cam >= 0)


def test_grad_cam_on_logits_and_on_probabilities_agree_in_shape_not_in_size():
    model = planted_feature_model()
    x = planted_images()
    on_logits = explain.grad_cam(model, x, class_index=1)
    on_probabilities = explain.grad_cam(model, x, class_index=1, use_logits=False)
    # two classes, one of them reading no feature map: the probability's gradient is the
    # logit's times p (1 - p), the same map after scaling
    np.testing.assert_allclose(on_logits, on_probabilities, atol=1e-5)
    raw_logits = explain.grad_cam(model, x, class_index=1, normalize=False)
    raw_probabilities = explain.grad_cam(model, x, class_index=1, normalize=False,
                                         use_logits=False)
    p = model(x).numpy()[:, 1]
    np.testing.assert_allclose(raw_probabilities, raw_logits * (p * (1 - p))[:, None, None],
                               rtol=1e-4, atol=1e-7)


def test_the_improved_networks_augmentation_scales():
    default, doubled = models.build_xray_cnn(), models.build_xray_cnn(augment_scale=2.0)
    for model, scale in ((default, 1.0), (doubled, 2.0)):
        assert model.get_layer("shift").height_factor == pytest.approx(0.05 * scale)
        assert tuple(model.get_layer("rotate").factor) == pytest.approx((-0.02 * scale,
                                                                          0.02 * scale))
        assert model.get_layer("zoom").height_factor == pytest.approx(0.05 * scale)
    assert default.count_params() == doubled.count_params()


def test_train_xray_cnn_keeps_the_best_validation_epoch(capsys):
    from medai_lessons import metrics
    from medai_lessons.train import train_xray_cnn

    rng = np.random.default_rng(0)
    y = np.array([0, 1, 1, 1] * 12)
    x = rng.uniform(0, 0.3, (48, 28, 28, 1)).astype("float32")
    x[y == 1, 10:18, 10:18] += 0.6                                   # a bright patch = "sick"
    keras.utils.set_random_seed(0)
    model = models.build_xray_cnn(width=4, augment=False)
    result = train_xray_cnn(model, x[:32], y[:32], x[32:], y[32:], epochs=3, batch_size=16,
                            patience=2)
    assert result.class_weight == pytest.approx({0: 32 / (2 * 8), 1: 32 / (2 * 24)})
    assert 1 <= len(result.val_auc) == len(result.loss) <= 3
    assert result.best_auc == max(result.val_auc)
    assert result.best_epoch == 1 + int(np.argmax(result.val_auc))
    # the model holds the best epoch's weights, not the last epoch's
    now = metrics.roc_auc(y[32:], models.predict_in_batches(model, x[32:])[:, 1])
    assert now == pytest.approx(result.best_auc)
    assert capsys.readouterr().out.count("validation ROC AUC") == len(result.val_auc)
    with pytest.raises(ValueError, match="validation split needs"):
        train_xray_cnn(model, x[:32], y[:32], x[32:], np.ones(16, int), epochs=1)
    with pytest.raises(ValueError, match=r"training split has no normal \(0\) image.*random"):
        train_xray_cnn(model, x[:32], np.ones(32, int), x[32:], y[32:], epochs=1)


def test_train_xray_cnn_with_a_class_weighted_loss_trains_as_class_weights_do(capsys):
    """The learner's weighted binary cross-entropy with pos_weight = n_normal / n_pneumonia is
    the class-weighted loss times the constant 2 n_normal / n: the same seed trains (nearly)
    the same network, and each epoch's loss is that constant times the class-weighted one."""
    from medai_lessons.nn import weighted_binary_cross_entropy
    from medai_lessons.train import train_xray_cnn

    rng = np.random.default_rng(0)
    y = np.array([0, 1, 1, 1] * 12)
    x = rng.uniform(0, 0.3, (48, 28, 28, 1)).astype("float32")
    x[y == 1, 10:18, 10:18] += 0.6
    runs = {}
    for name, options in (("class weights", {}),
                          ("weighted loss", {"loss": weighted_binary_cross_entropy})):
        keras.utils.set_random_seed(0)
        model = models.build_xray_cnn(width=4, augment=False)
        runs[name] = train_xray_cnn(model, x[:32], y[:32], x[32:], y[32:], epochs=3,
                                    batch_size=16, patience=3, verbose=False, **options)
    weighted = runs["weighted loss"]
    assert weighted.class_weight is None and weighted.pos_weight == pytest.approx(8 / 24)
    factor = 2 * 8 / 32
    assert np.allclose(weighted.loss, factor * np.array(runs["class weights"].loss), rtol=1e-3)
    assert np.allclose(weighted.val_auc, runs["class weights"].val_auc, atol=1e-3)


def test_a_loss_written_with_numpy_is_not_trained_with_and_the_note_says_why(capsys):
    from medai_lessons.nn import weighted_binary_cross_entropy
    from medai_lessons.train import loss_problem, trainable_loss

    def numpy_loss(y_true, y_prob, pos_weight):
        y, p = np.asarray(y_true), np.clip(np.asarray(y_prob), 1e-7, 1 - 1e-7)
        return -np.mean(pos_weight * y * np.log(p) + (1 - y) * np.log(1 - p))

    def ops_loss(y_true, y_prob, pos_weight):
        p = keras.ops.clip(y_prob, 1e-7, 1 - 1e-7)
        return -keras.ops.mean(pos_weight * y_true * keras.ops.log(p)
                               + (1 - y_true) * keras.ops.log(1 - p))

    assert loss_problem(numpy_loss)
    assert loss_problem(lambda y, p, w: keras.ops.zeros(())) == "it gives Keras no gradient"
    assert loss_problem(ops_loss) is None
    assert trainable_loss(ops_loss) is ops_loss
    assert trainable_loss(numpy_loss) is weighted_binary_cross_entropy
    assert "write it with keras.ops" in capsys.readouterr().out
