"""Step-wise decoding of a model made by ``nnkit.builders.build_seq2seq``: greedy and beam search.

:class:`Seq2SeqDecoder` wraps a trained model (also one reloaded from
``model.keras``) into ``encode``/``step`` functions by the builder's layer
names; :func:`greedy_search` / :func:`beam_search` run inside a ``tf.function``.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from nnkit.layers.positional import PositionalEmbedding
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
            self.target_embedding = model.get_layer(f"{self.name}_target_embedding")
            self.max_target_len = self.target_embedding.sequence_length
            self.blocks = []
            while f"{self.name}_decoder{len(self.blocks) + 1}_self_attention" in names:
                p = f"{self.name}_decoder{len(self.blocks) + 1}"
                self.blocks.append({key: model.get_layer(f"{p}_{key}") for key in (
                    "self_attention", "add1", "norm1", "cross_attention", "add2", "norm2", "ff1", "ff2", "add3",
                    "norm3")})
            # models built before the source padding mask existed attend to the padding: keep their logits
            self.source_masked = f"{self.name}_source_mask" in names
            last = f"{self.name}_encoder{len(self.blocks)}_norm2"  # the builder's last encoder layer
            self.encoder = keras.Model(model.inputs[0], model.get_layer(last).output, name=f"{self.name}_encoder")
            self.logits = model.get_layer(f"{self.name}_logits")
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
        if self.arch == "transformer":  # encoded once, not at every step
            return {"source": source, "keys": self.encoder(source, training=False)}
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

    def _transformer_step(self, prefix, memory):
        """Logits [N, V] for the token after ``prefix`` [N, t + 1], by the model's own decoder layers.

        The same computation as the whole model's last position (the causal mask makes it depend on the
        prefix only; dropout is off at inference), without re-encoding the source at every step and
        with the output layer on the last position alone.
        """
        y = self.target_embedding(prefix)
        for block in self.blocks:
            a = block["self_attention"](y, y, use_causal_mask=True, training=False)
            y = block["norm1"](block["add1"]([y, a]))
            c = block["cross_attention"](y, memory["keys"], training=False, value_mask=(
                tf.not_equal(memory["source"], 0) if self.source_masked else None))
            y = block["norm2"](block["add2"]([y, c]))
            y = block["norm3"](block["add3"]([y, block["ff2"](block["ff1"](y))]))
        return self.logits(y[:, -1, :])

    def step(self, tokens, t, cache, memory):
        if self.arch == "transformer":
            return self._transformer_step(tokens[:, :t + 1], memory), cache, tf.zeros(tf.shape(memory["source"]))
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
