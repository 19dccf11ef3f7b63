"""Plain-Keras reference for the perceptron recipe (the task's tf.data pipeline; plain compile + fit)."""

TARGET = ("val_binary_accuracy", 0.93, True)
OVERRIDES = ["train.epochs=40", "train.patience=100"]
