"""Reading user text files with clear errors (missing, empty, not UTF-8)."""

from __future__ import annotations

from pathlib import Path

from nnkit.errors import DataError


def read_text(path: str | Path, what: str = "text file") -> str:
    """The whole file as str; names the line of the first byte that is not UTF-8."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{what} not found: {path}")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; expected a {what}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset "
                        f"{exc.start}); expected UTF-8 text") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise DataError(f"{path}: empty {what}")
    return text


def read_lines(path: str | Path, what: str = "input file") -> list[str]:
    """Non-empty lines, stripped of the line ending."""
    return [line for line in read_text(path, what).splitlines() if line.strip()]
