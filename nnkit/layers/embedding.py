"""An Embedding whose lookup and sparse update never copy the whole table."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="nnkit")
class SparseEmbedding(keras.layers.Embedding):
    """``keras.layers.Embedding`` whose lookup reads only the rows it gathers (TensorFlow).

    Keras's Embedding converts the whole table to a tensor before ``take``;
    with a 1,000,000-row table the following in-place sparse update then has
    to copy the table (copy-on-write), every step. Gathering from the
    variable itself (``ResourceGather``) avoids that copy; the gradient is the
    same ``IndexedSlices``. Other backends use the parent's lookup.
    """

    def call(self, inputs):
        if keras.backend.backend() != "tensorflow":
            return super().call(inputs)
        import tensorflow as tf

        if inputs.dtype not in ("int32", "int64"):
            inputs = keras.ops.cast(inputs, "int32")
        outputs = tf.nn.embedding_lookup(self.embeddings.value, inputs)
        return keras.ops.cast(outputs, dtype=self.compute_dtype)


@keras.saving.register_keras_serializable(package="nnkit")
class ContextScores(keras.layers.Layer):
    """Dot products of each target vector with its row of context vectors: ``(b, d), (b, k, d) -> (b, k)``.

    The same values as ``keras.layers.Dot(axes=(1, 2))``, as one einsum: its
    gradient is two batched matrix products, where ``Dot``'s goes through
    ``batch_dot``'s reshapes; the item2vec train step takes about half the
    time (bench/products_real.py, bench/products_scale.py).
    """

    def call(self, inputs):
        target, contexts = inputs
        return keras.ops.einsum("bd,bkd->bk", target, contexts)

    def compute_output_shape(self, input_shape):
        return input_shape[1][:2]
