"""Reading user text files with clear errors (missing, empty, not UTF-8, special, wrong separator)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from nnkit.errors import DataError, fs_error

SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def input_file(path: str | Path, what: str = "file") -> Path:
    """``path`` if it is a regular file nnkit can read; one clear line otherwise.

    A FIFO would block forever and a device (``/dev/zero``) never ends, so
    anything but a regular file (or a link to one) is refused before it is opened.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataError(f"{what} not found: {path}") from None
    except OSError as exc:
        problem = fs_error(exc, path, "read")
        if problem is None:
            raise
        raise DataError(str(problem)) from None
    if stat.S_ISDIR(mode):
        raise DataError(f"{path}: is a folder; expected a {what}")
    if not stat.S_ISREG(mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise DataError(f"{path}: is {kind}, not a regular file; expected a {what} (save the data to a file first)")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: cannot read: permission denied (EACCES); fix the permissions")
    return path


def check_separator(path: str | Path, columns: list) -> None:
    """A CSV read as one column, or whose header has more ';'/tab/'|' than commas, is named as such.

    nnkit reads comma-separated files; a file saved with another separator
    (Excel in many locales writes ';') would otherwise fail later with a
    message about missing columns.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        header = handle.readline(65536).decode("utf-8", "replace")
    counts = {sep: header.count(sep) for sep in SEPARATORS}
    sep, count = max(counts.items(), key=lambda item: item[1])
    if count and (count > header.count(",") or len(columns) == 1):
        raise DataError(f"{path}, line 1: columns separated by {SEPARATORS[sep]} ({sep!r}), not commas "
                        f"({count + 1} fields: {header.strip()[:80]!r}); nnkit reads comma-separated CSV: "
                        "save the file with commas as the separator")


def not_utf8(path: Path, raw: bytes, exc: UnicodeDecodeError) -> DataError:
    """The error for ``raw`` (the file's bytes) failing to decode: the line and byte of the first bad one."""
    line = raw[: exc.start].count(b"\n") + 1
    return DataError(f"{path}, line {line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                     "expected UTF-8 text: fix that cell or save the file as UTF-8")


def read_text(path: str | Path, what: str = "text file") -> str:
    """The whole file as str; names the line of the first byte that is not UTF-8."""
    path = input_file(path, what)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise not_utf8(path, raw, exc) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise DataError(f"{path}: empty {what}")
    return text


def read_lines(path: str | Path, what: str = "input file") -> list[str]:
    """Non-empty lines, stripped of the line ending."""
    return [line for line in read_text(path, what).splitlines() if line.strip()]
