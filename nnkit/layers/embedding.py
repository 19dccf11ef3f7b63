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
