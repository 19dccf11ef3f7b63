"""The forecaster: the configured builder for [window, channels] -> horizon, and its forecasts in prices."""

from __future__ import annotations

import numpy as np

from nnkit.tasks.base import Prepared
from nnkit.tasks.forecasting.data import actual_at, invert, windows_at

ARCHS = ("rnn", "conv1d", "mlp")


def build_forecaster(model_cfg: dict, input_shape, horizon: int):
    """The configured builder (rnn, conv1d or mlp) for [window, channels] -> horizon outputs."""
    from nnkit.builders.mlp import MLP_OPTIONS, build_mlp
    from nnkit.builders.options import build_from_config
    from nnkit.builders.rnn import RNN_OPTIONS, build_rnn
    from nnkit.builders.temporal import CONV1D_OPTIONS, build_conv1d

    if model_cfg["arch"] == "rnn":
        return build_from_config(build_rnn, RNN_OPTIONS, model_cfg, input_shape, horizon, head="last",
                                 name="forecaster")
    if model_cfg["arch"] == "conv1d":
        return build_from_config(build_conv1d, CONV1D_OPTIONS, model_cfg, input_shape, horizon, name="forecaster")
    return build_from_config(build_mlp, MLP_OPTIONS, model_cfg, input_shape, horizon, output="regression",
                             name="forecaster")


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
