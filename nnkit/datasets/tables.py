"""Reading user CSV files with one clear error per problem (missing, empty, not UTF-8, malformed)."""

from __future__ import annotations

from pathlib import Path

from nnkit.errors import DataError


def read_csv(path: str | Path, required: tuple = (), **kwargs):
    """A pandas DataFrame from a UTF-8 CSV; ``required`` columns must be present.

    Errors name the file, and the line where pandas can tell it.
    """
    import pandas as pd

    from nnkit.datasets.text import check_separator, read_text

    path = Path(path)
    read_text(path, what="CSV file")  # existence, UTF-8 (with the line), emptiness
    try:
        frame = pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty CSV file (no header)") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: malformed CSV ({str(exc).strip()})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    check_separator(path, list(frame.columns))
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(map(repr, missing))}; "
                        f"found {', '.join(map(repr, frame.columns))}")
    if frame.empty:
        raise DataError(f"{path}: header only, no data rows")
    return frame
