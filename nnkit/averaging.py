"""Checkpoint averaging: the mean of the weights of the last few epochs, kept when it validates better.

Averaging the parameters of the last checkpoints of a run (Vaswani et al.
2017 average the last 5-20 checkpoints) smooths the noise of the final
steps of training at no training cost. Here the window is the N epochs
ending at the best validation epoch (the weights early stopping restores);
the average replaces those weights only if its validation loss is lower, so
the option can never make the saved model worse on validation.
"""

from __future__ import annotations

from collections import deque

import keras
import numpy as np


class CheckpointAverage(keras.callbacks.Callback):
    """Keep the float weights of the last ``n`` epochs; at the end, try their mean (see the module docstring).

    Placed after early stopping, so that at ``on_train_end`` the model holds
    the best (or last) weights. ``summary`` records what was compared and kept.
    Weights are held in memory; after ``nnkit resume`` only the epochs run
    since the resume are averaged.
    """

    def __init__(self, n: int, val_data, monitor: str = "val_loss"):
        super().__init__()
        self.n, self.val_data, self.monitor = int(n), val_data, monitor
        self.summary: dict = {}

    def on_train_begin(self, logs=None):
        self.recent, self.window, self.best = deque(maxlen=self.n), [], None

    def _floats(self):
        return [w for w in self.model.weights if "float" in str(w.dtype)]  # not integer seed/step counters

    def on_epoch_end(self, epoch, logs=None):
        self.recent.append((epoch, [np.array(w.numpy()) for w in self._floats()]))
        value = (logs or {}).get(self.monitor)
        if value is not None and (self.best is None or value < self.best):
            self.best, self.window = value, list(self.recent)

    def _val_loss(self) -> float:
        return float(self.model.evaluate(self.val_data, verbose=0, return_dict=True)["loss"])

    def on_train_end(self, logs=None):
        if len(self.window) < 2:
            return
        weights = self._floats()
        current = [np.array(w.numpy()) for w in weights]
        current_loss = self._val_loss()
        for i, w in enumerate(weights):
            w.assign(np.mean([saved[i] for _, saved in self.window], axis=0).astype(current[i].dtype))
        averaged_loss = self._val_loss()
        kept = averaged_loss < current_loss
        if not kept:
            for w, value in zip(weights, current):
                w.assign(value)
        self.summary = {"epochs": [e + 1 for e, _ in self.window], "val_loss_without": current_loss,
                        "val_loss_averaged": averaged_loss, "kept": bool(kept)}
