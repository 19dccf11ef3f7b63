"""Plain-Keras reference for the stock recipe (the task's tf.data pipeline; plain compile + fit)."""

TARGET = None  # forecasting has no fixed quality mark on validation loss across tickers
OVERRIDES = ["train.epochs=10", "train.patience=100"]
