"""Serializable layers Keras lacks. Importing this package registers them with Keras."""

from nnkit.layers.activations import RandomizedLeakyReLU, StepActivation
from nnkit.layers.embedding import (ContextScores, NamedItemEmbedding, SharedNegativeContexts, SharedNegativesLoss,
                                    SoftmaxContexts, SoftmaxContextsLoss, SparseEmbedding)
from nnkit.layers.positional import PaddingMask, PositionalEmbedding

__all__ = ["ContextScores", "NamedItemEmbedding", "PaddingMask", "PositionalEmbedding", "RandomizedLeakyReLU", "SharedNegativeContexts",
           "SharedNegativesLoss", "SoftmaxContexts", "SoftmaxContextsLoss", "SparseEmbedding", "StepActivation"]
