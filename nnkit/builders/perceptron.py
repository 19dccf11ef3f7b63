"""Rosenblatt's perceptron: one neuron with a step activation."""

from __future__ import annotations

from nnkit.builders._keras import keras

from nnkit.builders.blocks import check_choice, check_positive


def build_perceptron(num_features: int, *, activation: str = "step", name: str = "perceptron") -> keras.Model:
    """One neuron: ``y = step(w·x + b)``.

    The forward pass is the exact Heaviside step (outputs are 0 or 1). The
    step has no useful gradient, so training uses a straight-through
    surrogate (:class:`nnkit.layers.StepActivation`, ``surrogate="identity"``):
    with a squared-error loss and plain SGD, each update is exactly
    Rosenblatt's rule ``w += lr * (y - y_hat) * x``. ``activation="sigmoid"``
    gives a smooth single neuron (logistic regression) instead.
    """
    from nnkit.layers import StepActivation

    check_positive("num_features", num_features)
    check_choice("activation", activation, ("step", "sigmoid"))
    inputs = keras.Input(shape=(num_features,), name=f"{name}_input")
    z = keras.layers.Dense(1, name=f"{name}_neuron")(inputs)
    if activation == "step":
        outputs = StepActivation(name=f"{name}_step", dtype="float32")(z)
    else:
        outputs = keras.layers.Activation("sigmoid", name=f"{name}_sigmoid", dtype="float32")(z)
    return keras.Model(inputs, outputs, name=name)
