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


class TrainingDiverged(NnkitError):
    """Training blew up (a non-finite loss or outputs, or exploded weights); the message says what to try.

    Its own type so that a caller can let one setting lose and go on, as the
    choice of settings on validation (``nnkit.select``) does.
    """


class PortTaken(NnkitError):
    """A multi-worker process could not listen on its port (another program took it first).

    Its own exit code (75, EX_TEMPFAIL) tells the --local launcher to start the
    cluster again on new ports rather than report a failure.
    """

    exit_code = 75


def where(path, line=None, column=None) -> str:
    """Format a location prefix such as ``prices.csv, line 12, column 'Close'``."""
    parts = [str(path)]
    if line is not None:
        parts.append(f"line {line}")
    if column is not None:
        parts.append(f"column {column!r}")
    return ", ".join(parts)


# Why an operating-system call on a user's path failed, in words a user can act on.
_FS_REASONS = {
    "EACCES": "permission denied",
    "EPERM": "operation not permitted",
    "EROFS": "read-only file system",
    "ENOTDIR": "a part of the path is a file, not a folder",
    "EISDIR": "is a folder, not a file",
    "ENOSPC": "no space left on the device",
    "EDQUOT": "disk quota exceeded",
    "ENAMETOOLONG": "file name too long",
    "ELOOP": "too many levels of symbolic links",
    "ENXIO": "a special file with nothing on the other side (a FIFO or device)",
    "EEXIST": "already exists",
    "ENOENT": "no such file or folder",
    "EBUSY": "busy",
    "EXDEV": "on another file system",
    "EMFILE": "too many open files",
}


def fs_error(exc: OSError, path=None, doing: str = "") -> "NnkitError | None":
    """A one-line NnkitError for a file-system failure on a user's path, or None when it is not one."""
    import errno

    name = errno.errorcode.get(exc.errno or 0, "")
    if name not in _FS_REASONS:
        return None
    target = path if path is not None else (exc.filename if exc.filename is not None else "?")
    action = f"cannot {doing}: " if doing else ""
    return NnkitError(f"{shown(target)}: {action}{_FS_REASONS[name]} ({name}); "
                      "choose another place or fix the permissions")


def shown(path) -> str:
    """A path as it appears in a one-line message: quoted when it holds line breaks or control characters."""
    text = str(path)
    return text if text.isprintable() else repr(text)
