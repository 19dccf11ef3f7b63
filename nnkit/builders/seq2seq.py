"""Sequence-to-sequence models: an RNN encoder-decoder with attention, and a Transformer.

``build_seq2seq`` returns the *training* model (teacher forcing)::

    inputs:  source ids [batch, S] (0 = padding), target_in ids [batch, T] ([START] + target)
    output:  logits [batch, T, target_vocab_size] (target + [END])

``arch="rnn"``: embedding -> encoder (``cell`` lstm/gru, ``depth`` layers,
optionally ``bidirectional``) -> a bridge (Dense) from the encoder's final
states to the decoder's initial states -> decoder (same cell and depth) ->
attention over the encoder outputs (``none``, ``additive`` = Bahdanau with
``keras.layers.AdditiveAttention``, ``dot`` = Luong with
``keras.layers.Attention``) -> Luong's attentional layer
``tanh(W [decoder; context])`` -> optional layer norm -> dropout -> logits.

``arch="transformer"``: the keras.io English-to-Spanish design: token +
position embeddings, ``depth`` encoder blocks and ``depth`` decoder blocks on
``keras.layers.MultiHeadAttention`` (causal self-attention in the decoder).

Decoding (greedy and beam search) and tokenisation live with the task that
uses them, in ``nnkit.tasks.translation`` (a builder knows layers only).
"""

from __future__ import annotations

from nnkit.builders._keras import keras
from nnkit.config import Field

from nnkit.builders.blocks import check_choice, check_positive, check_rate

ARCHS = ("rnn", "transformer")
ATTENTIONS = ("none", "additive", "dot")
SEQ2SEQ_CELLS = {"gru": "GRU", "lstm": "LSTM"}  # keras.layers class names
NORMS = ("layer", "none")


SEQ2SEQ_OPTIONS = {  # declared once (see nnkit.builders.rnn.RNN_OPTIONS)
    "arch": Field("rnn", "encoder-decoder family", choices=ARCHS),
    "cell": Field("gru", "rnn: recurrent cell", choices=tuple(SEQ2SEQ_CELLS)),
    "attention": Field("additive", "rnn: attention over the encoder outputs", choices=ATTENTIONS),
    "bidirectional": Field(True, "rnn: bidirectional encoder"),
    "depth": Field(1, "recurrent layers (rnn) or blocks (transformer) per side", min=1),
    "units": Field(128, "recurrent units / transformer width", min=1),
    "embed_dim": Field(64, "rnn: token embedding size", min=1),
    "norm": Field("layer", "rnn: layer norm on the attentional vector", choices=NORMS),
    "dropout": Field(0.0, "dropout rate", min=0.0, max=0.9),
    "heads": Field(4, "transformer: attention heads", min=1),
    "ff_dim": Field(256, "transformer: feed-forward width", min=1),
}


def _check_args(source_vocab_size, target_vocab_size, arch, cell, attention, norm, units, embed_dim, depth,
                dropout, heads, ff_dim):
    check_positive("source_vocab_size", source_vocab_size)
    check_positive("target_vocab_size", target_vocab_size)
    check_choice("arch", arch, ARCHS)
    check_choice("cell", cell, tuple(SEQ2SEQ_CELLS))
    check_choice("attention", attention, ATTENTIONS)
    check_choice("norm", norm, NORMS)
    check_positive("units", units)
    check_positive("embed_dim", embed_dim)
    check_positive("depth", depth)
    check_positive("heads", heads)
    check_positive("ff_dim", ff_dim)
    check_rate("dropout", dropout)
    if source_vocab_size < 2 or target_vocab_size < 4:
        raise ValueError("vocabularies need padding, [UNK], [START] and [END]. Received: "
                         f"source_vocab_size={source_vocab_size!r}, target_vocab_size={target_vocab_size!r}")


def build_seq2seq(source_vocab_size: int, target_vocab_size: int, *, arch: str = "rnn", cell: str = "gru",
                  embed_dim: int = 64, units: int = 128, depth: int = 1, bidirectional: bool = True,
                  attention: str = "additive", norm: str = "layer", dropout: float = 0.0, heads: int = 4,
                  ff_dim: int = 256, max_source_len: int = 128, max_target_len: int = 128,
                  name: str = "seq2seq") -> keras.Model:
    """An encoder-decoder for teacher-forced training; see the module docstring.

    Args:
        source_vocab_size, target_vocab_size: sizes including padding (0) and
            [UNK] (1); the target vocabulary also holds [START] (2) and [END] (3).
        arch: ``rnn`` or ``transformer``.
        cell, depth, bidirectional: the recurrent encoder/decoder (``rnn``);
            ``depth`` is also the number of Transformer blocks on each side.
        attention: ``none``, ``additive`` (Bahdanau) or ``dot`` (Luong); ``rnn`` only.
        norm: ``layer`` or ``none`` on the decoder's attentional vector (``rnn``).
        units: recurrent units / Transformer model width.
        heads, ff_dim: Transformer attention heads and feed-forward width.
        max_source_len, max_target_len: Transformer position-embedding sizes.
    """
    _check_args(source_vocab_size, target_vocab_size, arch, cell, attention, norm, units, embed_dim, depth,
                dropout, heads, ff_dim)
    source = keras.Input(shape=(None,), dtype="int32", name=f"{name}_source")
    target_in = keras.Input(shape=(None,), dtype="int32", name=f"{name}_target_in")
    if arch == "transformer":
        check_positive("max_source_len", max_source_len)
        check_positive("max_target_len", max_target_len)
        logits = _transformer(source, target_in, source_vocab_size, target_vocab_size, units=units,
                              depth=depth, heads=heads, ff_dim=ff_dim, dropout=dropout,
                              max_source_len=max_source_len, max_target_len=max_target_len, name=name)
    else:
        logits = _rnn_seq2seq(source, target_in, source_vocab_size, target_vocab_size, cell=cell,
                              embed_dim=embed_dim, units=units, depth=depth, bidirectional=bidirectional,
                              attention=attention, norm=norm, dropout=dropout, name=name)
    return keras.Model([source, target_in], logits, name=name)


# -- RNN encoder-decoder ----------------------------------------------------------------------

def _rnn_seq2seq(source, target_in, vs, vt, *, cell, embed_dim, units, depth, bidirectional, attention, norm,
                 dropout, name):
    rnn = getattr(keras.layers, SEQ2SEQ_CELLS[cell])
    x = keras.layers.Embedding(vs, embed_dim, mask_zero=True, name=f"{name}_source_embedding")(source)
    final = None
    for i in range(depth):
        layer = rnn(units, return_sequences=True, return_state=True, name=f"{name}_encoder_{cell}{i + 1}")
        if bidirectional:
            layer = keras.layers.Bidirectional(layer, name=f"{name}_encoder_bi{cell}{i + 1}")
        outputs = layer(x)
        x, final = outputs[0], outputs[1:]
        if dropout and i < depth - 1:
            x = keras.layers.Dropout(dropout, name=f"{name}_encoder_dropout{i + 1}")(x)
    # final states: gru [h] / [h_fw, h_bw]; lstm [h, c] / [h_fw, c_fw, h_bw, c_bw]
    n_parts = 2 if cell == "lstm" else 1
    parts = [final[j::n_parts] for j in range(n_parts)]  # [[h...], [c...]]
    joined = [p[0] if len(p) == 1 else keras.layers.Concatenate(name=f"{name}_bridge_join{j}")(p)
              for j, p in enumerate(parts)]
    init_states = []
    for i in range(depth):
        init_states.append([keras.layers.Dense(units, activation="tanh", name=f"{name}_bridge{i + 1}_{j}")(s)
                            for j, s in enumerate(joined)])
    memory = None
    if attention != "none":
        memory = keras.layers.Dense(units, use_bias=False, name=f"{name}_memory")(x)

    y = keras.layers.Embedding(vt, embed_dim, mask_zero=True, name=f"{name}_target_embedding")(target_in)
    for i in range(depth):
        y = rnn(units, return_sequences=True, name=f"{name}_decoder_{cell}{i + 1}")(y, initial_state=init_states[i])
        if dropout and i < depth - 1:
            y = keras.layers.Dropout(dropout, name=f"{name}_decoder_dropout{i + 1}")(y)
    if attention != "none":
        layer_cls = keras.layers.AdditiveAttention if attention == "additive" else keras.layers.Attention
        context = layer_cls(name=f"{name}_attention")([y, memory])
        y = keras.layers.Concatenate(name=f"{name}_attend_join")([y, context])
    h = keras.layers.Dense(units, activation="tanh", name=f"{name}_attentional")(y)
    if norm == "layer":
        h = keras.layers.LayerNormalization(name=f"{name}_layer_norm")(h)
    if dropout:
        h = keras.layers.Dropout(dropout, name=f"{name}_dropout")(h)
    return keras.layers.Dense(vt, dtype="float32", name=f"{name}_logits")(h)


# -- Transformer -------------------------------------------------------------------------------

def _feed_forward(x, *, units, ff_dim, dropout, name, index):
    """The position-wise feed-forward sub-block with its residual and layer norm."""
    f = keras.layers.Dense(ff_dim, activation="relu", name=f"{name}_ff1")(x)
    f = keras.layers.Dense(units, name=f"{name}_ff2")(f)
    if dropout:
        f = keras.layers.Dropout(dropout, name=f"{name}_dropout")(f)
    residual = keras.layers.Add(name=f"{name}_add{index}")([x, f])
    return keras.layers.LayerNormalization(name=f"{name}_norm{index}")(residual)


def _transformer(source, target_in, vs, vt, *, units, depth, heads, ff_dim, dropout, max_source_len,
                 max_target_len, name):
    from nnkit.layers.positional import PaddingMask, PositionalEmbedding  # registered with Keras on import

    key_dim = max(1, units // heads)
    x = PositionalEmbedding(vs, max_source_len, units, name=f"{name}_source_embedding")(source)
    keys = PaddingMask(name=f"{name}_source_mask")(source)  # attention never reads the source's padding
    for i in range(depth):
        p = f"{name}_encoder{i + 1}"
        a = keras.layers.MultiHeadAttention(heads, key_dim, dropout=dropout, name=f"{p}_self_attention")(
            x, x, value_mask=keys)
        x = keras.layers.LayerNormalization(name=f"{p}_norm1")(keras.layers.Add(name=f"{p}_add1")([x, a]))
        x = _feed_forward(x, units=units, ff_dim=ff_dim, dropout=dropout, name=p, index=2)
    y = PositionalEmbedding(vt, max_target_len, units, name=f"{name}_target_embedding")(target_in)
    for i in range(depth):
        p = f"{name}_decoder{i + 1}"
        a = keras.layers.MultiHeadAttention(heads, key_dim, dropout=dropout, name=f"{p}_self_attention")(
            y, y, use_causal_mask=True)
        y = keras.layers.LayerNormalization(name=f"{p}_norm1")(keras.layers.Add(name=f"{p}_add1")([y, a]))
        c = keras.layers.MultiHeadAttention(heads, key_dim, dropout=dropout, name=f"{p}_cross_attention")(
            y, x, value_mask=keys)
        y = keras.layers.LayerNormalization(name=f"{p}_norm2")(keras.layers.Add(name=f"{p}_add2")([y, c]))
        y = _feed_forward(y, units=units, ff_dim=ff_dim, dropout=dropout, name=p, index=3)
    if dropout:
        y = keras.layers.Dropout(dropout, name=f"{name}_dropout")(y)
    return keras.layers.Dense(vt, dtype="float32", name=f"{name}_logits")(y)
