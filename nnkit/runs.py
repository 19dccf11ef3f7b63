"""The run folder: its layout, metadata, atomic writes, and loading a run back.

``runs/<recipe>/<YYYYmmdd-HHMMSS>-<6 hex>/`` by default, or exactly ``--out DIR``::

    config.toml   the resolved config          meta.json     versions, seed, command, status
    state.json    what serving/predict need    model.keras   best model (safe-mode loadable)
    checkpoints/  resumable training state     history.csv   per-epoch metrics
    metrics.json  model + baselines            report.md     the model card
    plots/        *.png                        logs/         TensorBoard
    export/       saved_model/, model.keras, model.onnx, model.tflite

Every file is written atomically (temporary file in the same folder, fsync,
rename) so a killed process never leaves a half-written file behind, with
the permissions the user's umask gives (not the temporary file's 0600), and
never over something that is not a regular file (a FIFO, a device, a socket).

A process that works in a run folder holds an OS lock on its ``.lock`` file
(:func:`lock_run`, ``fcntl.flock``): a second process is refused with one
line naming the holder, and the kernel releases the lock when the holder
dies, however it dies, so a killed run can be resumed at once.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import stat
import hashlib
import json
import os
import platform
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping

from nnkit.errors import NnkitError, fs_error, shown

STATUSES = ("running", "finished", "failed", "interrupted")
PARTIAL = ".partial."  # name prefix of files and folders still being written (left behind only by a kill)


# -- atomic writes -----------------------------------------------------------------------

@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync and rename it into place.

    ``suffix`` keeps an extension some writers insist on (Keras wants ``.keras``).
    """
    path = Path(path)
    check_replaceable(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{PARTIAL}{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would hide results from the user's group
        os.close(fd)
    except OSError as exc:
        _reraise(exc, path, "write")
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        _reraise(exc, path, "write")
    finally:
        if tmp.exists():
            tmp.unlink()


def check_replaceable(path: Path) -> None:
    """Refuse to write over anything but a regular file or a link (a FIFO, a device, a socket, a folder)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        _reraise(exc, path, "write")
    if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
        return
    kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a regular file")
    raise NnkitError(f"{shown(path)}: is {kind}; nnkit writes only regular files and never replaces "
                     "anything else (choose another name)")


def _reraise(exc: OSError, path, doing: str):
    """Raise a file-system failure on ``path`` as one line (NnkitError); anything else as it was."""
    problem = fs_error(exc, path, doing)
    if problem is None:
        raise exc
    raise problem from None


def _umask() -> int:
    """The process's umask (read by setting it and putting it back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def sweep_partial(folder: str | Path) -> list[Path]:
    """Remove what a killed process left half-written under ``folder`` (``.partial.*``)."""
    import shutil

    removed = []
    for path in sorted(Path(folder).rglob(f"{PARTIAL}*"), key=lambda p: len(p.parts)):
        if not os.path.lexists(path):
            continue  # inside a folder removed just before
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(value):
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NnkitError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NnkitError(f"{path}: not valid JSON ({exc})") from None


# -- fingerprints ------------------------------------------------------------------------

def fingerprint(*parts) -> str:
    """A short sha256 over arrays, strings and bytes: identifies the data a run saw."""
    digest = hashlib.sha256()
    for part in parts:
        if hasattr(part, "tobytes"):
            digest.update(str(getattr(part, "dtype", "")).encode())
            digest.update(str(getattr(part, "shape", "")).encode())
            digest.update(part.tobytes())
        elif isinstance(part, bytes):
            digest.update(part)
        else:
            digest.update(str(part).encode())
    return digest.hexdigest()[:16]


# -- the run folder ----------------------------------------------------------------------

class Run:
    """A run folder on disk. Create with :func:`create_run`, reopen with :func:`open_run`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # layout: one place that names every file
    config_file = property(lambda self: self.path / "config.toml")
    meta_file = property(lambda self: self.path / "meta.json")
    state_file = property(lambda self: self.path / "state.json")
    model_file = property(lambda self: self.path / "model.keras")
    history_file = property(lambda self: self.path / "history.csv")
    metrics_file = property(lambda self: self.path / "metrics.json")
    report_file = property(lambda self: self.path / "report.md")
    checkpoint_dir = property(lambda self: self.path / "checkpoints")
    plot_dir = property(lambda self: self.path / "plots")
    log_dir = property(lambda self: self.path / "logs")
    export_dir = property(lambda self: self.path / "export")

    def __repr__(self):
        return f"Run({str(self.path)!r})"

    # metadata
    def meta(self) -> dict:
        return read_json(self.meta_file)

    def update_meta(self, **fields) -> dict:
        meta = self.meta() if self.meta_file.exists() else {}
        meta.update(fields)
        meta["updated"] = _now()
        write_json(self.meta_file, meta)
        return meta

    def set_status(self, status: str, **fields) -> None:
        assert status in STATUSES, status
        self.update_meta(status=status, **fields)

    def state(self) -> dict:
        return read_json(self.state_file)

    def config(self) -> dict:
        from nnkit.config import read_toml

        return read_toml(self.config_file, what="run config")


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _safe_component(name: str) -> str:
    """A recipe name as one path component: no separators, no '..'."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".")
    return cleaned or "run"


def create_run(recipe_name: str, out: str | Path | None = None, root: str | Path = "runs") -> Run:
    """Make a new, empty run folder. Two runs started in the same second never share one."""
    if out is not None:
        path = Path(out)
        try:
            if os.path.lexists(path) and (not path.is_dir() or path.is_symlink() or any(path.iterdir())):
                raise NnkitError(f"--out {shown(path)}: exists and is not an empty folder; "
                                 "choose a new folder (nothing was written)")
            path.mkdir(parents=True, exist_ok=True)
            _check_writable(path)
        except OSError as exc:
            _reraise(exc, f"--out {path}", "create the run folder")
        return Run(path)
    base = Path(root) / _safe_component(recipe_name)
    try:
        base.mkdir(parents=True, exist_ok=True)
        _check_writable(base)
    except OSError as exc:
        _reraise(exc, base, "create a run folder")
    real_root = Path(root).resolve()
    if base.resolve().parent != real_root:  # runs/<recipe> is a symlink to somewhere else
        raise NnkitError(f"{base}: is a symbolic link out of {root}; refusing to write a run there "
                         f"(remove the link, or choose a folder with --out)")
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    while True:  # exist_ok=False makes the claim atomic across processes
        path = base / f"{stamp}-{secrets.token_hex(3)}"
        try:
            path.mkdir()
            return Run(path)
        except FileExistsError:
            continue


def _check_writable(folder: Path) -> None:
    """Fail now, in one line, if nothing can be created in ``folder`` (read-only mount, permissions)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OSError(errno.EROFS if _read_only_mount(folder) else errno.EACCES,
                      os.strerror(errno.EACCES), str(folder))


def _read_only_mount(folder: Path) -> bool:
    with contextlib.suppress(OSError, AttributeError):
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    return False


# -- one process at a time ---------------------------------------------------------------

LOCK_FILE = ".lock"
_HELD: dict = {}  # resolved run path -> open file descriptor holding the lock


def lock_run(run: "Run", what: str = "") -> None:
    """Hold the run folder's lock until :func:`release_locks` or the end of the process.

    Re-entrant within a process (the CLI and the pipeline may both ask);
    another process asking gets one line saying who holds it.
    """
    import fcntl

    key = str(run.path.resolve())
    if key in _HELD:
        return
    path = run.path / LOCK_FILE
    check_replaceable(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666 & ~_umask())
    except OSError as exc:
        _reraise(exc, run.path, "lock the run folder")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = _holder(fd)
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            _reraise(exc, run.path, "lock the run folder")
        raise NnkitError(f"{shown(run.path)}: in use by {holder}; one process at a time works in a run "
                         "folder: wait for it to finish, or stop it and run `nnkit resume` later") from None
    owner = {"pid": os.getpid(), "host": platform.node(), "command": what or " ".join(sys.argv[1:3]),
             "since": _now()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(owner) + "\n").encode(), 0)
    _HELD[key] = fd


def _holder(fd: int) -> str:
    """Who holds a lock, from what the holder wrote in the lock file."""
    try:
        owner = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return (f"another nnkit process (pid {owner['pid']} on {owner['host']}, "
                f"`nnkit {owner['command']}` since {owner['since']})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another nnkit process"


@contextlib.contextmanager
def locked(run: "Run", what: str = ""):
    """Hold the run folder's lock for a block; released after it unless it was held before
    (the CLI holds it for a whole command; the Python API, for each call)."""
    key = str(run.path.resolve())
    held_before = key in _HELD
    lock_run(run, what)
    try:
        yield run
    finally:
        if not held_before:
            release_lock(run)


def release_lock(run: "Run") -> None:
    import fcntl

    fd = _HELD.pop(str(run.path.resolve()), None)
    if fd is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def release_locks() -> None:
    """Release every run-folder lock this process holds (the CLI calls it after each command)."""
    import fcntl

    for fd in _HELD.values():
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
    _HELD.clear()


def lock_is_held(path: str | Path) -> bool | None:
    """True when some process holds the run folder's lock; None when the folder has no lock file."""
    import fcntl

    try:
        fd = os.open(Path(path) / LOCK_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if str(Path(path).resolve()) in _HELD:
            return True
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def open_run(path: str | Path) -> Run:
    """Reopen a run folder, refusing anything that is not one."""
    path = Path(path)
    if not path.is_dir():
        raise NnkitError(f"{path}: no such run folder")
    run = Run(path)
    for needed in (run.config_file, run.meta_file):
        if not needed.is_file():
            raise NnkitError(f"{path}: not an nnkit run folder (missing {needed.name})")
    check_contained(run)
    return run


LAYOUT = (LOCK_FILE, "config.toml", "meta.json", "state.json", "model.keras", "history.csv", "metrics.json",
          "report.md", "checkpoints", "plots", "logs", "export", "predictions")


def check_contained(run: Run) -> None:
    """Refuse a run folder whose own entries are symbolic links: nnkit writes there, and a link
    (in a folder someone handed over) would carry those writes outside the run folder."""
    for name in LAYOUT:
        entry = run.path / name
        if entry.is_symlink():
            raise NnkitError(f"{entry}: is a symbolic link (to {os.readlink(entry)}); a run folder must hold "
                             "its own files, so nnkit refuses to write through it (nothing was written)")


def base_meta(recipe: str, task: str, cfg: Mapping, command: list[str] | None = None) -> dict:
    """What every run records about where it came from (TensorFlow versions added at train)."""
    import numpy

    return {
        "recipe": recipe,
        "task": task,
        "status": "running",
        "created": _now(),
        "command": list(command if command is not None else sys.argv),
        "seed": cfg["train"]["seed"],
        "deterministic": cfg["train"]["deterministic"],
        "versions": {
            "nnkit": __import__("nnkit").__version__,
            "python": platform.python_version(),
            "numpy": numpy.__version__,
        },
        "host": platform.node(),
        "stages": [],
    }


def write_predictions(rows: list[dict], out: str | None, echo) -> None:
    """Rows to CSV or JSON (by the --out extension), or CSV on standard output."""
    import csv
    import io

    if out and out.endswith(".json"):
        write_text(out, json.dumps(rows, indent=2) + "\n")
        echo(out)
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    if out:
        write_text(out, buffer.getvalue())
        echo(out)
    else:
        echo(buffer.getvalue().rstrip("\n"))
