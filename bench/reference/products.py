"""Plain-Keras reference for the products recipe (the task's tf.data pipeline; plain compile + fit)."""

TARGET = None
OVERRIDES = ["train.epochs=8", "train.patience=100"]
