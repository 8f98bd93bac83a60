"""Explanations of trained models: Grad-CAM for convolutional networks (chapter 3).

Grad-CAM (Selvaraju et al., "Grad-CAM: Visual explanations from deep networks via
gradient-based localization", ICCV 2017) asks which places of a convolutional feature map
raised the score of one class:

1. run the image through the network, keeping the feature maps ``A`` (``h x w x K``) of a
   late convolutional layer and the class score ``y_c`` (the logit, before the softmax);
2. weigh each feature map by how much the score grows with it, the gradient averaged over
   the map: ``alpha_k = mean_{i,j} dy_c / dA_{ijk}`` (computed with ``tf.GradientTape``);
3. ``ReLU(sum_k alpha_k A_k)``: keep only the places that push *towards* the class;
4. resize the ``h x w`` map to the image (bilinear) and, by default, scale it to [0, 1].

What it shows is where the network's evidence lies, at the resolution of that layer (7x7
for chapter 3's X-ray network, 3x3 for the source document's CNN): not a segmentation, not a
proof that the network looked at the lung for the right reason, and nothing about features
spread evenly over the image.
"""

from __future__ import annotations

import numpy as np


def last_spatial_layer(model):
    """The last layer of ``model`` whose output is a 4-D feature map ``(None, h, w, K)``: the
    layer Grad-CAM reads by default (the last convolution, or the activation after it)."""
    import keras

    for layer in reversed(model.layers):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if len(shape) == 4:
            return layer
    raise ValueError(f"model {model.name!r} has no layer with a 4-D (image-like) output")


def _ends_in_squashed_dense(model) -> bool:
    """True when the model's last layer is a Dense layer with a softmax or sigmoid: then its
    pre-activation, the logits, can be recomputed from the layer's input."""
    import keras

    last = model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    return isinstance(last, keras.layers.Dense) and activation in ("softmax", "sigmoid")


def grad_cam(model, images, class_index=None, layer_name: str | None = None,
             normalize: bool = True, use_logits: bool = True) -> np.ndarray:
    """Grad-CAM heat maps of ``model`` for a batch of ``images``.

    Args:
        model: a built Keras model with one input and one output (e.g. class probabilities).
        images: ``(N, H, W, C)`` (or one image ``(H, W, C)``), as the model takes them.
        class_index: the output unit to explain: an int for every image, a sequence of one
            int per image, or ``None`` for the class the model predicts for each image.
        layer_name: the feature-map layer (default: :func:`last_spatial_layer`).
        normalize: scale each map to [0, 1] by its own maximum (a map that is 0 everywhere,
            when nothing pushes towards the class, stays 0). With ``False`` the maps keep
            their size and can be compared with each other (put them on one scale).
        use_logits: differentiate the class's score *before* the softmax (or sigmoid), as the
            Grad-CAM paper does, when the model ends in such a Dense layer. A probability near
            0 or 1 hardly moves, so its gradients, and its heat map, nearly vanish.

    Returns:
        ``(N, H, W)`` float32 heat maps, non-negative, at the images' resolution (one image in,
        ``(H, W)`` out).
    """
    import keras
    import tensorflow as tf

    x = np.asarray(images, dtype=np.float32)
    single = x.ndim == 3
    if single:
        x = x[None]
    _check_images(model, x, np.shape(images))
    _check_class_index(model, class_index, len(x))
    layer = model.get_layer(layer_name) if layer_name else last_spatial_layer(model)
    logits = use_logits and _ends_in_squashed_dense(model)
    last = model.layers[-1]
    head = last.input if logits else model.outputs[0]
    probe = keras.Model(model.inputs[0], [layer.output, head, model.outputs[0]])
    inputs = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        feature_maps, head_values, outputs = probe(inputs, training=False)
        scores = (tf.matmul(head_values, last.kernel) + last.bias) if logits else head_values
        if class_index is None:
            index = tf.argmax(outputs, axis=-1, output_type=tf.int32)
        else:
            index = tf.broadcast_to(tf.constant(class_index, dtype=tf.int32),
                                    [tf.shape(outputs)[0]])
        score = tf.gather(scores, index, axis=1, batch_dims=1)
    grads = tape.gradient(score, feature_maps)  # (N, h, w, K)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * feature_maps, axis=-1))[..., None]
    cam = tf.image.resize(cam, x.shape[1:3], method="bilinear")[..., 0].numpy()
    cam = np.maximum(cam, 0.0)  # bilinear resizing of non-negative maps stays >= 0; be exact
    if normalize:
        peak = cam.reshape(len(cam), -1).max(axis=1)
        cam = cam / np.where(peak > 0, peak, 1.0)[:, None, None]
    cam = cam.astype(np.float32)
    return cam[0] if single else cam


def _check_images(model, x: np.ndarray, given: tuple) -> None:
    """A ValueError that names the shape the model takes unless the batch ``x`` fits it."""
    expected = tuple(model.inputs[0].shape[1:])
    if x.ndim == len(expected) + 1 and all(e is None or e == g
                                           for e, g in zip(expected, x.shape[1:], strict=True)):
        return
    dims = ", ".join("?" if d is None else str(d) for d in expected)
    hint = ""
    if expected[-1] == 1 and tuple(given[-len(expected) + 1:]) == expected[:-1]:
        hint = ": add the channel axis with images[..., None]"
    raise ValueError(f"images have shape {tuple(given)} but the model takes (N, {dims}) (or one "
                     f"image ({dims})){hint}")


def _check_class_index(model, class_index, n_images: int) -> None:
    """A ValueError unless ``class_index`` is None, or output units of ``model``: one int, or
    one per image."""
    if class_index is None:
        return
    n_out = model.outputs[0].shape[-1]
    index = np.asarray(class_index)
    if index.ndim == 1 and len(index) != n_images:
        raise ValueError(f"class_index has {len(index)} entries for {n_images} images: pass one "
                         "int per image, one int for all, or None for the predicted class.")
    if (index.ndim > 1 or index.dtype.kind not in "iu" or np.any(index < 0)
            or (n_out is not None and np.any(index >= n_out))):
        units = f"0 to {n_out - 1} (the model has {n_out} outputs)" if n_out else "an output unit"
        raise ValueError(f"class_index must be {units}, or None for the predicted class; got "
                         f"{class_index!r}")
