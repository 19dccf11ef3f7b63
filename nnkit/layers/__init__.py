"""Serializable layers Keras lacks. Importing this package registers them with Keras."""

from nnkit.layers.activations import RandomizedLeakyReLU, StepActivation
from nnkit.layers.embedding import SparseEmbedding

__all__ = ["RandomizedLeakyReLU", "SparseEmbedding", "StepActivation"]
