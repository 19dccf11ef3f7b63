"""nnkit: classic neural-network ideas as one-command Keras recipes and importable builders.

Importing the package is cheap: TensorFlow is loaded only by the modules that
train, evaluate or export (see ``nnkit.cli``).
"""

__version__ = "0.1.0"
