"""Small tensor-in/tensor-out helpers shared by the builders."""

from __future__ import annotations

from nnkit.builders._keras import keras

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "rrelu", "step")
NORMS = ("batch", "layer", "none")


def check_choice(argument: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"`{argument}` must be one of {', '.join(map(repr, choices))}. "
                         f"Received: {argument}={value!r}")


def check_positive(argument: str, value, allow_zero: bool = False) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise ValueError(f"`{argument}` must be a {'non-negative' if allow_zero else 'positive'} integer. "
                         f"Received: {argument}={value!r}")


def check_rate(argument: str, value) -> None:
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{argument}` must be in [0, 1). Received: {argument}={value!r}")


def activation(x, kind: str, name: str):
    """Apply one of the notes' activations as a named layer."""
    from nnkit.layers import RandomizedLeakyReLU, StepActivation

    check_choice("activation", kind, ACTIVATIONS)
    if kind == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=0.01, name=name)(x)
    if kind == "rrelu":
        return RandomizedLeakyReLU(name=name)(x)
    if kind == "step":
        return StepActivation(name=name)(x)
    return keras.layers.Activation(kind, name=name)(x)


def normalization(x, kind: str, name: str):
    check_choice("norm", kind, NORMS)
    if kind == "batch":
        # momentum 0.9, not Keras's 0.99: on small data sets (a few dozen steps an epoch) the moving
        # variance otherwise stays near its initial 1.0 for many epochs and validation collapses
        return keras.layers.BatchNormalization(momentum=0.9, name=name)(x)
    if kind == "layer":
        return keras.layers.LayerNormalization(name=name)(x)
    return x


def dense_block(x, units: int, *, activation_kind: str, norm: str, dropout: float, name: str):
    """Dense -> norm -> activation -> dropout (bias off when a norm follows)."""
    x = keras.layers.Dense(units, use_bias=norm == "none", name=f"{name}_dense")(x)
    x = normalization(x, norm, f"{name}_{norm}_norm")
    x = activation(x, activation_kind, f"{name}_{activation_kind}")
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def classifier_head(x, num_classes: int, name: str):
    """Logits-free head: softmax over classes (sigmoid for 1 output), kept in float32."""
    if num_classes == 1:
        return keras.layers.Dense(1, activation="sigmoid", dtype="float32", name=f"{name}_output")(x)
    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=f"{name}_output")(x)
