"""Checkers for chapter 5: the GAN losses, the two networks and one training step.

Losses are compared with the reference (:mod:`medai_lessons.nn.gan`) on TensorFlow tensors of
logits, including logits of ±1000 (where ``log(sigmoid(x))`` overflows), and so are their
gradients, taken with ``tf.GradientTape``: a loss computed with NumPy has none.

The networks are checked by what the rest of the chapter needs: shapes (the generator's output
is the discriminator's input, erratum E7), an output activation bounded to [-1, 1] (``tanh``,
``softsign``, ``hard_tanh``: the range of the real images), a logit
(no sigmoid) out of the discriminator.

``train_step`` is checked twice. On a tiny GAN whose generator ignores its noise (so that the
step is deterministic) with plain SGD, the weights after the step are compared with the
discriminator step and the generator step computed here, and the optimizers are watched: the
discriminator's optimizer must receive only the discriminator's weights, the generator's only
the generator's. Both the alternating update (the generator step through the updated
discriminator) and the simultaneous one (both gradients from the same forward pass, as in
TensorFlow's own DCGAN tutorial) are accepted. Then, compiled with ``tf.function`` as the
chapter's training loop runs it, two calls must draw different noise.

``strict=True`` adds sizes and seeds of the same kinds.
"""

from __future__ import annotations

import numpy as np

from medai_lessons import models as ref_models
from medai_lessons.grading import remote
from medai_lessons.grading.core import (
    SAMPLE_ARGS,
    as_array,
    assert_close,
    built_model,
    call,
    case_rng,
    fail,
    model_outputs,
    require_callable,
)
from medai_lessons.grading.probes import (
    _tiny_gan,
    loss_value_and_gradients,
    train_step_probe,
)
from medai_lessons.nn import gan as ref

RTOL, ATOL = 1e-5, 1e-5

_FROM_LOGITS = ("compute it from the logits: -log(sigmoid(l)) = softplus(-l) and "
                "-log(1 - sigmoid(l)) = softplus(l) (tf.nn.softplus), or "
                "keras.losses.BinaryCrossentropy(from_logits=True), or "
                "tf.nn.sigmoid_cross_entropy_with_logits; never log(sigmoid(l)).")
_TF_ONLY = ("use TensorFlow operations only (tf.nn.softplus, tf.reduce_mean, ...): "
            "tf.GradientTape cannot follow a computation through NumPy (np.log, .numpy(), "
            "float(...)), so the networks would get no gradient.")


def _tf():
    import tensorflow as tf

    return tf


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _logits(rng: np.random.Generator, n: int, scale: float = 2.0) -> np.ndarray:
    return (rng.normal(size=(n, 1)) * scale).astype("float32")


def _value_and_gradients(loss_fn, arrays, exercise: str, case: str, inputs: str):
    """The loss's value (float64) and its gradients with respect to each input array."""
    require_callable(loss_fn, exercise, case)
    probe = call(lambda *a: remote.run_probe(loss_fn, loss_value_and_gradients, list(a)),
                 *arrays, exercise=exercise, case=case, inputs_unchanged=False,
                 hint="the arguments are TensorFlow tensors of logits, shape (batch, 1).")
    if probe["value"] is None and probe["type"] == "NoneType":
        fail(exercise, case, inputs=inputs, got="None", hint="return the loss.")
    if not probe["is_tensor"]:
        fail(exercise, case, inputs=inputs, expected="a TensorFlow scalar tensor",
             got=f"{probe['type']} {probe['repr']}", hint=_TF_ONLY)
    return as_array(probe["value"], exercise, case), probe["grads"]


def _check_loss(loss_fn, exercise: str, cases, expected_fn, grad_fn, variants: dict,
                hints: dict) -> None:
    names = ("fake_logits",) if exercise == "generator_loss" else ("real_logits", "fake_logits")
    for case, arrays in cases:
        inputs = ", ".join(f"{name} {np.asarray(a, np.float64).ravel().round(3).tolist()}"
                           for name, a in zip(names, arrays, strict=True))
        got, grads = _value_and_gradients(loss_fn, arrays, exercise, case, inputs)
        if got.shape != ():
            fail(exercise, case, inputs=inputs, expected="one number (a scalar tensor)",
                 got=f"shape {got.shape}", hint="average over the batch with tf.reduce_mean.")
        expected = expected_fn(*[a.astype(np.float64) for a in arrays])
        if not np.isfinite(got):
            fail(exercise, case, inputs=inputs, expected=expected, got=float(got),
                 hint=_FROM_LOGITS)
        hint = next((hints[name] for name, fn in variants.items()
                     if np.isfinite(v := fn(*[a.astype(np.float64) for a in arrays]))
                     and np.isclose(float(got), v, rtol=RTOL, atol=ATOL)
                     and not np.isclose(v, expected, rtol=RTOL, atol=ATOL)), "")
        assert_close(float(got), expected, exercise=exercise, case=case, inputs=inputs,
                     rtol=RTOL, atol=ATOL, hint=hint or "see the formula in the exercise.")
        for name, grad, want in zip(names, grads, grad_fn(*arrays), strict=True):
            if grad is None:
                fail(exercise, f"{case}: gradient", inputs=inputs,
                     expected=f"a gradient with respect to {name}",
                     got="None (tf.GradientTape found no path from the loss to the logits)",
                     hint=_TF_ONLY)
            assert_close(np.asarray(grad, dtype=np.float64), want, exercise=exercise,
                         case=f"{case}: gradient with respect to {name}", rtol=1e-4,
                         atol=1e-6, hint="the loss's value is right but its gradient is not: "
                                         + _FROM_LOGITS)


def _loss_cases(strict: bool, two: bool):
    rng = case_rng(5)
    cases = [("small logits", [_logits(rng, 4), _logits(rng, 4)]),
             ("a real and a fake batch of different sizes", [_logits(rng, 3), _logits(rng, 6)]),
             ("logits of ±1000 (a very confident discriminator)",
              [np.array([[1000.0], [-1000.0], [3.0]], "float32"),
               np.array([[-1000.0], [1000.0], [-2.0]], "float32")])]
    if strict:
        cases += [(f"seeded logits, seed {s}", [_logits(case_rng(s), 8, 5.0),
                                                _logits(case_rng(s + 50), 8, 5.0)])
                  for s in (11, 12, 13)]
    if not two:
        cases = [(c, [arrays[1]]) for c, arrays in cases]
    return cases


def _sigmoid(x):
    return np.exp(-_softplus(-np.asarray(x, dtype=np.float64)))


def check_discriminator_loss(discriminator_loss, strict: bool = False) -> None:
    """``discriminator_loss(real_logits, fake_logits)`` = ``mean(softplus(-real_logits)) +
    mean(softplus(fake_logits))``, a scalar tensor, finite for logits of ±1000, with the right
    gradient through ``tf.GradientTape``."""

    def expected(r, f):
        return float(np.mean(_softplus(-r)) + np.mean(_softplus(f)))

    def gradients(r, f):
        return [-_sigmoid(-r) / r.size, _sigmoid(f) / f.size]

    variants = {
        "swapped": lambda r, f: float(np.mean(_softplus(r)) + np.mean(_softplus(-f))),
        "averaged": lambda r, f: 0.5 * expected(r, f),
        "pooled": lambda r, f: float(np.mean(np.concatenate([_softplus(-r), _softplus(f)]))),
        "real_only": lambda r, f: float(np.mean(_softplus(-r))),
    }
    hints = {
        "swapped": "the labels are swapped: real images are labelled 1 (loss softplus(-l)), "
                   "generated ones 0 (loss softplus(l)).",
        "averaged": "half the expected value: add the two means, do not average them.",
        "pooled": "one mean over both batches pooled: take the mean of each batch and add the "
                  "two (the batches may differ in size).",
        "real_only": "the generated images' part is missing.",
    }
    _check_loss(discriminator_loss, "discriminator_loss", _loss_cases(strict, two=True),
                expected, gradients, variants, hints)


def check_generator_loss(generator_loss, strict: bool = False) -> None:
    """``generator_loss(fake_logits)`` = ``mean(softplus(-fake_logits))``, the non-saturating
    loss (the generated images labelled 1), a scalar tensor, stable, differentiable."""

    def expected(f):
        return float(np.mean(_softplus(-f)))

    def gradients(f):
        return [-_sigmoid(-f) / f.size]

    variants = {
        "saturating": lambda f: float(-np.mean(_softplus(f))),
        "label_zero": lambda f: float(np.mean(_softplus(f))),
        "sum": lambda f: float(np.sum(_softplus(-f))),
    }
    hints = {
        "saturating": "this is the minimax (saturating) form mean(log(1 - D(G(z)))): its "
                      "gradient vanishes while the discriminator wins easily, which is how "
                      "training starts. Minimise -mean(log D(G(z))) = mean(softplus(-l)).",
        "label_zero": "the generated images are labelled 0 here; the generator wants them "
                      "called real: label 1, loss softplus(-l).",
        "sum": "a sum over the batch: take the mean (tf.reduce_mean).",
    }
    _check_loss(generator_loss, "generator_loss", _loss_cases(strict, two=False), expected,
                gradients, variants, hints)


# --- the two networks --------------------------------------------------------------------------

def _model(builder, arg, exercise: str, case: str, hint: str):
    return built_model(builder, arg, exercise=exercise, case=case, hint=hint,
                       input_hint="the model does not know the shape of its input, so no "
                                  "layer knows its output shape: declare the input first "
                                  "(keras.Input), with the shape given by the argument.")


def _last_activation(model) -> str | None:
    """The activation of the last layer that has one (a Dense, a convolution or an Activation
    layer), as a name."""
    for layer in reversed(model.layers):
        config = layer.get_config()
        if "activation" in config:
            act = config["activation"]
            return act if isinstance(act, str) else getattr(act, "__name__", str(act))
        if type(layer).__name__ in ("Dense", "Conv2D", "Conv2DTranspose"):
            return "linear"
    return None


def _activation_range(name) -> tuple[float, float] | None:
    """The smallest and largest value the activation ``name`` takes on inputs from -100 to
    100, or None when ``name`` is not an activation Keras knows by name."""
    import keras

    if not isinstance(name, str):
        return None
    try:
        function = keras.activations.get(name)
    except (ValueError, TypeError):
        return None
    x = np.linspace(-100.0, 100.0, 2001, dtype="float32")
    y = np.asarray(keras.ops.convert_to_numpy(function(x)), dtype=float)
    if not np.all(np.isfinite(y)):
        return None
    return float(y.min()), float(y.max())


def _bounded_to_unit(name) -> bool:
    """The activation's outputs stay within [-1, 1] and come near both ends (so it can make
    the darkest and the brightest pixel)."""
    span = _activation_range(name)
    return span is not None and -1.0 - 1e-6 <= span[0] <= -0.95 and 0.95 <= span[1] <= 1.0 + 1e-6


def _latent_cases(strict: bool):
    return [100, 64] + ([16, 128] if strict else [])


def check_build_generator(build_generator, strict: bool = False) -> None:
    """``build_generator(latent_dim)``: a Keras model from noise ``(None, latent_dim)`` to
    grey images ``(None, 28, 28, 1)``, ending in an activation whose outputs are bounded to
    [-1, 1] and reach near both ends (``tanh``, ``softsign``, ``hard_tanh``), whose output
    depends on the noise."""
    exercise = "build_generator"
    for latent_dim in _latent_cases(strict):
        case = f"latent_dim={latent_dim}"
        model, in_shape, out_shape = _model(
            build_generator, latent_dim, exercise, case,
            "building the model raised an error: read its last line, then plan the shapes "
            "from the noise (None, latent_dim) to the image (None, 28, 28, 1) layer by layer "
            "(model.summary() shows yours).")
        if in_shape != (None, latent_dim):
            fail(exercise, case, expected=f"input shape {(None, latent_dim)}", got=in_shape,
                 hint="the noise's length is the argument latent_dim: use the argument, not a "
                      "fixed size.")
        if out_shape == (None, 28, 28, 3):
            fail(exercise, case, expected="output (None, 28, 28, 1)", got=out_shape,
                 hint="three colour channels are the source's mistake (erratum E7): chest "
                      "X-rays are grey, so the last layer makes one channel, not three.")
        if out_shape != (None, 28, 28, 1):
            fail(exercise, case, expected="output (None, 28, 28, 1)", got=out_shape,
                 hint="follow the shape through your layers (model.summary()): a transposed "
                      "convolution with stride 2 and 'same' padding doubles height and width, "
                      "so plan backwards from 28 x 28 to the small image the noise becomes.")
        activation = _last_activation(model)
        if not _bounded_to_unit(activation):
            fail(exercise, case,
                 expected="an output activation whose values lie in [-1, 1], the range of the "
                          "real X-rays once scaled (x / 127.5 - 1)",
                 got=f"last activation {activation!r}",
                 hint="the range of the generated images is the range of the last layer's "
                      "activation: which activation maps any number into (-1, 1)?")
        z = case_rng(latent_dim).normal(size=(8, latent_dim)).astype("float32")
        images = model_outputs(model, z * 3.0, exercise, case)
        if not np.all(np.isfinite(images)) or np.abs(images).max() > 1.0 + 1e-6:
            fail(exercise, case, expected="values in [-1, 1]",
                 got=f"values from {np.nanmin(images):.3g} to {np.nanmax(images):.3g}",
                 hint="the range of the generated images is the range of the last layer's "
                      "activation: nothing after it may rescale the images.")
        if np.allclose(images, images[:1], atol=1e-7):
            fail(exercise, case, expected="different images for different noise vectors",
                 got="the same image for every noise vector",
                 hint="the noise must flow into the first layer (no multiplication by 0, no "
                      "constant input).")


def _image_cases(strict: bool):
    """Grey and colour images in the visible check; the hidden cases only add sizes of both."""
    return [(28, 28, 1), (32, 32, 3)] + ([(64, 64, 1), (48, 40, 3)] if strict else [])


def check_build_discriminator(build_discriminator, strict: bool = False) -> None:
    """``build_discriminator(image_shape)``: a Keras model from images
    ``(None, *image_shape)`` to one logit per image ``(None, 1)`` (no sigmoid)."""
    exercise = "build_discriminator"
    for image_shape in _image_cases(strict):
        case = f"image_shape={image_shape}"
        model, in_shape, out_shape = _model(
            build_discriminator, image_shape, exercise, case,
            "building the model raised an error: read its last line; the model takes "
            "images of image_shape and ends in one number per image, the logit.")
        if in_shape != (None, *image_shape):
            hint = ("the source's input_shape=[input_dim] + [64, 64] is not an image shape "
                    "(erratum E7): the discriminator reads what the generator makes, so its "
                    "input shape is the argument image_shape." if len(in_shape) == 4
                    and in_shape[2:] == (64, 64) and tuple(image_shape)[1:] != (64, 64)
                    else "the input shape is the argument image_shape: use the argument, not "
                         "a fixed size.")
            fail(exercise, case, expected=f"input shape {(None, *image_shape)}", got=in_shape,
                 hint=hint)
        if out_shape != (None, 1):
            fail(exercise, case, expected="output (None, 1): one logit per image", got=out_shape,
                 hint="one logit per image: the feature maps must become one vector per "
                      "image before the last layer, which has a single output.")
        activation = _last_activation(model)
        if activation not in ("linear", None):
            fail(exercise, case, expected="a logit: no activation on the last layer",
                 got=f"activation {activation!r}",
                 hint="return the logit, with no activation on the last layer: the losses "
                      "take logits (stable for any value), and a sigmoid here would be applied "
                      "twice.")
        x = case_rng(sum(image_shape)).uniform(-1, 1, (4, *image_shape))
        logits = model_outputs(model, x.astype("float32"), exercise, case)
        if not np.all(np.isfinite(logits)):
            fail(exercise, case, expected="finite logits", got=logits.ravel())


# --- train_step --------------------------------------------------------------------------------

def _expected_step(generator, discriminator, real, latent_dim: int, lr: float):
    """The reference's weights after one step, alternating and simultaneous, and the losses."""
    tf = _tf()
    g_vars, d_vars = generator.trainable_variables, discriminator.trainable_variables
    z = tf.zeros([real.shape[0], latent_dim])
    with tf.GradientTape(persistent=True) as tape:
        fake = generator(z, training=True)
        d_loss = ref.discriminator_loss(discriminator(real, training=True),
                                        discriminator(fake, training=True))
        g_loss_old = ref.generator_loss(discriminator(fake, training=True))
    d_grads = tape.gradient(d_loss, d_vars)
    d_new = [v.numpy() - lr * g.numpy() for v, g in zip(d_vars, d_grads, strict=True)]
    g_simultaneous = [v.numpy() - lr * g.numpy()
                      for v, g in zip(g_vars, tape.gradient(g_loss_old, g_vars), strict=True)]
    d_before = [v.numpy() for v in d_vars]
    for v, value in zip(d_vars, d_new, strict=True):
        v.assign(value)
    with tf.GradientTape() as tape:
        g_loss_new = ref.generator_loss(discriminator(generator(z, training=True),
                                                      training=True))
    g_alternating = [v.numpy() - lr * g.numpy()
                     for v, g in zip(g_vars, tape.gradient(g_loss_new, g_vars), strict=True)]
    for v, value in zip(d_vars, d_before, strict=True):
        v.assign(value)
    return {"d_loss": float(d_loss), "d_new": d_new,
            "alternating": (float(g_loss_new), g_alternating),
            "simultaneous": (float(g_loss_old), g_simultaneous)}


def _close(a, b) -> bool:
    """Each of ``a`` (weights a kernel reported) is close to the one of ``b`` of the same
    shape (never by broadcasting: an empty array would match anything)."""
    return len(a) == len(b) and all(
        np.shape(x) == np.shape(y) and np.allclose(x, y, rtol=1e-4, atol=1e-6)
        for x, y in zip(a, b, strict=True))


def _weights_after(probe: dict, key: str, like: list, whose: str, exercise: str,
                   case: str) -> list:
    """The weights the probe reports in ``key``: as many, and of the same shapes, as
    ``like``'s (the network's own weights)."""
    after = probe[key]
    want = [tuple(np.shape(w)) for w in like]
    got = [tuple(np.shape(a)) for a in after] if isinstance(after, list) else type(after)
    if got != want:
        fail(exercise, case, expected=f"the {whose}'s {len(want)} weight tensors, of shapes "
                                      f"{want}", got=str(got)[:300],
             hint="update the networks train_step is given, in place (with the optimizers): "
                  "do not rebuild or replace them.")
    return after


def _losses_of(result, exercise: str, case: str) -> tuple[float, float]:
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fail(exercise, case, expected="(d_loss, g_loss)", got=repr(result)[:120],
             hint="return d_loss, g_loss.")
    values = []
    for name, value in zip(("d_loss", "g_loss"), result, strict=True):
        arr = as_array(value, exercise, case)
        if arr.size != 1 or not np.isfinite(arr).all():
            fail(exercise, case, expected=f"{name}: one finite number", got=arr,
                 hint="return the two scalar losses.")
        values.append(float(arr.reshape(())))
    return values[0], values[1]


_STEP_HINT = ("1) noise z = tf.random.normal([batch, latent_dim]); with a GradientTape: "
              "d_loss = discriminator_loss(D(real), D(G(z))); gradients with respect to "
              "discriminator.trainable_variables only, applied with d_opt. 2) new noise; with "
              "a new GradientTape: g_loss = generator_loss(D(G(z))); gradients with respect to "
              "generator.trainable_variables only, applied with g_opt. Return d_loss, g_loss.")


def _run_step(train_step, spec: dict, exercise: str, case: str, hint: str) -> dict:
    require_callable(train_step, exercise, case)
    return call(lambda s: remote.run_probe(train_step, train_step_probe, s), spec,
                exercise=exercise, case=case, hint=hint, inputs_unchanged=False)


def _losses_from(probe: dict, k: int, exercise: str, case: str) -> tuple[float, float]:
    result = probe["results"][k]
    if not isinstance(result, list):
        fail(exercise, case, expected="(d_loss, g_loss)", got=str(result),
             hint="return d_loss, g_loss.")
    return _losses_of(tuple(result), exercise, case)


def _check_exact_step(train_step, latent_dim: int, image_shape, batch: int, seed: int) -> None:
    tf = _tf()
    exercise = "train_step"
    case = (f"a tiny GAN, latent_dim={latent_dim}, images {image_shape}, batch {batch}, "
            "plain SGD (learning rate 0.5)")
    lr = 0.5
    generator, discriminator = _tiny_gan(latent_dim, image_shape, seed, noise_free=True)
    real = case_rng(seed).uniform(-1, 1, (batch, *image_shape)).astype("float32")
    spec = {"latent_dim": latent_dim, "image_shape": list(image_shape), "seed": seed + 100,
            "noise_free": True, "g_weights": generator.get_weights(),
            "d_weights": discriminator.get_weights(), "real": real, "lr": lr,
            "optimizer": "sgd"}
    want = _expected_step(generator, discriminator, tf.constant(real), latent_dim, lr)
    probe = _run_step(train_step, spec, exercise, case, _STEP_HINT)
    d_loss, g_loss = _losses_from(probe, 0, exercise, case)
    used = {"g_opt": [ids for name, ids in probe["log"] if name == "g_opt"],
            "d_opt": [ids for name, ids in probe["log"] if name == "d_opt"]}
    owners = {"d_opt": ("d", "g", "discriminator", probe["d_count"]),
              "g_opt": ("g", "d", "generator", probe["g_count"])}
    for name, (own, other, whose, count) in owners.items():
        calls = used[name]
        if len(calls) != 1:
            fail(exercise, case, expected=f"{name} used once", got=f"{len(calls)} times",
                 hint=f"one update of the {whose} per step: {name}.apply_gradients(...) once.")
        given = {tuple(v) for v in calls[0]}
        if any(net == other for net, _ in given):
            fail(exercise, case, expected=f"{name} updates only the {whose}'s weights",
                 got=f"{name} was also given the other network's weights",
                 hint=f"take the gradients with respect to {whose}.trainable_variables only "
                      f"(the {'generator' if whose == 'discriminator' else 'discriminator'} "
                      "must not change in this update).")
        mine = {i for net, i in given if net == own}
        if mine != set(range(count)):
            fail(exercise, case, expected=f"{name} updates all of the {whose}'s weights",
                 got=f"{len(mine)} of {count} of its weight tensors",
                 hint=f"zip(gradients, {whose}.trainable_variables).")
    assert_close(d_loss, want["d_loss"], exercise=exercise, case=f"{case}: the returned d_loss",
                 rtol=1e-4, atol=1e-6, hint="d_loss = discriminator_loss(D(real), D(G(z))), "
                                            "computed before the discriminator's update.")
    d_after = _weights_after(probe, "d_after", want["d_new"], "discriminator", exercise, case)
    g_after = _weights_after(probe, "g_after", want["alternating"][1], "generator", exercise,
                             case)
    if not _close(d_after, want["d_new"]):
        fail(exercise, case, expected="the discriminator's weights after one SGD step on "
                                      "discriminator_loss (real labelled 1, generated 0)",
             got="different weights",
             hint="the discriminator's gradient is that of discriminator_loss(D(real), "
                  "D(G(z))) with respect to discriminator.trainable_variables, applied once "
                  "by d_opt. " + _STEP_HINT)
    for kind in ("alternating", "simultaneous"):
        expected_loss, expected_weights = want[kind]
        if np.isclose(g_loss, expected_loss, rtol=1e-4, atol=1e-6) and _close(g_after,
                                                                               expected_weights):
            return
    fail(exercise, case, expected=f"g_loss {want['alternating'][0]:.6f} (generator step "
                                  f"through the updated discriminator) or "
                                  f"{want['simultaneous'][0]:.6f} (through the discriminator "
                                  "before its update), with the matching weights",
         got=f"g_loss {g_loss:.6f}" + ("" if any(np.isclose(g_loss, want[k][0], rtol=1e-4)
                                                 for k in ("alternating", "simultaneous"))
                                       else " and other generator weights"),
         hint="g_loss = generator_loss(D(G(z))) (the generated images labelled 1), its "
              "gradient with respect to generator.trainable_variables, applied once by g_opt.")


def _check_fresh_noise(train_step, seed: int) -> None:
    exercise, case = "train_step", "compiled with tf.function, called twice"
    latent_dim, image_shape = 6, (4, 4, 1)
    generator, discriminator = _tiny_gan(latent_dim, image_shape, seed, noise_free=False)
    real = case_rng(seed).uniform(-1, 1, (8, *image_shape)).astype("float32")
    spec = {"latent_dim": latent_dim, "image_shape": list(image_shape), "seed": seed,
            "noise_free": False, "g_weights": generator.get_weights(),
            "d_weights": discriminator.get_weights(), "real": real, "lr": 0.0,
            "optimizer": "sgd", "watch": False, "compile": True, "calls": 2}
    probe = _run_step(train_step, spec, exercise, case,
                      "the chapter's training loop compiles train_step with tf.function: use "
                      "TensorFlow operations (tf.random.normal, tf.GradientTape) inside it.")
    if probe.get("eager"):
        fail(exercise, case, expected="train_step compiled by tf.function",
             got="TensorFlow was told to run tf.function's code eagerly "
                 "(tf.config.run_functions_eagerly(True))",
             hint="remove that call: the chapter's training loop compiles train_step, and it "
                  "must work compiled.")
    (d1, _), (d2, _) = (_losses_from(probe, k, exercise, case) for k in (0, 1))
    if np.isclose(d1, d2, rtol=0, atol=1e-9):
        fail(exercise, case, expected="new noise at every call (different d_loss on the same "
                                      "real images, with weights that do not change)",
             got=f"the same d_loss twice ({d1:.6f})",
             hint="draw the noise with tf.random.normal inside train_step: NumPy's random "
                  "numbers are drawn once, when tf.function traces the function, and then the "
                  "generator would see the same noise at every step.")


def _check_real_networks(train_step, latent_dim: int, seed: int) -> None:
    """The chapter's own networks (batch normalization, dropout): every trainable weight of
    both networks changes, each through its own optimizer."""
    import keras

    exercise = "train_step"
    case = f"the reference DCGAN (latent_dim={latent_dim}), Adam"
    keras.utils.set_random_seed(seed)
    generator = ref_models.build_generator(latent_dim)
    discriminator = ref_models.build_discriminator((28, 28, 1))
    real = case_rng(seed).uniform(-1, 1, (16, 28, 28, 1)).astype("float32")
    spec = {"latent_dim": latent_dim, "g_config": keras.saving.serialize_keras_object(generator),
            "d_config": keras.saving.serialize_keras_object(discriminator),
            "g_weights": generator.get_weights(), "d_weights": discriminator.get_weights(),
            "real": real, "lr": 1e-3, "optimizer": "adam"}
    probe = _run_step(train_step, spec, exercise, case, _STEP_HINT)
    _losses_from(probe, 0, exercise, case)
    for name, ids in probe["log"]:
        nets = {net for net, _ in ids}
        if name == "d_opt" and nets - {"d"}:
            fail(exercise, case, expected="d_opt updates only the discriminator",
                 got="d_opt was given the generator's weights", hint=_STEP_HINT)
        if name == "g_opt" and "d" in nets:
            fail(exercise, case, expected="g_opt updates only the generator",
                 got="g_opt was given the discriminator's weights", hint=_STEP_HINT)
    for model, key in ((generator, "g_after"), (discriminator, "d_after")):
        after = _weights_after(probe, key, model.trainable_variables, model.name, exercise,
                               case)
        unchanged = [v.path for v, a in zip(model.trainable_variables, after, strict=True)
                     if np.array_equal(v.numpy(), a)]
        if unchanged:
            fail(exercise, case, expected=f"every trainable weight of the {model.name} updated",
                 got=f"unchanged: {unchanged[:3]}", hint=_STEP_HINT)
        _check_first_adam_step(model, after, spec["lr"], exercise, case)


def _check_first_adam_step(model, after, lr: float, exercise: str, case: str) -> None:
    """Adam's first step moves every weight whose gradient is not zero by lr * |g| / (|g| +
    epsilon): about the learning rate, never more, whatever the gradient's size. A step taken
    by hand (w - lr * g) is far smaller; two steps can be up to twice as large."""
    steps = np.concatenate([np.abs(np.asarray(a, np.float64) - v.numpy()).ravel()
                            for v, a in zip(model.trainable_variables, after, strict=True)])
    moved = steps[steps > 0]
    median = float(np.median(moved))
    if moved.max() > 1.05 * lr or median < 0.5 * lr:
        opt = "d_opt" if model.name == "discriminator" else "g_opt"
        fail(exercise, case,
             expected=f"one step of the Adam optimizer it was given: on a first step every "
                      f"weight of the {model.name} moves by about the learning rate ({lr:g}), "
                      "never more",
             got=f"steps from {moved.min():.2e} to {moved.max():.2e} (median {median:.2e})",
             hint=f"update the {model.name} once, through {opt}.apply_gradients(...): the "
                  "step must be the optimizer's, whichever optimizer the caller passes, not "
                  "one written by hand.")


def check_train_step(train_step, strict: bool = False) -> None:
    """``train_step(generator, discriminator, g_opt, d_opt, real_images, latent_dim)``: one
    discriminator update (real 1, generated 0) by ``d_opt`` on the discriminator's weights
    only, one generator update through the discriminator by ``g_opt`` on the generator's
    weights only; returns ``(d_loss, g_loss)``; works compiled with ``tf.function`` and draws
    new noise at every call."""
    cases = [(3, (5, 5, 1), 4, 0)]
    if strict:
        cases += [(7, (6, 4, 2), 6, 1), (2, (3, 3, 1), 9, 2)]
    for latent_dim, image_shape, batch, seed in cases:
        _check_exact_step(train_step, latent_dim, image_shape, batch, seed)
    _check_fresh_noise(train_step, seed=3)
    _check_real_networks(train_step, latent_dim=16 if strict else 8, seed=4)


EXERCISES = {
    "discriminator_loss": (check_discriminator_loss, ref.discriminator_loss),
    "generator_loss": (check_generator_loss, ref.generator_loss),
    "build_generator": (check_build_generator, ref_models.build_generator),
    "build_discriminator": (check_build_discriminator, ref_models.build_discriminator),
    "train_step": (check_train_step, ref.train_step),
}


def _register_samples() -> None:
    def logits():
        return (np.array([[2.0], [-1.0]], "float32"), np.array([[0.5], [-3.0]], "float32"))

    def step_args():
        import keras

        generator, discriminator = _tiny_gan(3, (4, 4, 1), 0, noise_free=False)
        real = case_rng(0).uniform(-1, 1, (4, 4, 4, 1)).astype("float32")
        return (generator, discriminator, keras.optimizers.SGD(0.1),
                keras.optimizers.SGD(0.1), real, 3)

    SAMPLE_ARGS["discriminator_loss"] = logits
    SAMPLE_ARGS["generator_loss"] = lambda: (logits()[1],)
    SAMPLE_ARGS["build_generator"] = lambda: (16,)
    SAMPLE_ARGS["build_discriminator"] = lambda: ((28, 28, 1),)
    SAMPLE_ARGS["train_step"] = step_args


_register_samples()
