"""Price and measurement series: the bundled stocks and any CSV with a date column.

``load_series(data_cfg)`` returns a :class:`PriceSeries` (dates, a target
column, optional feature columns), checked row by row: every problem is one
:class:`~nnkit.errors.DataError` naming the file, the line and the column.

* Bundled: ``bokeh_sampledata.stocks`` (daily OHLCV and adjusted close of
  AAPL, IBM, MSFT 2000-2013, GOOG 2004-2013, FB 2012-2013; public domain).
* CSV: Yahoo-style ``Date,Open,High,Low,Close,Adj Close,Volume`` works as is
  (target ``Adj Close``, else ``Close``); otherwise name ``date_column``,
  ``target`` and ``features``. A long CSV with a ticker column (``ticker`` or
  ``symbol``) holds several series; ``ticker`` picks one.

Line numbers count the header as line 1. Dates must be strictly increasing
(a file in strictly *decreasing* order, as some exports are, is reversed);
missing values fail unless ``fill = "ffill"``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nnkit.errors import DataError

BUNDLED_TICKERS = ("AAPL", "GOOG", "IBM", "MSFT", "FB")
DEFAULT_TICKER = "AAPL"
MISSING = {"", "null", "nan", "na", "n/a", "none", "-", "#n/a"}
DATE_NAMES = ("date", "datetime", "timestamp", "time", "day")
TICKER_NAMES = ("ticker", "symbol", "name")
TARGET_NAMES = ("adj close", "adj_close", "adjusted close", "adjclose", "close", "value", "price")


@dataclass
class PriceSeries:
    """One univariate target series (plus optional features) on strictly increasing dates."""

    dates: np.ndarray  # datetime64[ns], strictly increasing
    target: np.ndarray  # float64 [n]
    features: np.ndarray  # float64 [n, F]
    target_name: str
    feature_names: list = field(default_factory=list)
    source: str = ""
    ticker: str = ""
    freq: str = "B"  # "B" business days, "D" calendar days, else a pandas offset alias
    notes: list = field(default_factory=list)

    def __len__(self):
        return len(self.target)


# -- the bundled source ----------------------------------------------------------------

def load_bundled(ticker: str = "", target: str = "", features=(), fill: str = "none") -> PriceSeries:
    """One ticker of ``bokeh_sampledata.stocks`` (default AAPL, adjusted close)."""
    import pandas as pd
    from bokeh_sampledata import stocks

    ticker = (ticker or DEFAULT_TICKER).upper()
    if ticker not in BUNDLED_TICKERS:
        close = difflib.get_close_matches(ticker, BUNDLED_TICKERS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(f"data.ticker: {ticker!r} is not bundled; bundled tickers: "
                        f"{', '.join(BUNDLED_TICKERS)}{hint} (or give your own CSV with --data)")
    raw = getattr(stocks, ticker)
    frame = pd.DataFrame({k: [str(v) for v in values] for k, values in raw.items()})
    source = f"bokeh_sampledata.stocks[{ticker}]"
    return _from_frame(frame, source, date_column="date", target=target or "adj_close",
                       features=list(features), fill=fill, ticker=ticker, line_offset=None)


# -- user CSV ----------------------------------------------------------------------------

def read_csv(path, *, date_column: str = "", target: str = "", features=(), ticker: str = "",
             ticker_column: str = "", fill: str = "none") -> PriceSeries:
    """Read and check a CSV of dated values; see the module docstring for the rules."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; expected a CSV file with a date column")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True,
                            encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); expected a CSV file") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file; expected a CSV with a header line such as "
                        "Date,Open,High,Low,Close,Adj Close,Volume") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: not a well-formed CSV ({str(exc).strip()})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataError(f"{path}: no data rows after the header")
    columns = list(frame.columns)

    date_col = _pick_column(path, columns, date_column, DATE_NAMES, "data.date_column", "date")
    if date_col is None:
        date_col = columns[0]  # no date-like name: the first column, checked below
    tick_col = _pick_column(path, columns, ticker_column, TICKER_NAMES, "data.ticker_column", "ticker",
                            required=bool(ticker_column))
    frame.index = np.arange(2, len(frame) + 2)  # file line numbers (header = line 1)
    chosen = ""
    if tick_col is not None:
        values = frame[tick_col].str.strip()
        tickers = sorted(set(values))
        if ticker:
            matches = [t for t in tickers if t.upper() == ticker.upper()]
            if not matches:
                raise DataError(f"{path}, column {tick_col!r}: no rows for ticker {ticker!r}; "
                                f"the file has {_listing(tickers)}")
            chosen = matches[0]
        elif len(tickers) == 1:
            chosen = tickers[0]
        else:
            raise DataError(f"{path}, column {tick_col!r}: {len(tickers)} tickers ({_listing(tickers)}); "
                            f"choose one with --set data.ticker={tickers[0]}")
        frame = frame[values == chosen]
    elif ticker and ticker.upper() != DEFAULT_TICKER:
        raise DataError(f"{path}: data.ticker={ticker!r} was set but the file has no ticker column "
                        f"(looked for {', '.join(TICKER_NAMES)}; set data.ticker_column)")

    numeric = [c for c in columns if c not in (date_col, tick_col)]
    features = [_pick_column(path, columns, f, (), "data.features", "feature", required=True) for f in features]
    if target:
        target_col = _pick_column(path, columns, target, (), "data.target", "target", required=True)
    else:
        target_col = next((c for name in TARGET_NAMES for c in numeric if c.lower() == name), None)
        if target_col is None:
            if len(numeric) == 1:
                target_col = numeric[0]
            else:
                raise DataError(f"{path}: which column to forecast? none is named Adj Close/Close/value; "
                                f"set data.target to one of {', '.join(map(repr, numeric)) or '(no columns)'}")
    return _from_frame(frame, str(path), date_column=date_col, target=target_col, features=list(features),
                       fill=fill, ticker=chosen, line_offset=0)


def _listing(items, limit=8) -> str:
    shown = ", ".join(map(repr, items[:limit]))
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _pick_column(path, columns, wanted, names, key, what, required=False):
    if wanted:
        if wanted in columns:
            return wanted
        lowered = {c.lower(): c for c in columns}
        if wanted.lower() in lowered:
            return lowered[wanted.lower()]
        close = difflib.get_close_matches(wanted, columns, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(f"{path}: {key}={wanted!r}: no such column; the header has "
                        f"{', '.join(map(repr, columns))}{hint}")
    for name in names:
        for c in columns:
            if c.lower() == name:
                return c
    if required:
        raise DataError(f"{path}: no {what} column; set {key}")
    return None


# -- checks shared by both sources -----------------------------------------------------------

def _from_frame(frame, source: str, *, date_column: str, target: str, features: list, fill: str,
                ticker: str, line_offset) -> PriceSeries:
    """Parse dates and numbers with row-level errors; ``frame.index`` holds line numbers."""
    import pandas as pd

    if line_offset is None:  # bundled: rows, not file lines
        frame = frame.copy()
        frame.index = np.arange(1, len(frame) + 1)
        at = lambda line: f"{source}, row {line}"  # noqa: E731
    else:
        at = lambda line: f"{source}, line {line}"  # noqa: E731
    columns = list(frame.columns)
    for name in [target] + features:
        if name not in columns:
            close = difflib.get_close_matches(name, columns, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            key = "data.target" if name == target else "data.features"
            raise DataError(f"{source}: {key}: no column {name!r}; columns are "
                            f"{', '.join(map(repr, columns))}{hint}")
    if target in features:
        raise DataError(f"{source}: data.features lists the target column {target!r}; drop it there")
    if date_column in [target] + features:
        raise DataError(f"{source}: column {date_column!r} is used as the date and as a value")

    # dates
    text = frame[date_column].astype(str).str.strip()
    dates = pd.to_datetime(text, errors="coerce", format="mixed")
    bad = dates.isna().to_numpy()
    if bad.any():
        line = frame.index[int(np.argmax(bad))]
        raise DataError(f"{at(line)}, column {date_column!r}: cannot parse {text.loc[line]!r} as a date "
                        "(expected e.g. 2013-03-01)")
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    values = dates.to_numpy(dtype="datetime64[ns]")
    notes = []
    if len(values) > 1:
        steps = np.diff(values).astype(np.int64)
        if (steps < 0).all():  # newest first, as some exports are: reverse it
            frame, values = frame.iloc[::-1], values[::-1]
            notes.append("rows were in decreasing date order; reversed")
            steps = np.diff(values).astype(np.int64)
        lines = frame.index.to_numpy()
        if (steps == 0).any():
            i = int(np.argmax(steps == 0))
            raise DataError(f"{at(lines[i + 1])}, column {date_column!r}: duplicate date "
                            f"{_day(values[i + 1])} (also on {'line' if line_offset is not None else 'row'} "
                            f"{lines[i]}); expected one row per date")
        if (steps < 0).any():
            i = int(np.argmax(steps < 0))
            raise DataError(f"{at(lines[i + 1])}, column {date_column!r}: date {_day(values[i + 1])} comes "
                            f"after {_day(values[i])}; expected dates in increasing order (sort the file)")

    # numbers
    arrays = {}
    for name in [target] + features:
        raw = frame[name].astype(str).str.strip()
        missing = raw.str.lower().isin(MISSING).to_numpy()
        numbers = pd.to_numeric(raw.where(~missing, None), errors="coerce").to_numpy(dtype=np.float64)
        wrong = np.isnan(numbers) & ~missing | np.isinf(numbers)
        if wrong.any():
            line = frame.index[int(np.argmax(wrong))]
            raise DataError(f"{at(line)}, column {name!r}: {raw.loc[line]!r} is not a number")
        if missing.any():
            line = frame.index[int(np.argmax(missing))]
            if fill != "ffill":
                raise DataError(f"{at(line)}, column {name!r}: missing value ({int(missing.sum())} in all); "
                                "fix the file or set data.fill=\"ffill\" to carry the last value forward")
            if missing[0]:
                raise DataError(f"{at(line)}, column {name!r}: missing value in the first row; "
                                "data.fill=\"ffill\" has nothing earlier to carry forward (drop the row)")
            numbers = pd.Series(numbers).ffill().to_numpy()
            notes.append(f"{int(missing.sum())} missing values in {name!r} forward-filled")
        arrays[name] = numbers
    feats = np.stack([arrays[f] for f in features], axis=1) if features else np.zeros((len(values), 0))
    return PriceSeries(dates=values, target=arrays[target], features=feats, target_name=target,
                       feature_names=list(features), source=source, ticker=ticker, freq=infer_freq(values),
                       notes=notes)


def _day(value) -> str:
    return str(np.datetime_as_string(value, unit="D"))


def infer_freq(dates: np.ndarray) -> str:
    """"B" for weekday-only daily data, "D" for daily data with weekends, else the median step."""
    if len(dates) < 2:
        return "D"
    steps = np.diff(dates).astype("timedelta64[s]").astype(np.int64)
    median = float(np.median(steps))
    day = 86400.0
    days = dates.astype("datetime64[D]")
    weekday = (days.astype(np.int64) + 3) % 7  # Monday = 0 (1970-01-01 was a Thursday)
    if day * 0.9 <= median <= day * 1.1 or (median > day and median <= 4 * day and not (weekday >= 5).any()):
        return "B" if not (weekday >= 5).any() else "D"
    return f"{int(median)}s"


def load_series(data_cfg: dict) -> PriceSeries:
    """The series a config's ``data`` section asks for (``path`` empty: the bundled stocks)."""
    if data_cfg.get("path"):
        return read_csv(data_cfg["path"], date_column=data_cfg.get("date_column", ""),
                        target=data_cfg.get("target", ""), features=data_cfg.get("features", []),
                        ticker=data_cfg.get("ticker", ""), ticker_column=data_cfg.get("ticker_column", ""),
                        fill=data_cfg.get("fill", "none"))
    target = data_cfg.get("target", "")
    return load_bundled(data_cfg.get("ticker", ""), target=target, features=data_cfg.get("features", []),
                        fill=data_cfg.get("fill", "none"))


def future_dates(last, freq: str, horizon: int) -> np.ndarray:
    """The ``horizon`` dates after ``last`` (business days for "B")."""
    import pandas as pd

    last = pd.Timestamp(last)
    if freq == "B":
        return pd.bdate_range(last + pd.offsets.BDay(1), periods=horizon).to_numpy(dtype="datetime64[ns]")
    if freq == "D":
        return pd.date_range(last + pd.Timedelta(days=1), periods=horizon, freq="D").to_numpy(dtype="datetime64[ns]")
    step = pd.Timedelta(seconds=int(freq.rstrip("s")))
    return np.array([np.datetime64(last + step * (i + 1), "ns") for i in range(horizon)])
