"""In-memory data for ``nnkit.run``: written as the task's own user format, read by the task's own reader.

One path per input kind: a DataFrame, arrays or a list of strings are not
decoded here. They are written, without pickle, in the format ``--data``
takes for that task (CSV with a date column, ``.npz`` with ``x``/``y``,
TSV sentence pairs, sessions CSV, plain text) into a staging folder; the
task then reads that file exactly as it reads a user's file, so validation,
errors and the data fingerprint are the CLI's. Once the run folder exists,
the staged files move into ``<run>/data/`` and the config points there, so
``nnkit evaluate``, ``resume`` and ``predict`` keep working on the run.

Error messages name the staged file; :meth:`Staged.rename` replaces its path
by what the caller passed (``DataFrame (as prices.csv)``). Line numbers stay
the file's: the header is line 1, so row ``i`` of a DataFrame is line ``i + 2``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nnkit.errors import DataError

DATA_DIR = "data"  # inside the run folder


@dataclass
class Staged:
    """Files written for in-memory data, and where they go in the run folder."""

    folder: Path
    files: dict  # config key ("path", "items") -> (file name, label for messages)
    description: str  # e.g. "pandas.DataFrame 500 x 7"
    final: Path | None = None  # <run>/data once adopted
    _renames: dict = field(default_factory=dict)

    def path(self, key: str) -> Path:
        return self.folder / self.files[key][0]

    def apply(self, cfg: dict) -> dict:
        """Point the config's data keys at the staged files (as ``--data`` would, absolute)."""
        for key in self.files:
            cfg["data"][key] = str(self.path(key).resolve())
        return cfg

    def adopter(self, command: list):
        """The pipeline's ``adopt`` hook; ``command`` (meta.json's) is rewritten to the kept files."""
        def adopt(run, cfg, prepared):
            cfg = self.adopt(run, cfg, prepared)
            old, new = str(self.folder.resolve()), str(self.final.resolve())
            command[:] = [part.replace(old, new) for part in command]
            return cfg

        return adopt

    def adopt(self, run, cfg: dict, prepared=None) -> dict:
        """Move the staged files into ``<run>/data/``; the config and the data summary follow."""
        self.final = run.path / DATA_DIR
        shutil.move(str(self.folder), str(self.final))
        kept = []
        for key, (name, _label) in self.files.items():
            cfg["data"][key] = str((self.final / name).resolve())
            kept.append(f"{DATA_DIR}/{name}")
        if prepared is not None:  # the summary was written while the files were staged
            old, new = str(self.folder.resolve()), str(self.final.resolve())
            prepared.summary = {k: v.replace(old, new) if isinstance(v, str) else v
                                for k, v in prepared.summary.items()}
            prepared.summary["in-memory data"] = f"{self.description}, kept as {', '.join(kept)}"
        return cfg

    def rename(self, message: str) -> str:
        """An error message with the staged paths replaced by what the caller passed."""
        for key, (name, label) in self.files.items():
            for form in {str(self.path(key).resolve()), str(self.path(key))}:
                message = message.replace(form, label)
        return message

    def cleanup(self) -> None:
        if self.final is None:
            shutil.rmtree(self.folder, ignore_errors=True)


def is_in_memory(data) -> bool:
    """True for anything ``nnkit.run`` must write out first (not None, not a path)."""
    import os

    return data is not None and not isinstance(data, (str, os.PathLike))


def stage(task_name: str, data, cfg: dict) -> Staged:
    """Write ``data`` in the task's user format into a new staging folder."""
    writer = WRITERS.get(task_name)
    if writer is None:
        raise DataError(f"data: task '{task_name}' reads only files; pass a path (received {_kind(data)})")
    folder = Path(tempfile.mkdtemp(prefix="nnkit-data-"))
    try:
        files, description = writer(data, cfg, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Staged(folder, files, description)


# -- helpers ---------------------------------------------------------------------------------

def _kind(data) -> str:
    module = type(data).__module__.split(".")[0]
    name = type(data).__name__
    if hasattr(data, "shape"):
        return f"{module}.{name} {' x '.join(map(str, data.shape))}"
    if isinstance(data, (list, tuple)):
        return f"a {name} of {len(data)}"
    return f"{module}.{name}" if module != "builtins" else name


def _is_frame(data) -> bool:
    return type(data).__name__ == "DataFrame" and hasattr(data, "to_csv")


def _is_series(data) -> bool:
    return type(data).__name__ == "Series" and hasattr(data, "to_frame")


def _write_frame(frame, path: Path) -> None:
    """CSV with the index as a column only when it carries information (a name, or dates)."""
    import pandas as pd

    named = any(n is not None for n in frame.index.names)
    if isinstance(frame.index, pd.DatetimeIndex) or named:
        frame = frame.reset_index()
    frame.to_csv(path, index=False)


def _expected(what: str, data) -> DataError:
    return DataError(f"data: expected {what}; received {_kind(data)}")


def _array(value, name: str):
    """A numpy array that ``np.savez`` writes without pickle (strings as unicode)."""
    array = np.asarray(value)
    if array.dtype == object:
        flat = array.ravel()
        if all(isinstance(v, str) for v in flat):
            array = array.astype(str)
        elif all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in flat):
            array = array.astype(np.int64)
        else:
            raise DataError(f"data: {name} holds Python objects ({array.dtype}); expected numbers or strings "
                            "(ragged sequences: pad them to one length and pass lengths)")
    return array


def _npz(arrays: dict, path: Path) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, **{k: _array(v, k) for k, v in arrays.items() if v is not None})


def _arrays(data, names: tuple) -> dict:
    """(x, y[, ...]) or {"x": ..., "y": ...} -> a dict of named arrays."""
    if isinstance(data, dict):
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise DataError(f"data: unknown array name(s) {', '.join(map(repr, unknown))}; "
                            f"expected {', '.join(names)}")
        return dict(data)
    if isinstance(data, tuple) and 2 <= len(data) <= len(names):
        return dict(zip(names, data))
    raise _expected(f"a tuple ({', '.join(names[:2])}) of arrays", data)


# -- one writer per task: (data, cfg, folder) -> ({config key: (file, label)}, description) --------

def _prices(data, cfg, folder):
    import pandas as pd

    if _is_series(data):
        data = data.to_frame(data.name or "value")
    if not _is_frame(data):
        raise _expected("a path, or a pandas DataFrame of prices with a date column or a DatetimeIndex", data)
    frame = data
    if isinstance(frame.index, pd.DatetimeIndex) and frame.index.name is None:
        frame = frame.rename_axis("Date")
    _write_frame(frame, folder / "prices.csv")
    return {"path": ("prices.csv", "DataFrame (as prices.csv)")}, _kind(data)


def _table(data, cfg, folder):
    import pandas as pd

    if isinstance(data, tuple) and len(data) == 2:  # (features, labels), scikit-learn style
        x, y = data
        frame = x.copy() if _is_frame(x) else pd.DataFrame(np.asarray(x)).add_prefix("x")
        label = cfg["data"]["label_column"]
        if label in frame.columns:
            raise DataError(f"data: the features already have a column {label!r} (data.label_column); "
                            "rename it or set data.label_column")
        if len(y) != len(frame):
            raise DataError(f"data: {len(frame)} rows of features but {len(y)} labels")
        frame[label] = np.asarray(y)
        data = frame
    if not _is_frame(data):
        raise _expected("a path, a pandas DataFrame with a label column, or (features, labels)", data)
    _write_frame(data, folder / "table.csv")
    return {"path": ("table.csv", "DataFrame (as table.csv)")}, _kind(data)


def _images(data, cfg, folder):
    arrays = _arrays(data, ("x", "y", "class_names"))
    _npz(arrays, folder / "images.npz")
    x = np.asarray(arrays.get("x"))
    return {"path": ("images.npz", "arrays (as images.npz)")}, f"numpy arrays x {' x '.join(map(str, x.shape))}"


def _sequences(data, cfg, folder):
    if _is_frame(data):  # long format: sequence_id, t, features..., label
        _write_frame(data, folder / "sequences.csv")
        return {"path": ("sequences.csv", "DataFrame (as sequences.csv)")}, _kind(data)
    arrays = _arrays(data, ("x", "y", "lengths", "mask", "feature_names", "class_names", "ids"))
    _npz(arrays, folder / "sequences.npz")
    x = np.asarray(arrays.get("x"))
    return ({"path": ("sequences.npz", "arrays (as sequences.npz)")},
            f"numpy arrays x {' x '.join(map(str, x.shape))}")


def _text(data, cfg, folder):
    if isinstance(data, str):
        text = data
    elif isinstance(data, (list, tuple)) and all(isinstance(t, str) for t in data):
        text = "\n".join(data)
    else:
        raise _expected("a path, a string, or a list of strings", data)
    (folder / "text.txt").write_text(text, encoding="utf-8")
    return {"path": ("text.txt", "text (as text.txt)")}, f"text of {len(text)} characters"


_WHITESPACE = re.compile(r"\s")  # the reader folds every whitespace run into one space anyway


def _pairs(data, cfg, folder):
    if _is_frame(data):
        columns = [c for c in ("source", "target") if c in data.columns]
        frame = data[columns] if len(columns) == 2 else data.iloc[:, :2]
        if frame.shape[1] < 2:
            raise DataError(f"data: a DataFrame of sentence pairs needs two columns (source, target); "
                            f"received columns {list(data.columns)}")
        pairs = list(frame.itertuples(index=False, name=None))
    elif isinstance(data, (list, tuple)):
        pairs = list(data)
    else:
        raise _expected("a path, a list of (source, target) pairs, or a DataFrame with source and target", data)
    lines = []
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(s, str) for s in pair)):
            raise DataError(f"data: pair {i} is {pair!r}; expected (source, target), two strings")
        lines.append("\t".join(_WHITESPACE.sub(" ", s) for s in pair))
    (folder / "pairs.tsv").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return {"path": ("pairs.tsv", "pairs (as pairs.tsv)")}, f"{len(pairs)} sentence pairs"


def _sessions(data, cfg, folder):
    import pandas as pd

    d = cfg["data"]
    items = None
    if isinstance(data, tuple) and len(data) == 2 and _is_frame(data[0]) and _is_frame(data[1]):
        data, items = data
    if isinstance(data, (list, tuple)) and data and all(isinstance(s, (list, tuple)) for s in data):
        # gensim style: one list of item ids per session
        rows = [(i, str(item)) for i, session in enumerate(data) for item in session]
        data = pd.DataFrame(rows, columns=[d["session_column"], d["item_column"]])
    if not _is_frame(data):
        raise _expected("a path, a sessions DataFrame (session_id, item_id[, timestamp]), "
                        "(sessions, items) DataFrames, or a list of sessions (lists of item ids)", data)
    _write_frame(data, folder / "sessions.csv")
    files = {"path": ("sessions.csv", "sessions DataFrame (as sessions.csv)")}
    if items is not None:
        _write_frame(items, folder / "items.csv")
        files["items"] = ("items.csv", "items DataFrame (as items.csv)")
    return files, _kind(data) + (f" + items {_kind(items)}" if items is not None else "")


WRITERS = {
    "forecasting": _prices,
    "binary_classification": _table,
    "image_classification": _images,
    "sequence_classification": _sequences,
    "sequence_labeling": _sequences,
    "language_model": _text,
    "translation": _pairs,
    "embedding": _sessions,
}


# -- inputs for Run.predict: the same files ``nnkit predict`` takes ---------------------------------

def predict_inputs(task_name: str, inputs, folder: Path, state: dict) -> tuple[list[str], dict]:
    """``inputs`` as the CLI's INPUTS (paths or strings); returns (items, {staged path: label})."""
    import os

    if inputs is None:
        return [], {}
    if isinstance(inputs, (str, os.PathLike)):
        return [os.fspath(inputs)], {}
    if isinstance(inputs, (list, tuple)) and all(isinstance(i, (str, os.PathLike)) for i in inputs):
        return [os.fspath(i) for i in inputs], {}

    def staged(name: str, label: str):
        path = folder / name
        return [str(path)], {str(path): label}

    if task_name == "forecasting":
        _prices(inputs, {}, folder)
        return staged("prices.csv", "DataFrame (as prices.csv)")
    if task_name == "binary_classification":
        import pandas as pd

        frame = inputs if _is_frame(inputs) else pd.DataFrame(np.asarray(inputs), columns=state["features"])
        _write_frame(frame, folder / "table.csv")
        return staged("table.csv", "DataFrame (as table.csv)")
    if task_name == "image_classification":
        _npz({"x": inputs}, folder / "images.npz")
        return staged("images.npz", "arrays (as images.npz)")
    if task_name in ("sequence_classification", "sequence_labeling"):
        if _is_frame(inputs):
            _write_frame(inputs, folder / "sequences.csv")
            return staged("sequences.csv", "DataFrame (as sequences.csv)")
        arrays = _arrays(inputs, ("x", "lengths", "mask", "feature_names", "ids")) \
            if isinstance(inputs, (tuple, dict)) else {"x": inputs}
        _npz(arrays, folder / "sequences.npz")
        return staged("sequences.npz", "arrays (as sequences.npz)")
    raise _expected("a string, a path, or a list of them", inputs)
