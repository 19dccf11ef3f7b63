"""Builders (shapes, parameter counts, names, bad arguments) and nnkit's custom layers."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from nnkit.builders import build_cnn, build_mlp, build_perceptron, build_rnn
from nnkit.layers import RandomizedLeakyReLU, StepActivation


def test_perceptron_is_one_neuron_with_a_step():
    model = build_perceptron(4)
    assert model.count_params() == 5  # 4 weights + 1 bias
    out = model.predict(np.random.default_rng(0).normal(size=(50, 4)).astype("float32"), verbose=0)
    assert set(np.unique(out)) <= {0.0, 1.0}


def test_perceptron_training_step_is_rosenblatts_rule():
    """With squared error and plain SGD, one update is w += lr * (y - y_hat) * x (times 2/N from MSE)."""
    model = build_perceptron(2)
    w0, b0 = np.array([[1.0], [-1.0]], "float32"), np.array([0.0], "float32")
    model.get_layer("perceptron_neuron").set_weights([w0, b0])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss="mean_squared_error")
    x = np.array([[1.0, 2.0]], "float32")  # w.x = -1 -> step 0, but the label is 1
    model.train_on_batch(x, np.array([[1.0]], "float32"))
    w1, b1 = model.get_layer("perceptron_neuron").get_weights()
    np.testing.assert_allclose(w1, w0 + 0.5 * 2 * (1 - 0) * x.T, rtol=1e-6)
    np.testing.assert_allclose(b1, b0 + 0.5 * 2 * 1, rtol=1e-6)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu", "rrelu", "step"])
@pytest.mark.parametrize("norm", ["batch", "layer", "none"])
def test_mlp_shapes_and_parameter_count(activation, norm):
    model = build_mlp((6,), 3, depth=2, width=8, activation=activation, norm=norm, dropout=0.1)
    assert model.output_shape == (None, 3)
    dense = 6 * 8 + 8 * 8 + (8 * 3 + 3)
    extra = {"none": 8 + 8, "batch": 4 * 8 * 2, "layer": 2 * 8 * 2}[norm]  # biases, or norm parameters
    assert model.count_params() == dense + extra
    assert all(layer.name.startswith("mlp") for layer in model.layers)


def test_mlp_flattens_images_and_regresses():
    model = build_mlp((4, 4, 1), 2, output="regression", depth=1, width=5)
    assert model.output_shape == (None, 2)
    assert model.layers[-1].activation.__name__ == "linear"


def test_cnn_shapes_grayscale_and_rgb():
    gray = build_cnn((28, 28, 1), 10, filters=(8, 16))
    assert gray.output_shape == (None, 10)
    rgb = build_cnn((32, 32, 3), 5, filters=(4,), augment=True, norm="layer", activation="rrelu")
    out = rgb(np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3)).astype("float32"))
    np.testing.assert_allclose(np.sum(out, axis=1), 1.0, rtol=1e-5)


def test_cnn_parameter_count():
    conv = 3 * 3 * 1 * 4 + 4
    gap = build_cnn((8, 8, 1), 10, filters=(4,), norm="none", dense_units=0, head_dropout=0.0, head="gap")
    assert gap.count_params() == conv + (4 * 10 + 10)
    flat = build_cnn((8, 8, 1), 10, filters=(4,), norm="none", dense_units=0, head_dropout=0.0)
    assert flat.count_params() == conv + (4 * 4 * 4 * 10 + 10)  # 8x8 pooled to 4x4, 4 channels


def test_cnn_skips_pooling_once_the_map_is_one_pixel():
    model = build_cnn((4, 4, 1), 2, filters=(4, 4, 4, 4))  # 4 -> 2 -> 1 -> no more pooling
    assert model.output_shape == (None, 2)


@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
def test_rnn_heads(cell):
    last = build_rnn((10, 3), 4, cell=cell, depth=2, bidirectional=True, norm="layer")
    assert last.output_shape == (None, 4)
    per_step = build_rnn((None, 3), 3, cell=cell, head="sequence", output_activation="softmax")
    assert per_step(np.zeros((2, 7, 3), "float32")).shape == (2, 7, 3)


def test_rnn_lstm_parameter_count():
    model = build_rnn((5, 2), 1, cell="lstm", units=3)
    assert model.count_params() == 4 * (3 * (2 + 3) + 3) + (3 + 1)


@pytest.mark.parametrize("builder, kwargs, quoted", [
    (build_mlp, {"input_shape": (3,), "num_outputs": 2, "activation": "swish"}, "activation='swish'"),
    (build_mlp, {"input_shape": (3,), "num_outputs": 0}, "num_outputs=0"),
    (build_mlp, {"input_shape": (3,), "num_outputs": 2, "dropout": 1.5}, "dropout=1.5"),
    (build_cnn, {"input_shape": (8, 8, 2), "num_classes": 2}, "input_shape=(8, 8, 2)"),
    (build_cnn, {"input_shape": (8, 8, 1), "num_classes": 2, "pooling": "avgmax"}, "pooling='avgmax'"),
    (build_cnn, {"input_shape": (8, 8, 1), "num_classes": 2, "filters": []}, "filters=[]"),
    (build_rnn, {"input_shape": (5, 2), "num_outputs": 1, "cell": "transformer"}, "cell='transformer'"),
    (build_rnn, {"input_shape": (5,), "num_outputs": 1}, "input_shape=(5,)"),
    (build_rnn, {"input_shape": (5, 2), "num_outputs": 1, "head": "all"}, "head='all'"),
    (build_perceptron, {"num_features": 3, "activation": "relu"}, "activation='relu'"),
])
def test_bad_arguments_are_rejected_quoting_what_was_received(builder, kwargs, quoted):
    with pytest.raises(ValueError, match="Received: " + quoted.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        builder(**kwargs)


def test_rrelu_is_random_in_training_and_the_mean_slope_at_inference():
    layer = RandomizedLeakyReLU(lower=0.1, upper=0.3, seed=1)
    x = -np.ones((1000,), "float32")
    inference = np.asarray(layer(x, training=False))
    np.testing.assert_allclose(inference, -0.2, rtol=1e-6)
    a, b = np.asarray(layer(x, training=True)), np.asarray(layer(x, training=True))
    assert not np.allclose(a, b)  # a new draw per call and per element
    assert len(np.unique(a)) > 900
    assert (-a).min() >= 0.1 - 1e-6 and (-a).max() <= 0.3 + 1e-6
    assert abs((-a).mean() - 0.2) < 0.01  # uniform in [lower, upper]
    positive = np.linspace(0, 3, 7).astype("float32")
    np.testing.assert_array_equal(np.asarray(layer(positive, training=True)), positive)


def test_rrelu_rejects_bad_bounds():
    with pytest.raises(ValueError, match="lower=0.5, upper=0.1"):
        RandomizedLeakyReLU(lower=0.5, upper=0.1)


@pytest.mark.parametrize("layer", [RandomizedLeakyReLU(lower=0.05, upper=0.2, seed=3),
                                   StepActivation(threshold=0.5, surrogate="sigmoid")])
def test_custom_layers_config_round_trip(layer):
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    x = np.linspace(-2, 2, 9).astype("float32")
    np.testing.assert_allclose(np.asarray(clone(x)), np.asarray(layer(x)))


def test_models_with_custom_layers_save_and_load_in_safe_mode(tmp_path):
    model = build_mlp((4,), 2, activation="rrelu")
    perceptron = build_perceptron(4)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    for m in (model, perceptron):
        path = tmp_path / f"{m.name}.keras"
        m.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        np.testing.assert_allclose(loaded.predict(x, verbose=0), m.predict(x, verbose=0), rtol=1e-6)


def test_step_gradient_surrogates():
    import tensorflow as tf

    x = tf.constant([-1.0, 0.5])
    for surrogate, expected in (("identity", [1.0, 1.0]), ("none", [0.0, 0.0])):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = StepActivation(surrogate=surrogate)(x)
        np.testing.assert_array_equal(y.numpy(), [0.0, 1.0])
        gradient = tape.gradient(y, x)  # None: no path at all through stop_gradient
        np.testing.assert_allclose(np.zeros(2) if gradient is None else gradient.numpy(), expected)


def test_rnn_cell_activation_is_a_choice():
    model = build_rnn((5, 2), 1, cell="simple", cell_activation="relu")
    assert model.get_layer("rnn_simple1").cell.activation.__name__ == "relu"
    assert build_rnn((5, 2), 1, cell="gru").get_layer("rnn_gru1").cell.activation.__name__ == "tanh"
    with pytest.raises(ValueError, match="cell_activation='sigmoid'"):
        build_rnn((5, 2), 1, cell_activation="sigmoid")
