"""The per-epoch writers of nnkit's trainer: TensorBoard epoch charts and history.csv."""

from __future__ import annotations

import csv

import numpy as np
import pytest


def _tiny_model():
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.SGD(0.05), "binary_crossentropy", metrics=["binary_accuracy"])
    return model


def _data():
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    return x, (x[:, 0] > 0).astype("float32")


def test_epoch_summaries_are_readable_by_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from nnkit.train import EpochSummaries

    x, y = _data()
    model = _tiny_model()
    model.fit(x, y, validation_data=(x, y), epochs=3, verbose=0, callbacks=[EpochSummaries(tmp_path / "logs")])
    train = EventAccumulator(str(tmp_path / "logs" / "train"))
    validation = EventAccumulator(str(tmp_path / "logs" / "validation"))
    train.Reload(), validation.Reload()
    # the tags keras.callbacks.TensorBoard(update_freq="epoch") writes
    assert sorted(train.Tags()["scalars"]) == ["epoch_binary_accuracy", "epoch_learning_rate", "epoch_loss"]
    assert sorted(validation.Tags()["scalars"]) == ["epoch_binary_accuracy", "epoch_loss"]
    assert [e.step for e in train.Scalars("epoch_loss")] == [0, 1, 2]
    np.testing.assert_allclose([e.value for e in train.Scalars("epoch_learning_rate")], 0.05, rtol=1e-6)
    history = model.history.history
    np.testing.assert_allclose([e.value for e in validation.Scalars("epoch_loss")], history["val_loss"], rtol=1e-6)


def test_history_keeps_one_row_per_epoch_across_a_resume(tmp_path):
    """A killed attempt left rows 0-4 and a torn line; the resumed training restarts at epoch 2."""
    from nnkit.train import AtomicCSVLogger

    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,val_loss\n0,0.9,1\n1,0.8,1\n2,0.7,1\n3,0.6,1\n4,0.5,1\n5,0.4")  # torn: no val_loss
    logger = AtomicCSVLogger(path)
    logger.on_train_begin()
    for epoch in (2, 3, 4, 5):
        logger.on_epoch_end(epoch, {"loss": 0.1 * epoch, "val_loss": 2.0})
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3, 4, 5]
    assert [r["loss"] for r in rows[:2]] == ["0.9", "0.8"]  # rows before the resume point kept as they were
    assert [float(r["loss"]) for r in rows[2:]] == pytest.approx([0.2, 0.3, 0.4, 0.5])
    assert all(r["val_loss"] in ("1", "2.0") for r in rows)
    # a new column rewrites the whole file with the header; earlier rows get NA
    logger.on_epoch_end(6, {"loss": 0.6, "val_loss": 2.0, "learning_rate": 0.01})
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["epoch", "learning_rate", "loss", "val_loss"]
    assert rows[0]["learning_rate"] == "NA" and rows[-1]["learning_rate"] == "0.01"
    assert [int(r["epoch"]) for r in rows] == list(range(7))
