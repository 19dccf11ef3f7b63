"""Serializable layers Keras lacks. Importing this package registers them with Keras."""

from nnkit.layers.activations import RandomizedLeakyReLU, StepActivation
from nnkit.layers.embedding import SparseEmbedding
from nnkit.layers.positional import PaddingMask, PositionalEmbedding

__all__ = ["PaddingMask", "PositionalEmbedding", "RandomizedLeakyReLU", "SparseEmbedding", "StepActivation"]
