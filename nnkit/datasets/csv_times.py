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

import re

import numpy as np

from nnkit.datasets.csv_reading import CsvTable
from nnkit.errors import DataError

# d/m/y or m/d/y (also with '.' or '-'); ISO's 4-digit year first does not match
_SLASHED = r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](?:\d{4}|\d{2})(?!\d)"
_HINT = "(or set data.timestamp_column = \"\" to keep the file order)"


def read_times(table: CsvTable, column: str, session_codes: np.ndarray) -> np.ndarray:
    """float64 per row: the number, or the date as seconds since 1970 UTC; one clear line on bad input."""
    import pandas as pd

    text = table.frame[column].str.strip()
    numbers = pd.to_numeric(text.where(text != ""), errors="coerce")
    if numbers.isna().any():  # dates? keep whichever reading fails on fewer rows
        dates = _read_dates(table, column, text, session_codes)
        if dates.isna().sum() < numbers.isna().sum():
            numbers = dates
    bad = numbers.isna().to_numpy()
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(f"{table.where(first)}, column {column!r}: cannot read {text.iloc[first]!r} as a time; "
                        f"expected a number or a date {_HINT}")
    return numbers.to_numpy(dtype=np.float64)


def _read_dates(table: CsvTable, column: str, text, session_codes: np.ndarray):
    """Seconds since 1970 UTC per row (NaN where not a date), one day/month order for the whole column."""
    parts = text.str.extract(_SLASHED)
    slashed = parts[0].notna().to_numpy()
    first = parts[0].astype(float).to_numpy()
    second = parts[1].astype(float).to_numpy()
    day_first_only = slashed & (first > 12)  # 13/01/2024
    month_first_only = slashed & (second > 12)  # 01/13/2024
    if day_first_only.any() and month_first_only.any():
        a, b = int(np.flatnonzero(day_first_only)[0]), int(np.flatnonzero(month_first_only)[0])
        raise DataError(f"{table.path}, column {column!r}: {text.iloc[a]!r} (line {table.line(a)}) can only be "
                        f"day/month/year and {text.iloc[b]!r} (line {table.line(b)}) only month/day/year; "
                        f"expected one date format in the column: write ISO dates (2024-01-31) {_HINT}")
    if day_first_only.any():
        return _instants(table, column, text, slashed, dayfirst=True)
    month_first = _instants(table, column, text, slashed, dayfirst=False)
    if not month_first_only.any() and (first != second)[slashed].any():  # 03/02 only: which is the day?
        day_first = _instants(table, column, text, slashed, dayfirst=True)
        rows = np.arange(text.size)
        a = np.lexsort((rows, month_first.to_numpy(), session_codes))
        b = np.lexsort((rows, day_first.to_numpy(), session_codes))
        if not np.array_equal(a, b):
            row = int(a[np.flatnonzero(a != b)[0]])
            raise DataError(f"{table.where(row)}, column {column!r}: dates such as {text.iloc[row]!r} read "
                            "day-first and month-first put this session's events in different orders, and no "
                            f"date in the column has a day above 12 to tell which is meant; expected ISO "
                            f"dates (2024-02-03) {_HINT}")
    return month_first


def _instants(table: CsvTable, column: str, text, slashed: np.ndarray, dayfirst: bool):
    """Seconds since 1970 UTC (float Series, NaN where unreadable); ``dayfirst`` applies to slashed dates only."""
    import pandas as pd

    out = pd.Series(np.nan, index=text.index)
    for mask, first in ((slashed, dayfirst), (~slashed, False)):
        if mask.any():
            out[mask] = _seconds(table, column, text[mask], first)
    return out


def _seconds(table: CsvTable, column: str, values, dayfirst: bool):
    import pandas as pd

    values = values.where(values != "")
    try:
        dates = pd.to_datetime(values, errors="coerce", format="mixed", dayfirst=dayfirst)
    except (ValueError, TypeError):  # offsets differ (a daylight-saving change), or some have none
        _check_all_aware(table, column, values)
        dates = pd.to_datetime(values, errors="coerce", format="mixed", dayfirst=dayfirst, utc=True)
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    return (dates - pd.Timestamp("1970-01-01")).dt.total_seconds()


def _check_all_aware(table: CsvTable, column: str, values) -> None:
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
        a, n = kinds.eq(True).idxmax(), kinds.eq(False).idxmax()  # first rows (labels = row numbers)
        raise DataError(f"{table.path}, column {column!r}: {values[a]!r} (line {table.line(a)}) has a UTC "
                        f"offset and {values[n]!r} (line {table.line(n)}) has none; expected every time "
                        "with an offset (e.g. +01:00) or none")
