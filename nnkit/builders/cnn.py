"""Convolutional image classifier: conv blocks, then global pooling and a softmax head."""

from __future__ import annotations

from nnkit.builders._keras import keras
from nnkit.config import Field

from nnkit.builders.blocks import (ACTIVATIONS, activation as apply_activation, check_choice, check_positive,
                                   check_rate, classifier_head, normalization)

POOLING = ("max", "avg", "none")


def conv_block(x, filters: int, *, kernel_size: int, convs: int, pooling: str, norm: str,
               activation_kind: str, dropout: float, name: str):
    """``convs`` x (conv -> norm -> activation), then pooling and dropout."""
    for i in range(convs):
        x = keras.layers.Conv2D(filters, kernel_size, padding="same", use_bias=norm == "none",
                                name=f"{name}_conv{i + 1}")(x)
        x = normalization(x, norm, f"{name}_{norm}_norm{i + 1}")
        x = apply_activation(x, activation_kind, f"{name}_{activation_kind}{i + 1}")
    if pooling == "max":
        x = keras.layers.MaxPooling2D(2, name=f"{name}_maxpool")(x)
    elif pooling == "avg":
        x = keras.layers.AveragePooling2D(2, name=f"{name}_avgpool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


CNN_OPTIONS = {  # declared once (see nnkit.builders.rnn.RNN_OPTIONS)
    "filters": Field([32, 64], "filters per conv block", min=1),
    "kernel_size": Field(3, "kernel size", min=1),
    "convs_per_block": Field(1, "convolutions per block", min=1),
    "pooling": Field("max", "pooling after each block", choices=POOLING),
    "norm": Field("batch", "normalisation", choices=("batch", "layer", "none")),
    "activation": Field("relu", "hidden activation", choices=ACTIVATIONS),
    "dropout": Field(0.0, "dropout after each block", min=0.0, max=0.9),
    "dense_units": Field(128, "hidden dense units after the feature map (0 = none)", min=0),
    "head_dropout": Field(0.3, "dropout before the classifier", min=0.0, max=0.9),
    "head": Field("flatten", "flatten the last feature map, or global average pooling", choices=("flatten", "gap")),
    "augment": Field(False, "random translation and zoom (inside the model, training only)"),
}


def build_cnn(input_shape, num_classes: int, *, filters=(32, 64), kernel_size: int = 3, convs_per_block: int = 1,
              pooling: str = "max", norm: str = "batch", activation: str = "relu", dropout: float = 0.0,
              dense_units: int = 128, head_dropout: float = 0.3, head: str = "flatten",
              rescale: float | None = 1.0 / 255.0,
              augment: bool = False, name: str = "cnn") -> keras.Model:
    """A CNN for grayscale (``C=1``) or RGB (``C=3``) images.

    Args:
        input_shape: ``(height, width, channels)``.
        num_classes: size of the softmax head.
        filters: one conv block per entry (e.g. ``(32, 64)``).
        kernel_size, convs_per_block: conv geometry.
        pooling: ``max``, ``avg`` or ``none`` at the end of each block
            (skipped once the feature map is 1 pixel wide).
        norm: ``batch``, ``layer`` or ``none``.
        activation: sigmoid, tanh, relu, leaky_relu, rrelu or step.
        dropout: after each block; ``head_dropout`` before the classifier.
        dense_units: hidden dense layer after the feature map (0 = none).
        head: ``flatten`` keeps where features are (best for small digits) or
            ``gap`` (global average pooling: fewer weights, any input size).
        rescale: multiply pixels by this inside the model, so it takes raw
            pixel values (None = inputs are already scaled).
        augment: random translation and zoom inside the model (training only).
    """
    if len(input_shape) != 3 or input_shape[-1] not in (1, 3):
        raise ValueError("`input_shape` must be (height, width, 1 or 3). "
                         f"Received: input_shape={tuple(input_shape)!r}")
    check_positive("num_classes", num_classes)
    filters = list(filters)
    if not filters:
        raise ValueError(f"`filters` needs at least one block. Received: filters={filters!r}")
    for f in filters:
        check_positive("filters", f)
    check_positive("kernel_size", kernel_size)
    check_positive("convs_per_block", convs_per_block)
    check_positive("dense_units", dense_units, allow_zero=True)
    check_choice("pooling", pooling, POOLING)
    check_rate("dropout", dropout)
    check_rate("head_dropout", head_dropout)
    check_choice("head", head, ("flatten", "gap"))
    inputs = keras.Input(shape=tuple(input_shape), name=f"{name}_input")
    x = inputs
    if rescale is not None:
        x = keras.layers.Rescaling(rescale, name=f"{name}_rescale")(x)
    if augment:
        x = keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", name=f"{name}_translate")(x)
        x = keras.layers.RandomZoom(0.1, fill_mode="constant", name=f"{name}_zoom")(x)
    size = min(input_shape[0], input_shape[1])
    for i, f in enumerate(filters):
        block_pooling = pooling if size >= 2 else "none"
        x = conv_block(x, f, kernel_size=kernel_size, convs=convs_per_block, pooling=block_pooling, norm=norm,
                       activation_kind=activation, dropout=dropout, name=f"{name}_block{i + 1}")
        size = size // 2 if block_pooling != "none" else size
    if head == "gap":
        x = keras.layers.GlobalAveragePooling2D(name=f"{name}_gap")(x)
    else:
        x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    if dense_units:
        x = keras.layers.Dense(dense_units, name=f"{name}_dense")(x)
        x = apply_activation(x, activation, f"{name}_dense_{activation}")
    if head_dropout:
        x = keras.layers.Dropout(head_dropout, name=f"{name}_head_dropout")(x)
    outputs = classifier_head(x, num_classes, name)
    return keras.Model(inputs, outputs, name=name)
