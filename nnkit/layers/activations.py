"""Activations from the notes that Keras has no layer for: RReLU and the Heaviside step."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="nnkit")
class RandomizedLeakyReLU(keras.layers.Layer):
    """Randomized leaky ReLU (RReLU; Xu et al. 2015, "Empirical Evaluation of Rectified
    Activations in Convolutional Network").

    For negative inputs the slope ``a`` is drawn uniformly from ``[lower, upper]``
    independently per element while training, and fixed to the mean
    ``(lower + upper) / 2`` at inference, which makes inference deterministic.

    Args:
        lower: smallest slope (default 1/8 as in the paper).
        upper: largest slope (default 1/3 as in the paper).
        seed: optional seed for the slope draws.
    """

    def __init__(self, lower: float = 1.0 / 8.0, upper: float = 1.0 / 3.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= lower <= upper:
            raise ValueError(f"RandomizedLeakyReLU needs 0 <= lower <= upper. Received: lower={lower}, upper={upper}")
        self.lower = float(lower)
        self.upper = float(upper)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=False):
        if training:
            slope = keras.random.uniform(ops.shape(inputs), minval=self.lower, maxval=self.upper,
                                         dtype=inputs.dtype, seed=self.seed_generator)
        else:
            slope = ops.cast((self.lower + self.upper) / 2.0, inputs.dtype)
        return ops.where(inputs >= 0, inputs, inputs * slope)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "lower": self.lower, "upper": self.upper, "seed": self.seed}


@keras.saving.register_keras_serializable(package="nnkit")
class StepActivation(keras.layers.Layer):
    """Heaviside step: 1 where ``x >= threshold``, else 0 (the perceptron's activation).

    The forward pass is always the exact step. Its true gradient is zero almost
    everywhere, so gradients flow through a straight-through surrogate:

    - ``"identity"`` (default): as if the activation were ``x``. With a squared
      error loss this makes gradient descent *exactly* Rosenblatt's perceptron
      rule, ``w += lr * (y - step(w.x + b)) * x``.
    - ``"sigmoid"``: as if it were ``sigmoid(x)``.
    - ``"none"``: no gradient (the bare step).
    """

    SURROGATES = ("identity", "sigmoid", "none")

    def __init__(self, threshold: float = 0.0, surrogate: str = "identity", **kwargs):
        super().__init__(**kwargs)
        if surrogate not in self.SURROGATES:
            raise ValueError(f"surrogate must be one of {self.SURROGATES}. Received: surrogate={surrogate!r}")
        self.threshold = float(threshold)
        self.surrogate = surrogate
        self.supports_masking = True

    def call(self, inputs):
        shifted = inputs - ops.cast(self.threshold, inputs.dtype)
        step = ops.cast(shifted >= 0, inputs.dtype)
        if self.surrogate == "none":
            return ops.stop_gradient(step)
        smooth = shifted if self.surrogate == "identity" else ops.sigmoid(shifted)
        return smooth + ops.stop_gradient(step - smooth)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold, "surrogate": self.surrogate}
