"""Time-series forecasting: a window of past prices in, the next ``horizon`` prices out.

Honest by construction:

* the split is chronological (train | validation | test) and every window is
  assigned to the part its *targets* fall in; windows whose targets straddle
  a boundary are dropped;
* scalers are fit on the training part alone;
* the model works on log-returns by default (``data.transform``) and every
  number it reports is back in price units;
* the baselines (persistence, drift, seasonal naive, ridge on the same lagged
  window) are scored on exactly the test windows the model is scored on, and
  a Diebold-Mariano test says whether the model differs from persistence.

The exported SavedModel takes a window of raw prices (plus raw features and
ISO dates when the run uses them) and returns the next ``horizon`` prices with
an interval from the validation residual quantiles; the transform, the
scaling and the inversion all live in the graph.

Index conventions (``p`` = prices, ``n`` rows): a window's *origin* ``T`` is
its last observed row; it sees ``p[T-W+1 .. T]`` (``W = data.window``) and
predicts ``p[T+1 .. T+H]``. With a returns transform the model input is the
``W-1`` returns inside the window.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from nnkit.config import Field
from nnkit.errors import DataError, NnkitError
from nnkit.tasks.base import Evaluation, Prepared, Task

TRANSFORMS = ("log_return", "diff", "none")
ARCHS = ("rnn", "conv1d", "mlp")
CALENDAR_CHANNELS = ("next_dow_sin", "next_dow_cos", "next_dom_sin", "next_dom_cos", "next_doy_sin",
                     "next_doy_cos")
BASELINES = ("persistence", "drift", "seasonal_naive", "ridge")
MIN_TRAIN_WINDOWS = 20


class ForecastingTask(Task):
    name = "forecasting"
    schema = {
        "data": {
            "ticker": Field("", "bundled: AAPL, GOOG, IBM, MSFT or FB (empty = AAPL); CSV: value of the "
                                "ticker column to use"),
            "date_column": Field("", "CSV date column (empty = a column named Date/date/timestamp, "
                                     "else the first)"),
            "target": Field("", "column to forecast (empty = Adj Close, else Close, else the only numeric "
                                "column; bundled: adj_close)"),
            "features": Field([], "extra input columns (e.g. [\"Volume\"]); model inputs only", item_type=str),
            "ticker_column": Field("", "CSV column naming the ticker in a long file (empty = ticker/symbol)"),
            "fill": Field("none", "missing values: fail, or carry the last value forward",
                          choices=("none", "ffill")),
            "transform": Field("log_return", "what the model predicts", choices=TRANSFORMS),
            "calendar": Field(False, "add sin/cos of day of week/month/year of each row's next date (daily data)"),
            "window": Field(30, "past values the model sees (prices in the serving input)", min=3),
            "horizon": Field(1, "future steps predicted at once (direct multi-step)", min=1),
            "val_fraction": Field(0.15, "validation share (chronological, before the test part)",
                                  min=0.05, max=0.5),
            "test_fraction": Field(0.15, "test share (the most recent rows)", min=0.05, max=0.5),
        },
        "model": {
            "arch": Field("rnn", "model family", choices=ARCHS),
            "cell": Field("gru", "rnn: recurrent cell", choices=("simple", "lstm", "gru")),
            "units": Field(32, "rnn: units per recurrent layer", min=1),
            "depth": Field(1, "rnn: stacked recurrent layers; mlp: hidden layers", min=1),
            "bidirectional": Field(False, "rnn: read the window both ways"),
            "norm": Field("none", "normalisation after each layer", choices=("batch", "layer", "none")),
            "dropout": Field(0.2, "dropout after each layer", min=0.0, max=0.9),
            "recurrent_dropout": Field(0.0, "rnn: dropout on the recurrent state", min=0.0, max=0.9),
            "filters": Field([32, 32, 32, 32], "conv1d: filters per causal block (dilation doubles each block)",
                             min=1),
            "kernel_size": Field(3, "conv1d: kernel width", min=1),
            "width": Field(64, "mlp: hidden units", min=1),
            "activation": Field("relu", "conv1d/mlp: hidden activation",
                                choices=("sigmoid", "tanh", "relu", "leaky_relu", "rrelu", "step")),
            "dense_units": Field(0, "rnn/conv1d: hidden dense layer before the head (0 = none)", min=0),
            "loss": Field("mse", "training loss on the scaled transformed target", choices=("mse", "huber", "mae")),
        },
        "eval": {
            "season": Field(0, "seasonal-naive period in rows (0 = by frequency: 5 business days, 7 days, "
                                      "a day of intraday rows, 52 weeks, 12 months)",
                            min=0),
            "ridge_alpha": Field(1.0, "ridge baseline L2 strength (on the scaled window)", min=0.0),
            "interval": Field(0.9, "prediction interval coverage (validation residual quantiles)",
                              min=0.5, max=0.99),
        },
    }
    train_defaults = {"epochs": 40, "batch_size": 64, "patience": 6}
    predict_options = frozenset({"horizon"})

    # -- data ----------------------------------------------------------------------------
    def load(self, cfg: dict) -> Prepared:
        from nnkit.datasets.prices import load_series
        from nnkit.runs import fingerprint

        series = load_series(cfg["data"])
        n = len(series)
        d = cfg["data"]
        n_test = int(round(n * d["test_fraction"]))
        n_val = int(round(n * d["val_fraction"]))
        check_length(series, d, n - n_val - n_test, n_val, n_test)
        prepared = prepare(series, d, n_train=n - n_val - n_test, n_val=n_val, end=n)
        prepared.state["season"] = season_of(cfg, series.freq)
        prepared.state["ridge_alpha"] = cfg["eval"]["ridge_alpha"]
        prepared.fingerprint = fingerprint(series.dates, series.target, series.features)
        return prepared

    def datasets(self, cfg: dict, prepared: Prepared, batch_size: int):
        seed = cfg["train"]["seed"]
        train = window_dataset(prepared, "train", batch_size, shuffle=True, seed=seed)
        val = window_dataset(prepared, "val", batch_size) if len(prepared.val["origins"]) else None
        return train, val

    # -- model ---------------------------------------------------------------------------
    def build_model(self, cfg: dict, prepared: Prepared):
        state = prepared.state
        return build_forecaster(cfg["model"], (state["input_length"], len(state["channels"])), state["horizon"])

    def compile_kwargs(self, cfg: dict, prepared: Prepared) -> dict:
        import keras

        loss = {"mse": "mse", "mae": "mae", "huber": keras.losses.Huber(delta=1.0)}[cfg["model"]["loss"]]
        return {"loss": loss, "metrics": ["mae"]}

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(self, model, prepared: Prepared, cfg: dict) -> Evaluation:
        state = prepared.state
        val_origins = prepared.val["origins"]
        if len(val_origins):
            val_pred = model_forecast(model, prepared, val_origins)
            state["interval"] = interval_from_residuals(prepared, val_origins, val_pred, cfg["eval"]["interval"])
        return score(model, prepared, cfg)

    def plots(self, model, prepared: Prepared, evaluation: Evaluation, run) -> list:
        from nnkit.runs import read_json, write_json

        # the validation interval is known only after training: keep it with the rest of the state
        write_json(run.state_file, prepared.state)
        if (run.path / "backtest.json").is_file():  # a re-evaluation keeps the backtest in the report
            attach_backtest(run, read_json(run.path / "backtest.json"))
        return plot_evaluation(evaluation, run.plot_dir)

    # -- serving -------------------------------------------------------------------------
    def serving(self, model, state: dict, cfg: dict):
        module = make_serving_module(model, state)
        return module, {"forecast": serving_example(state)}

    def predict(self, run, inputs: list, options: dict, echo) -> None:
        predict_csv(run, inputs, options, echo)

    # -- walk-forward backtest -------------------------------------------------------------
    def backtest(self, run, cfg: dict, k: int, echo) -> dict:
        return run_backtest(self, run, cfg, k, echo)


# =====================================================================================
# data preparation (numpy only)
# =====================================================================================

def season_of(cfg: dict, freq: str) -> int:
    """``eval.season``, or the natural cycle of the data's frequency when it is 0."""
    if cfg["eval"]["season"]:
        return int(cfg["eval"]["season"])
    if freq in ("B", "D"):
        return 5 if freq == "B" else 7  # a week
    seconds = int(freq.rstrip("s"))
    day = 86400
    if seconds < day:
        return max(1, round(day / seconds))  # a day of intraday rows
    if 6 * day <= seconds <= 8 * day:
        return 52  # weekly rows: a year
    if 27 * day <= seconds <= 32 * day:
        return 12  # monthly rows: a year
    return 7


def input_length(window: int, transform: str) -> int:
    return window - 1 if transform != "none" else window


def min_rows(d: dict) -> int:
    """Rows needed so each part holds windows (train at least MIN_TRAIN_WINDOWS)."""
    w, h = d["window"], d["horizon"]
    need_train = w + h + MIN_TRAIN_WINDOWS
    test_share = d["test_fraction"]
    val_share = d["val_fraction"]
    # the test and validation parts must each hold at least one whole horizon
    return int(math.ceil(max(need_train / max(1e-9, 1 - test_share - val_share), (h + 1) / test_share,
                             (h + 1) / val_share)))


def check_length(series, d: dict, n_train: int, n_val: int, n_test: int) -> None:
    n = len(series)
    w, h = d["window"], d["horizon"]
    if n_train < w + h + MIN_TRAIN_WINDOWS or n_val < h or n_test < h:
        raise DataError(f"{series.source}: the series has {n} rows, too short for window {w} + horizon {h} "
                        f"with {d['val_fraction']:.0%} validation and {d['test_fraction']:.0%} test "
                        f"(needs at least {min_rows(d)} rows); use more data or a smaller data.window/"
                        "data.horizon")


def transformed(values: np.ndarray, transform: str) -> np.ndarray:
    """The series the model sees, aligned with ``values`` (row 0 is NaN for returns)."""
    values = np.asarray(values, dtype=np.float64)
    if transform == "none":
        return values.copy()
    out = np.full_like(values, np.nan)
    if transform == "log_return":
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log(values)
        out[1:] = logs[1:] - logs[:-1]
    else:
        out[1:] = values[1:] - values[:-1]
    return out


def feature_transformed(values: np.ndarray, transform: str) -> np.ndarray:
    """Features: asinh (log-like, any sign), differenced unless the transform is "none"."""
    squashed = np.arcsinh(np.asarray(values, dtype=np.float64))
    if transform == "none":
        return squashed
    out = np.full_like(squashed, np.nan)
    out[1:] = squashed[1:] - squashed[:-1]
    return out


def next_day(days: np.ndarray, freq: str) -> np.ndarray:
    """The date after each day by the series' rule: next business day ("B") or next day ("D")."""
    ordinal = days.astype(np.int64)
    if freq == "B":
        dow = (ordinal + 3) % 7  # Monday = 0 (1970-01-01 was a Thursday)
        ordinal = ordinal + np.where(dow == 4, 3, np.where(dow == 5, 2, 1))
    else:
        ordinal = ordinal + 1
    return ordinal.astype("datetime64[D]")


def calendar_features(dates: np.ndarray, freq: str = "D") -> np.ndarray:
    """[n, 6]: sin/cos of day of week, day of month and day of year of each row's *next* step.

    The next step's date follows the frequency rule (weekends skipped for
    business days, holidays not), so the last row of a window carries the
    calendar of the first forecast date, the same in training and serving.
    """
    days = next_day(np.asarray(dates).astype("datetime64[D]"), freq)
    ordinal = days.astype(np.int64)
    dow = (ordinal + 3) % 7
    dom = (days - days.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64)  # 0-based
    doy = (days - days.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64)  # 0-based
    angles = [2 * np.pi * dow / 7.0, 2 * np.pi * dom / 31.0, 2 * np.pi * doy / 366.0]
    return np.stack([f(a) for a in angles for f in (np.sin, np.cos)], axis=1)


def channel_matrix(target, features, dates, d: dict, freq: str = "D") -> np.ndarray:
    """Unscaled model channels [n, C]: transformed target, transformed features, calendar."""
    columns = [transformed(target, d["transform"])[:, None]]
    if features is not None and np.size(features):
        columns.append(np.stack([feature_transformed(f, d["transform"]) for f in np.asarray(features).T], axis=1))
    if d.get("calendar"):
        columns.append(calendar_features(dates, freq))
    return np.concatenate(columns, axis=1)


def part_origins(first: int, last_target_row: int, window: int, horizon: int, first_target_row: int) -> np.ndarray:
    """Origins T whose targets T+1..T+H all lie in [first_target_row, last_target_row]."""
    lo = max(window - 1, first_target_row - 1, first)
    hi = last_target_row - horizon
    return np.arange(lo, hi + 1) if hi >= lo else np.arange(0)


def prepare(series, d: dict, *, n_train: int, n_val: int, end: int) -> Prepared:
    """Split rows [0, n_train) | [n_train, n_train+n_val) | [n_train+n_val, end); fit scalers on train."""
    w, h, transform = d["window"], d["horizon"], d["transform"]
    n = end
    target = np.asarray(series.target[:n], dtype=np.float64)
    features = np.asarray(series.features[:n], dtype=np.float64)
    dates = np.asarray(series.dates[:n])
    if transform == "log_return" and (target <= 0).any():
        row = int(np.argmax(target <= 0))
        raise DataError(f"{series.source}, {'row' if 'bokeh' in series.source else 'line'} "
                        f"{row + (1 if 'bokeh' in series.source else 2)}, column {series.target_name!r}: "
                        f"value {target[row]:g} is not positive; data.transform=\"log_return\" needs positive "
                        "prices (use data.transform=\"diff\" for values that can be zero or negative)")
    if d.get("calendar") and series.freq not in ("B", "D"):
        raise DataError(f"{series.source}: data.calendar needs daily or business-day dates; these are "
                        f"{series.freq} apart (set data.calendar=false)")
    raw = channel_matrix(target, features, dates, d, series.freq)
    first_row = 0 if transform == "none" else 1
    train_rows = raw[first_row:n_train]
    n_value_channels = 1 + features.shape[1]
    mean = np.zeros(raw.shape[1])
    std = np.ones(raw.shape[1])
    mean[:n_value_channels] = train_rows[:, :n_value_channels].mean(axis=0)
    std[:n_value_channels] = train_rows[:, :n_value_channels].std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    scaled = (raw - mean) / std
    L = input_length(w, transform)
    origins = {
        "train": part_origins(0, n_train - 1, w, h, 0),
        "val": part_origins(0, n_train + n_val - 1, w, h, n_train),
        "test": part_origins(0, n - 1, w, h, n_train + n_val),
    }
    if len(origins["train"]) < MIN_TRAIN_WINDOWS or not len(origins["test"]):
        check_length(series, d, 0, 0, 0)
    channels = ["target"] + [f"feature:{f}" for f in series.feature_names]
    if d.get("calendar"):
        channels += list(CALENDAR_CHANNELS)
    state = {
        "transform": transform,
        "window": w,
        "horizon": h,
        "input_length": L,
        "channels": channels,
        "features": list(series.feature_names),
        "calendar": bool(d.get("calendar")),
        "mean": mean.tolist(),
        "std": std.tolist(),
        "freq": series.freq,
        "target_name": series.target_name,
        "ticker": series.ticker,
        "last_date": str(np.datetime_as_string(dates[-1], unit="D")),
    }
    diffs = np.abs(np.diff(target[:n_train]))
    part_dates = lambda a, b: (f"{np.datetime_as_string(dates[a], unit='D')} .. "  # noqa: E731
                               f"{np.datetime_as_string(dates[b - 1], unit='D')}" if b > a else "–")
    summary = {
        "source": series.source,
        "target": series.target_name + (f" ({series.ticker})" if series.ticker else ""),
        "features": ", ".join(series.feature_names) + (" + calendar" if d.get("calendar") else "")
                    if series.feature_names or d.get("calendar") else "none",
        "rows": n,
        "dates": part_dates(0, n),
        "frequency": {"B": "business days", "D": "calendar days"}.get(series.freq, series.freq),
        "transform": transform,
        "window / horizon": f"{w} / {h}",
        "train rows (windows)": f"{n_train} ({len(origins['train'])}): {part_dates(0, n_train)}",
        "validation rows (windows)": f"{n_val} ({len(origins['val'])}): {part_dates(n_train, n_train + n_val)}",
        "test rows (windows)": f"{n - n_train - n_val} ({len(origins['test'])}): "
                               f"{part_dates(n_train + n_val, n)}",
    }
    if series.notes:
        summary["notes"] = "; ".join(series.notes)
    extra = {"series": series, "prices": target, "dates": dates, "features": features, "raw": raw,
             "scaled": scaled, "train_naive_mae": float(diffs.mean()) if len(diffs) else float("nan"),
             "bounds": (n_train, n_val, n)}
    return Prepared(train={"origins": origins["train"]}, val={"origins": origins["val"]},
                    test={"origins": origins["test"]}, state=state, summary=summary, extra=extra)


def windows_at(prepared: Prepared, origins: np.ndarray) -> np.ndarray:
    """Scaled model inputs [N, L, C] for the given origins (a strided view, no Python loop)."""
    L = prepared.state["input_length"]
    scaled = prepared.extra["scaled"]
    view = np.lib.stride_tricks.sliding_window_view(scaled, L, axis=0)  # [n-L+1, C, L]
    return np.ascontiguousarray(view[np.asarray(origins) - L + 1].transpose(0, 2, 1)).astype("float32")


def target_matrix(prepared: Prepared) -> np.ndarray:
    """Scaled transformed targets indexed by window *start*: row s = steps T+1..T+H for T = s+L-1."""
    L, H = prepared.state["input_length"], prepared.state["horizon"]
    y = prepared.extra["scaled"][:, 0]
    n = len(y)
    out = np.zeros((n, H), dtype="float32")
    view = np.lib.stride_tricks.sliding_window_view(y, H)  # row i = y[i..i+H-1]
    starts = np.arange(0, n - L - H + 1)
    out[starts] = view[starts + L]
    return out


def targets_at(prepared: Prepared, origins: np.ndarray) -> np.ndarray:
    L = prepared.state["input_length"]
    return target_matrix(prepared)[np.asarray(origins) - L + 1]


def window_dataset(prepared: Prepared, part: str, batch_size: int, shuffle: bool = False, seed: int = 0):
    """A batched tf.data pipeline of (window, targets) for one part (keras timeseries utility)."""
    import keras

    origins = getattr(prepared, part)["origins"]
    L = prepared.state["input_length"]
    start = int(origins[0]) - L + 1
    end = int(origins[-1]) + 1
    return keras.utils.timeseries_dataset_from_array(
        prepared.extra["scaled"].astype("float32"), target_matrix(prepared), sequence_length=L,
        start_index=start, end_index=end, shuffle=shuffle, seed=seed, batch_size=batch_size)


def invert(last_price: np.ndarray, scaled_pred: np.ndarray, state: dict) -> np.ndarray:
    """Scaled transformed predictions [N, H] -> prices [N, H]."""
    z = np.asarray(scaled_pred, dtype=np.float64) * state["std"][0] + state["mean"][0]
    last = np.asarray(last_price, dtype=np.float64)[:, None]
    if state["transform"] == "log_return":
        return last * np.exp(np.cumsum(z, axis=1))
    if state["transform"] == "diff":
        return last + np.cumsum(z, axis=1)
    return z


def actual_at(prepared: Prepared, origins: np.ndarray) -> np.ndarray:
    H = prepared.state["horizon"]
    return prepared.extra["prices"][np.asarray(origins)[:, None] + np.arange(1, H + 1)]


# =====================================================================================
# model
# =====================================================================================

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


# =====================================================================================
# baselines and metrics
# =====================================================================================

def baseline_forecasts(prepared: Prepared, origins: np.ndarray) -> dict:
    """Every baseline's price forecasts [N, H] for the given origins."""
    from sklearn.linear_model import Ridge

    state = prepared.state
    prices = prepared.extra["prices"]
    H, m = state["horizon"], state["season"]
    last = prices[origins]
    steps = np.arange(1, H + 1)
    n_train = prepared.extra["bounds"][0]
    out = {"persistence": np.repeat(last[:, None], H, axis=1)}
    transform = state["transform"]
    train_z = transformed(prices[:n_train], transform if transform != "none" else "diff")[1:]
    mu = float(np.mean(train_z))
    if transform == "log_return":
        out["drift"] = last[:, None] * np.exp(mu * steps)
    else:
        out["drift"] = last[:, None] + mu * steps
    back = np.asarray(origins)[:, None] - m + 1 + (steps - 1) % m
    out["seasonal_naive"] = prices[np.clip(back, 0, None)]
    train_origins = prepared.train["origins"]
    x_train = windows_at(prepared, train_origins).reshape(len(train_origins), -1)
    ridge = Ridge(alpha=float(state.get("ridge_alpha", 1.0))).fit(x_train, targets_at(prepared, train_origins))
    scaled = ridge.predict(windows_at(prepared, origins).reshape(len(origins), -1)).reshape(len(origins), H)
    out["ridge"] = invert(last, scaled, state)
    return out


def metrics(actual: np.ndarray, predicted: np.ndarray, last: np.ndarray, naive_mae: float) -> dict:
    err = predicted - actual
    moved = np.sign(actual - last[:, None])
    guessed = np.sign(predicted - last[:, None])
    valid = moved != 0
    direction = float(np.mean(guessed[valid] == moved[valid])) if np.any(guessed[valid] != 0) else None
    with np.errstate(divide="ignore", invalid="ignore"):
        mape = float(np.mean(np.abs(err) / np.abs(actual)) * 100)
    mae = float(np.mean(np.abs(err)))
    return {"rmse": float(np.sqrt(np.mean(err ** 2))), "mae": mae, "mape": mape,
            "mase": mae / naive_mae if naive_mae > 0 else None, "directional_accuracy": direction}


def diebold_mariano(e_model: np.ndarray, e_base: np.ndarray, horizon: int) -> tuple[float, float]:
    """Diebold-Mariano test (squared loss, Harvey-Leybourne-Newbold correction), two-sided.

    ``e_*``: errors [N, H]; the loss per forecast origin is the mean squared error
    over its H steps, and the long-run variance uses Newey-West weights up to lag H-1.
    Returns (statistic, p-value); a negative statistic favours the model.
    """
    from scipy import stats

    d = np.mean(e_model ** 2, axis=1) - np.mean(e_base ** 2, axis=1)
    n = len(d)
    if n < 3:
        return float("nan"), float("nan")
    mean = d.mean()
    centred = d - mean
    variance = np.dot(centred, centred) / n
    for lag in range(1, horizon):
        weight = 1 - lag / horizon
        variance += 2 * weight * np.dot(centred[lag:], centred[:-lag]) / n
    if variance <= 0:
        return float("nan"), float("nan")
    dm = mean / math.sqrt(variance / n)
    h = horizon
    correction = math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    statistic = dm * correction
    p = 2 * stats.t.sf(abs(statistic), df=n - 1)
    return float(statistic), float(p)


def score_forecasts(prepared: Prepared, origins, model_pred: np.ndarray) -> dict:
    """Metrics of the model and of every baseline on the same origins, plus the DM test."""
    actual = actual_at(prepared, origins)
    last = prepared.extra["prices"][origins]
    naive = prepared.extra["train_naive_mae"]
    forecasts = baseline_forecasts(prepared, origins)
    result = {"model": metrics(actual, model_pred, last, naive),
              "baselines": {k: metrics(actual, v, last, naive) for k, v in forecasts.items()}}
    H = prepared.state["horizon"]
    stat, p = diebold_mariano(model_pred - actual, forecasts["persistence"] - actual, H)
    result["dm"] = {"statistic": stat, "p_value": p}
    pers = result["baselines"]["persistence"]["rmse"]
    result["model"]["rmse_vs_persistence"] = result["model"]["rmse"] / pers if pers > 0 else None
    result["model"]["dm_p_vs_persistence"] = p
    per_step = {"model": np.sqrt(np.mean((model_pred - actual) ** 2, axis=0)).tolist()}
    per_step.update({k: np.sqrt(np.mean((v - actual) ** 2, axis=0)).tolist() for k, v in forecasts.items()})
    result["rmse_by_step"] = per_step
    result["arrays"] = {"actual": actual, "model": model_pred, "last": last, **forecasts}
    return result


def verdict_sentence(model_rmse: float, baselines: dict, dm_stat: float, p: float) -> str:
    pers = baselines["persistence"]["rmse"]
    ratio = model_rmse / pers
    best_name = min(baselines, key=lambda k: baselines[k]["rmse"])
    pct = abs(ratio - 1) * 100
    side = "lower" if ratio < 1 else "higher"
    significant = (not math.isnan(p)) and p < 0.05
    if ratio < 1 and significant:
        head = (f"The model beats persistence: its RMSE is {pct:.1f}% lower, and the Diebold-Mariano test "
                f"says the difference is significant (p = {p:.3g}).")
    elif ratio >= 1 and significant:
        head = (f"The model does not beat persistence: its RMSE is {pct:.1f}% higher, significantly so "
                f"(Diebold-Mariano p = {p:.3g}); use the naive forecast instead.")
    else:
        head = (f"The model does not beat persistence: its RMSE is {pct:.1f}% {side}, and the Diebold-Mariano "
                f"test finds no significant difference (p = {p:.3g}), so it adds nothing over "
                "'tomorrow = today'.")
    if best_name != "persistence" and baselines[best_name]["rmse"] < model_rmse:
        head += f" The best baseline is {best_name.replace('_', ' ')} (RMSE {baselines[best_name]['rmse']:.4g})."
    return head


def score(model, prepared: Prepared, cfg: dict) -> Evaluation:
    origins = prepared.test["origins"]
    pred = model_forecast(model, prepared, origins)
    result = score_forecasts(prepared, origins, pred)
    H = prepared.state["horizon"]
    dm = result["dm"]
    verdict = verdict_sentence(result["model"]["rmse"], result["baselines"], dm["statistic"], dm["p_value"])
    tables = [("Diebold-Mariano test, model vs persistence (squared error)",
               "| statistic | p-value | test windows | reading |\n|---|---|---|---|\n"
               f"| {dm['statistic']:.3f} | {dm['p_value']:.3g} | {len(origins)} | "
               f"{'negative favours the model' if dm['statistic'] < 0 else 'positive favours persistence'} |")]
    if H > 1:
        names = list(result["rmse_by_step"])
        lines = ["| step | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for h in range(H):
            lines.append(f"| {h + 1} | " + " | ".join(f"{result['rmse_by_step'][k][h]:.4g}" for k in names) + " |")
        tables.append(("RMSE by horizon step (price units)", "\n".join(lines)))
    interval = prepared.state.get("interval")
    details = {"test_windows": int(len(origins)), "horizon": H, "rmse_by_step": result["rmse_by_step"],
               "diebold_mariano": dm, "units": f"price units of {prepared.state['target_name']!r}"}
    if interval:
        lo, hi = interval_bounds(pred, interval)
        actual = result["arrays"]["actual"]
        covered = float(np.mean((actual >= lo) & (actual <= hi)))
        details["interval"] = {**interval, "test_coverage": covered}
        tables.append(("Prediction interval (from validation residual quantiles)",
                       f"| nominal | test coverage | method |\n|---|---|---|\n"
                       f"| {interval['level']:.0%} | {covered:.1%} | {interval['method']} |"))
    test_dates = prepared.extra["dates"][origins + 1]  # the first forecast date of each window
    return Evaluation(primary="rmse", higher_is_better=False, model=result["model"], baselines=result["baselines"],
                      details=details, verdict=verdict, tables=tables,
                      artifacts={**result["arrays"], "dates": test_dates, "horizon": H,
                                 "rmse_by_step": result["rmse_by_step"],
                                 "lower_upper": interval_bounds(pred, interval) if interval else None})


def interval_bounds(pred: np.ndarray, interval: dict):
    lower = np.asarray(interval["lower"])[: pred.shape[1]]
    upper = np.asarray(interval["upper"])[: pred.shape[1]]
    if interval["kind"] == "log_ratio":
        return pred * np.exp(lower), pred * np.exp(upper)
    return pred + lower, pred + upper


# =====================================================================================
# plots
# =====================================================================================

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_evaluation(evaluation: Evaluation, plot_dir: Path) -> list:
    from nnkit.report import save_figure

    plt = _pyplot()
    a = evaluation.artifacts
    dates = a["dates"].astype("datetime64[D]")
    H = a["horizon"]
    paths = []
    # forecasts vs actual (one step ahead), full test part and its last 120 windows
    fig, axes = plt.subplots(2, 1, figsize=(11, 7))
    for ax, part in zip(axes, (slice(None), slice(-120, None))):
        x = dates[part]
        ax.plot(x, a["actual"][part, 0], color="black", lw=1.4, label="actual")
        ax.plot(x, a["model"][part, 0], color="tab:red", lw=1.1, label="model")
        ax.plot(x, a["persistence"][part, 0], color="tab:gray", lw=0.9, ls="--", label="persistence")
        ax.plot(x, a["ridge"][part, 0], color="tab:blue", lw=0.9, ls=":", label="ridge")
        if a.get("lower_upper") is not None:
            lo, hi = a["lower_upper"]
            ax.fill_between(x, lo[part, 0], hi[part, 0], color="tab:red", alpha=0.15, label="model interval")
        ax.legend(loc="upper left", fontsize=8)
    axes[0].set_title("Test part: one-step-ahead forecasts vs actual")
    axes[1].set_title("Last 120 test windows")
    fig.tight_layout()
    paths.append(save_figure(fig, plot_dir / "forecast_test.png"))
    # residuals
    residual = a["actual"][:, 0] - a["model"][:, 0]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    axes[0].plot(dates, residual, lw=0.8, color="tab:red", label="model")
    axes[0].plot(dates, a["actual"][:, 0] - a["persistence"][:, 0], lw=0.6, color="tab:gray", alpha=0.7,
                 label="persistence")
    axes[0].axhline(0, color="black", lw=0.6)
    axes[0].set_title("Residuals (actual - forecast), step 1")
    axes[0].legend(fontsize=8)
    axes[1].hist(residual, bins=50, color="tab:red", alpha=0.7)
    axes[1].set_title("Residual distribution, step 1")
    fig.tight_layout()
    paths.append(save_figure(fig, plot_dir / "residuals.png"))
    # error by horizon step
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    steps = np.arange(1, H + 1)
    for name, values in a["rmse_by_step"].items():
        ax.plot(steps, values, marker="o", label=name, lw=2.0 if name == "model" else 1.0)
    ax.set_xlabel("horizon step")
    ax.set_ylabel("RMSE (price units)")
    ax.set_title("Error by horizon step")
    ax.set_xticks(steps)
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(save_figure(fig, plot_dir / "error_by_step.png"))
    return paths


# =====================================================================================
# serving (TensorFlow, imported lazily)
# =====================================================================================

def make_serving_module(model, state: dict):
    import tensorflow as tf

    W, H = state["window"], state["horizon"]
    F = len(state["features"])
    transform = state["transform"]
    mean = tf.constant(state["mean"], tf.float32)
    std = tf.constant(state["std"], tf.float32)
    interval = state.get("interval")

    def to_inputs(prices, features, dates):
        if transform == "log_return":
            logs = tf.math.log(prices)
            channels = [logs[:, 1:] - logs[:, :-1]]
        elif transform == "diff":
            channels = [prices[:, 1:] - prices[:, :-1]]
        else:
            channels = [prices]
        x = [channels[0][..., None]]
        if F:
            squashed = tf.math.asinh(features)
            x.append(squashed if transform == "none" else squashed[:, 1:] - squashed[:, :-1])
        if state["calendar"]:
            cal = tf_calendar_features(dates, state["freq"])
            x.append(cal if transform == "none" else cal[:, 1:])
        x = tf.concat(x, axis=-1)
        return (x - mean) / std

    def from_outputs(prices, y):
        z = tf.cast(y, tf.float32) * std[0] + mean[0]
        last = prices[:, -1:]
        if transform == "log_return":
            return last * tf.exp(tf.cumsum(z, axis=1))
        if transform == "diff":
            return last + tf.cumsum(z, axis=1)
        return z

    def outputs(prices, forecast):
        out = {"forecast": forecast}
        if interval:
            lower = tf.constant(interval["lower"], tf.float32)
            upper = tf.constant(interval["upper"], tf.float32)
            if interval["kind"] == "log_ratio":
                out["lower"], out["upper"] = forecast * tf.exp(lower), forecast * tf.exp(upper)
            else:
                out["lower"], out["upper"] = forecast + lower, forecast + upper
        return out

    specs = [tf.TensorSpec([None, W], tf.float32, name="prices")]
    if F:
        specs.append(tf.TensorSpec([None, W, F], tf.float32, name="features"))
    if state["calendar"]:
        specs.append(tf.TensorSpec([None, W], tf.string, name="dates"))

    class ForecastServing(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def _run(self, prices, features=None, dates=None):
            y = self.model(to_inputs(prices, features, dates), training=False)
            return outputs(prices, from_outputs(prices, y))

    # one signature per input combination, so the exported endpoint names its inputs exactly
    if F and state["calendar"]:
        class Module(ForecastServing):
            @tf.function(input_signature=specs)
            def forecast(self, prices, features, dates):
                return self._run(prices, features, dates)
    elif F:
        class Module(ForecastServing):
            @tf.function(input_signature=specs)
            def forecast(self, prices, features):
                return self._run(prices, features)
    elif state["calendar"]:
        class Module(ForecastServing):
            @tf.function(input_signature=specs)
            def forecast(self, prices, dates):
                return self._run(prices, dates=dates)
    else:
        class Module(ForecastServing):
            @tf.function(input_signature=specs)
            def forecast(self, prices):
                return self._run(prices)
    return Module()


def tf_days_from_civil(year, month, day):
    """Days since 1970-01-01 of a proleptic Gregorian date (int64 tensors; H. Hinnant's algorithm)."""
    import tensorflow as tf

    y = year - tf.cast(month <= 2, tf.int64)
    era = tf.math.floordiv(y, 400)
    yoe = y - era * 400
    mp = tf.math.floormod(month + 9, 12)  # March = 0
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def tf_civil_from_days(days):
    """(year, month, day) int64 tensors of days since 1970-01-01 (H. Hinnant's algorithm)."""
    import tensorflow as tf

    z = days + 719468
    era = tf.math.floordiv(z, 146097)
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = tf.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + tf.cast(month <= 2, tf.int64)
    return year, month, day


def tf_calendar_features(dates, freq: str = "D"):
    """ISO date strings [N, W] ("YYYY-MM-DD...") -> the 6 next-step calendar channels [N, W, 6]."""
    import tensorflow as tf

    year = tf.strings.to_number(tf.strings.substr(dates, 0, 4), tf.int64)
    month = tf.strings.to_number(tf.strings.substr(dates, 5, 2), tf.int64)
    day = tf.strings.to_number(tf.strings.substr(dates, 8, 2), tf.int64)
    days = tf_days_from_civil(year, month, day)
    if freq == "B":
        weekday = tf.math.floormod(days + 3, 7)
        days = days + tf.where(weekday == 4, tf.constant(3, tf.int64),
                               tf.where(weekday == 5, tf.constant(2, tf.int64), tf.constant(1, tf.int64)))
    else:
        days = days + 1
    year, month, day = tf_civil_from_days(days)
    dow = tf.cast(tf.math.floormod(days + 3, 7), tf.float32)
    dom = tf.cast(day - 1, tf.float32)
    doy = tf.cast(days - tf_days_from_civil(year, tf.ones_like(month), tf.ones_like(day)), tf.float32)
    two_pi = 2 * math.pi
    angles = [two_pi * dow / 7.0, two_pi * dom / 31.0, two_pi * doy / 366.0]
    return tf.stack([f(a) for a in angles for f in (tf.sin, tf.cos)], axis=-1)


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


# =====================================================================================
# prediction from the run folder
# =====================================================================================

def predict_csv(run, inputs: list, options: dict, echo) -> None:
    from nnkit.datasets.prices import future_dates, read_csv
    from nnkit.predictions import write_predictions

    state = run.state()
    cfg = run.config()
    d = cfg.get("data", {})
    if len(inputs) != 1:
        raise DataError(f"predict: give exactly one CSV of recent values (received {len(inputs)} inputs)")
    series = read_csv(inputs[0], date_column=d.get("date_column", ""),
                      target=d.get("target", "") if d.get("path") else "",
                      features=state["features"], ticker=d.get("ticker", "") if d.get("path") else "",
                      ticker_column=d.get("ticker_column", ""), fill=d.get("fill", "none"))
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
    endpoint = _load_endpoint(run)
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
        out = {k: v.numpy() for k, v in endpoint(**inputs_).items()}
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


def _load_endpoint(run):
    """The exported SavedModel's ``forecast`` endpoint (exported first if needed), loaded once."""
    import tensorflow as tf

    saved = run.export_dir / "saved_model"
    if not saved.is_dir():
        from nnkit.export import export

        export(run, ForecastingTask(), "saved_model")
    from nnkit.predictions import load_saved_model  # checks the export's task; one-line errors

    loaded = load_saved_model(run, saved)
    if not hasattr(loaded, "forecast"):
        raise DataError(f"{saved}: this SavedModel has no 'forecast' endpoint (a model of another task?)")
    return lambda **inputs: loaded.forecast(**{k: tf.constant(v) for k, v in inputs.items()})


# =====================================================================================
# walk-forward backtest
# =====================================================================================

def fold_bounds(n: int, k: int, d: dict) -> list[tuple[int, int, int, int]]:
    """K consecutive test blocks ending at the last row: [(n_train, n_val, test_start, test_end)].

    Each block has the size of the run's test part (shrunk if the series is too
    short); fold i trains on everything before its block, the last
    ``val_fraction`` share of that as validation for early stopping.
    """
    block = int(round(n * d["test_fraction"]))
    need = d["window"] + d["horizon"] + MIN_TRAIN_WINDOWS
    share = d["val_fraction"] / (1 - d["test_fraction"])
    smallest = d["horizon"] + 9  # at least 10 test windows per fold
    while block > smallest and (n - k * block) * (1 - share) < need:
        block -= 1
    if block < smallest or (n - k * block) * (1 - share) < need:
        raise DataError(f"--backtest {k}: the series has {n} rows, too short for {k} folds with window "
                        f"{d['window']} and horizon {d['horizon']}")
    folds = []
    for i in range(k):
        test_start = n - (k - i) * block
        n_val = int(round(test_start * share))
        folds.append((test_start - n_val, n_val, test_start, test_start + block))
    return folds


def run_backtest(task, run, cfg: dict, k: int, echo) -> dict:
    import keras

    from nnkit import train as train_mod
    from nnkit.datasets.prices import load_series
    from nnkit.report import save_figure
    from nnkit.runs import write_json

    series = load_series(cfg["data"])
    d, train_cfg = cfg["data"], cfg["train"]
    folds = fold_bounds(len(series), k, d)
    rows = []
    for i, (n_train, n_val, test_start, test_end) in enumerate(folds):
        prepared = prepare(series, d, n_train=n_train, n_val=n_val, end=test_end)
        prepared.state["season"] = season_of(cfg, series.freq)
        prepared.state["ridge_alpha"] = cfg["eval"]["ridge_alpha"]
        train_mod.apply_seed(train_cfg)
        train_ds, val_ds = task.datasets(cfg, prepared, train_cfg["batch_size"])
        model = task.build_model(cfg, prepared)
        steps = int(train_ds.cardinality().numpy())
        model.compile(optimizer=train_mod.make_optimizer(train_cfg, steps), **task.compile_kwargs(cfg, prepared))
        callbacks = []
        if train_cfg["early_stopping"] and val_ds is not None:
            callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=train_cfg["patience"],
                                                           restore_best_weights=True))
        history = model.fit(train_ds, validation_data=val_ds, epochs=train_cfg["epochs"], callbacks=callbacks,
                            verbose=0)
        origins = prepared.test["origins"]
        result = score_forecasts(prepared, origins, model_forecast(model, prepared, origins))
        dates = prepared.extra["dates"]
        row = {"fold": i + 1, "train_rows": n_train, "val_rows": n_val,
               "train_start": _d(dates[0]), "test_start": _d(dates[test_start]), "test_end": _d(dates[test_end - 1]),
               "test_windows": int(len(origins)), "epochs": len(history.history["loss"]),
               "model": result["model"], "baselines": result["baselines"], "dm": result["dm"]}
        rows.append(row)
        b = result["baselines"]
        echo(f"fold {i + 1}/{k}: test {row['test_start']}..{row['test_end']}  model RMSE {result['model']['rmse']:.4g}"
             f"  persistence {b['persistence']['rmse']:.4g}  ridge {b['ridge']['rmse']:.4g}"
             f"  ratio {result['model']['rmse_vs_persistence']:.3f}  DM p {result['dm']['p_value']:.3g}")
        keras.backend.clear_session()
    ratios = [r["model"]["rmse_vs_persistence"] for r in rows]
    summary = {"folds": k, "mean_rmse_vs_persistence": float(np.mean(ratios)),
               "folds_beating_persistence": int(sum(r < 1 for r in ratios)),
               "folds_significantly_better": int(sum(r["dm"]["p_value"] < 0.05 and r["dm"]["statistic"] < 0
                                                     for r in rows))}
    document = {"method": "walk-forward (rolling origin): refit per fold on all rows before the fold's test block",
                "summary": summary, "folds": rows}
    write_json(run.path / "backtest.json", document)
    run.plot_dir.mkdir(parents=True, exist_ok=True)
    save_figure(_backtest_figure(series, folds, rows), run.plot_dir / "backtest.png")
    if attach_backtest(run, document):
        from nnkit.pipeline import report

        report(run)
    echo(backtest_table(rows))
    echo(f"mean model/persistence RMSE ratio {summary['mean_rmse_vs_persistence']:.3f}; "
         f"{summary['folds_beating_persistence']}/{k} folds lower, "
         f"{summary['folds_significantly_better']}/{k} significantly (DM p < 0.05)")
    echo(str(run.path / "backtest.json"))
    return document


def _d(value) -> str:
    return str(np.datetime_as_string(value, unit="D"))


def attach_backtest(run, document: dict) -> bool:
    """Put the backtest table and summary into metrics.json (so report.md shows them)."""
    from nnkit.runs import read_json, write_json

    if not run.metrics_file.is_file():
        return False
    metrics_doc = read_json(run.metrics_file)
    title = f"Walk-forward backtest ({document['summary']['folds']} folds, refit per fold; see backtest.json)"
    metrics_doc["tables"] = [t for t in metrics_doc.get("tables", []) if not t[0].startswith("Walk-forward")]
    metrics_doc["tables"].append([title, backtest_table(document["folds"])])
    metrics_doc.setdefault("details", {})["backtest"] = document["summary"]
    write_json(run.metrics_file, metrics_doc)
    return True


def backtest_table(rows: list) -> str:
    lines = ["| fold | test dates | windows | model RMSE | persistence | drift | seasonal naive | ridge | "
             "model/persistence | DM p |", "|---" * 10 + "|"]
    for r in rows:
        b = r["baselines"]
        lines.append(f"| {r['fold']} | {r['test_start']} .. {r['test_end']} | {r['test_windows']} | "
                     f"{r['model']['rmse']:.4g} | {b['persistence']['rmse']:.4g} | {b['drift']['rmse']:.4g} | "
                     f"{b['seasonal_naive']['rmse']:.4g} | {b['ridge']['rmse']:.4g} | "
                     f"{r['model']['rmse_vs_persistence']:.3f} | {r['dm']['p_value']:.3g} |")
    return "\n".join(lines)


def _backtest_figure(series, folds, rows):
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    dates = series.dates.astype("datetime64[D]")
    axes[0].plot(dates, series.target, color="black", lw=0.8)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (n_train, n_val, a, b) in enumerate(folds):
        axes[0].axvspan(dates[a], dates[b - 1], color=colours[i % len(colours)], alpha=0.25,
                        label=f"fold {i + 1} test")
    axes[0].set_title("Walk-forward folds (test blocks)")
    axes[0].legend(fontsize=7)
    x = np.arange(len(rows))
    names = [("model", None), ("persistence", "persistence"), ("ridge", "ridge")]
    for j, (label, key) in enumerate(names):
        values = [r["model"]["rmse"] if key is None else r["baselines"][key]["rmse"] for r in rows]
        axes[1].bar(x + (j - 1) * 0.27, values, width=0.27, label=label)
    axes[1].set_xticks(x, [f"fold {r['fold']}" for r in rows])
    axes[1].set_ylabel("RMSE (price units)")
    axes[1].set_title("RMSE per fold")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


__all__ = ["ForecastingTask", "NnkitError"]
