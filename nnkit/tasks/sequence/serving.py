"""The exported sequence module: raw sensor sequences (NaN rows = dropouts) in, probabilities and labels out."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


class SequenceServing(tf.Module):
    """Endpoints ``predict(x, lengths)`` and ``predict_masked(x, mask)``; scaling lives in the graph."""

    def __init__(self, model, state: dict, *, binary: bool, per_step: bool, threshold: float):
        super().__init__()
        self.model = model
        self.class_names = tf.constant(list(state["class_names"]))
        self.mean = tf.constant(np.asarray(state["mean"], np.float32))
        self.std = tf.constant(np.asarray(state["std"], np.float32))
        self._binary, self._per_step, self._threshold = binary, per_step, threshold
        features = len(state["feature_names"])
        x_spec = tf.TensorSpec([None, None, features], tf.float32, name="x")
        self.predict = tf.function(self._predict, input_signature=[x_spec, tf.TensorSpec([None], tf.int32,
                                                                                         name="lengths")])
        self.predict_masked = tf.function(self._predict_masked,
                                          input_signature=[x_spec, tf.TensorSpec([None, None], tf.int32,
                                                                                 name="mask")])

    def _predict(self, x, lengths):
        """x: raw sensors [B, T, F], padded; NaN rows are dropouts. lengths: [B] steps."""
        inside = tf.sequence_mask(lengths, tf.shape(x)[1])
        observed = inside & ~tf.reduce_any(tf.math.is_nan(x), axis=-1)
        return self._run(x, observed, lengths)

    def _predict_masked(self, x, mask):
        """x: raw sensors [B, T, F]; mask: [B, T], 1 = observed step, 0 = padding or dropout."""
        steps = tf.range(1, tf.shape(x)[1] + 1)
        lengths = tf.reduce_max(tf.where(mask > 0, steps[None, :], 0), axis=1)
        observed = (mask > 0) & ~tf.reduce_any(tf.math.is_nan(x), axis=-1)
        return self._run(x, observed, lengths)

    def _run(self, x, observed, lengths):
        x = tf.cast(x, tf.float32)
        scaled = (tf.where(tf.math.is_nan(x), 0.0, x) - self.mean) / self.std
        inputs = tf.concat([scaled, tf.ones_like(scaled[..., :1])], axis=-1)
        inputs = tf.where(observed[..., None], inputs, 0.0)
        out = self.model(inputs, training=False)
        if self._binary:
            p = tf.reshape(out, [-1])
            index = tf.cast(p >= self._threshold, tf.int32)
            return {"probability": p, "label": tf.gather(self.class_names, index),
                    "probabilities": tf.stack([1 - p, p], axis=-1)}
        index = tf.argmax(out, axis=-1, output_type=tf.int32)
        label = tf.gather(self.class_names, index)
        if self._per_step:
            inside = tf.sequence_mask(lengths, tf.shape(x)[1])
            label = tf.where(inside, label, "")
            out = tf.where(inside[..., None], out, 0.0)
        return {"probabilities": out, "label": label, "probability": tf.reduce_max(out, axis=-1)}
