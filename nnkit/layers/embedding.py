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


@keras.saving.register_keras_serializable(package="nnkit")
class NamedItemEmbedding(SparseEmbedding):
    """Item vectors that add the mean vector of the item's name words: ``id row + weight * mean(word rows)``.

    Side information as in fastText's subwords and Meta-Prod2Vec (Vasile et
    al. 2016): items named alike ("HAND WARMER RED POLKA DOT", "HAND WARMER
    UNION JACK") share word vectors, so an item bought a few times borrows
    what its words learned from the others. ``item_words`` (a non-trainable
    int32 weight, ``(items, width)``, ``-1`` padded, set by the builder) lists
    each item's word rows; an item with no word is its id row alone.
    :meth:`bake` folds the words into the id table, after which the first
    weight holds the item vectors, as :class:`SparseEmbedding`'s does.
    """

    def __init__(self, input_dim, output_dim, words: int = 1, width: int = 1, word_weight: float = 1.0, **kwargs):
        super().__init__(input_dim, output_dim, **kwargs)
        self.words, self.width, self.word_weight = int(words), int(width), float(word_weight)

    def build(self, input_shape=None):
        super().build()
        self.word_embeddings = self.add_weight(shape=(self.words, self.output_dim), name="word_embeddings",
                                               initializer=self.embeddings_initializer)
        self.item_words = self.add_weight(shape=(self.input_dim, self.width), dtype="int32", trainable=False,
                                          name="item_words", initializer=keras.initializers.Constant(-1))

    def call(self, inputs):
        rows = keras.ops.take(self.item_words, keras.ops.cast(inputs, "int32"), axis=0)
        return super().call(inputs) + self._words_part(rows)

    def _words_part(self, rows, dtype=None):
        dtype = dtype or self.compute_dtype  # mixed precision: the float32 word table computes in bfloat16
        present = keras.ops.cast(rows >= 0, dtype)
        vectors = keras.ops.cast(keras.ops.take(self.word_embeddings, keras.ops.maximum(rows, 0), axis=0), dtype)
        summed = keras.ops.sum(vectors * present[..., None], axis=-2)
        return self.word_weight * summed / keras.ops.maximum(keras.ops.sum(present, axis=-1, keepdims=True), 1.0)

    def item_vectors(self):
        """Every item's vector (id row plus its words), a float32 NumPy array ``(items, dim)``."""
        return keras.ops.convert_to_numpy(self.embeddings + self._words_part(self.item_words, "float32"))

    def bake(self, vectors=None):
        """Make ``vectors`` (default: :meth:`item_vectors`) the id table and zero the word table."""
        self.embeddings.assign(self.item_vectors() if vectors is None else vectors)
        self.word_embeddings.assign(keras.ops.zeros_like(self.word_embeddings))

    @property
    def variable_serialization_spec(self):
        # Embedding saves the variables its spec names: the word table and the item's words travel with it
        return {mode: [*names, "word_embeddings", "item_words"]
                for mode, names in super().variable_serialization_spec.items()}

    def get_config(self):
        return {**super().get_config(), "words": self.words, "width": self.width, "word_weight": self.word_weight}


@keras.saving.register_keras_serializable(package="nnkit")
class ContextScores(keras.layers.Layer):
    """Dot products of each target vector with its row of context vectors: ``(b, d), (b, k, d) -> (b, k)``.

    The same values as ``keras.layers.Dot(axes=(1, 2))``, as one einsum: its
    gradient is two batched matrix products, where ``Dot``'s goes through
    ``batch_dot``'s reshapes; the item2vec train step takes about half the
    time (bench/products_real.py, bench/products_scale.py).
    """

    def call(self, inputs):
        target, contexts = inputs
        return keras.ops.einsum("bd,bkd->bk", target, contexts)

    def compute_output_shape(self, input_shape):
        return input_shape[1][:2]


@keras.saving.register_keras_serializable(package="nnkit")
class SharedNegativeContexts(SparseEmbedding):
    """The context table, scoring each target against its true context and negatives shared by the batch.

    ``[target_vectors (b, d), contexts (b, 1)] -> (b, 1 + s)`` logits:
    column 0 is ``target · context``, the others ``target · negative`` for
    ``s = ceil(b * negatives / pairs_per_negative)`` items drawn once per call
    from the noise distribution (``noise_cdf``, a non-trainable weight the
    builder sets) and shared by every row, as ``tf.nn.sampled_softmax_loss``
    shares its samples. Per pair this reads and updates about one context row
    instead of word2vec's 1 + negatives, and the scores against the negatives
    are one matrix product; :class:`SharedNegativesLoss` weighs them back to
    ``negatives`` per pair. Each drawn row is updated by about
    ``pairs_per_negative`` pairs at once: the bound keeps a rare item's lumped
    update from overshooting (a few hundred diverged with plain SGD at rate 0.5).
    """

    def __init__(self, input_dim, output_dim, negatives: int = 5, pairs_per_negative: int = 64, seed=None,
                 **kwargs):
        super().__init__(input_dim, output_dim, **kwargs)
        self.negatives = int(negatives)
        self.pairs_per_negative = int(pairs_per_negative)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape=None):
        super().build()
        # float64: a million items' cumulative probabilities stay distinct
        self.noise_cdf = self.add_weight(shape=(self.input_dim,), dtype="float64", trainable=False,
                                         name="noise_cdf", initializer=_UniformCdf())

    def call(self, inputs, training=None):
        targets, contexts = inputs
        positives = super().call(keras.ops.reshape(contexts, (-1,)))
        pairs = keras.ops.shape(targets)[0]
        samples = keras.ops.maximum(1, -(-pairs * self.negatives // self.pairs_per_negative))
        # fresh draws for every training step; outside training the same draws every call, so a saved
        # model reproduces its outputs (the export checks compare them)
        seed = self.seed_generator if training else (self.seed or 0)
        draws = keras.random.uniform((samples,), dtype="float64", seed=seed)
        noise = keras.ops.searchsorted(self.noise_cdf, draws, side="right")
        negatives = super().call(keras.ops.minimum(noise, self.input_dim - 1))
        scores = keras.ops.sum(targets * positives, axis=-1, keepdims=True)
        return keras.ops.concatenate([scores, keras.ops.matmul(targets, keras.ops.transpose(negatives))], axis=1)

    @property
    def variable_serialization_spec(self):
        # Embedding saves the variables its spec names: the noise distribution travels with the table
        return {mode: [*names, "noise_cdf"] for mode, names in super().variable_serialization_spec.items()}

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], None)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(self.compute_output_shape([inputs[0].shape]), dtype=self.compute_dtype)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "negatives": self.negatives,
                "pairs_per_negative": self.pairs_per_negative, "seed": self.seed}


@keras.saving.register_keras_serializable(package="nnkit")
class _UniformCdf(keras.initializers.Initializer):
    """A uniform noise distribution's cumulative probabilities (until the builder sets the real one)."""

    def __call__(self, shape, dtype=None):
        return keras.ops.cast(keras.ops.arange(1, shape[0] + 1) / shape[0], dtype or "float64")


@keras.saving.register_keras_serializable(package="nnkit")
class SharedNegativesLoss(keras.losses.Loss):
    """Skip-gram loss on :class:`SharedNegativeContexts` scores, per pair as word2vec's with ``negatives``.

    ``(-log σ(positive) - negatives / samples · Σ log σ(-negative)) / (1 + negatives)``:
    the shared draws weigh as ``negatives`` per-pair draws would in
    expectation, and dividing by ``1 + negatives`` matches Keras's binary
    cross-entropy (a mean over its columns), so ``train.learning_rate`` means
    the same with shared and with per-pair negatives. ``y_true`` is the
    positive column's label (1).
    """

    def __init__(self, negatives: int = 5, reduction="sum", name="shared_negatives_loss", **kwargs):
        super().__init__(reduction=reduction, name=name, **kwargs)
        self.negatives = int(negatives)

    def call(self, y_true, y_pred):
        positive, negative = y_pred[:, :1], y_pred[:, 1:]
        weight = self.negatives / keras.ops.cast(keras.ops.shape(negative)[1], y_pred.dtype)
        y_true = keras.ops.reshape(keras.ops.cast(y_true, y_pred.dtype), (-1, 1))
        loss = keras.ops.sum(keras.ops.binary_crossentropy(y_true, positive, from_logits=True), axis=-1)
        loss += weight * keras.ops.sum(keras.ops.softplus(negative), axis=-1)
        return loss / (1 + self.negatives)

    def get_config(self):
        return {**super().get_config(), "negatives": self.negatives}


@keras.saving.register_keras_serializable(package="nnkit")
class SoftmaxContexts(keras.layers.Layer):
    """The context table as a full softmax layer: ``target_vectors (b, d) -> logits (b, items)``.

    ``logits = target · contextsᵀ + bias``: every item is scored at every
    step, so no negatives are sampled and a rarely seen item's vector gets the
    exact expected push away from all the others, not a few random draws
    (the noise that made rare items crowd the neighbour lists on MovieLens).
    The bias takes item popularity, so the vectors need not. The table is
    called ``embeddings`` like :class:`SparseEmbedding`'s, so the PPMI-SVD
    start and the item vectors read it the same way. Cost: ``b x items x d``
    per step, fine for catalogues of thousands of items, not millions
    (use negative sampling there).
    """

    def __init__(self, input_dim: int, output_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)

    def build(self, input_shape=None):
        # zeros, as word2vec's context table: the targets' small random start breaks the symmetry
        self.embeddings = self.add_weight(shape=(self.input_dim, self.output_dim), initializer="zeros",
                                          name="embeddings")
        self.bias = self.add_weight(shape=(self.input_dim,), initializer="zeros", name="bias")

    def call(self, targets):
        return keras.ops.matmul(targets, keras.ops.transpose(self.embeddings)) + self.bias

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.input_dim)

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim}


@keras.saving.register_keras_serializable(package="nnkit")
class SoftmaxContextsLoss(keras.losses.Loss):
    """Skip-gram's full-softmax loss for one centre and all its contexts.

    ``y_true``: ``(b, c)`` context item rows, ``-1`` where a centre has fewer
    than ``c`` contexts; ``y_pred``: ``(b, items)`` logits. Per centre:
    ``-Σ_contexts log softmax(logits)[context]``, the negative log-likelihood
    of every context in the window, which negative sampling approximates.
    """

    def __init__(self, reduction="sum_over_batch_size", name="softmax_contexts_loss", **kwargs):
        super().__init__(reduction=reduction, name=name, **kwargs)

    def call(self, y_true, y_pred):
        contexts = keras.ops.cast(y_true, "int32")
        log_probs = keras.ops.log_softmax(y_pred, axis=-1)
        picked = keras.ops.take_along_axis(log_probs, keras.ops.maximum(contexts, 0), axis=1)
        return -keras.ops.sum(keras.ops.where(contexts >= 0, picked, 0.0), axis=-1)
