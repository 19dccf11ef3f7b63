"""Plain-Keras reference for the translate recipe (the task's tf.data pipeline; plain compile + fit)."""

TARGET = ("val_token_accuracy", 0.80, True)
OVERRIDES = ["train.epochs=4", "train.patience=100"]
