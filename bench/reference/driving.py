"""Plain-Keras reference for the driving recipe (the task's tf.data pipeline; plain compile + fit)."""

TARGET = None
OVERRIDES = ["train.epochs=6", "train.patience=100"]
