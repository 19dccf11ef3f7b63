"""Recurrent networks: simple/LSTM/GRU cells, deep (stacked), bidirectional, normalised.

One builder serves every RNN shape in the notes through ``head``:
``"last"`` = many-to-one (forecasting, collision warning), ``"sequence"`` =
synced many-to-many (an output at every step).
"""

from __future__ import annotations

from nnkit.builders._keras import keras
from nnkit.config import Field

from nnkit.builders.blocks import check_choice, check_positive, check_rate, normalization

CELLS = {"simple": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}  # keras.layers class names
HEADS = ("last", "sequence")


# build_rnn's options, declared once: task schemas reuse them (nnkit.config.declared), and
# nnkit.builders.options.build_from_config passes the configured ones to the builder
RNN_OPTIONS = {
    "cell": Field("lstm", "recurrent cell", choices=tuple(CELLS)),
    "units": Field(64, "units per recurrent layer", min=1),
    "depth": Field(1, "stacked recurrent layers (deep RNN when > 1)", min=1),
    "bidirectional": Field(False, "read the sequence both ways"),
    "norm": Field("none", "normalisation after each recurrent layer", choices=("batch", "layer", "none")),
    "dropout": Field(0.0, "dropout after each recurrent layer", min=0.0, max=0.9),
    "recurrent_dropout": Field(0.0, "dropout on the recurrent state (slower: no cuDNN kernel)", min=0.0, max=0.9),
    "dense_units": Field(0, "hidden dense layer before the head (0 = none)", min=0),
}


def rnn_stack(x, *, cell: str = "lstm", units: int = 64, depth: int = 1, bidirectional: bool = False,
              norm: str = "none", dropout: float = 0.0, recurrent_dropout: float = 0.0,
              return_sequences: bool = False, name: str = "rnn"):
    """``depth`` recurrent layers; every layer but the last returns sequences."""
    check_choice("cell", cell, tuple(CELLS))
    check_positive("units", units)
    check_positive("depth", depth)
    check_rate("dropout", dropout)
    check_rate("recurrent_dropout", recurrent_dropout)
    for i in range(depth):
        sequences = return_sequences or i < depth - 1
        layer_class = getattr(keras.layers, CELLS[cell])
        layer = layer_class(units, return_sequences=sequences, recurrent_dropout=recurrent_dropout,
                            name=f"{name}_{cell}{i + 1}")
        if bidirectional:
            layer = keras.layers.Bidirectional(layer, name=f"{name}_bi{cell}{i + 1}")
        x = layer(x)
        x = normalization(x, norm, f"{name}_{norm}_norm{i + 1}")
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"{name}_dropout{i + 1}")(x)
    return x


def build_rnn(input_shape, num_outputs: int, *, cell: str = "lstm", units: int = 64, depth: int = 1,
              bidirectional: bool = False, norm: str = "none", dropout: float = 0.0,
              recurrent_dropout: float = 0.0, head: str = "last", output_activation: str | None = None,
              masking: bool = False, mask_value: float = 0.0, dense_units: int = 0,
              name: str = "rnn") -> keras.Model:
    """A recurrent network with a dense head.

    Args:
        input_shape: ``(timesteps, features)``; ``timesteps`` may be None.
        num_outputs: units of the head (``horizon`` for direct multi-step
            forecasts, classes for classification).
        cell: ``simple`` (Elman), ``lstm`` or ``gru``.
        depth: stacked recurrent layers (a deep RNN when > 1).
        bidirectional: read the window both ways. Only for ``head="last"`` or
            offline labelling: a per-step *causal* decision must not see the future.
        norm: ``layer``, ``batch`` or ``none`` after each recurrent layer.
        dropout, recurrent_dropout: rates (recurrent dropout disables cuDNN kernels).
        head: ``last`` (one output per sequence) or ``sequence`` (one per step).
        output_activation: None (linear), ``sigmoid``, ``softmax``.
        masking: skip steps whose features all equal ``mask_value`` (padding).
        dense_units: an optional hidden dense layer before the head.
    """
    check_choice("head", head, HEADS)
    check_positive("num_outputs", num_outputs)
    check_positive("dense_units", dense_units, allow_zero=True)
    if len(input_shape) != 2:
        raise ValueError(f"`input_shape` must be (timesteps, features). Received: input_shape={input_shape!r}")
    inputs = keras.Input(shape=tuple(input_shape), name=f"{name}_input")
    x = keras.layers.Masking(mask_value=mask_value, name=f"{name}_masking")(inputs) if masking else inputs
    x = rnn_stack(x, cell=cell, units=units, depth=depth, bidirectional=bidirectional, norm=norm,
                  dropout=dropout, recurrent_dropout=recurrent_dropout, return_sequences=head == "sequence",
                  name=name)
    if dense_units:
        x = keras.layers.Dense(dense_units, activation="relu", name=f"{name}_hidden")(x)
    outputs = keras.layers.Dense(num_outputs, activation=output_activation, dtype="float32",
                                 name=f"{name}_output")(x)
    return keras.Model(inputs, outputs, name=name)
