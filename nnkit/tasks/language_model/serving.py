"""The exported generator: token strings in, sampled token strings out, sampling inside the graph.

A ``tf.while_loop`` over the model's own layers, one token at a time;
``tf.random.stateless_categorical`` seeded by ``(seed, step)``, so the same
seed gives the same output in any process.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from nnkit.builders.language_model import initial_state, language_model_step
from nnkit.tasks.language_model.tokens import BOS, UNK


class LanguageModelServing(tf.Module):
    """``generate(start, length, temperature, top_k, seed)`` -> ``tokens``, ``ids``, ``text``."""

    def __init__(self, model, state: dict):
        super().__init__()
        vocab = list(state["vocabulary"])
        index = {t: i for i, t in enumerate(vocab)}
        banned = np.zeros(len(vocab), np.float32)
        banned[[index[t] for t in state["banned"]]] = -np.inf
        self.model = model
        self.vocabulary = tf.constant(vocab)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(self.vocabulary, tf.range(len(vocab), dtype=tf.int64)),
            default_value=index[UNK])
        self.banned = tf.constant(banned)
        self._bos = index[BOS] if state["bos"] else -1
        self._size = len(vocab)
        self._separator = state["separator"]
        self._step = language_model_step(model)

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name="start"),
        tf.TensorSpec([], tf.int32, name="length"),
        tf.TensorSpec([], tf.float32, name="temperature"),
        tf.TensorSpec([], tf.int32, name="top_k"),
        tf.TensorSpec([], tf.int64, name="seed")])
    def generate(self, start, length, temperature, top_k, seed):
        bos, step = self._bos, self._step
        ids = tf.cast(self.table.lookup(start), tf.int32)
        if bos >= 0:
            ids = tf.concat([[bos], ids], axis=0)
        tf.debugging.assert_positive(tf.size(ids), message="start must hold at least one token")
        given = tf.size(ids)
        total = given + tf.maximum(length, 0)
        buffer = tf.concat([ids, tf.zeros([total - given], tf.int32)], axis=0)
        states = initial_state(self.model, 1)
        k = tf.minimum(top_k, self._size)
        temp = tf.maximum(temperature, 1e-6)

        def body(t, buffer, states):
            logits, states = step(tf.reshape(buffer[t], [1]), states)
            logits = logits / temp + self.banned
            kth = tf.cond(k > 0, lambda: tf.math.top_k(logits, tf.maximum(k, 1)).values[:, -1:],
                          lambda: tf.fill([1, 1], -np.inf))
            logits = tf.where(logits < kth, -np.inf, logits)
            sample = tf.random.stateless_categorical(
                logits, 1, seed=tf.stack([seed, tf.cast(t, tf.int64)]), dtype=tf.int32)[0, 0]
            nxt = tf.where(t + 1 < given, buffer[tf.minimum(t + 1, given - 1)], sample)
            return t + 1, tf.tensor_scatter_nd_update(buffer, [[t + 1]], [nxt]), states

        _, buffer, _ = tf.while_loop(lambda t, *_: t < total - 1, body, (tf.constant(0), buffer, states))
        token_ids = buffer
        if bos >= 0:
            token_ids = token_ids[1:]
        tokens = tf.gather(self.vocabulary, token_ids)
        return {"tokens": tokens, "ids": token_ids, "text": tf.strings.reduce_join(tokens, separator=self._separator)}
