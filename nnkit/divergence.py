"""Training that diverges says so: a NaN or infinite loss stops the run with one line.

Keras's ``TerminateOnNaN`` stops quietly and leaves the rest of the run
(plots, baselines, the report) to trip over NaN weights. Here the first
epoch whose training or validation loss is not finite raises an
``NnkitError`` that names the epoch and what to try; the pipeline records
the run as ``failed`` with that line. Checked once per epoch (a per-batch
hook costs Keras a Python call on every batch); this callback goes first,
so the epoch's checkpoint is never committed with NaN weights.
"""

from __future__ import annotations

import math

import keras

from nnkit.errors import TrainingDiverged


class StopOnDivergence(keras.callbacks.Callback):
    def __init__(self, train_cfg: dict):
        super().__init__()
        self.train_cfg = train_cfg

    def on_epoch_end(self, epoch, logs=None):
        for key in ("loss", "val_loss"):
            value = (logs or {}).get(key)
            if value is None:
                continue
            value = float(value)
            if not math.isfinite(value):
                raise TrainingDiverged(diverged_message(epoch + 1, key, value, self.train_cfg))


def diverged_message(epoch: int, key: str, value: float, train_cfg: dict) -> str:
    rate = float(train_cfg.get("learning_rate", 0.0))
    tries = [f"a lower train.learning_rate (now {rate:g}; try {rate / 10:g})"] if rate > 0 else []
    if not train_cfg.get("clipnorm"):
        tries.append("train.clipnorm = 1.0")
    tries.append("inputs on a smaller scale")
    what = "training loss" if key == "loss" else "validation loss"
    return f"training diverged: the {what} is {value} at epoch {epoch}; try " + ", ".join(tries)


def diverged_outputs_message(metric: str, value, last_epoch: dict, train_cfg: dict) -> str:
    """The model trained without a NaN loss, but its test outputs are not finite numbers."""
    loss = last_epoch.get("loss")
    seen = f" (last training loss {float(loss):.3g})" if loss not in (None, "", "NA") else ""
    message = diverged_message(0, "loss", math.nan, train_cfg)
    advice = message.split("; try ", 1)[1]
    return (f"training diverged: the model's test outputs are not finite numbers ({metric} is {value}){seen}; "
            f"try {advice}")
