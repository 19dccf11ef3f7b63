"""Forecasting data preparation (numpy only): chronological split, windows, transforms, scalers.

Index conventions (``p`` = prices, ``n`` rows): a window's *origin* ``T`` is
its last observed row; it sees ``p[T-W+1 .. T]`` (``W = data.window``) and
predicts ``p[T+1 .. T+H]``. With a returns transform the model input is the
``W-1`` returns inside the window.
"""

from __future__ import annotations

import math

import numpy as np

from nnkit.errors import DataError
from nnkit.tasks.base import Prepared
from nnkit.tasks.forecasting.calendar import CALENDAR_CHANNELS, calendar_features

TRANSFORMS = ("log_return", "diff", "none")
MIN_TRAIN_WINDOWS = 20


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
