"""The chapter-5 checkers: discriminator_loss, generator_loss, build_generator,
build_discriminator and train_step.

Each checker accepts the reference and other right answers (visible and strict cases) and
rejects the mistakes learners make, written the way a learner would write them (several
straight from the source document's GAN, errata E7 and E8), with a message that names the
exercise and the case and carries the hint for that mistake. (The generic checks of every
registered exercise run in test_checkers.py.)
"""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from checker_cases import accepts_variants, hints_without_layer_code

from medai_lessons import models
from medai_lessons.grading import (
    EXERCISES,
    check_build_discriminator,
    check_build_generator,
    check_discriminator_loss,
    check_generator_loss,
    check_train_step,
)
from medai_lessons.grading.core import SAMPLE_ARGS, CheckFailed
from medai_lessons.nn import gan as ref
from nbtools import failure_pattern

CHAPTER_5 = ["discriminator_loss", "generator_loss", "build_generator", "build_discriminator",
             "train_step"]
L = keras.layers
BCE = keras.losses.BinaryCrossentropy(from_logits=True)


def test_registry_and_samples():
    for name in CHAPTER_5:
        checker, reference = EXERCISES[name]
        assert checker.__name__ == f"check_{name}"
        reference(*SAMPLE_ARGS[name]())
    assert EXERCISES["train_step"][1] is ref.train_step
    assert EXERCISES["build_generator"][1] is models.build_generator


def test_reference_losses_match_the_formula_and_keras():
    real = tf.constant([[2.0], [-1.0], [1000.0]])
    fake = tf.constant([[0.5], [-1000.0]])
    softplus = lambda x: np.logaddexp(0.0, np.asarray(x, float))  # noqa: E731
    want_d = softplus(-real.numpy()).mean() + softplus(fake.numpy()).mean()
    assert float(ref.discriminator_loss(real, fake)) == pytest.approx(want_d, rel=1e-6)
    keras_d = BCE(tf.ones_like(real), real) + BCE(tf.zeros_like(fake), fake)
    assert float(ref.discriminator_loss(real, fake)) == pytest.approx(float(keras_d), rel=1e-5)
    assert float(ref.generator_loss(fake)) == pytest.approx(softplus(-fake.numpy()).mean(),
                                                           rel=1e-6)


# --- right answers written another way -------------------------------------------------------


def d_loss_keras(real_logits, fake_logits):
    return (BCE(tf.ones_like(real_logits), real_logits)
            + BCE(tf.zeros_like(fake_logits), fake_logits))


def d_loss_tf_nn(real_logits, fake_logits):
    real = tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(real_logits), real_logits)
    fake = tf.nn.sigmoid_cross_entropy_with_logits(tf.zeros_like(fake_logits), fake_logits)
    return tf.reduce_mean(real) + tf.reduce_mean(fake)


def g_loss_keras(fake_logits):
    return BCE(tf.ones_like(fake_logits), fake_logits)


def generator_upsampling(latent_dim):
    """A functional generator that upsamples with UpSampling2D + Conv2D."""
    z = keras.Input(shape=(latent_dim,))
    x = L.Dense(7 * 7 * 16, activation="relu")(z)
    x = L.Reshape((7, 7, 16))(x)
    x = L.UpSampling2D()(x)
    x = L.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = L.UpSampling2D()(x)
    x = L.Conv2D(1, 3, padding="same")(x)
    return keras.Model(z, L.Activation("tanh")(x))


def generator_softsign(latent_dim):
    """Another activation bounded to [-1, 1]: softsign, x / (1 + |x|)."""
    return keras.Sequential([keras.Input((latent_dim,)), L.Dense(7 * 7 * 4, activation="relu"),
                             L.Reshape((7, 7, 4)),
                             L.Conv2DTranspose(1, 4, strides=4, padding="same",
                                               activation="softsign")])


def generator_hard_tanh(latent_dim):
    """Another activation bounded to [-1, 1]: hard_tanh, clip(x, -1, 1), as its own layer."""
    z = keras.Input(shape=(latent_dim,))
    x = L.Reshape((7, 7, 4))(L.Dense(7 * 7 * 4, activation="relu")(z))
    x = L.Conv2DTranspose(1, 4, strides=4, padding="same")(x)
    return keras.Model(z, L.Activation("hard_tanh")(x))


def discriminator_functional(image_shape):
    inputs = keras.Input(shape=image_shape)
    x = L.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = L.LeakyReLU(0.2)(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(1)(x))


def step_simultaneous(generator, discriminator, g_opt, d_opt, real_images, latent_dim):
    """TensorFlow's DCGAN tutorial: both gradients from one forward pass."""
    noise = tf.random.normal([tf.shape(real_images)[0], latent_dim])
    with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
        fake = generator(noise, training=True)
        real_out = discriminator(real_images, training=True)
        fake_out = discriminator(fake, training=True)
        g_loss = g_loss_keras(fake_out)
        d_loss = d_loss_keras(real_out, fake_out)
    g_vars, d_vars = generator.trainable_variables, discriminator.trainable_variables
    g_opt.apply_gradients(zip(gen_tape.gradient(g_loss, g_vars), g_vars, strict=True))
    d_opt.apply_gradients(zip(disc_tape.gradient(d_loss, d_vars), d_vars, strict=True))
    return d_loss, g_loss


def step_with_apply(generator, discriminator, g_opt, d_opt, real_images, latent_dim):
    """Alternating, with Keras 3's optimizer.apply(grads, variables)."""
    batch = tf.shape(real_images)[0]
    with tf.GradientTape() as tape:
        fake = generator(tf.random.normal([batch, latent_dim]), training=True)
        d_loss = d_loss_tf_nn(discriminator(real_images, training=True),
                              discriminator(fake, training=True))
    d_opt.apply(tape.gradient(d_loss, discriminator.trainable_variables),
                discriminator.trainable_variables)
    with tf.GradientTape() as tape:
        fake = generator(tf.random.normal([batch, latent_dim]), training=True)
        g_loss = g_loss_keras(discriminator(fake, training=True))
    g_opt.apply(tape.gradient(g_loss, generator.trainable_variables),
                generator.trainable_variables)
    return d_loss, g_loss


CORRECT_VARIANTS = [
    (check_build_generator, generator_upsampling),
    (check_build_generator, generator_softsign),
    (check_build_generator, generator_hard_tanh),
]

test_checker_accepts_correct_variant = accepts_variants(CORRECT_VARIANTS)


def test_right_answers_written_another_way_pass():
    check_discriminator_loss(d_loss_keras, strict=True)
    check_discriminator_loss(d_loss_tf_nn, strict=True)
    check_generator_loss(g_loss_keras, strict=True)
    check_build_discriminator(discriminator_functional, strict=True)
    check_train_step(step_simultaneous)
    check_train_step(step_with_apply, strict=True)


# --- mistakes --------------------------------------------------------------------------------


def _fails(checker, func, exercise, case, hint_part, strict=False):
    with pytest.raises(AssertionError, match=failure_pattern(exercise, case)) as info:
        checker(func, strict=strict)
    assert re.search(hint_part, str(info.value)), str(info.value)


LOSS_MISTAKES = [
    ("naive log of sigmoid",
     lambda r, f: (tf.reduce_mean(-tf.math.log(tf.sigmoid(r)))
                   + tf.reduce_mean(-tf.math.log(1.0 - tf.sigmoid(f)))),
     "logits of ±1000", "never log\\(sigmoid"),
    ("labels swapped", lambda r, f: d_loss_keras(f, r), "small logits", "labels are swapped"),
    ("the two means averaged", lambda r, f: 0.5 * d_loss_keras(r, f), "small logits",
     "add the two means"),
    ("NumPy inside", lambda r, f: tf.constant(np.mean(np.logaddexp(0, -np.asarray(r)))
                                              + np.mean(np.logaddexp(0, np.asarray(f)))),
     "small logits: gradient", "GradientTape cannot follow"),
    ("a NumPy number returned", lambda r, f: float(d_loss_keras(r, f)), "small logits",
     "TensorFlow scalar"),
    ("one mean over both batches",
     lambda r, f: tf.reduce_mean(tf.concat([tf.nn.softplus(-r), tf.nn.softplus(f)], axis=0)),
     "small logits", "add the two means"),
]


@pytest.mark.parametrize("label, func, case, hint", LOSS_MISTAKES,
                         ids=[m[0] for m in LOSS_MISTAKES])
def test_discriminator_loss_mistakes(label, func, case, hint):
    _fails(check_discriminator_loss, func, "discriminator_loss", case, hint)


@pytest.mark.parametrize("func, hint", [
    (lambda f: -tf.reduce_mean(tf.nn.softplus(f)), "minimax \\(saturating\\)"),
    (lambda f: tf.reduce_mean(tf.nn.softplus(f)), "label 1"),
    (lambda f: tf.reduce_sum(tf.nn.softplus(-f)), "take the mean"),
], ids=["saturating", "labelled 0", "sum"])
def test_generator_loss_mistakes(func, hint):
    _fails(check_generator_loss, func, "generator_loss", "small logits", hint)


def seed_generator(input_dim):
    """AI in Medicine §4.3's generator (3 channels, E7)."""
    return keras.Sequential([
        keras.Input((input_dim,)), L.Dense(7 * 7 * 16, use_bias=False), L.BatchNormalization(),
        L.LeakyReLU(), L.Reshape((7, 7, 16)),
        L.Conv2DTranspose(8, (5, 5), strides=(2, 2), padding="same", use_bias=False),
        L.BatchNormalization(), L.LeakyReLU(),
        L.Conv2DTranspose(3, (5, 5), strides=(2, 2), padding="same", use_bias=False,
                          activation="tanh")])


def generator_sigmoid(latent_dim):
    return keras.Sequential([keras.Input((latent_dim,)), L.Dense(7 * 7 * 4),
                             L.Reshape((7, 7, 4)),
                             L.Conv2DTranspose(1, 4, strides=4, padding="same",
                                               activation="sigmoid")])


def generator_linear(latent_dim):
    """No activation on the last layer: the images are not bounded to [-1, 1]."""
    return keras.Sequential([keras.Input((latent_dim,)), L.Dense(7 * 7 * 4),
                             L.Reshape((7, 7, 4)),
                             L.Conv2DTranspose(1, 4, strides=4, padding="same")])


def generator_relu(latent_dim):
    """ReLU on the last layer: never negative, never capped at 1."""
    return keras.Sequential([keras.Input((latent_dim,)), L.Dense(7 * 7 * 4),
                             L.Reshape((7, 7, 4)),
                             L.Conv2DTranspose(1, 4, strides=4, padding="same",
                                               activation="relu")])


def generator_ignoring_noise(latent_dim):
    return keras.Sequential([keras.Input((latent_dim,)), L.Dense(784, kernel_initializer="zeros",
                                                                 bias_initializer="ones"),
                             L.Reshape((28, 28, 1)), L.Activation("tanh")])


def generator_one_upsampling(latent_dim):
    """One stride-2 transposed convolution too few: 7 x 7 becomes 14 x 14, not 28 x 28."""
    return keras.Sequential([keras.Input((latent_dim,)), L.Dense(7 * 7 * 8), L.Reshape((7, 7, 8)),
                             L.Conv2DTranspose(1, 4, strides=2, padding="same",
                                               activation="tanh")])


def generator_without_input(latent_dim):
    return keras.Sequential([L.Dense(7 * 7 * 4), L.Reshape((7, 7, 4)),
                             L.Conv2DTranspose(1, 4, strides=4, padding="same",
                                               activation="tanh")])


@pytest.mark.parametrize("func, hint", [
    (seed_generator, "erratum E7"),
    (generator_sigmoid, "maps any number into \\(-1, 1\\)"),
    (generator_linear, "maps any number into \\(-1, 1\\)"),
    (generator_relu, "maps any number into \\(-1, 1\\)"),
    (generator_ignoring_noise, "the noise must flow"),
    (lambda latent_dim: models.build_generator(100), "use the argument"),
    (generator_one_upsampling, "doubles height and width"),
    (generator_without_input, "declare the input first"),
], ids=["source's 3 channels", "sigmoid output", "linear output", "relu output",
        "ignores the noise", "fixed latent size", "14 x 14 output", "no input"])
def test_build_generator_mistakes(func, hint):
    case = "latent_dim=64" if hint == "use the argument" else "latent_dim=100"
    _fails(check_build_generator, func, "build_generator", case, hint)


def seed_discriminator(image_shape, input_dim=100):
    """AI in Medicine §4.3's discriminator input (E7) with a logit output."""
    return keras.Sequential([keras.Input(shape=[input_dim] + [64, 64]),
                             L.Conv2D(8, 5, strides=2, padding="same"), L.Flatten(),
                             L.Dense(1)])


def discriminator_sigmoid(image_shape):
    return keras.Sequential([keras.Input(image_shape), L.Flatten(),
                             L.Dense(1, activation="sigmoid")])


def discriminator_fixed_size(image_shape):
    return models.build_discriminator((28, 28, 1))


def discriminator_not_flattened(image_shape):
    """Dense(1) on the feature maps: one number per position, not one per image."""
    return keras.Sequential([keras.Input(image_shape), L.Conv2D(8, 4, strides=2, padding="same"),
                             L.Dense(1)])


@pytest.mark.parametrize("func, case, hint, strict", [
    (seed_discriminator, "image_shape=(28, 28, 1)", "erratum E7", False),
    (discriminator_sigmoid, "image_shape=(28, 28, 1)", "applied twice", False),
    (discriminator_fixed_size, "image_shape=(32, 32, 3)", "use the argument", False),
    (discriminator_not_flattened, "image_shape=(28, 28, 1)", "one vector per image", False),
], ids=["source's input shape", "sigmoid output", "fixed image size", "not flattened"])
def test_build_discriminator_mistakes(func, case, hint, strict):
    _fails(check_build_discriminator, func, "build_discriminator", case, hint, strict=strict)


test_builder_hints_point_at_the_idea = hints_without_layer_code(
    [(check_build_generator, wrong) for wrong in (seed_generator, generator_sigmoid,
                                                 generator_linear, generator_relu,
                                                 generator_ignoring_noise,
                                                 generator_one_upsampling, generator_without_input)]
    + [(check_build_discriminator, wrong) for wrong in (seed_discriminator, discriminator_sigmoid,
                                                       discriminator_not_flattened)])


def _step(d_fake_real_swapped=False, d_vars_of=None, g_vars_of=None, numpy_noise=False,
          skip_generator=False, returns_one=False):
    """An alternating train_step with one mistake switched on."""

    def train_step(generator, discriminator, g_opt, d_opt, real_images, latent_dim):
        batch = real_images.shape[0]
        if numpy_noise:
            z = np.random.default_rng().normal(size=(batch, latent_dim)).astype("float32")
        else:
            z = tf.random.normal([batch, latent_dim])
        with tf.GradientTape() as tape:
            real_out = discriminator(real_images, training=True)
            fake_out = discriminator(generator(z, training=True), training=True)
            d_loss = (d_loss_keras(fake_out, real_out) if d_fake_real_swapped
                      else d_loss_keras(real_out, fake_out))
        d_vars = (d_vars_of or (lambda g, d: d.trainable_variables))(generator, discriminator)
        d_opt.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars, strict=True))
        with tf.GradientTape() as tape:
            g_loss = g_loss_keras(discriminator(generator(z, training=True), training=True))
        if not skip_generator:
            g_vars = (g_vars_of or (lambda g, d: g.trainable_variables))(generator, discriminator)
            g_opt.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars, strict=True))
        return d_loss if returns_one else (d_loss, g_loss)

    return train_step


def step_turning_eager(generator, discriminator, g_opt, d_opt, real_images, latent_dim):
    """A red-team helper, round 11: NumPy noise, with TensorFlow told to run tf.function's
    code eagerly, so that every call draws new noise (the call may also come before the
    probe: the probe reports either)."""
    tf.config.run_functions_eagerly(True)     # left on, as the attack left it
    return _step(numpy_noise=True)(generator, discriminator, g_opt, d_opt, real_images,
                                   latent_dim)


def step_forging_the_optimizer_log(generator, discriminator, g_opt, d_opt, real_images,
                                   latent_dim):
    """A red-team helper, round 10: the generator updated by hand (plain SGD, which the exact
    case cannot tell from g_opt's), and the entry the check looks for written into whatever
    list the optimizer it was given holds."""
    d_loss, _ = _step(skip_generator=True)(generator, discriminator, g_opt, d_opt, real_images,
                                           latent_dim)
    z = tf.random.normal([real_images.shape[0], latent_dim])
    g_vars = generator.trainable_variables
    with tf.GradientTape() as tape:
        g_loss = g_loss_keras(discriminator(generator(z, training=True), training=True))
    for v, g in zip(g_vars, tape.gradient(g_loss, g_vars), strict=True):
        v.assign_sub(0.5 * g)
    for holder in (g_opt, type(g_opt)):
        for value in list(getattr(holder, "__dict__", {}).values()):
            if isinstance(value, list):
                value.append(("g_opt", [id(v) for v in g_vars]))
    return d_loss, g_loss


def _by_hand(opt, variables, loss, tape) -> None:
    grads = tape.gradient(loss, variables)
    for v, g in zip(variables, grads, strict=True):
        v.assign_sub(float(opt.learning_rate) * g)
    opt.apply_gradients(zip([tf.zeros_like(g) for g in grads], variables, strict=True))


def step_by_hand_with_idle_optimizers(generator, discriminator, g_opt, d_opt, real_images,
                                      latent_dim):
    """Both networks stepped by hand at the optimizers' learning rate (w - lr * g), and each
    optimizer called once with zero gradients: with plain SGD nothing tells it from the
    optimizers' step (it passed until the Adam case checked the size of a first Adam step)."""
    z = tf.random.normal([real_images.shape[0], latent_dim])
    with tf.GradientTape() as tape:
        d_loss = d_loss_keras(discriminator(real_images, training=True),
                              discriminator(generator(z, training=True), training=True))
    _by_hand(d_opt, discriminator.trainable_variables, d_loss, tape)
    with tf.GradientTape() as tape:
        g_loss = g_loss_keras(discriminator(generator(z, training=True), training=True))
    _by_hand(g_opt, generator.trainable_variables, g_loss, tape)
    return d_loss, g_loss


EXACT = "a tiny GAN, latent_dim=3, images (5, 5, 1), batch 4, plain SGD (learning rate 0.5)"
STEP_MISTAKES = [
    ("labels swapped", _step(d_fake_real_swapped=True), EXACT, "computed before the"),
    ("d_opt given both networks",
     _step(d_vars_of=lambda g, d: d.trainable_variables + g.trainable_variables), EXACT,
     "the generator must not change"),
    ("g_opt given both networks",
     _step(g_vars_of=lambda g, d: g.trainable_variables + d.trainable_variables), EXACT,
     "the discriminator must not change"),
    ("no generator update", _step(skip_generator=True), EXACT, "g_opt.apply_gradients"),
    ("generator updated by hand, optimizer log forged", step_forging_the_optimizer_log, EXACT,
     "g_opt.apply_gradients"),
    ("only d_loss returned", _step(returns_one=True), EXACT, "return d_loss, g_loss"),
    ("stepped by hand, optimizers idle", step_by_hand_with_idle_optimizers,
     "the reference DCGAN (latent_dim=8), Adam", r"through [gd]_opt\.apply_gradients"),
    ("NumPy noise", _step(numpy_noise=True), "compiled with tf.function, called twice",
     "draw the noise with tf.random.normal"),
    ("NumPy noise, run eagerly from inside", step_turning_eager,
     "compiled with tf.function, called twice", "remove that call"),
]


@pytest.mark.parametrize("label, func, case, hint", STEP_MISTAKES,
                         ids=[m[0] for m in STEP_MISTAKES])
def test_train_step_mistakes(label, func, case, hint):
    _fails(check_train_step, func, "train_step", case, hint)


def test_the_source_training_call_cannot_pass():
    """AI in Medicine §4.3's loop, as a train_step: the stacked model trained on images with
    image-shaped labels (E8) raises, and the checker reports it as the case's failure."""

    def seed_loop(generator, discriminator, g_opt, d_opt, real_images, latent_dim):
        gan_model = keras.Sequential([generator, discriminator])
        gan_model.compile(optimizer="adam", loss="binary_crossentropy")
        generated = generator(tf.random.normal([4, latent_dim]))
        discriminator.trainable = False
        loss = gan_model.train_on_batch(generated, tf.ones_like(generated))
        discriminator.trainable = True
        return loss, gan_model.train_on_batch(real_images, tf.ones_like(real_images))

    raised = rf"^train_step: raised \w+ on case '{re.escape(EXACT)}"
    with pytest.raises(AssertionError, match=raised):
        check_train_step(seed_loop)


#: forged observations of a training step: the probe's report as an answer cell could once make
#: it (the grading kernel now runs only the probes it started with, and refuses them for a
#: notebook whose text reaches them: tests/test_notebook_scan.py); the checker still judges
#: the report's weights by the networks' own shapes, without broadcasting
FORGED_WEIGHTS = {
    # an empty array broadcast against any weight: np.allclose(empty, w) was True (+3 points)
    "empty": lambda ws: [np.zeros((0, 1, 1, 1, 1), "float32")] * len(ws),
    # 4 MB that broadcast against a (25, 5) kernel to 500 M numbers (3.3 GB in the grader)
    "broadcast": lambda ws: [np.zeros((4_000_000, 1, 1), "int8")]
    + [np.zeros((0, 1, 1, 1, 1), "float32")] * (len(ws) - 1),
    "nudged": lambda ws: [w + 1e-3 for w in ws],
    "extra": lambda ws: [w + 1e-3 for w in ws] + [np.ones(3, "float32")],
    "transposed": lambda ws: [w.T + 1e-3 for w in ws],
}


@pytest.mark.parametrize("forge", FORGED_WEIGHTS)
def test_forged_training_observations_earn_nothing_and_cost_little(forge, monkeypatch):
    import tracemalloc

    from medai_lessons.grading import ch05, probes

    def forged(step, spec):
        out = probes.train_step_probe(step, spec)
        g, d = out["g_count"], out["d_count"]
        out["log"] = [["d_opt", [["d", i] for i in range(d)]],
                      ["g_opt", [["g", i] for i in range(g)]]]
        out["d_after"] = FORGED_WEIGHTS[forge](out["d_after"])
        out["g_after"] = FORGED_WEIGHTS[forge](out["g_after"])
        return out

    monkeypatch.setattr(ch05, "train_step_probe", forged)
    nothing = _step(skip_generator=True)  # the report claims both networks were updated
    tracemalloc.start()
    try:
        with pytest.raises(CheckFailed, match="train_step: failed on case") as failure:
            check_train_step(nothing)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if forge in ("empty", "broadcast", "extra", "transposed"):
        assert "weight tensors, of shapes" in str(failure.value), str(failure.value)
    assert peak < 300 * 1024**2, f"the checker allocated {peak / 1024**2:.0f} MB"


@pytest.fixture(autouse=True)
def _compiled_again():
    yield
    tf.config.run_functions_eagerly(False)   # what step_turning_eager leaves on
