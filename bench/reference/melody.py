"""Plain-Keras reference for the melody recipe (the task's tf.data pipeline; plain compile + fit)."""

TARGET = None
OVERRIDES = ["train.epochs=8", "train.patience=100"]
