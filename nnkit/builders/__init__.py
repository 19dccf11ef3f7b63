"""Model builders: plain functions returning named functional ``keras.Model`` objects.

    from nnkit.builders import build_cnn
    build_cnn((28, 28, 1), 10).summary()

Every builder takes keyword arguments with defaults, names every layer from
its ``name`` prefix, and rejects bad arguments with a ``ValueError`` quoting
what it received. Builders know layers, not data.
"""

from nnkit.builders.cnn import build_cnn
from nnkit.builders.embedding import build_item2vec
from nnkit.builders.language_model import build_language_model
from nnkit.builders.mlp import build_mlp
from nnkit.builders.perceptron import build_perceptron
from nnkit.builders.rnn import build_rnn
from nnkit.builders.seq2seq import build_seq2seq
from nnkit.builders.temporal import build_conv1d

__all__ = ["build_conv1d", "build_cnn", "build_item2vec", "build_language_model", "build_mlp", "build_perceptron", "build_rnn", "build_seq2seq"]
