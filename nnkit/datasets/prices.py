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
import re
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
             ticker_column: str = "", fill: str = "none", date_format: str = "") -> PriceSeries:
    """Read and check a CSV of dated values; see the module docstring for the rules."""
    import pandas as pd

    from nnkit.datasets.text import check_separator, input_file

    path = input_file(path, "CSV file with a date column")
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
    check_separator(path, list(frame.columns))
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
                       fill=fill, ticker=chosen, line_offset=0, date_format=date_format)


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
                ticker: str, line_offset, date_format: str = "") -> PriceSeries:
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
    dates, note = parse_dates(text, date_format, at, date_column)
    notes = [note] if note else []
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    values = dates.to_numpy(dtype="datetime64[ns]")
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


NUMERIC_DATE = re.compile(r"^(\d{1,2})([/.\-])(\d{1,2})\2(\d{2}|\d{4})(?:[ T].*)?$")
DAY_FIRST, MONTH_FIRST = "%d{sep}%m{sep}{year}", "%m{sep}%d{sep}{year}"


def parse_dates(text, date_format: str, at, column: str):
    """Dates of a column, never read silently wrong; returns (dates, a note or "").

    With ``date_format`` (strftime, e.g. ``%d/%m/%Y``) every cell must match it.
    Without it, ISO and written-out dates are read as they are; numeric dates
    such as ``01/03/2020`` are read day-first or month-first only when some
    cell proves which (a part above 12); when none does, they are refused
    with the fix (``data.date_format``), because either reading is possible.
    """
    import pandas as pd

    fmt = date_format
    note = ""
    if not fmt:
        parts = text.str.extract(NUMERIC_DATE)
        numeric = parts[0].notna().to_numpy()
        if numeric.any():
            first, second = parts[0].astype(float), parts[2].astype(float)
            sep = parts[1].dropna().iloc[0]
            year = "%Y" if len(parts[3].dropna().iloc[0]) == 4 else "%y"
            day_first = bool((first > 12).any())
            month_first = bool((second > 12).any())
            shown = text[numeric].iloc[0]
            if day_first and month_first:  # the later of the two proofs contradicts the earlier one
                line = max(text.index[int(np.argmax((first > 12).to_numpy()))],
                           text.index[int(np.argmax((second > 12).to_numpy()))])
                raise DataError(f"{at(line)}, column {column!r}: {text.loc[line]!r} contradicts the other rows' "
                                "day/month order; fix the file, and set data.date_format (e.g. '%d/%m/%Y')")
            if not day_first and not month_first:
                line = text.index[int(np.argmax(numeric))]
                raise DataError(f"{at(line)}, column {column!r}: ambiguous date {shown!r} (day first or month "
                                "first? no date in the file tells); set data.date_format = "
                                f"'{DAY_FIRST.format(sep=sep, year=year)}' (day first) or "
                                f"'{MONTH_FIRST.format(sep=sep, year=year)}' "
                                "(month first)")
            fmt = "mixed"
            note = f"numeric dates read {'day' if day_first else 'month'} first (e.g. {shown!r})"
            dates = pd.to_datetime(text, errors="coerce", format="mixed", dayfirst=day_first)
        else:
            dates = pd.to_datetime(text, errors="coerce", format="mixed")
    else:
        dates = pd.to_datetime(text, errors="coerce", format=fmt)
    bad = dates.isna().to_numpy()
    if bad.any():
        line = text.index[int(np.argmax(bad))]
        expected = f"data.date_format {date_format!r}" if date_format else "e.g. 2013-03-01"
        raise DataError(f"{at(line)}, column {column!r}: cannot parse {text.loc[line]!r} as a date "
                        f"(expected {expected})")
    return dates, note


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
                        fill=data_cfg.get("fill", "none"), date_format=data_cfg.get("date_format", ""))
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
