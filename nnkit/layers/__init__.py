"""Serializable layers Keras lacks. Importing this package registers them with Keras."""

from nnkit.layers.activations import RandomizedLeakyReLU, StepActivation

__all__ = ["RandomizedLeakyReLU", "StepActivation"]
