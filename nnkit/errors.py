"""The one exception type for problems the user can fix (bad input, bad config).

The CLI turns it into exit code 2 and a single line on standard error;
anything else escaping a command is a bug (exit code 1).
"""


class NnkitError(Exception):
    """A usage or data error: the message names the file/line/key and what was expected."""


class ConfigError(NnkitError):
    """A config key, type or value that the schema does not allow."""


class DataError(NnkitError):
    """Input data that cannot be used: missing, empty, malformed, wrong shape."""


def where(path, line=None, column=None) -> str:
    """Format a location prefix such as ``prices.csv, line 12, column 'Close'``."""
    parts = [str(path)]
    if line is not None:
        parts.append(f"line {line}")
    if column is not None:
        parts.append(f"column {column!r}")
    return ", ".join(parts)
