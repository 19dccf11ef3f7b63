"""The exported classifiers of the two small classification tasks: raw inputs in, class names out."""

from __future__ import annotations

import tensorflow as tf


class TableClassifierServing(tf.Module):
    """``classify(features)`` on raw feature values: the training scaler lives in the graph."""

    def __init__(self, model, state: dict):
        super().__init__()
        self.model = model
        self.mean = tf.constant(state["mean"], tf.float32)
        self.std = tf.constant(state["std"], tf.float32)
        self.class_names = tf.constant(state["class_names"])
        spec = tf.TensorSpec([None, len(state["features"])], tf.float32, name="features")
        self.classify = tf.function(self._classify, input_signature=[spec])

    def _classify(self, features):
        p = self.model((features - self.mean) / self.std, training=False)[:, 0]
        index = tf.cast(p >= 0.5, tf.int32)
        return {"probability": p, "class_index": index, "class_name": tf.gather(self.class_names, index)}


class ImageClassifierServing(tf.Module):
    """``classify(images)`` on uint8 images of the trained size: rescaling is part of the model."""

    def __init__(self, model, state: dict):
        super().__init__()
        self.model = model
        self.class_names = tf.constant(state["class_names"])
        spec = tf.TensorSpec([None, state["height"], state["width"], state["channels"]], tf.uint8, name="images")
        self.classify = tf.function(self._classify, input_signature=[spec])

    def _classify(self, images):
        probabilities = self.model(tf.cast(images, tf.float32), training=False)
        index = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {"probabilities": probabilities, "class_index": index, "class_name": tf.gather(self.class_names, index),
                "probability": tf.reduce_max(probabilities, axis=-1)}
