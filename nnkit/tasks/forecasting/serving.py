"""The exported forecasting module: raw prices (and features, ISO dates) in, prices and interval out.

The transform, the scaling and the inversion all live in the graph. TensorFlow
is imported here at module level; the task imports this file only when it serves.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from nnkit.tasks.forecasting.calendar import tf_calendar_features


class ForecastServing(tf.Module):
    """``forecast(prices[, features][, dates])`` -> ``forecast`` (and ``lower``/``upper``) in price units.

    The endpoint takes exactly the inputs this run uses, so its signature names
    them: one plain method per input combination, wrapped in a ``tf.function``
    with the run's shapes when the module is made.
    """

    def __init__(self, model, state: dict):
        super().__init__()
        self.model = model
        W, F = state["window"], len(state["features"])
        self._transform, self._features, self._calendar = state["transform"], F, state["calendar"]
        self._freq, self._interval = state["freq"], state.get("interval")
        self._mean = tf.constant(state["mean"], tf.float32)
        self._std = tf.constant(state["std"], tf.float32)
        specs = [tf.TensorSpec([None, W], tf.float32, name="prices")]
        if F:
            specs.append(tf.TensorSpec([None, W, F], tf.float32, name="features"))
        if state["calendar"]:
            specs.append(tf.TensorSpec([None, W], tf.string, name="dates"))
        method = {(True, True): self._forecast_features_dates, (True, False): self._forecast_features,
                  (False, True): self._forecast_dates, (False, False): self._forecast_prices}
        self.forecast = tf.function(method[(bool(F), bool(state["calendar"]))], input_signature=specs)

    def _forecast_features_dates(self, prices, features, dates):
        return self._run(prices, features, dates)

    def _forecast_features(self, prices, features):
        return self._run(prices, features)

    def _forecast_dates(self, prices, dates):
        return self._run(prices, dates=dates)

    def _forecast_prices(self, prices):
        return self._run(prices)

    def _run(self, prices, features=None, dates=None):
        y = self.model(self._to_inputs(prices, features, dates), training=False)
        return self._outputs(self._from_outputs(prices, y))

    def _to_inputs(self, prices, features, dates):
        transform = self._transform
        if transform == "log_return":
            logs = tf.math.log(prices)
            channels = [logs[:, 1:] - logs[:, :-1]]
        elif transform == "diff":
            channels = [prices[:, 1:] - prices[:, :-1]]
        else:
            channels = [prices]
        x = [channels[0][..., None]]
        if self._features:
            squashed = tf.math.asinh(features)
            x.append(squashed if transform == "none" else squashed[:, 1:] - squashed[:, :-1])
        if self._calendar:
            cal = tf_calendar_features(dates, self._freq)
            x.append(cal if transform == "none" else cal[:, 1:])
        x = tf.concat(x, axis=-1)
        return (x - self._mean) / self._std

    def _from_outputs(self, prices, y):
        z = tf.cast(y, tf.float32) * self._std[0] + self._mean[0]
        last = prices[:, -1:]
        if self._transform == "log_return":
            return last * tf.exp(tf.cumsum(z, axis=1))
        if self._transform == "diff":
            return last + tf.cumsum(z, axis=1)
        return z

    def _outputs(self, forecast):
        out = {"forecast": forecast}
        interval = self._interval
        if interval:
            lower = tf.constant(interval["lower"], tf.float32)
            upper = tf.constant(interval["upper"], tf.float32)
            if interval["kind"] == "log_ratio":
                out["lower"], out["upper"] = forecast * tf.exp(lower), forecast * tf.exp(upper)
            else:
                out["lower"], out["upper"] = forecast + lower, forecast + upper
        return out


def serving_example(state: dict) -> dict:
    """Example raw inputs: a gently rising random walk of positive prices."""
    W, F = state["window"], len(state["features"])
    rng = np.random.default_rng(0)
    prices = 100 * np.exp(np.cumsum(rng.normal(0.0005, 0.01, size=(3, W)), axis=1))
    example = {"prices": prices.astype("float32")}
    if F:
        example["features"] = np.abs(rng.normal(1e6, 1e5, size=(3, W, F))).astype("float32")
    if state["calendar"]:
        from nnkit.datasets.prices import future_dates

        start = np.datetime64("2013-01-02")
        dates = future_dates(start, state["freq"] if state["freq"] in ("B", "D") else "D", W)
        example["dates"] = np.array([np.datetime_as_string(dates, unit="D")] * 3)
    return example
