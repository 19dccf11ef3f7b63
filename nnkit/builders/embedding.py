"""Item embeddings: item2vec, skip-gram with negative sampling (Barkan & Koenigstein 2016) or a full softmax."""

from __future__ import annotations

from nnkit.builders._keras import keras
from nnkit.config import Field

from nnkit.builders.blocks import check_positive


OBJECTIVES = ("negative_sampling", "softmax")

ITEM2VEC_OPTIONS = {  # declared once (see nnkit.builders.rnn.RNN_OPTIONS); num_negatives is the
    # sampler's too, so the task passes it (config key ``negatives``)
    "dim": Field(64, "embedding dimension", min=1),
    "objective": Field("negative_sampling", "'negative_sampling': word2vec's sampled negatives (any catalogue "
                                            "size); 'softmax': every item scored at every step, no sampling "
                                            "(catalogues up to tens of thousands of items; train with Adam)",
                       choices=OBJECTIVES),
}


def build_item2vec(vocab_size: int, *, dim: int = 64, num_negatives: int = 5, shared_negatives: int = 0,
                   noise=None, num_categories: int = 0, objective: str = "negative_sampling",
                   item_words=None, word_weight: float = 1.0, name: str = "item2vec") -> keras.Model:
    """Skip-gram over item ids (negative sampling or full softmax), optionally with a category head.

    Inputs (a list, in this order):
        ``target``: int32 ``(batch,)`` item rows;
        ``contexts``: int32 ``(batch, 1 + num_negatives)``: column 0 is the true
        context item, the others are sampled negatives; with
        ``shared_negatives > 0``, ``(batch, 1)``: the true context only.

    Outputs (a dict):
        ``skipgram``: ``(batch, 1 + num_negatives)`` logits of the dot products
        ``target · context`` (train with sigmoid cross-entropy against
        ``[1, 0, ..., 0]``);
        ``category`` (only when ``num_categories > 0``): ``(batch, num_categories)``
        logits of the target item's category, from the same target embedding.

    With ``objective="softmax"`` the only input is ``target`` and
    ``skipgram`` is ``(batch, vocab_size)`` logits over every item (train with
    :class:`nnkit.layers.SoftmaxContextsLoss` against the centre's context
    rows); the context table is then a :class:`nnkit.layers.SoftmaxContexts`
    with a bias per item.

    ``item_words`` (int ``(vocab_size, width)`` word rows per item, ``-1``
    padded; see :func:`nnkit.tasks.embedding.name_words.item_word_rows`) makes
    the target table a :class:`nnkit.layers.NamedItemEmbedding`: each item's
    vector adds ``word_weight`` times the mean of its name words' vectors.

    The item vectors are the weights of the layer ``{name}_target``. Both
    tables are looked up by gather, so their gradients are ``IndexedSlices``
    touching only the rows in the batch; plain SGD (no momentum) keeps the
    update sparse, Adam and momentum densify it (see docs/products.md).
    """
    check_positive("vocab_size", vocab_size)
    check_positive("dim", dim)
    check_positive("num_negatives", num_negatives)
    check_positive("num_categories", num_categories, allow_zero=True)
    check_positive("shared_negatives", shared_negatives, allow_zero=True)
    if objective not in OBJECTIVES:
        raise ValueError(f"`objective` must be one of {OBJECTIVES}. Received: objective={objective!r}")
    if objective == "softmax" and shared_negatives:
        raise ValueError("`shared_negatives` draws negatives; the softmax objective scores every item and "
                         f"draws none. Received: shared_negatives={shared_negatives}")
    # registered with Keras on import
    from nnkit.layers.embedding import ContextScores, SharedNegativeContexts, SoftmaxContexts, SparseEmbedding

    target = keras.Input(shape=(), dtype="int32", name="target")
    scale = 0.5 / dim  # word2vec's initialisation: small uniform targets, zero contexts
    start = keras.initializers.RandomUniform(-scale, scale)
    if item_words is None:
        table = SparseEmbedding(vocab_size, dim, embeddings_initializer=start, name=f"{name}_target")
    else:
        table = _named_items(vocab_size, dim, item_words, word_weight, start, f"{name}_target")
    target_vectors = table(target)
    if objective == "softmax":  # every item scored: no contexts input, no negatives
        inputs = target
        logits = SoftmaxContexts(vocab_size, dim, name=f"{name}_context")(target_vectors)
    else:
        contexts = keras.Input(shape=(1 if shared_negatives else 1 + num_negatives,), dtype="int32",
                               name="contexts")
        inputs = [target, contexts]
        if shared_negatives:
            table = SharedNegativeContexts(vocab_size, dim, negatives=num_negatives,
                                           pairs_per_negative=shared_negatives, embeddings_initializer="zeros",
                                           name=f"{name}_context")
            logits = table([target_vectors, contexts])
            table.noise_cdf.assign(_cumulative(noise, vocab_size))
        else:
            context_vectors = SparseEmbedding(vocab_size, dim, embeddings_initializer="zeros",
                                              name=f"{name}_context")(contexts)
            logits = ContextScores(name=f"{name}_dot")([target_vectors, context_vectors])
    outputs = {"skipgram": logits}
    if num_categories:
        outputs["category"] = keras.layers.Dense(num_categories, name=f"{name}_category")(target_vectors)
    return keras.Model(inputs, outputs, name=name)


def _named_items(vocab_size: int, dim: int, item_words, word_weight: float, start, name: str):
    import numpy as np

    from nnkit.layers.embedding import NamedItemEmbedding

    rows = np.asarray(item_words)
    if rows.ndim != 2 or rows.shape[0] != vocab_size or rows.shape[1] == 0:
        raise ValueError(f"`item_words` must be ({vocab_size}, width >= 1) word rows. Received: shape {rows.shape}")
    if word_weight < 0:
        raise ValueError(f"`word_weight` must be >= 0. Received: word_weight={word_weight}")
    words = int(rows.max()) + 1 if (rows >= 0).any() else 1
    table = NamedItemEmbedding(vocab_size, dim, words=words, width=rows.shape[1], word_weight=word_weight,
                               embeddings_initializer=start, name=name)
    table.build()
    table.item_words.assign(rows.astype("int32"))
    return table


def _cumulative(noise, vocab_size: int):
    """Cumulative probabilities (float64, last 1.0) of ``noise`` (non-negative weights; None: uniform)."""
    import numpy as np

    weights = np.ones(vocab_size) if noise is None else np.asarray(noise, np.float64)
    if weights.shape != (vocab_size,) or not np.all(np.isfinite(weights)) or weights.min() < 0 or weights.sum() <= 0:
        raise ValueError(f"`noise` must be {vocab_size} non-negative weights, not all zero. "
                         f"Received: shape {weights.shape}")
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]
