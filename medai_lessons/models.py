"""Keras model builders that chapters train (and the references of their model exercises).

Importing this module does not import TensorFlow; each builder imports Keras when called.
Every builder returns a ``keras.Model`` that starts with ``keras.Input``, so that
``model.outputs[0].shape`` and each ``layer.output.shape`` are defined (Keras 3 has no
``output_shape`` attribute); all are uncompiled except :func:`build_mlp`, whose compilation is
part of chapter 6's exercise. :func:`predict_in_batches` runs any of them in inference mode.
"""

from __future__ import annotations


def predict_in_batches(model, x, batch: int = 512):
    """The model's outputs for the arrays ``x``, in inference mode (``training=False``: dropout
    off, batch normalization on its running averages), ``batch`` rows at a time, as one NumPy
    array. A direct call per batch avoids ``model.predict``'s per-model compilation, which
    costs more than the arithmetic for networks and data this small."""
    import numpy as np

    if len(x) == 0:
        raise ValueError("there is nothing to predict: x holds no rows (check the slice or the "
                         "filter that made it)")
    return np.concatenate([np.asarray(model(x[i:i + batch], training=False))
                           for i in range(0, len(x), batch)])


#: units of the recurrent layer of chapter 4's sequence classifiers
RNN_UNITS = 64


def _recurrent_classifier(kind: str, seq_len: int, n_channels: int, n_classes: int,
                          units: int = RNN_UNITS):
    import keras

    layer = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM,
             "rnn": keras.layers.SimpleRNN}[kind]
    return keras.Sequential([
        keras.Input(shape=(seq_len, n_channels)),
        layer(units, name=kind),  # return_sequences=False: one output per sequence (E6)
        keras.layers.Dense(n_classes, activation="softmax", name="class_probabilities"),
    ], name=f"{kind}_classifier")


def build_gru_classifier(seq_len, n_channels, n_classes):
    """One prediction per sequence (chapter 4, erratum E6): ``Input((seq_len, n_channels))``,
    ``GRU(64)`` (the source document's size) returning only its last hidden state,
    ``Dense(n_classes, softmax)``.

    Output shape ``(None, n_classes)``: one probability per class for each sequence.
    """
    return _recurrent_classifier("gru", seq_len, n_channels, n_classes)


def build_lstm_classifier(seq_len: int, n_channels: int, n_classes: int, units: int = RNN_UNITS):
    """The same classifier with an LSTM in place of the GRU."""
    return _recurrent_classifier("lstm", seq_len, n_channels, n_classes, units)


def build_rnn_classifier(seq_len: int, n_channels: int, n_classes: int, units: int = RNN_UNITS):
    """The same classifier with a plain (ungated) recurrent layer, ``SimpleRNN``."""
    return _recurrent_classifier("rnn", seq_len, n_channels, n_classes, units)


def build_cnn1d_classifier(seq_len: int, n_channels: int, n_classes: int, filters: int = 32,
                           kernel_size: int = 5, blocks: int = 3):
    """A small 1-D convolutional network: ``blocks`` Conv1D (ReLU) layers, max pooling between
    them, global average pooling over time, ``Dense(n_classes, softmax)``."""
    import keras

    layers = [keras.Input(shape=(seq_len, n_channels))]
    for b in range(blocks):
        layers.append(keras.layers.Conv1D(filters, kernel_size, padding="same",
                                          activation="relu", name=f"conv{b + 1}"))
        if b < blocks - 1:
            layers.append(keras.layers.MaxPooling1D(2, name=f"pool{b + 1}"))
    layers += [keras.layers.GlobalAveragePooling1D(name="average_over_time"),
               keras.layers.Dense(n_classes, activation="softmax", name="class_probabilities")]
    return keras.Sequential(layers, name="cnn1d_classifier")


# =============================================================================================
# Chapter 3: convolutional networks on chest X-rays (AI in Medicine §4.1)
# =============================================================================================

#: filters of the three convolutional layers and units of the hidden dense layer of AI in Medicine
#: §4.1's CNN
SEED_CNN_FILTERS = (32, 64, 64)
SEED_CNN_DENSE = 64


def build_cnn(input_shape, n_classes):
    """The CNN of AI in Medicine §4.1 (chapter 3's exercise), with the number of classes as an
    argument instead of the source's fixed 10:

    ``Input(input_shape)``, ``Conv2D(32, 3x3, relu)``, ``MaxPooling2D(2x2)``,
    ``Conv2D(64, 3x3, relu)``, ``MaxPooling2D(2x2)``, ``Conv2D(64, 3x3, relu)``, ``Flatten``,
    ``Dense(64, relu)``, ``Dense(n_classes, softmax)``; no padding ("valid"), stride 1.
    For 28x28x1 inputs the feature maps are 26x26x32, 13x13x32, 11x11x64, 5x5x64, 3x3x64.
    """
    import keras

    f1, f2, f3 = SEED_CNN_FILTERS
    layers = keras.layers
    return keras.Sequential([
        keras.Input(shape=tuple(input_shape)),
        layers.Conv2D(f1, (3, 3), activation="relu", name="conv1"),
        layers.MaxPooling2D((2, 2), name="pool1"),
        layers.Conv2D(f2, (3, 3), activation="relu", name="conv2"),
        layers.MaxPooling2D((2, 2), name="pool2"),
        layers.Conv2D(f3, (3, 3), activation="relu", name="conv3"),
        layers.Flatten(name="flatten"),
        layers.Dense(SEED_CNN_DENSE, activation="relu", name="dense"),
        layers.Dense(n_classes, activation="softmax", name="class_probabilities"),
    ], name="seed_cnn")


def build_xray_cnn(input_shape=(28, 28, 1), n_classes=2, width=32, dropout=0.3,
                   augment=True, seed=0, augment_scale=1.0):
    """Chapter 3's improved chest X-ray classifier.

    - **augmentation** (active only in training): random shifts of up to 5 %, rotations of
      up to ±7° (0.02 of a turn) and zooms of up to 5 %; no flips (the heart is on the left).
      ``augment_scale`` multiplies all three (2.0: the chapter's earlier, stronger recipe).
      These strengths were chosen on the validation split (mean validation ROC AUC over three
      seeds, against twice as strong augmentation, 20 epochs and ``width=24``; chapter 3,
      section 8.2, and ``benchmarks/studies/ch03_recipe.py``);
    - three blocks of 3x3 convolutions with **batch normalization** (批量归一化) before each ReLU
      (``width``, ``2 width``, ``4 width`` filters; two convolutions in the first two blocks),
      "same" padding, 2x2 max pooling between blocks; the normalization's running statistics
      follow the batches quickly (``momentum=0.9``: Keras' default 0.99 needs several epochs
      of a small data set before the validation predictions mean anything);
    - global average pooling, ``Dropout(dropout)`` (the fraction of units *dropped*, erratum
      E12), ``Dense(n_classes, softmax)``.

    The last convolution is named ``"last_conv"`` (Grad-CAM reads it, see
    :mod:`medai_lessons.explain`).
    """
    import keras

    layers = keras.layers
    inputs = keras.Input(shape=tuple(input_shape), name="xray")
    x = inputs
    if augment:
        shift, turn = 0.05 * augment_scale, 0.02 * augment_scale
        x = layers.RandomTranslation(shift, shift, fill_mode="nearest", seed=seed, name="shift")(x)
        x = layers.RandomRotation(turn, fill_mode="nearest", seed=seed + 1, name="rotate")(x)
        x = layers.RandomZoom(shift, fill_mode="nearest", seed=seed + 2, name="zoom")(x)
    plan = [(width, "block1_conv1"), (width, "block1_conv2"), "pool1",
            (2 * width, "block2_conv1"), (2 * width, "block2_conv2"), "pool2",
            (4 * width, "last_conv")]
    for step in plan:
        if step in ("pool1", "pool2"):
            x = layers.MaxPooling2D(2, name=step)(x)
            continue
        filters, name = step
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
        x = layers.ReLU(name=f"{name}_relu")(x)
    x = layers.GlobalAveragePooling2D(name="average")(x)
    x = layers.Dropout(dropout, seed=seed + 3, name="dropout")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="class_probabilities")(x)
    return keras.Model(inputs, outputs, name="xray_cnn")


# --- chapter 6: the tabular case study (Diagnosis and Treatment §4.2) -----------------------------

#: the hidden layers of Diagnosis and Treatment §4.2's network
TABULAR_MLP_UNITS: tuple[int, ...] = (64, 32)


def build_mlp(n_features: int):
    """The network of Diagnosis and Treatment §4.2 for a table of ``n_features`` measurements,
    **compiled**
    (unlike this module's other builders: compiling with metrics that exist is part of
    chapter 6's exercise, erratum E18).

    ``Input((n_features,))``, ``Dense(64, relu)``, ``Dense(32, relu)``, ``Dense(1, sigmoid)``
    (the probability of disease; output shape ``(None, 1)``); Adam (learning rate 1e-3),
    binary cross-entropy, and the metrics ROC AUC and sensitivity (recall at 0.5). Without the
    seed's ``Conv2D``/``MaxPooling2D``/``Flatten`` imports, which it never used (E19).
    """
    import keras

    hidden = [keras.layers.Dense(units, activation="relu", name=f"hidden_{units}")
              for units in TABULAR_MLP_UNITS]
    model = keras.Sequential([keras.Input(shape=(n_features,)), *hidden,
                              keras.layers.Dense(1, activation="sigmoid", name="p_disease")],
                             name="tabular_mlp")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                  loss="binary_crossentropy",
                  metrics=[keras.metrics.AUC(name="auc"),
                           keras.metrics.Recall(thresholds=0.5, name="sensitivity")])
    return model


# --- chapter 5: generative adversarial networks (AI in Medicine §4.3, errata E7 and E10) ---

#: channels of the generator's 7x7 and 14x14 feature maps (and of the discriminator's second
#: and first convolution): small enough to train in about a minute on a 2-core CPU
GAN_WIDTH = (64, 32)


def build_generator(latent_dim: int, image_shape=(28, 28, 1)):
    """A DCGAN generator for 28x28 images (chapter 5's exercise): noise ``(None, latent_dim)``
    to images ``(None, 28, 28, channels)`` in [-1, 1].

    ``Dense(7*7*64)`` reshaped to 7x7x64, then two ``Conv2DTranspose`` layers (32 channels,
    then one per image channel) with stride 2
    (7 -> 14 -> 28 pixels a side); batch normalization and LeakyReLU(0.2) after the first two
    layers (the source's hidden activation, not the ReLU its text names, erratum E10); ``tanh``
    at the output, so real images must be scaled to [-1, 1] too. ``image_shape`` only sets the
    number of output channels (1 for grey X-rays; the source's 3 was its mistake, E7).
    """
    import keras

    layers = keras.layers
    wide, narrow = GAN_WIDTH
    return keras.Sequential([
        keras.Input(shape=(latent_dim,), name="noise"),
        layers.Dense(7 * 7 * wide, use_bias=False, name="project"),
        layers.BatchNormalization(name="project_bn"),
        layers.LeakyReLU(0.2, name="project_lrelu"),
        layers.Reshape((7, 7, wide), name="to_7x7"),
        layers.Conv2DTranspose(narrow, 4, strides=2, padding="same", use_bias=False,
                               name="up_14x14"),
        layers.BatchNormalization(name="up_14x14_bn"),
        layers.LeakyReLU(0.2, name="up_14x14_lrelu"),
        layers.Conv2DTranspose(image_shape[-1], 4, strides=2, padding="same",
                               activation="tanh", name="image"),
    ], name="generator")


def build_discriminator(image_shape=(28, 28, 1)):
    """A DCGAN discriminator (chapter 5's exercise): images ``(None, *image_shape)`` to one
    **logit** per image ``(None, 1)``, the score that the image is real before the sigmoid (the
    losses of :mod:`medai_lessons.nn.gan` take logits, which keeps them stable).

    Two ``Conv2D(4x4, stride 2, "same")`` layers (32 and 64 channels) with LeakyReLU(0.2),
    ``Dropout(0.3)`` (the fraction dropped, E12), ``Flatten``, ``Dense(1)`` without activation.
    """
    import keras

    layers = keras.layers
    wide, narrow = GAN_WIDTH
    return keras.Sequential([
        keras.Input(shape=tuple(image_shape), name="image"),
        layers.Conv2D(narrow, 4, strides=2, padding="same", name="down1"),
        layers.LeakyReLU(0.2, name="down1_lrelu"),
        layers.Conv2D(wide, 4, strides=2, padding="same", name="down2"),
        layers.LeakyReLU(0.2, name="down2_lrelu"),
        layers.Dropout(0.3, name="dropout"),
        layers.Flatten(name="flatten"),
        layers.Dense(1, name="logit"),
    ], name="discriminator")
