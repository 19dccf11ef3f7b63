"""Multi-layer perceptron."""

from __future__ import annotations

from nnkit.builders._keras import keras
from nnkit.config import Field

from nnkit.builders.blocks import ACTIVATIONS, check_choice, check_positive, check_rate, classifier_head, dense_block


MLP_OPTIONS = {  # declared once (see nnkit.builders.rnn.RNN_OPTIONS)
    "depth": Field(2, "hidden layers", min=0),
    "width": Field(64, "hidden units", min=1),
    "activation": Field("relu", "hidden activation", choices=ACTIVATIONS),
    "norm": Field("none", "normalisation after each hidden layer", choices=("batch", "layer", "none")),
    "dropout": Field(0.0, "dropout after each hidden layer", min=0.0, max=0.9),
}


def build_mlp(input_shape, num_outputs: int, *, depth: int = 2, width: int = 64, activation: str = "relu",
              norm: str = "none", dropout: float = 0.0, output: str = "classification",
              name: str = "mlp") -> keras.Model:
    """A dense network: ``depth`` hidden blocks of ``width`` units, then a head.

    Args:
        input_shape: shape of one sample (inputs of rank > 1 are flattened).
        num_outputs: classes (``output="classification"``; 1 = binary, sigmoid)
            or regression targets (``output="regression"``, linear).
        depth, width: hidden layers and their units.
        activation: sigmoid, tanh, relu, leaky_relu, rrelu or step.
        norm: batch, layer or none (after each dense layer, before the activation).
        dropout: rate after each hidden block.
    """
    check_positive("num_outputs", num_outputs)
    check_positive("depth", depth, allow_zero=True)
    check_positive("width", width)
    check_rate("dropout", dropout)
    check_choice("output", output, ("classification", "regression"))
    inputs = keras.Input(shape=tuple(input_shape), name=f"{name}_input")
    x = keras.layers.Flatten(name=f"{name}_flatten")(inputs) if len(input_shape) > 1 else inputs
    for i in range(depth):
        x = dense_block(x, width, activation_kind=activation, norm=norm, dropout=dropout, name=f"{name}_block{i + 1}")
    if output == "classification":
        outputs = classifier_head(x, num_outputs, name)
    else:
        outputs = keras.layers.Dense(num_outputs, dtype="float32", name=f"{name}_output")(x)
    return keras.Model(inputs, outputs, name=name)
