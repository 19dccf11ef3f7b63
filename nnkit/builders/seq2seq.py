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

Decoding lives here too: :class:`Seq2SeqDecoder` wraps a trained model (also
one reloaded from ``model.keras``) into ``encode``/``step`` functions, and
:func:`greedy_search` / :func:`beam_search` run inside a ``tf.function``.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from nnkit.builders.blocks import check_choice, check_positive, check_rate

ARCHS = ("rnn", "transformer")
ATTENTIONS = ("none", "additive", "dot")
SEQ2SEQ_CELLS = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}
NORMS = ("layer", "none")


@keras.saving.register_keras_serializable(package="nnkit")
class PositionalEmbedding(keras.layers.Layer):
    """Token embedding plus a learned position embedding; id 0 is padding (masked)."""

    def __init__(self, vocab_size, sequence_length, output_dim, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.sequence_length = sequence_length
        self.output_dim = output_dim
        self.token_embeddings = keras.layers.Embedding(vocab_size, output_dim, name="token")
        self.position_embeddings = keras.layers.Embedding(sequence_length, output_dim, name="position")

    def build(self, input_shape):
        self.token_embeddings.build(input_shape)
        self.position_embeddings.build((None,))
        super().build(input_shape)

    def call(self, inputs):
        length = keras.ops.shape(inputs)[-1]
        positions = keras.ops.arange(0, length, 1)
        return self.token_embeddings(inputs) + self.position_embeddings(positions)

    def compute_mask(self, inputs, mask=None):
        return keras.ops.not_equal(inputs, 0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, sequence_length=self.sequence_length,
                      output_dim=self.output_dim)
        return config


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
    rnn = SEQ2SEQ_CELLS[cell]
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
    key_dim = max(1, units // heads)
    x = PositionalEmbedding(vs, max_source_len, units, name=f"{name}_source_embedding")(source)
    for i in range(depth):
        p = f"{name}_encoder{i + 1}"
        a = keras.layers.MultiHeadAttention(heads, key_dim, dropout=dropout, name=f"{p}_self_attention")(x, x)
        x = keras.layers.LayerNormalization(name=f"{p}_norm1")(keras.layers.Add(name=f"{p}_add1")([x, a]))
        x = _feed_forward(x, units=units, ff_dim=ff_dim, dropout=dropout, name=p, index=2)
    y = PositionalEmbedding(vt, max_target_len, units, name=f"{name}_target_embedding")(target_in)
    for i in range(depth):
        p = f"{name}_decoder{i + 1}"
        a = keras.layers.MultiHeadAttention(heads, key_dim, dropout=dropout, name=f"{p}_self_attention")(
            y, y, use_causal_mask=True)
        y = keras.layers.LayerNormalization(name=f"{p}_norm1")(keras.layers.Add(name=f"{p}_add1")([y, a]))
        c = keras.layers.MultiHeadAttention(heads, key_dim, dropout=dropout, name=f"{p}_cross_attention")(y, x)
        y = keras.layers.LayerNormalization(name=f"{p}_norm2")(keras.layers.Add(name=f"{p}_add2")([y, c]))
        y = _feed_forward(y, units=units, ff_dim=ff_dim, dropout=dropout, name=p, index=3)
    if dropout:
        y = keras.layers.Dropout(dropout, name=f"{name}_dropout")(y)
    return keras.layers.Dense(vt, dtype="float32", name=f"{name}_logits")(y)


# -- decoding ---------------------------------------------------------------------------------

PAD_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3


class Seq2SeqDecoder:
    """Step-wise inference on a model made by :func:`build_seq2seq` (fresh or reloaded).

    ``encode(source) -> memory`` (a dict of tensors, batch first) and
    ``step(tokens, t, cache, memory) -> (logits, cache, attention)``, where
    ``tokens`` is the [N, max_len + 1] buffer of tokens decoded so far
    (``tokens[:, t]`` is the newest one). The RNN carries its states in
    ``cache``; the Transformer re-reads the whole prefix (causal mask).
    """

    def __init__(self, model: keras.Model):
        self.model = model
        self.name = model.name
        names = {layer.name for layer in model.layers}
        self.arch = "rnn" if f"{self.name}_target_embedding" in names and not isinstance(
            model.get_layer(f"{self.name}_target_embedding"), PositionalEmbedding) else "transformer"
        if self.arch == "transformer":
            self.max_target_len = model.get_layer(f"{self.name}_target_embedding").sequence_length
            return
        n = self.name
        self.decoders = [layer for layer in model.layers
                         if layer.name.startswith(f"{n}_decoder_") and isinstance(layer, keras.layers.RNN)]
        self.decoders.sort(key=lambda layer: int(layer.name.rsplit("gru", 1)[-1].rsplit("lstm", 1)[-1]))
        self.depth = len(self.decoders)
        self.cell = "lstm" if isinstance(self.decoders[0], keras.layers.LSTM) else "gru"
        self.has_attention = f"{n}_attention" in names
        self.embedding = model.get_layer(f"{n}_target_embedding")
        self.attention = model.get_layer(f"{n}_attention") if self.has_attention else None
        self.attentional = model.get_layer(f"{n}_attentional")
        self.norm = model.get_layer(f"{n}_layer_norm") if f"{n}_layer_norm" in names else None
        self.logits = model.get_layer(f"{n}_logits")
        parts = 2 if self.cell == "lstm" else 1
        bridges = [model.get_layer(f"{n}_bridge{i + 1}_{j}").output for i in range(self.depth) for j in range(parts)]
        outputs = bridges + ([model.get_layer(f"{n}_memory").output] if self.has_attention else [])
        self.encoder = keras.Model(model.inputs[0], outputs, name=f"{n}_encoder_model")
        self.parts = parts

    def encode(self, source):
        if self.arch == "transformer":
            return {"source": source}
        outputs = self.encoder(source, training=False)
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        memory = {"mask": tf.not_equal(source, 0)}
        n_states = self.depth * self.parts
        memory["states"] = tuple(outputs[:n_states])
        if self.has_attention:
            memory["keys"] = outputs[n_states]
        return memory

    def initial_cache(self, memory):
        if self.arch == "transformer":
            return ()
        return memory["states"]

    def step(self, tokens, t, cache, memory):
        if self.arch == "transformer":
            length = tf.shape(tokens)[1] - 1
            logits = self.model([memory["source"], tokens[:, :length]], training=False)
            batch = tf.shape(tokens)[0]
            return tf.gather(logits, t, axis=1), cache, tf.zeros([batch, tf.shape(memory["source"])[1]])
        token = tokens[:, t]
        x = tf.gather(self.embedding.embeddings, token)  # (the layer would attach a mask)
        new_cache = []
        for i, layer in enumerate(self.decoders):
            states = list(cache[i * self.parts:(i + 1) * self.parts])
            x, new_states = layer.cell(x, states, training=False)
            new_states = list(new_states) if isinstance(new_states, (list, tuple)) else [new_states]
            new_cache += new_states
        y = x
        if self.has_attention:
            context, scores = self.attention([x[:, None, :], memory["keys"]], mask=[None, memory["mask"]],
                                             return_attention_scores=True, training=False)
            y = tf.concat([x, context[:, 0, :]], axis=-1)
            weights = scores[:, 0, :]
        else:
            weights = tf.zeros(tf.shape(memory["mask"]), tf.float32)
        h = self.attentional(y)
        if self.norm is not None:
            h = self.norm(h)
        return self.logits(h), tuple(new_cache), weights


def _set_column(buffer, t, values):
    """buffer[:, t] = values for an int buffer [N, L]."""
    column = tf.one_hot(t, tf.shape(buffer)[1], dtype=buffer.dtype)[None, :]
    return buffer * (1 - column) + values[:, None] * column


def greedy_search(decoder: Seq2SeqDecoder, source, max_len: int, return_attention: bool = False):
    """Argmax decoding. Returns token ids [N, max_len] (0 after [END]) and attention [N, max_len, S].

    Stops when every sequence has produced [END], or after ``max_len`` tokens.
    """
    memory = decoder.encode(source)
    cache = decoder.initial_cache(memory)
    batch = tf.shape(source)[0]
    s_len = tf.shape(source)[1]
    tokens = tf.concat([tf.fill([batch, 1], START_ID), tf.zeros([batch, max_len], tf.int32)], axis=1)
    finished = tf.zeros([batch], tf.bool)
    attention = tf.zeros([batch, max_len, s_len], tf.float32)
    for t in tf.range(max_len):
        logits, cache, weights = decoder.step(tokens, t, cache, memory)
        next_token = tf.argmax(tf.nn.log_softmax(logits), axis=-1, output_type=tf.int32)
        next_token = tf.where(finished, PAD_ID, next_token)
        tokens = _set_column(tokens, t + 1, next_token)
        if return_attention:
            row = tf.one_hot(t, max_len, dtype=tf.float32)[None, :, None]
            attention = attention * (1.0 - row) + weights[:, None, :] * row
        finished = tf.logical_or(finished, tf.equal(next_token, END_ID))
        if tf.reduce_all(finished):
            break
    return tokens[:, 1:], attention


def _length_penalty(length, alpha):
    """GNMT's ((5 + length) / 6) ** alpha."""
    return tf.pow((5.0 + tf.cast(length, tf.float32)) / 6.0, alpha)


def beam_search(decoder: Seq2SeqDecoder, source, max_len: int, width: int = 4, length_penalty: float = 0.6):
    """Beam search with GNMT length normalisation; width 1 gives the greedy result.

    Hypotheses are ranked by ``log p / ((5 + length) / 6) ** length_penalty``;
    a finished hypothesis keeps its score and length. Returns ids [N, max_len].
    """
    k = int(width)
    memory = decoder.encode(source)
    batch = tf.shape(source)[0]
    memory = tf.nest.map_structure(lambda m: tf.repeat(m, k, axis=0), memory)
    cache = decoder.initial_cache(memory)
    tokens = tf.concat([tf.fill([batch * k, 1], START_ID), tf.zeros([batch * k, max_len], tf.int32)], axis=1)
    scores = tf.tile(tf.concat([[0.0], tf.fill([k - 1], -1e9)], axis=0)[None, :], [batch, 1])  # [B, K]
    finished = tf.zeros([batch, k], tf.bool)
    lengths = tf.zeros([batch, k], tf.int32)
    offsets = (tf.range(batch) * k)[:, None]
    alpha = tf.constant(length_penalty, tf.float32)
    for t in tf.range(max_len):
        logits, cache, _ = decoder.step(tokens, t, cache, memory)
        vocab = tf.shape(logits)[-1]
        logp = tf.reshape(tf.nn.log_softmax(logits), [batch, k, vocab])
        pad_only = tf.concat([[0.0], tf.fill([vocab - 1], -1e9)], axis=0)
        logp = tf.where(finished[:, :, None], pad_only[None, None, :], logp)
        candidates = scores[:, :, None] + logp  # [B, K, V]
        cand_len = tf.where(finished, lengths, t + 1)  # [B, K]
        ranked = candidates / _length_penalty(cand_len, alpha)[:, :, None]
        _, index = tf.math.top_k(tf.reshape(ranked, [batch, k * vocab]), k=k)  # [B, K]
        beam = index // vocab
        token = index % vocab
        scores = tf.gather(tf.reshape(candidates, [batch, k * vocab]), index, batch_dims=1)
        rows = tf.reshape(offsets + beam, [-1])
        tokens = _set_column(tf.gather(tokens, rows), t + 1, tf.reshape(token, [-1]))
        cache = tf.nest.map_structure(lambda c: tf.gather(c, rows), cache)
        was_finished = tf.gather(finished, beam, batch_dims=1)
        lengths = tf.gather(cand_len, beam, batch_dims=1)
        finished = tf.logical_or(was_finished, tf.equal(token, END_ID))
        if tf.reduce_all(finished):
            break
    best = tf.argmax(scores / _length_penalty(lengths, alpha), axis=1, output_type=tf.int32)
    tokens = tf.gather(tf.reshape(tokens, [batch, k, max_len + 1]), best, batch_dims=1)
    return tokens[:, 1:]


# -- strings in, strings out -------------------------------------------------------------------

SPECIAL_TOKENS = ("[START]", "[END]")  # ids 2 and 3, after padding "" (0) and "[UNK]" (1)
TOKENIZATIONS = ("char", "word")
_SPACES = "[\\s\\x{00a0}\\x{202f}]+"  # RE2; CLDR and French typography use no-break spaces
_PUNCT = "[.,!?;:¿¡\"«»()\\[\\]]"
_CLOSE = " ([.,!?;:»)\\]])"
_OPEN = "([¿¡«(\\[]) "
_NUMERIC = "([0-9]) ([:.,]) ([0-9])"  # "19 : 53" -> "19:53", "1 , 000" -> "1,000"


def tf_standardize(text, lowercase: bool = False):
    """Collapse whitespace (no-break spaces included), strip, optionally lowercase (Unicode-aware)."""
    text = tf.strings.strip(tf.strings.regex_replace(text, _SPACES, " "))
    if lowercase:
        text = tf.strings.lower(text, encoding="utf-8")
    return text


def tf_tokenize(text, tokenize: str = "char", lowercase: bool = False, punctuation_spacing: bool = True):
    """Strings [N] -> ragged tokens [N, None]: characters, or words with punctuation split off."""
    check_choice("tokenize", tokenize, TOKENIZATIONS)
    text = tf_standardize(text, lowercase)
    if tokenize == "char":
        return tf.strings.unicode_split(text, "UTF-8")
    if punctuation_spacing:
        text = tf.strings.regex_replace(text, _PUNCT, " \\0 ")
    return tf.strings.split(text)


def tf_detokenize(tokens, tokenize: str = "char", punctuation_spacing: bool = True):
    """Ragged tokens [N, None] -> strings [N] (the inverse of :func:`tf_tokenize` up to spacing)."""
    if tokenize == "char":
        return tf.strings.reduce_join(tokens, axis=-1)
    text = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
    if punctuation_spacing:
        text = tf.strings.regex_replace(text, _NUMERIC, "\\1\\2\\3")
        text = tf.strings.regex_replace(text, _CLOSE, "\\1")
        text = tf.strings.regex_replace(text, _OPEN, "\\1")
    return text


def until_end(ids):
    """Ids [N, L] -> ragged ids, cut before the first [END] and without padding."""
    keep = tf.logical_and(tf.equal(tf.cumsum(tf.cast(tf.equal(ids, END_ID), tf.int32), axis=1), 0),
                          tf.not_equal(ids, PAD_ID))
    return tf.ragged.boolean_mask(ids, keep)


class Seq2SeqTranslator(tf.Module):
    """A trained seq2seq model with its vocabularies and decoding: strings in, strings out.

    ``translate(text)`` takes a tf.string vector and returns
    ``{"translation": tf.string vector}``; tokenisation (``StringLookup``),
    decoding (greedy, or beam search when ``beam_width > 1``) and
    detokenisation all run inside the graph, so the SavedModel needs nothing else.
    """

    def __init__(self, model, source_vocab, target_vocab, *, tokenize: str = "char", lowercase: bool = False,
                 punctuation_spacing: bool = True, max_source_len: int = 256, max_decode_len: int = 128,
                 beam_width: int = 1, length_penalty: float = 0.6, tokenizer=None, name: str = "translator"):
        super().__init__(name=name)
        # a tokenizer object (``tokenize(text) -> ragged tokens``, ``detokenize(tokens) -> text``) replaces
        # the built-in word/char tokens: the translator then only maps its tokens to ids and back
        self.tokenizer = tokenizer
        if tokenizer is None:
            check_choice("tokenize", tokenize, TOKENIZATIONS)
        check_positive("beam_width", beam_width)
        check_positive("max_decode_len", max_decode_len)
        self.model = model
        self._decoder = Seq2SeqDecoder(model)
        self.tokenize_mode = tokenize
        self.lowercase = bool(lowercase)
        self.punctuation_spacing = bool(punctuation_spacing)
        self.max_source_len = int(max_source_len)
        self.max_decode_len = int(max_decode_len)
        if self._decoder.arch == "transformer":  # no more steps than position embeddings
            self.max_decode_len = min(self.max_decode_len, int(self._decoder.max_target_len))
        self.beam_width = int(beam_width)
        self.length_penalty = float(length_penalty)
        self.source_lookup = keras.layers.StringLookup(vocabulary=list(source_vocab), mask_token="",
                                                       oov_token="[UNK]", name="source_lookup")
        self.target_lookup = keras.layers.StringLookup(vocabulary=list(target_vocab), mask_token="",
                                                       oov_token="[UNK]", name="target_lookup")
        self.target_words = keras.layers.StringLookup(vocabulary=list(target_vocab), mask_token="",
                                                      oov_token="[UNK]", invert=True, name="target_words")
        self.translate = tf.function(self._translate,
                                     input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        self._greedy_with_attention = tf.function(
            lambda ids: greedy_search(self._decoder, ids, self.max_decode_len, return_attention=True))

    # tokens and ids
    def tokens(self, text):
        if self.tokenizer is not None:
            return self.tokenizer.tokenize(text)
        return tf_tokenize(text, self.tokenize_mode, self.lowercase, self.punctuation_spacing)

    def source_ids(self, text):
        """Strings [N] -> int ids [N, S] (tokens + [END], 0-padded)."""
        tokens = self.tokens(text)
        if self._decoder.arch == "transformer":
            tokens = tokens[:, : self.max_source_len - 1]
        ends = tf.fill([tokens.nrows(), 1], "[END]")
        tokens = tf.concat([tokens, tf.RaggedTensor.from_tensor(ends)], axis=1)
        return tf.cast(self.source_lookup(tokens).to_tensor(0), tf.int32)

    def target_ids(self, text):
        """Strings [N] -> ragged target ids (no [START]/[END])."""
        return tf.cast(self.target_lookup(self.tokens(text)), tf.int32)

    def ids_to_text(self, ids):
        if self.tokenizer is not None:
            return self.tokenizer.detokenize(self.target_words(until_end(ids)))
        return tf_detokenize(self.target_words(until_end(ids)), self.tokenize_mode, self.punctuation_spacing)

    # decoding
    def decode_ids(self, source_ids, beam_width: int | None = None):
        width = self.beam_width if beam_width is None else int(beam_width)
        if width <= 1:
            return greedy_search(self._decoder, source_ids, self.max_decode_len)[0]
        return beam_search(self._decoder, source_ids, self.max_decode_len, width, self.length_penalty)

    def _translate(self, text):
        return {"translation": self.ids_to_text(self.decode_ids(self.source_ids(text)))}

    def attention(self, text):
        """(source tokens, output tokens, weights [N, T, S]) of greedy decoding, for heatmaps."""
        ids = self.source_ids(tf.constant(text))
        out, weights = self._greedy_with_attention(ids)
        src_tokens = [[t.decode("utf-8") for t in row] for row in
                      self.tokens(tf.constant(text)).to_list()]
        out_tokens = [[t.decode("utf-8") for t in row] for row in self.target_words(until_end(out)).to_list()]
        return src_tokens, out_tokens, weights.numpy()
