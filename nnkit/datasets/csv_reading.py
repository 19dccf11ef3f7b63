"""Reading a user's CSV into a pandas frame of strings, with one clear line for each kind of bad input.

The jobs, in order: decompress (``.gz``, ``.bz2``, ``.xz``), decode (UTF-8 with or
without a BOM; a file that is wholly Windows-1252/latin-1 too, but never a UTF-8
file with a few stray bytes, which would garble every non-ASCII id), parse with
pandas keeping every cell verbatim (``NA``, ``None``, ``null`` are ids, not
missing values), refuse rows with more fields than the header, and name the real
file line of a row (a quoted field may span lines). Times are in
:mod:`nnkit.datasets.csv_times`.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnkit.errors import DataError

_DECOMPRESS = {".gz": gzip.decompress, ".bz2": bz2.decompress, ".xz": lzma.decompress}

# one well-formed UTF-8 sequence of 2 to 4 bytes (RFC 3629): a file holding one is UTF-8, not latin-1
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}")
_FIELD_COUNT = re.compile(r"Expected \d+ fields in line \d+, saw \d+")


@dataclass
class CsvTable:
    """A CSV read as strings: ``frame`` (one row per data record) and where each row sits in the file."""

    path: Path
    frame: object  # pandas.DataFrame of str
    text: str  # the decoded file, for line numbers in errors

    def line(self, row: int) -> int:
        """The file line (1-based) where data row ``row`` (0-based) starts."""
        return _record_lines(self.text, row + 1)[row + 1]

    def where(self, row: int) -> str:
        return f"{self.path}, line {self.line(row)}"


def _record_lines(text: str, upto: int) -> list[int]:
    """Start lines of the first ``upto + 1`` records (header first), skipping blank lines as pandas does."""
    starts, previous = [], 0
    reader = csv.reader(io.StringIO(text), skipinitialspace=True)
    for record in reader:
        start, previous = previous + 1, reader.line_num
        if not any(field.strip() for field in record) and len(record) <= 1:
            continue
        starts.append(start)
        if len(starts) > upto:
            break
    return starts


def decode_csv(path: Path) -> str:
    """The file's text: decompressed, decoded (see the module doc), a leading BOM removed."""
    raw = path.read_bytes()
    unpack = _DECOMPRESS.get(path.suffix.lower())
    if unpack is not None:
        try:
            raw = unpack(raw)
        except (OSError, EOFError, ValueError, lzma.LZMAError) as exc:
            raise DataError(f"{path}: cannot decompress ({exc}); expected a {path.suffix} "
                            "compressed CSV") from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{path}: the file is UTF-16 text (it starts with a UTF-16 byte order mark); "
                        "expected UTF-8: save it as 'CSV UTF-8 (comma delimited)'")
    if b"\x00" in raw[:65536]:
        raise DataError(f"{path}: the file holds NUL bytes (UTF-16 text or a binary file?); "
                        "expected a UTF-8 CSV")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if _UTF8_MULTIBYTE.search(raw):  # UTF-8 with a few stray bytes: re-decoding would garble the rest
            from nnkit.datasets.text import not_utf8

            raise not_utf8(path, raw, exc) from None
    try:  # no UTF-8 sequence at all: a Windows/latin-1 export ('caf\xe9')
        return raw.decode("cp1252")
    except UnicodeDecodeError:  # the 5 bytes cp1252 leaves undefined
        return raw.decode("latin-1")


def read_csv_table(path: str | Path, what: str, needed: dict, example: str = "") -> CsvTable:
    """Read a CSV as strings; ``needed`` maps config key -> column name that must exist.

    ``example``: the header an error about an empty file shows (default: the needed columns).

    Cells are kept verbatim (only surrounding spaces go later): an empty cell is
    ``""``, never NaN, and ``NA``/``null`` stay text. Rows with more fields than
    the header are an error unless the extra fields are all empty (a trailing
    comma on each row, as some spreadsheets export), which are dropped.
    """
    import pandas as pd

    from nnkit.datasets.text import check_separator, input_file

    path = input_file(path, what)
    example = example or ",".join(needed.values())
    text = decode_csv(path)
    if not text.strip():
        raise DataError(f"{path}: empty file; expected a CSV with a header such as {example}")
    options = dict(dtype=str, keep_default_na=False, na_values=[], skipinitialspace=True, index_col=False)
    try:
        columns = list(pd.read_csv(io.StringIO(text), nrows=0, **options).columns)
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # "Length of header ... loss of data"
            try:
                frame = pd.read_csv(io.StringIO(text), **options)
            except (pd.errors.ParserWarning, pd.errors.ParserError) as exc:
                if isinstance(exc, pd.errors.ParserError) and not _FIELD_COUNT.search(str(exc)):
                    raise
                _check_extra_fields(path, text, len(columns))
                frame = pd.read_csv(io.StringIO(text), usecols=range(len(columns)), **options)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file; expected a CSV with a header such as {example}") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: cannot parse as CSV ({str(exc).strip()})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if path.suffix.lower() not in _DECOMPRESS:  # it reads the raw first line
        check_separator(path, list(frame.columns))
    for key, column in needed.items():
        if column not in frame.columns:
            raise DataError(f"{path}: no column {column!r} (config key {key}); the file has columns "
                            f"{', '.join(repr(c) for c in frame.columns)}; set {key} to one of them")
    if frame.empty:
        raise DataError(f"{path}: has a header but no rows")
    return CsvTable(path, frame, text)


def _check_extra_fields(path: Path, text: str, width: int) -> None:
    """Raise at the first record with a non-empty field beyond the header's ``width`` columns."""
    reader = csv.reader(io.StringIO(text), skipinitialspace=True)
    header, previous = None, 0
    for record in reader:
        start, previous = previous + 1, reader.line_num
        if header is None:
            header = record
            continue
        if len(record) > width and any(field.strip() for field in record[width:]):
            raise DataError(f"{path}, line {start}: {len(record)} fields, but the header has {width} "
                            f"({','.join(header)[:80]!r}); expected one field per header column (a comma "
                            "inside a value needs double quotes around the value)")


def check_no_missing(table: CsvTable, column: str, key: str, expected: str):
    """``column`` stripped of surrounding spaces; raises at the first row whose cell is then empty."""
    cells = table.frame[column].str.strip()
    missing = (cells == "").to_numpy()
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise DataError(f"{table.where(first)}, column {column!r}: empty value "
                        f"({int(missing.sum())} of {missing.size} rows); expected {expected} "
                        f"in every row (config key {key})")
    return cells
