"""Convolutional networks over time: causal (optionally dilated) Conv1D stacks.

The Conv1D alternative to :func:`nnkit.builders.build_rnn` for windows of a
time series: ``(timesteps, features)`` in, ``num_outputs`` values out (the
forecast horizon, for direct multi-step forecasts).
"""

from __future__ import annotations

from nnkit.builders._keras import keras
from nnkit.config import Field

from nnkit.builders.blocks import ACTIVATIONS, activation, check_choice, check_positive, check_rate, normalization

POOLING = ("last", "avg", "flatten")


def conv1d_block(x, filters: int, *, kernel_size: int = 3, dilation_rate: int = 1, activation_kind: str = "relu",
                 norm: str = "none", dropout: float = 0.0, residual: bool = False, name: str = "conv1d"):
    """Causal Conv1D -> norm -> activation -> dropout, with an optional residual connection."""
    shortcut = x
    x = keras.layers.Conv1D(filters, kernel_size, padding="causal", dilation_rate=dilation_rate,
                            use_bias=norm == "none", name=f"{name}_conv")(x)
    x = normalization(x, norm, f"{name}_{norm}_norm")
    x = activation(x, activation_kind, f"{name}_{activation_kind}")
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    if residual:
        if shortcut.shape[-1] != filters:
            shortcut = keras.layers.Conv1D(filters, 1, name=f"{name}_project")(shortcut)
        x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return x


CONV1D_OPTIONS = {  # declared once (see nnkit.builders.rnn.RNN_OPTIONS)
    "filters": Field([32, 32], "filters per causal block (dilation doubles each block)", min=1),
    "kernel_size": Field(3, "kernel width", min=1),
    "activation": Field("relu", "hidden activation", choices=ACTIVATIONS),
    "norm": Field("none", "normalisation after each block", choices=("batch", "layer", "none")),
    "dropout": Field(0.0, "dropout after each block", min=0.0, max=0.9),
    "dense_units": Field(0, "hidden dense layer before the head (0 = none)", min=0),
}


def build_conv1d(input_shape, num_outputs: int, *, filters=(32, 32), kernel_size: int = 3, dilated: bool = True,
                 activation: str = "relu", norm: str = "none", dropout: float = 0.0, residual: bool = True,
                 pooling: str = "last", dense_units: int = 0, output_activation: str | None = None,
                 name: str = "conv1d") -> keras.Model:
    """A stack of causal 1-D convolutions with a dense head.

    Args:
        input_shape: ``(timesteps, features)``.
        num_outputs: units of the head (``horizon`` for direct multi-step forecasts).
        filters: filters of each convolution block (one block per entry).
        kernel_size: width of every kernel.
        dilated: dilation 1, 2, 4, ... per block (a TCN-style receptive field)
            instead of 1 everywhere.
        activation: sigmoid, tanh, relu, leaky_relu, rrelu or step.
        norm: ``batch``, ``layer`` or ``none`` after each convolution.
        dropout: rate after each block.
        residual: add each block's input to its output (1x1 projection when widths differ).
        pooling: ``last`` (the last time step, which has seen the whole window),
            ``avg`` (global average) or ``flatten``.
        dense_units: an optional hidden dense layer before the head.
        output_activation: None (linear), ``sigmoid``, ``softmax``.
    """
    filters = list(filters) if isinstance(filters, (list, tuple)) else filters
    if not isinstance(filters, list) or not filters:
        raise ValueError(f"`filters` must be a non-empty list of positive integers. Received: filters={filters!r}")
    for f in filters:
        check_positive("filters", f)
    check_positive("num_outputs", num_outputs)
    check_positive("kernel_size", kernel_size)
    check_positive("dense_units", dense_units, allow_zero=True)
    check_rate("dropout", dropout)
    check_choice("pooling", pooling, POOLING)
    if len(input_shape) != 2:
        raise ValueError(f"`input_shape` must be (timesteps, features). Received: input_shape={input_shape!r}")
    if pooling in ("flatten", "last") and input_shape[0] is None:
        raise ValueError(f"`pooling={pooling!r}` needs a fixed number of timesteps (or use pooling='avg'). "
                         f"Received: input_shape={input_shape!r}")
    inputs = keras.Input(shape=tuple(input_shape), name=f"{name}_input")
    x = inputs
    for i, f in enumerate(filters):
        x = conv1d_block(x, f, kernel_size=kernel_size, dilation_rate=2 ** i if dilated else 1,
                         activation_kind=activation, norm=norm, dropout=dropout, residual=residual,
                         name=f"{name}_block{i + 1}")
    if pooling == "last":
        x = keras.layers.Cropping1D((x.shape[1] - 1, 0), name=f"{name}_last")(x)
        x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling1D(name=f"{name}_avg")(x)
    else:
        x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    if dense_units:
        x = keras.layers.Dense(dense_units, activation="relu", name=f"{name}_hidden")(x)
    outputs = keras.layers.Dense(num_outputs, activation=output_activation, dtype="float32",
                                 name=f"{name}_output")(x)
    return keras.Model(inputs, outputs, name=name)
