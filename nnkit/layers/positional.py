"""Token plus learned position embedding (the Transformer seq2seq's input layer), and its padding mask."""

import keras


@keras.saving.register_keras_serializable(package="nnkit")
class PositionalEmbedding(keras.layers.Layer):
    """Token embedding plus a learned position embedding; id 0 is padding (masked)."""

    def __init__(self, vocab_size, sequence_length, output_dim, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.sequence_length = sequence_length
        self.output_dim = output_dim
        self.token_embeddings = keras.layers.Embedding(vocab_size, output_dim, name="token")
        self.position_embeddings = keras.layers.Embedding(sequence_length, output_dim, name="position")

    def build(self, input_shape):
        self.token_embeddings.build(input_shape)
        self.position_embeddings.build((None,))
        super().build(input_shape)

    def call(self, inputs):
        length = keras.ops.shape(inputs)[-1]
        positions = keras.ops.arange(0, length, 1)
        return self.token_embeddings(inputs) + self.position_embeddings(positions)

    def compute_mask(self, inputs, mask=None):
        return keras.ops.not_equal(inputs, 0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, sequence_length=self.sequence_length,
                      output_dim=self.output_dim)
        return config


@keras.saving.register_keras_serializable(package="nnkit")
class PaddingMask(keras.layers.Layer):
    """Ids [N, S] -> bool [N, S], True where the id is not padding (0).

    Keras 3's ``MultiHeadAttention`` takes only the *query's* Keras mask by
    itself; padded keys must be given as ``value_mask``, or every position
    attends to the padding, and an output depends on how long the other
    sentences of its batch are.
    """

    def call(self, inputs):
        return keras.ops.not_equal(inputs, 0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)
