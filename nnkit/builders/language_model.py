"""A recurrent language model: token ids in, next-token logits at every step out.

    from nnkit.builders import build_language_model
    model = build_language_model(vocab_size=120, embedding_dim=64, cell="lstm", units=256)

The network is ``Embedding -> depth x (LSTM | GRU | SimpleRNN) -> Dense``
(the recurrent stack is :func:`nnkit.builders.rnn.rnn_stack`, never
bidirectional: a language model must not see the tokens it predicts).
:func:`language_model_step` reuses the same layers one token at a time, with
the recurrent state carried explicitly, for sampling loops inside a graph.
"""

from __future__ import annotations

from nnkit.builders._keras import keras
from nnkit.config import Field

from nnkit.builders.blocks import check_choice, check_positive, check_rate
from nnkit.builders.rnn import CELLS, rnn_stack


LANGUAGE_MODEL_OPTIONS = {  # declared once (see nnkit.builders.rnn.RNN_OPTIONS)
    "cell": Field("lstm", "recurrent cell", choices=("lstm", "gru", "simple")),
    "embedding_dim": Field(64, "token vector size", min=1),
    "units": Field(256, "units per recurrent layer", min=1),
    "depth": Field(1, "stacked recurrent layers", min=1),
    "dropout": Field(0.0, "dropout after each recurrent layer", min=0.0, max=0.9),
    "embedding_dropout": Field(0.0, "dropout on the token vectors", min=0.0, max=0.9),
    "recurrent_dropout": Field(0.0, "dropout on the recurrent connections", min=0.0, max=0.9),
    "norm": Field("none", "normalisation after each recurrent layer", choices=("layer", "batch", "none")),
}


def build_language_model(vocab_size: int, *, embedding_dim: int = 64, cell: str = "lstm", units: int = 256,
                         depth: int = 1, dropout: float = 0.0, embedding_dropout: float = 0.0,
                         recurrent_dropout: float = 0.0, norm: str = "none",
                         name: str = "language_model") -> keras.Model:
    """A causal recurrent language model.

    Args:
        vocab_size: number of token ids (including padding, start and unknown tokens).
        embedding_dim: size of the learned token vectors.
        cell: ``lstm``, ``gru`` or ``simple``.
        units: width of each recurrent layer.
        depth: stacked recurrent layers.
        dropout: rate after each recurrent layer (and before the output layer).
        embedding_dropout: rate on the token vectors.
        recurrent_dropout: rate on the recurrent connections.
        norm: ``layer``, ``batch`` or ``none`` after each recurrent layer.

    Input: int32 ids ``[batch, time]``. Output: float32 logits ``[batch, time, vocab_size]``
    (no softmax: train with ``from_logits=True``, sample with a temperature).
    """
    check_positive("vocab_size", vocab_size)
    if vocab_size < 2:
        raise ValueError(f"`vocab_size` must be at least 2. Received: vocab_size={vocab_size!r}")
    check_positive("embedding_dim", embedding_dim)
    check_choice("cell", cell, tuple(CELLS))
    check_rate("embedding_dropout", embedding_dropout)
    inputs = keras.Input(shape=(None,), dtype="int32", name=f"{name}_tokens")
    x = keras.layers.Embedding(vocab_size, embedding_dim, name=f"{name}_embedding")(inputs)
    if embedding_dropout:
        x = keras.layers.Dropout(embedding_dropout, name=f"{name}_embedding_dropout")(x)
    x = rnn_stack(x, cell=cell, units=units, depth=depth, bidirectional=False, norm=norm, dropout=dropout,
                  recurrent_dropout=recurrent_dropout, return_sequences=True, name=name)
    logits = keras.layers.Dense(vocab_size, dtype="float32", name=f"{name}_logits")(x)
    return keras.Model(inputs, logits, name=name)


def _parts(model: keras.Model):
    """(embedding, [(recurrent layer, norm layer or None)], logits) of a built language model."""
    name = model.name
    embedding = model.get_layer(f"{name}_embedding")
    logits = model.get_layer(f"{name}_logits")
    recurrent = []
    i = 1
    while True:
        layer = next((model.get_layer(f"{name}_{c}{i}") for c in CELLS
                      if f"{name}_{c}{i}" in {l.name for l in model.layers}), None)
        if layer is None:
            break
        norm = next((l for l in model.layers if l.name.startswith(f"{name}_") and
                     l.name.endswith(f"_norm{i}")), None)
        recurrent.append((layer, norm))
        i += 1
    if not recurrent:
        raise ValueError(f"`model` is not a language model built by build_language_model "
                         f"(no recurrent layers named {name}_<cell>1...). Received: model={name!r}")
    return embedding, recurrent, logits


def initial_state(model: keras.Model, batch_size):
    """Zero recurrent state for :func:`language_model_step`: a flat list of ``[batch, units]`` tensors."""
    from keras import ops

    _, recurrent, _ = _parts(model)
    states = []
    for layer, _ in recurrent:
        sizes = layer.cell.state_size
        sizes = sizes if isinstance(sizes, (list, tuple)) else [sizes]
        states += [ops.zeros((batch_size, int(s)), dtype="float32") for s in sizes]
    return states


def language_model_step(model: keras.Model):
    """``step(token_ids [batch], states) -> (logits [batch, vocab], new_states)`` on the model's layers.

    The same weights as ``model``, one token at a time (inference: no dropout),
    so a ``tf.while_loop`` can sample a long sequence in linear time.
    """
    embedding, recurrent, logits_layer = _parts(model)
    counts = []
    for layer, _ in recurrent:
        sizes = layer.cell.state_size
        counts.append(len(sizes) if isinstance(sizes, (list, tuple)) else 1)

    def step(token_ids, states):
        x = embedding(token_ids)
        new_states, offset = [], 0
        for (layer, norm), count in zip(recurrent, counts):
            state = list(states[offset:offset + count])
            offset += count
            x, state = layer.cell(x, state if count > 1 else state, training=False)
            state = state if isinstance(state, (list, tuple)) else [state]
            new_states += list(state)
            if norm is not None:
                x = norm(x, training=False)
        return logits_layer(x), new_states

    return step
