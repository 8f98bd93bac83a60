"""Generative adversarial networks (chapter 5, AI in Medicine §3.3 and §4.3): the losses from logits
and one training step with ``tf.GradientTape``.

The discriminator returns a *logit* l (any real number); the probability that an image is
real is D = sigmoid(l). Binary cross-entropy written with the logit is stable for any l,
because -log(sigmoid(l)) = softplus(-l) and -log(1 - sigmoid(l)) = softplus(l), and
``tf.nn.softplus`` never overflows.

TensorFlow is imported when a function is called, not when this module is imported.
"""

from __future__ import annotations


def discriminator_loss(real_logits, fake_logits):
    """The discriminator's binary cross-entropy: real images labelled 1, generated ones 0,

    ``mean(softplus(-real_logits)) + mean(softplus(fake_logits))``

    (the sum of the two means, each over its own batch). Returns a scalar tensor through which
    ``tf.GradientTape`` can differentiate.
    """
    import tensorflow as tf

    real = tf.convert_to_tensor(real_logits, dtype_hint=tf.float32)
    fake = tf.convert_to_tensor(fake_logits, dtype_hint=tf.float32)
    return tf.reduce_mean(tf.nn.softplus(-real)) + tf.reduce_mean(tf.nn.softplus(fake))


def generator_loss(fake_logits):
    """The non-saturating generator loss ``mean(softplus(-fake_logits))`` = ``-mean(log D(G(z)))``:
    the generator's images labelled 1 ("real"). Minimising ``mean(log(1 - D(G(z))))`` instead
    (the minimax form) gives almost no gradient while the discriminator still wins easily,
    which is exactly how training starts."""
    import tensorflow as tf

    fake = tf.convert_to_tensor(fake_logits, dtype_hint=tf.float32)
    return tf.reduce_mean(tf.nn.softplus(-fake))


def train_step(generator, discriminator, g_opt, d_opt, real_images, latent_dim):
    """One step of GAN training (erratum E8), returns ``(d_loss, g_loss)``:

    1. discriminator step: generate a batch from fresh noise, score real and generated images,
       ``discriminator_loss`` (real 1, generated 0), gradients with respect to the
       discriminator's weights only, applied by ``d_opt``;
    2. generator step: new noise, generated images scored by the (just updated)
       discriminator, ``generator_loss``, gradients with respect to the generator's weights
       only (through the discriminator, which is not changed), applied by ``g_opt``.
    """
    import tensorflow as tf

    real_images = tf.convert_to_tensor(real_images, dtype=tf.float32)
    batch = tf.shape(real_images)[0]
    with tf.GradientTape() as tape:
        fake = generator(tf.random.normal([batch, latent_dim]), training=True)
        d_loss = discriminator_loss(discriminator(real_images, training=True),
                                    discriminator(fake, training=True))
    d_vars = discriminator.trainable_variables
    d_opt.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars, strict=True))
    with tf.GradientTape() as tape:
        fake = generator(tf.random.normal([batch, latent_dim]), training=True)
        g_loss = generator_loss(discriminator(fake, training=True))
    g_vars = generator.trainable_variables
    g_opt.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars, strict=True))
    return d_loss, g_loss
