"""Reading the user's sequences: NPZ arrays and long-format CSV, with clear errors.

Both readers return :class:`Sequences`: ``x`` padded to ``[N, T, F]`` (float32),
``lengths`` ``[N]``, and labels ``y`` as class indices, ``[N]`` (one label per
sequence) or ``[N, T]`` (one per step, ``-1`` after a sequence's end).

Dropouts (a step whose sensors all failed) are rows of NaN in ``x``: the
models skip them like padding. A row where only *some* features are missing
is an error, because nothing says what the missing values should be.

NPZ (``numpy.savez``)::

    x        [N, T, F] float   padded sequences (or [N, T]: one feature)
    y        [N] or [N, T]     labels: integers, booleans or strings
    lengths  [N] int           optional; without it every sequence is T steps long
    mask     [N, T] bool/int   optional; 0 marks a dropout step
    feature_names [F] str, class_names [C] str, ids [N]   optional

Long CSV, one row per step (header names configurable)::

    sequence_id,t,gap,rel_speed,...,label
    a,0,31.2,-0.4,...,keep
    a,1,,,...,keep            <- every feature empty: a dropout step

For one label per sequence, the label must be the same on every row of a
sequence. Rows are ordered by ``t`` inside each sequence.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nnkit.errors import DataError


@dataclass
class Sequences:
    x: np.ndarray                 # [N, T, F] float32; NaN rows = dropouts; 0 after the end
    lengths: np.ndarray           # [N] int32
    y: np.ndarray | None          # [N] or [N, T] int32 class indices (-1 after the end), or None
    class_names: list = field(default_factory=list)
    feature_names: list = field(default_factory=list)
    ids: list = field(default_factory=list)
    source: str = ""

    def __len__(self):
        return len(self.x)

    def take(self, index) -> "Sequences":
        index = np.asarray(index)
        return Sequences(self.x[index], self.lengths[index], None if self.y is None else self.y[index],
                         list(self.class_names), list(self.feature_names),
                         [self.ids[i] for i in index], self.source)

    @property
    def valid(self) -> np.ndarray:
        """[N, T] True inside each sequence (dropouts included)."""
        return np.arange(self.x.shape[1])[None, :] < self.lengths[:, None]

    @property
    def observed(self) -> np.ndarray:
        """[N, T] True where a step is inside its sequence and not a dropout."""
        return self.valid & ~np.isnan(self.x).any(axis=-1)


def read_sequences(path, *, per_step: bool, require_labels: bool = True, class_names=None,
                   feature_names=None, id_column: str = "sequence_id", time_column: str = "t",
                   label_column: str = "label", features=()) -> Sequences:
    """Read ``path`` (.npz or .csv) for a task with one label per sequence or per step.

    ``require_labels=False`` (prediction) reads no labels at all, even when the file has them.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; expected a .npz or .csv file of sequences")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        seqs = read_npz(path, per_step=per_step, require_labels=require_labels, class_names=class_names)
    elif suffix in (".csv", ".txt"):
        seqs = read_long_csv(path, per_step=per_step, require_labels=require_labels, class_names=class_names,
                             id_column=id_column, time_column=time_column, label_column=label_column,
                             features=features)
    else:
        raise DataError(f"{path}: unsupported file type {suffix or '(none)'!r}; expected .npz "
                        "(x [N,T,F], y, optional lengths) or .csv (sequence_id,t,features...,label)")
    if feature_names is not None:
        check_features(seqs, list(feature_names))
    return seqs


def check_features(seqs: Sequences, expected: list) -> None:
    """The file's features must be the ones the model was trained on, in any order (CSV) or same count."""
    got = list(seqs.feature_names)
    if len(got) != len(expected):
        raise DataError(f"{seqs.source}: {len(got)} feature(s) {got}; the model expects {len(expected)}: "
                        f"{expected}")
    if set(got) == set(expected) and got != expected:  # same names, other order: reorder
        order = [got.index(name) for name in expected]
        seqs.x = seqs.x[:, :, order]
        seqs.feature_names = list(expected)
    elif got != expected and not all(g.startswith("f") and g[1:].isdigit() for g in got):
        missing = [e for e in expected if e not in got]
        raise DataError(f"{seqs.source}: feature(s) {missing} missing; the model expects {expected}, "
                        f"the file has {got}")
    seqs.feature_names = list(expected)


# -- NPZ -------------------------------------------------------------------------------------

def _npz_array(data, key: str, path: Path):
    try:
        return data[key]
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            extra = (" Pad the sequences to one length T and save x as [N, T, F] with a `lengths` "
                     "array [N] (np.savez(path, x=padded, y=y, lengths=lengths))") if key == "x" else ""
            raise DataError(f"{path}: array {key!r} is ragged (an object array of sequences of different "
                            f"lengths), which is not read for safety.{extra}") from None
        raise DataError(f"{path}: array {key!r} cannot be read: {exc}") from None


def read_npz(path, *, per_step: bool, require_labels: bool = True, class_names=None) -> Sequences:
    from nnkit.datasets.text import input_file

    path = input_file(path, ".npz file")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    if not hasattr(data, "files"):
        raise DataError(f"{path}: a single array, not an .npz archive; save with np.savez(path, x=..., y=...)")
    with data:
        keys = set(data.files)
        if "x" not in keys:
            raise DataError(f"{path}: no array 'x' (found {sorted(keys)}); expected x [N, T, F]")
        x = _npz_array(data, "x", path)
        if x.dtype.kind not in "fiub":
            raise DataError(f"{path}: x has dtype {x.dtype}; expected numbers")
        if x.ndim == 2:
            x = x[:, :, None]
        if x.ndim != 3 or x.shape[0] == 0 or x.shape[1] == 0:
            raise DataError(f"{path}: x has shape {list(x.shape)}; expected [N, T, F] with N, T >= 1")
        n, t, f = x.shape
        x = x.astype(np.float32)
        if "lengths" in keys:
            lengths = _npz_array(data, "lengths", path)
            if lengths.shape != (n,) or lengths.dtype.kind not in "iu":
                raise DataError(f"{path}: lengths has shape {list(lengths.shape)} and dtype {lengths.dtype}; "
                                f"expected {n} integers (one per sequence)")
            bad = np.flatnonzero((lengths < 1) | (lengths > t))
            if bad.size:
                raise DataError(f"{path}: lengths[{bad[0]}] = {lengths[bad[0]]}; expected 1..{t} (the padded length)")
            lengths = lengths.astype(np.int32)
        else:
            lengths = np.full(n, t, np.int32)
        if "mask" in keys:
            mask = _npz_array(data, "mask", path)
            if mask.shape != (n, t):
                raise DataError(f"{path}: mask has shape {list(mask.shape)}; expected [{n}, {t}] like x's first two")
            x[~mask.astype(bool)] = np.nan
        names = [str(v) for v in _npz_array(data, "feature_names", path)] if "feature_names" in keys \
            else [f"f{i}" for i in range(f)]
        if len(names) != f:
            raise DataError(f"{path}: feature_names has {len(names)} names; x has {f} features")
        ids = [str(v) for v in _npz_array(data, "ids", path)] if "ids" in keys else [str(i) for i in range(n)]
        if len(ids) != n:
            raise DataError(f"{path}: ids has {len(ids)} entries; x has {n} sequences")
        file_classes = [str(v) for v in _npz_array(data, "class_names", path)] if "class_names" in keys else None
        y = None
        if not require_labels:
            pass
        elif "y" in keys:
            y = _npz_array(data, "y", path)
        else:
            raise DataError(f"{path}: no array 'y' (found {sorted(keys)}); expected labels y "
                            f"{'[N, T] (one per step)' if per_step else '[N] (one per sequence)'}")
    valid = np.arange(t)[None, :] < lengths[:, None]
    x[~valid] = 0.0
    check_values(x, valid, names, lambda i, s: f"{path}: sequence {i} (ids[{i}]={ids[i]!r}), step {s}")
    seqs = Sequences(x, lengths, None, [], names, ids, str(path))
    if y is not None:
        expected = (n, t) if per_step else (n,)
        if y.shape != expected:
            if per_step and y.shape == (n,):
                hint = "; one label per sequence belongs to a sequence-classification recipe (e.g. collision)"
            elif not per_step and y.shape == (n, t):
                hint = "; one label per step belongs to a sequence-labeling recipe (e.g. driving)"
            else:
                hint = ""
            raise DataError(f"{path}: y has shape {list(y.shape)}; expected {list(expected)}{hint}")
        seqs.y, seqs.class_names = encode_labels(y, valid if per_step else None, class_names or file_classes,
                                                 str(path))
    return seqs


def check_values(x: np.ndarray, valid: np.ndarray, names, where) -> None:
    """Inside the sequences: NaN rows are dropouts; a partly-NaN row or an infinity is an error."""
    nan = np.isnan(x)
    partial = nan.any(axis=-1) & ~nan.all(axis=-1) & valid
    if partial.any():
        i, s = map(int, np.argwhere(partial)[0])
        missing = [names[k] for k in np.flatnonzero(nan[i, s])]
        raise DataError(f"{where(i, s)}: feature(s) {missing} are NaN but others are not; a dropout step has "
                        "every feature NaN (or use a mask), otherwise give a number")
    inf = np.isinf(x) & valid[..., None]
    if inf.any():
        i, s, k = map(int, np.argwhere(inf)[0])
        raise DataError(f"{where(i, s)}: feature {names[k]!r} is infinite; expected a finite number")
    dropped = nan.all(axis=-1) & valid
    if valid.any() and dropped.sum(axis=1).max() >= 1:
        empty = np.flatnonzero(dropped.sum(axis=1) == valid.sum(axis=1))
        if empty.size:
            raise DataError(f"{where(int(empty[0]), 0)}: every step of this sequence is a dropout (NaN); "
                            "expected at least one observed step")


NEGATIVE_NAMES = {"0", "false", "no", "none", "negative", "neg", "normal", "safe", "ok", "n"}


def _looks_negative(name: str) -> bool:
    """A class name that says 'nothing happened' (no_collision, not_fraud, 0, false, ...)."""
    low = name.strip().lower()
    return low in NEGATIVE_NAMES or low.startswith(("no_", "no-", "no ", "not_", "not-", "not ", "non_", "non-",
                                                    "non "))


def encode_labels(y: np.ndarray, valid: np.ndarray | None, class_names, source: str):
    """Map raw labels to class indices; returns (indices, class_names).

    Without ``class_names`` the classes are the sorted label values, except that
    of two classes a 'negative' name (``no_collision``, ``not_x``, ``0``, ``false``)
    goes first, so the second class is the positive one.
    """
    y = np.asarray(y)
    inside = y if valid is None else y[valid]
    if y.dtype.kind == "f":
        if np.isnan(inside).any():
            pos = np.argwhere(np.isnan(y) & (valid if valid is not None else True))[0]
            raise DataError(f"{source}: label y[{', '.join(map(str, pos))}] is NaN; expected a class")
        if not np.all(inside == np.round(inside)):
            raise DataError(f"{source}: labels are fractional numbers; expected classes (integers or names)")
        y = np.where(np.isnan(y), -1, y).astype(np.int64)
        inside = y if valid is None else y[valid]
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
        inside = y if valid is None else y[valid]
    if class_names:
        names = [str(c) for c in class_names]
        if y.dtype.kind in "iu":
            bad = inside[(inside < 0) | (inside >= len(names))]
            if bad.size:
                raise DataError(f"{source}: label {bad[0]} is not a class index 0..{len(names) - 1} "
                                f"(classes: {names})")
            idx = y.astype(np.int32)
        else:
            lookup = {name: i for i, name in enumerate(names)}
            strings = y.astype(str)
            unknown = sorted(set(strings[valid] if valid is not None else strings) - set(names))
            if unknown:
                raise DataError(f"{source}: label(s) {unknown[:5]} not among the classes {names}")
            idx = np.vectorize(lambda s: lookup.get(s, -1), otypes=[np.int32])(strings)
    else:
        values = np.unique(inside)
        if y.dtype.kind in "iu":
            names = [str(v) for v in values]
            lookup = {int(v): i for i, v in enumerate(values)}
            idx = np.vectorize(lambda v: lookup.get(int(v), -1), otypes=[np.int32])(y)
        else:
            names = [str(v) for v in values]
            lookup = {name: i for i, name in enumerate(names)}
            idx = np.vectorize(lambda s: lookup.get(s, -1), otypes=[np.int32])(y.astype(str))
    if len(names) < 2:
        raise DataError(f"{source}: every label is {names[0] if names else '(none)'!r}; expected at least two classes")
    if not class_names and len(names) == 2 and _looks_negative(names[1]) and not _looks_negative(names[0]):
        names = names[::-1]  # the positive class comes second: ["no_collision", "collision"]
        idx = np.where(idx >= 0, 1 - idx, idx)
    if valid is not None:
        idx = np.where(valid, idx, -1)
    return idx.astype(np.int32), names


# -- long CSV --------------------------------------------------------------------------------

def read_long_csv(path, *, per_step: bool, require_labels: bool = True, class_names=None,
                  id_column: str = "sequence_id", time_column: str = "t", label_column: str = "label",
                  features=()) -> Sequences:
    import pandas as pd

    from nnkit.datasets.text import check_separator, input_file

    path = input_file(path, "sequence CSV")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file; expected a header line {id_column},{time_column},features...,"
                        f"{label_column}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({str(exc).strip()})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    check_separator(path, list(frame.columns))
    columns = list(frame.columns)
    for needed in (id_column, time_column) + ((label_column,) if require_labels else ()):
        if needed not in columns:
            what = {id_column: "sequence ids", time_column: "step order", label_column: "labels"}[needed]
            raise DataError(f"{path}, line 1: no {needed!r} column ({what}); found columns {columns}. "
                            f"Expected {id_column},{time_column},<features...>,{label_column}")
    if frame.empty:
        raise DataError(f"{path}: no data rows after the header")
    reserved = {id_column, time_column, label_column}
    feats = list(features) if features else [c for c in columns if c not in reserved]
    for name in feats:
        if name not in columns:
            raise DataError(f"{path}, line 1: feature column {name!r} not found; columns are {columns}")
    if not feats:
        raise DataError(f"{path}, line 1: no feature columns besides {sorted(reserved & set(columns))}")
    line = lambda row: int(row) + 2  # noqa: E731  header is line 1
    values = np.empty((len(frame), len(feats)), np.float64)
    for k, name in enumerate(feats):
        raw = frame[name].str.strip()
        number = pd.to_numeric(raw.where(raw != "", None), errors="coerce")
        bad = number.isna() & (raw != "")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{path}, line {line(row)}, column {name!r}: {raw.iloc[row]!r} is not a number")
        values[:, k] = number.to_numpy(dtype=np.float64)
    nan = np.isnan(values)
    partial = nan.any(axis=1) & ~nan.all(axis=1)
    if partial.any():
        row = int(np.flatnonzero(partial)[0])
        name = feats[int(np.flatnonzero(nan[row])[0])]
        raise DataError(f"{path}, line {line(row)}, column {name!r}: empty or NaN cell; a dropout row leaves "
                        "every feature empty, otherwise give a number")
    if np.isinf(values).any():
        row, k = map(int, np.argwhere(np.isinf(values))[0])
        raise DataError(f"{path}, line {line(row)}, column {feats[k]!r}: infinite value; expected a finite number")
    ids = frame[id_column].str.strip()
    if (ids == "").any():
        row = int(np.flatnonzero((ids == "").to_numpy())[0])
        raise DataError(f"{path}, line {line(row)}, column {id_column!r}: empty sequence id")
    times = pd.to_numeric(frame[time_column].str.strip(), errors="coerce")
    if times.isna().any():
        row = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise DataError(f"{path}, line {line(row)}, column {time_column!r}: "
                        f"{frame[time_column].iloc[row]!r} is not a number (the step's time or index)")
    labels = frame[label_column].str.strip() if require_labels else None
    if labels is not None and (labels == "").any():
        row = int(np.flatnonzero((labels == "").to_numpy())[0])
        raise DataError(f"{path}, line {line(row)}, column {label_column!r}: empty label")
    order = pd.DataFrame({"id": ids, "t": times, "row": np.arange(len(frame))})
    first_seen = {k: i for i, k in enumerate(dict.fromkeys(ids))}
    order["seq"] = order["id"].map(first_seen)
    order = order.sort_values(["seq", "t"], kind="stable")
    dup = order.duplicated(["seq", "t"], keep=False).to_numpy()
    if dup.any():
        rows = sorted(order["row"].to_numpy()[dup][:2])
        raise DataError(f"{path}, lines {line(rows[0])} and {line(rows[1])}: sequence {ids.iloc[rows[0]]!r} has "
                        f"two rows with {time_column} = {times.iloc[rows[0]]:g}; expected one row per step")
    seq = order["seq"].to_numpy()
    rows = order["row"].to_numpy()
    n = len(first_seen)
    lengths = np.bincount(seq, minlength=n).astype(np.int32)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    step = np.arange(len(seq)) - starts[seq]
    T = int(lengths.max())
    x = np.zeros((n, T, len(feats)), np.float32)
    x[seq, step] = values[rows]
    valid = np.arange(T)[None, :] < lengths[:, None]
    id_list = list(first_seen)
    all_dropped = (np.isnan(x).all(axis=-1) | ~valid).all(axis=1)
    if all_dropped.any():
        raise DataError(f"{path}: sequence {id_list[int(np.flatnonzero(all_dropped)[0])]!r} has only empty "
                        "(dropout) rows; expected at least one row with numbers")
    seqs = Sequences(x, lengths, None, [], feats, id_list, str(path))
    if labels is not None:
        lab = labels.to_numpy()[rows]
        if per_step:
            grid = np.full((n, T), "", dtype=object)
            grid[seq, step] = lab
            seqs.y, seqs.class_names = encode_labels(grid.astype(str), valid, class_names, str(path))
        else:
            first_row = starts
            differs = lab != lab[first_row[seq]]
            if differs.any():
                r = int(np.flatnonzero(differs)[0])
                raise DataError(
                    f"{path}, lines {line(rows[first_row[seq[r]]])} and {line(rows[r])}: sequence "
                    f"{id_list[seq[r]]!r} has labels {lab[first_row[seq[r]]]!r} and {lab[r]!r}; this task takes "
                    "one label per sequence (a label per step belongs to a sequence-labeling recipe such as driving)")
            seqs.y, seqs.class_names = encode_labels(lab[first_row].astype(str), None, class_names, str(path))
    return seqs
