"""The exported embedding module: ``embed`` and ``similar`` endpoints over string item ids."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from nnkit.tasks.embedding.baselines import normalize

UNKNOWN = ""  # the id, name and category an unknown item gets in the SavedModel's answers


class ItemEmbeddings(tf.Module):
    """Brute-force cosine top-k inside the graph; unknown ids answer ``known = False``."""

    def __init__(self, vectors: np.ndarray, state: dict):
        super().__init__(name="item_embeddings")
        ids = np.asarray(state["item_ids"], dtype=object).astype(str)
        vocab = ids.size
        categories = np.asarray(state["categories"])
        cat_names = np.asarray(list(state["category_names"]) + [UNKNOWN], dtype=object).astype(str)
        item_categories = cat_names[np.where(categories >= 0, categories, len(cat_names) - 1)]
        names = np.asarray(state["names"], dtype=str) if state.get("names") else np.full(vocab, UNKNOWN)
        self._vocab, self._dim = vocab, vectors.shape[1]
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(ids), tf.range(vocab, dtype=tf.int64)),
            default_value=-1)
        self.vectors = tf.Variable(vectors.astype(np.float32), trainable=False, name="vectors")
        self.normed = tf.Variable(normalize(vectors), trainable=False, name="normed")
        self.ids = tf.Variable(np.append(ids, UNKNOWN), trainable=False, name="ids")
        self.names = tf.Variable(np.append(names, UNKNOWN), trainable=False, name="names")
        self.categories = tf.Variable(np.append(item_categories, UNKNOWN), trainable=False, name="categories")

    def _rows(self, item_ids):
        rows = self.table.lookup(tf.strings.strip(item_ids))
        return rows, rows >= 0

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="item_ids")])
    def embed(self, item_ids):
        rows, known = self._rows(item_ids)
        vec = tf.gather(self.vectors, tf.maximum(rows, 0)) * tf.cast(known, tf.float32)[:, None]
        return {"vector": tf.ensure_shape(vec, [None, self._dim]), "known": known}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="item_ids"),
                                  tf.TensorSpec([], tf.int32, name="k")])
    def similar(self, item_ids, k):
        vocab = self._vocab
        rows, known = self._rows(item_ids)
        k = tf.clip_by_value(k, 1, max(vocab - 1, 1))
        query = tf.gather(self.normed, tf.maximum(rows, 0))
        scores = tf.matmul(query, self.normed, transpose_b=True)
        own = tf.one_hot(rows, vocab, on_value=True, off_value=False)  # rows = -1: all False
        scores = tf.where(own, tf.constant(-np.inf, tf.float32), scores)
        top = tf.math.top_k(scores, k=k)
        unknown_row = tf.fill(tf.shape(top.indices), tf.constant(vocab, tf.int32))
        picked = tf.where(known[:, None], top.indices, unknown_row)
        return {
            "item_ids": tf.gather(self.ids, picked),
            "scores": tf.where(known[:, None], top.values, tf.zeros_like(top.values)),
            "names": tf.gather(self.names, picked),
            "categories": tf.gather(self.categories, picked),
            "known": known,
        }
