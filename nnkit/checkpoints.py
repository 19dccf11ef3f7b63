"""Check a run's resume checkpoint before ``nnkit resume`` trusts it, and the ways forward when it is damaged.

The checkpoint (``checkpoints/backup/``, written by ``train.RunCheckpoint``)
is one commit: ``checkpoint.json`` naming ``epoch-K.weights.h5`` (and the
early-stopping best weights ``best-epoch-J.npz``); the commit before it is
kept as ``checkpoint.previous.json`` with its files. A garbage or truncated
file there (a disk that filled up, a copy that stopped half-way, a hand edit)
is named in one line with the two ways forward::

    nnkit resume RUN --from last-good   # the commit before the damaged one
    nnkit resume RUN --from scratch     # train again from the first epoch

Reads files only (h5py, NumPy without pickle); never imports TensorFlow.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from nnkit.errors import NnkitError

INDEX = "checkpoint.json"
PREVIOUS = "checkpoint.previous.json"
RESTARTS = ("last-good", "scratch")


def damage(folder: Path, index_name: str = INDEX) -> tuple[Path, str] | None:
    """(the damaged file, what is wrong) for the commit named by ``index_name``, or None when it is whole."""
    index = Path(folder) / index_name
    if not index.is_file():
        return None
    try:
        saved = json.loads(index.read_text(encoding="utf-8"))
        epoch, weights = int(saved["epoch"]), str(saved["weights"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        return index, f"not a checkpoint index ({type(exc).__name__})"
    if epoch < 0 or "/" in weights or weights.startswith("."):
        return index, f"names an impossible commit (epoch {epoch}, weights {weights!r})"
    problem = _h5_damage(Path(folder) / weights)
    if problem:
        return Path(folder) / weights, problem
    for state in (saved.get("callbacks") or {}).values():
        best = state.get("best_weights") if isinstance(state, dict) else None
        if best:
            problem = _npz_damage(Path(folder) / str(best))
            if problem:
                return Path(folder) / str(best), problem
    return None


def _h5_damage(path: Path) -> str | None:
    import h5py

    if not path.is_file():
        return "missing"
    try:
        with h5py.File(path, "r") as handle:
            handle.visititems(lambda name, item: item[()] if isinstance(item, h5py.Dataset) else None)
    except Exception as exc:  # h5py raises OSError, KeyError, RuntimeError for damaged files
        return f"unreadable weights ({' '.join(str(exc).split())[:120]})"
    return None


def _keras_damage(path: Path) -> str | None:
    """A .keras file is a zip holding config.json and model.weights.h5: a truncated one fails here."""
    import zipfile

    if not path.is_file():
        return "missing"
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            names = set(archive.namelist())
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        return f"not a whole .keras archive ({type(exc).__name__})"
    if bad is not None:
        return f"member {bad!r} is corrupt"
    if not {"config.json", "model.weights.h5"} <= names:
        return "not a Keras model archive"
    return None


def _npz_damage(path: Path) -> str | None:
    import zipfile

    import numpy as np

    if not path.is_file():
        return "missing"
    try:
        with np.load(path, allow_pickle=False) as data:
            for name in data.files:
                data[name]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        return f"unreadable best weights ({type(exc).__name__})"
    return None


def check_or_restart(run, restart: str | None) -> str | None:
    """Before a resume: refuse a damaged checkpoint in one line, or apply ``--from``.

    Returns what was done (for the log), or None when nothing needed doing.
    """
    folder = run.checkpoint_dir / "backup"
    if restart == "scratch":
        shutil.rmtree(folder, ignore_errors=True)
        run.update_meta(stages=[])  # everything after training depends on it
        return "training again from the first epoch (--from scratch)"
    if restart is None and "train" in run.meta().get("stages", []):  # trained: the model file is what counts
        problem = _keras_damage(run.model_file)
        if problem:
            raise NnkitError(f"{run.model_file}: damaged model file ({problem}); train again from the first "
                             f"epoch with: nnkit resume {run.path} --from scratch")
    found = damage(folder, INDEX if (folder / INDEX).is_file() else PREVIOUS)  # a kill between two renames
    if found is None:
        if restart == "last-good":
            raise NnkitError(f"{folder / INDEX}: the checkpoint is whole; resume without --from")
        return None
    path, problem = found
    if restart == "last-good":
        if not (folder / PREVIOUS).is_file() or damage(folder, PREVIOUS) is not None:
            raise NnkitError(f"{path}: damaged ({problem}) and no earlier whole checkpoint is kept; "
                             f"train again with: nnkit resume {run.path} --from scratch")
        from nnkit.runs import write_text

        write_text(folder / INDEX, (folder / PREVIOUS).read_text(encoding="utf-8"))
        epoch = json.loads((folder / INDEX).read_text())["epoch"]
        return f"resuming from the last good checkpoint (after epoch {epoch}, --from last-good)"
    earlier = (folder / PREVIOUS).is_file() and damage(folder, PREVIOUS) is None
    hint = (f"resume from the checkpoint before it with: nnkit resume {run.path} --from last-good, or "
            if earlier else "")
    raise NnkitError(f"{path}: damaged resume checkpoint ({problem}); {hint}train again from the first "
                     f"epoch with: nnkit resume {run.path} --from scratch")
