"""A CSV column of times (numbers or dates) as float instants that order events, with clear errors.

Dates are read with one format for the whole column: ``03/02/2024`` is either
3 February or 2 March in every row, never one in some rows and the other in
others (pandas' per-row guess reads ``13/01`` day-first and ``03/02``
month-first). A column whose slashed dates never show a day above 12 is read
month-first when both readings order every session the same way, and refused
otherwise. Dates with different UTC offsets (a daylight-saving change) are
ordered by the instant; dates with and without an offset in one column are refused.
"""

from __future__ import annotations


import numpy as np

from nnkit.datasets.csv_reading import CsvTable
from nnkit.errors import DataError

# d/m/y or m/d/y (also with '.' or '-'); ISO's 4-digit year first does not match
_SLASHED = r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](?:\d{4}|\d{2})(?!\d)"
_HINT = "(or set data.timestamp_column = \"\" to keep the file order)"


def read_times(table: CsvTable, column: str, session_codes: np.ndarray) -> np.ndarray:
    """float64 per row: the number, or the date as seconds since 1970 UTC; one clear line on bad input."""
    import pandas as pd

    # each distinct text is read once (an invoice table repeats its times), then spread over the rows
    codes, uniques = pd.factorize(table.frame[column].str.strip())
    texts = pd.Series(np.asarray(uniques, dtype=object), dtype="str")
    rows = _Rows(table, codes)
    numbers = pd.to_numeric(texts.where(texts != ""), errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(numbers[codes]).any():  # dates? keep whichever reading fails on fewer rows
        dates = _read_dates(rows, column, texts, session_codes).to_numpy(dtype=np.float64)
        if np.isnan(dates[codes]).sum() < np.isnan(numbers[codes]).sum():
            numbers = dates
    bad = np.isnan(numbers[codes])
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(f"{table.where(first)}, column {column!r}: cannot read {texts[codes[first]]!r} as a "
                        f"time; expected a number or a date {_HINT}")
    return numbers[codes]


class _Rows:
    """Maps a distinct text (its index in the factorized column) back to rows and file lines."""

    def __init__(self, table: CsvTable, codes: np.ndarray):
        self.table, self.codes = table, codes

    def line(self, unique: int) -> int:
        return self.table.line(int(np.argmax(self.codes == unique)))

    def where(self, unique: int) -> str:
        return f"{self.table.path}, line {self.line(unique)}"


def _read_dates(rows: _Rows, column: str, text, session_codes: np.ndarray):
    """Seconds since 1970 UTC per distinct text (NaN where not a date), one day/month order for the column."""
    path = rows.table.path
    parts = text.str.extract(_SLASHED)
    slashed = parts[0].notna().to_numpy()
    first = parts[0].astype(float).to_numpy()
    second = parts[1].astype(float).to_numpy()
    day_first_only = slashed & (first > 12)  # 13/01/2024
    month_first_only = slashed & (second > 12)  # 01/13/2024
    if day_first_only.any() and month_first_only.any():
        a, b = int(np.flatnonzero(day_first_only)[0]), int(np.flatnonzero(month_first_only)[0])
        raise DataError(f"{path}, column {column!r}: {text[a]!r} (line {rows.line(a)}) can only be "
                        f"day/month/year and {text[b]!r} (line {rows.line(b)}) only month/day/year; "
                        f"expected one date format in the column: write ISO dates (2024-01-31) {_HINT}")
    if day_first_only.any():
        return _instants(rows, column, text, slashed, dayfirst=True)
    month_first = _instants(rows, column, text, slashed, dayfirst=False)
    if not month_first_only.any() and (first != second)[slashed].any():  # 03/02 only: which is the day?
        day_first = _instants(rows, column, text, slashed, dayfirst=True)
        order = np.arange(rows.codes.size)
        a = np.lexsort((order, month_first.to_numpy()[rows.codes], session_codes))
        b = np.lexsort((order, day_first.to_numpy()[rows.codes], session_codes))
        if not np.array_equal(a, b):
            row = int(a[np.flatnonzero(a != b)[0]])
            raise DataError(f"{rows.table.where(row)}, column {column!r}: dates such as "
                            f"{text[rows.codes[row]]!r} read day-first and month-first put this session's "
                            "events in different orders, and no date in the column has a day above 12 to tell "
                            f"which is meant; expected ISO dates (2024-02-03) {_HINT}")
    return month_first


def _instants(rows: _Rows, column: str, text, slashed: np.ndarray, dayfirst: bool):
    """Seconds since 1970 UTC (float Series, NaN where unreadable); ``dayfirst`` applies to slashed dates only."""
    import pandas as pd

    out = pd.Series(np.nan, index=text.index)
    for mask, first in ((slashed, dayfirst), (~slashed, False)):
        if mask.any():
            out[mask] = _seconds(rows, column, text[mask], first)
    return out


def _seconds(rows: _Rows, column: str, values, dayfirst: bool):
    import pandas as pd

    values = values.where(values != "")
    try:
        dates = pd.to_datetime(values, errors="coerce", format="mixed", dayfirst=dayfirst)
    except (ValueError, TypeError):  # offsets differ (a daylight-saving change), or some have none
        _check_all_aware(rows, column, values)
        try:
            dates = pd.to_datetime(values, errors="coerce", format="mixed", dayfirst=dayfirst, utc=True)
        except (ValueError, TypeError) as exc:  # pandas' own refusal, whatever it is: still one line
            raise DataError(f"{rows.table.path}, column {column!r}: cannot read the dates ({exc}); expected "
                            f"numbers or dates in one form {_HINT}") from None
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    return (dates - pd.Timestamp("1970-01-01")).dt.total_seconds()


def _check_all_aware(rows: _Rows, column: str, values) -> None:
    """Raise when some dates carry a UTC offset and others do not (their order would be a guess)."""
    import pandas as pd

    has_offset = {}
    for value in values.dropna().unique():  # each distinct text once
        try:
            has_offset[value] = pd.Timestamp(value).tzinfo is not None
        except (ValueError, TypeError, OverflowError):
            continue
    kinds = values.map(has_offset)
    if kinds.eq(True).any() and kinds.eq(False).any():
        a, n = kinds.eq(True).idxmax(), kinds.eq(False).idxmax()  # labels: distinct-text indices
        raise DataError(f"{rows.table.path}, column {column!r}: {values[a]!r} (line {rows.line(a)}) has a UTC "
                        f"offset and {values[n]!r} (line {rows.line(n)}) has none; expected every time "
                        "with an offset (e.g. +01:00) or none")
