"""Training levers: learning-rate warm-up, checkpoint averaging, label smoothing (translation), a minimum
number of optimizer steps (small data sets)."""

from __future__ import annotations

import numpy as np
import pytest

from nnkit.config import TRAIN_SCHEMA, defaults


def train_cfg(**changes) -> dict:
    return {**defaults(TRAIN_SCHEMA), **changes}


def test_warmup_rises_linearly_then_follows_the_schedule():
    from nnkit.errors import ConfigError
    from nnkit.train import make_learning_rate

    constant = make_learning_rate(train_cfg(learning_rate=0.01, warmup_steps=100, epochs=10), steps_per_epoch=50)
    assert [float(constant(s)) for s in (0, 50, 100, 300, 499)] == pytest.approx([0.0, 0.005, 0.01, 0.01, 0.01])
    cosine = make_learning_rate(train_cfg(learning_rate=0.01, warmup_steps=100, epochs=10, schedule="cosine"), 50)
    assert float(cosine(50)) == pytest.approx(0.005) and float(cosine(100)) == pytest.approx(0.01)
    assert float(cosine(300)) < 0.01 and float(cosine(500)) == pytest.approx(0.0, abs=1e-6)
    assert make_learning_rate(train_cfg(learning_rate=0.01), 50) == 0.01  # off: a plain float, as before
    with pytest.raises(ConfigError, match="warmup_steps"):
        make_learning_rate(train_cfg(warmup_steps=10, schedule="exponential"), 50)


def test_min_steps_lengthens_only_the_epochs_of_a_data_set_too_small_for_them():
    from nnkit.train import steps_for_min_steps

    assert steps_for_min_steps(5, 0, 3) == 3  # off: one pass
    assert steps_for_min_steps(5, 1000, 2) == 200  # 5 epochs x 2 steps: each epoch makes 200 steps
    assert steps_for_min_steps(3, 1000, 2) == 334  # rounded up: 3 x 334 >= 1000
    assert steps_for_min_steps(5, 1000, 190) == 200  # just short (MovieLens): 5 % more, not a second pass
    assert steps_for_min_steps(5, 1000, 500) == 500  # a large data set keeps one pass
    assert TRAIN_SCHEMA["min_steps"].default == 0  # only a recipe that needs it turns it on


def test_checkpoint_average_keeps_the_mean_only_when_it_validates_better():
    import keras
    import tensorflow as tf

    from nnkit.averaging import CheckpointAverage

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype="float32")
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    val = tf.data.Dataset.from_tensor_slices((x[:64], y[:64])).batch(32)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    average = CheckpointAverage(3, val)
    model.fit(train, validation_data=val, epochs=4, verbose=0, callbacks=[average], shuffle=False)
    summary = average.summary
    assert summary["epochs"] == [2, 3, 4]  # the last three, ending at the best (still improving) epoch
    final = float(model.evaluate(val, verbose=0, return_dict=True)["loss"])
    kept_loss = summary["val_loss_averaged"] if summary["kept"] else summary["val_loss_without"]
    assert final == pytest.approx(kept_loss, rel=1e-5)
    assert final <= min(summary["val_loss_averaged"], summary["val_loss_without"]) + 1e-6


def test_label_smoothing_trains_on_one_hot_targets():
    import keras

    from nnkit.tasks.translation.task import TranslationTask

    task = TranslationTask()
    state = {"tokenize": "word", "lowercase": False, "punctuation_spacing": True,
             "source_vocab": ["[START]", "[END]", "a", "b"], "target_vocab": ["[START]", "[END]", "x", "y", "z"]}
    pairs = [("a b", "x y z"), ("b", "y")]
    (source, target_in), target_out, mask = next(iter(task._dataset(pairs, state, 2, False, 0, one_hot=True)))
    assert target_out.shape == (2, 4, 7) and mask.numpy().tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert target_out.numpy().argmax(-1)[0].tolist() == [4, 5, 6, 3]  # x y z [END]
    cfg = {"train": {"label_smoothing": 0.1}}
    loss = task.compile_kwargs(cfg, None)["loss"]
    assert isinstance(loss, keras.losses.CategoricalCrossentropy) and loss.get_config()["label_smoothing"] == 0.1
    plain = task.compile_kwargs({"train": {"label_smoothing": 0.0}}, None)["loss"]
    assert isinstance(plain, keras.losses.SparseCategoricalCrossentropy)
