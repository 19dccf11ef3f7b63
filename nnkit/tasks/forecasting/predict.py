"""Forecasting prediction from a run folder: a CSV of recent values in, forecasts out (the run's endpoint)."""

from __future__ import annotations

import math

import numpy as np

from nnkit.errors import DataError


def predict_csv(ctx, inputs: list, options: dict) -> None:
    from nnkit.datasets.prices import future_dates, read_csv
    from nnkit.runs import write_predictions

    run, echo = ctx.run, ctx.echo
    state = run.state()
    cfg = run.config()
    d = cfg.get("data", {})
    if len(inputs) != 1:
        raise DataError(f"predict: give exactly one CSV of recent values (received {len(inputs)} inputs)")
    series = read_csv(inputs[0], date_column=d.get("date_column", ""),
                      target=d.get("target", "") if d.get("path") else "",
                      features=state["features"], ticker=d.get("ticker", "") if d.get("path") else "",
                      ticker_column=d.get("ticker_column", ""), fill=d.get("fill", "none"),
                      date_format=d.get("date_format", ""))  # the one date reading of training
    W, H_trained = state["window"], state["horizon"]
    horizon = int(options.get("horizon") or H_trained)
    if len(series) < W:
        raise DataError(f"{inputs[0]}: {len(series)} rows; this model needs the last {W} values "
                        f"(data.window = {W})")
    if state["features"] and horizon > H_trained:
        raise DataError(f"--horizon {horizon}: this run was trained for {H_trained} steps and uses features, "
                        "which cannot be extended recursively; retrain with --set data.horizon="
                        f"{horizon}")
    prices = list(series.target[-W:].astype(np.float64))
    dates = list(series.dates[-W:])
    if state["transform"] == "log_return" and min(prices) <= 0:
        raise DataError(f"{inputs[0]}, column {series.target_name!r}: the last {W} values must be positive "
                        "(the model works on log-returns)")
    freq = state["freq"] if state["freq"] in ("B", "D") or state["freq"].endswith("s") else "B"
    endpoint = ctx.endpoint("forecast")  # the one endpoint loader, loaded once
    forecasts, lowers, uppers = [], [], []
    step_dates = []
    # direct for the trained horizon; beyond it, recursive: feed the forecasts back as inputs
    while len(forecasts) < horizon:
        window = np.array(prices[-W:], dtype="float32")[None]
        inputs_ = {"prices": window}
        if state["features"]:
            inputs_["features"] = series.features[-W:].astype("float32")[None]
        if state["calendar"]:
            inputs_["dates"] = np.array([[np.datetime_as_string(x, unit="D") for x in dates[-W:]]])
        out = endpoint(**inputs_)
        new = future_dates(dates[-1], freq, H_trained)
        take = min(H_trained, horizon - len(forecasts))
        base = len(forecasts)
        forecasts += [float(v) for v in out["forecast"][0, :take]]
        if "lower" in out:
            if base == 0:
                lowers += [float(v) for v in out["lower"][0, :take]]
                uppers += [float(v) for v in out["upper"][0, :take]]
            else:  # beyond the validated horizon: widen the last step's band by sqrt(h / H)
                interval = state["interval"]
                for i in range(take):
                    scale = math.sqrt((base + i + 1) / H_trained)
                    f = forecasts[base + i]
                    lo, hi = interval["lower"][-1] * scale, interval["upper"][-1] * scale
                    lowers.append(f * math.exp(lo) if interval["kind"] == "log_ratio" else f + lo)
                    uppers.append(f * math.exp(hi) if interval["kind"] == "log_ratio" else f + hi)
        step_dates += list(new[:take])
        prices += forecasts[base:]
        dates += list(new[:take])
    level = state.get("interval", {}).get("level")
    rows = []
    for h in range(horizon):
        unit = "D" if freq in ("B", "D") else "s"  # intraday series keep their times
        row = {"date": str(np.datetime_as_string(np.datetime64(step_dates[h], "ns"), unit=unit)),
               "step": h + 1, "forecast": round(forecasts[h], 6)}
        if lowers:
            row[f"lower_{int(level * 100)}"] = round(lowers[h], 6)
            row[f"upper_{int(level * 100)}"] = round(uppers[h], 6)
            row["interval"] = "validation residual quantiles" + (" (sqrt-widened, recursive)" if h >= H_trained
                                                                  else "")
        rows.append(row)
    write_predictions(rows, options.get("out"), echo)
