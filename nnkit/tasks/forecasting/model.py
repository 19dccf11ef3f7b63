"""The forecaster: the configured builder for [window, channels] -> horizon, and its forecasts in prices."""

from __future__ import annotations

import numpy as np

from nnkit.tasks.base import Prepared
from nnkit.tasks.forecasting.data import actual_at, invert, windows_at

ARCHS = ("rnn", "conv1d", "mlp")


def build_forecaster(model_cfg: dict, input_shape, horizon: int):
    """The configured builder (rnn, conv1d or mlp) for [window, channels] -> horizon outputs."""
    m = model_cfg
    if m["arch"] == "rnn":
        from nnkit.builders.rnn import build_rnn

        return build_rnn(input_shape, horizon, cell=m["cell"], units=m["units"], depth=m["depth"],
                         bidirectional=m["bidirectional"], norm=m["norm"], dropout=m["dropout"],
                         recurrent_dropout=m["recurrent_dropout"], head="last", dense_units=m["dense_units"],
                         name="forecaster")
    if m["arch"] == "conv1d":
        from nnkit.builders.temporal import build_conv1d

        return build_conv1d(input_shape, horizon, filters=m["filters"], kernel_size=m["kernel_size"],
                            activation=m["activation"], norm=m["norm"], dropout=m["dropout"],
                            dense_units=m["dense_units"], name="forecaster")
    from nnkit.builders.mlp import build_mlp

    return build_mlp(input_shape, horizon, depth=m["depth"], width=m["width"], activation=m["activation"],
                     norm=m["norm"], dropout=m["dropout"], output="regression", name="forecaster")


def model_forecast(model, prepared: Prepared, origins: np.ndarray) -> np.ndarray:
    x = windows_at(prepared, origins)
    scaled = model.predict(x, batch_size=512, verbose=0)
    return invert(prepared.extra["prices"][origins], scaled, prepared.state)


def interval_from_residuals(prepared: Prepared, origins, predicted: np.ndarray, level: float) -> dict:
    """Per-step residual quantiles on the validation part (log ratio for log-returns, else difference)."""
    actual = actual_at(prepared, origins)
    if prepared.state["transform"] == "log_return":
        residual = np.log(actual / predicted)
    else:
        residual = actual - predicted
    lo, hi = (1 - level) / 2, (1 + level) / 2
    return {"level": level, "method": "validation residual quantiles",
            "kind": "log_ratio" if prepared.state["transform"] == "log_return" else "difference",
            "lower": np.quantile(residual, lo, axis=0).tolist(),
            "upper": np.quantile(residual, hi, axis=0).tolist(),
            "n": int(len(origins))}
