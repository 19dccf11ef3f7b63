"""Item embeddings: item2vec, skip-gram with negative sampling (Barkan & Koenigstein 2016)."""

from __future__ import annotations

from nnkit.builders._keras import keras
from nnkit.config import Field

from nnkit.builders.blocks import check_positive


ITEM2VEC_OPTIONS = {  # declared once (see nnkit.builders.rnn.RNN_OPTIONS); num_negatives is the
    # sampler's too, so the task passes it (config key ``negatives``)
    "dim": Field(64, "embedding dimension", min=1),
}


def build_item2vec(vocab_size: int, *, dim: int = 64, num_negatives: int = 5, num_categories: int = 0,
                   name: str = "item2vec") -> keras.Model:
    """Skip-gram with negative sampling over item ids, optionally with a category head.

    Inputs (a list, in this order):
        ``target``: int32 ``(batch,)`` item rows;
        ``contexts``: int32 ``(batch, 1 + num_negatives)``: column 0 is the true
        context item, the others are sampled negatives.

    Outputs (a dict):
        ``skipgram``: ``(batch, 1 + num_negatives)`` logits of the dot products
        ``target · context`` (train with sigmoid cross-entropy against
        ``[1, 0, ..., 0]``);
        ``category`` (only when ``num_categories > 0``): ``(batch, num_categories)``
        logits of the target item's category, from the same target embedding.

    The item vectors are the weights of the layer ``{name}_target``. Both
    tables are looked up by gather, so their gradients are ``IndexedSlices``
    touching only the rows in the batch; plain SGD (no momentum) keeps the
    update sparse, Adam and momentum densify it (see docs/products.md).
    """
    check_positive("vocab_size", vocab_size)
    check_positive("dim", dim)
    check_positive("num_negatives", num_negatives)
    check_positive("num_categories", num_categories, allow_zero=True)
    from nnkit.layers.embedding import ContextScores, SparseEmbedding  # registered with Keras on import
    target = keras.Input(shape=(), dtype="int32", name="target")
    contexts = keras.Input(shape=(1 + num_negatives,), dtype="int32", name="contexts")
    scale = 0.5 / dim  # word2vec's initialisation: small uniform targets, zero contexts
    target_vectors = SparseEmbedding(
        vocab_size, dim, embeddings_initializer=keras.initializers.RandomUniform(-scale, scale),
        name=f"{name}_target")(target)
    context_vectors = SparseEmbedding(vocab_size, dim, embeddings_initializer="zeros",
                                   name=f"{name}_context")(contexts)
    logits = ContextScores(name=f"{name}_dot")([target_vectors, context_vectors])
    outputs = {"skipgram": logits}
    if num_categories:
        outputs["category"] = keras.layers.Dense(num_categories, name=f"{name}_category")(target_vectors)
    return keras.Model([target, contexts], outputs, name=name)
