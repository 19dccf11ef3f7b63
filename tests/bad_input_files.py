"""The bad-input table's parts: the Case record and small builders of bad files (no nnkit imports)."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

OUT = "OUT"  # replaced by a run folder path that must not appear
RUN = "RUN"  # replaced by the finished perceptron run folder


@dataclass
class Case:
    id: str
    area: str
    what: str  # the bad input, in words
    setup: Callable[[Path], list]  # builds files under tmp, returns the CLI arguments
    expect: tuple  # words the one-line message must contain
    needs_run: bool = False  # uses the finished perceptron run (``RUN`` in args)
    klass: int = 0  # the class of issue 13 it belongs to (0: a case from before)
    code: int = 2  # the exit code: 2 for bad input, 130 for an interruption
    interrupt: tuple | None = None  # (module, function, signal): the signal fires when that function is called
    root_can: bool = False  # root ignores file permissions: the case is skipped when run as root
    fails_run: bool = False  # trains, then fails: leaves the run folder with status "failed" and the line
    slow: bool = False  # trains for a while: only in the slow run


# -- small file builders ----------------------------------------------------------------------

def text(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def png(path: Path, width: int, height: int, value: int = 128) -> Path:
    """A valid grayscale PNG written with zlib only (no imaging library needed)."""
    def chunk(kind, data):
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))
    rows = b"".join(b"\x00" + bytes([value]) * width for _ in range(height))
    body = (chunk(b"IHDR", width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x00\x00\x00\x00")
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def table(path: Path, rows: int = 30, bad: dict | None = None, sep: str = ",", label=lambda i: i % 2) -> Path:
    """A small numeric CSV (a,b,label); ``bad`` maps (row, column) -> a raw cell."""
    lines = [sep.join(["a", "b", "label"])]
    for i in range(rows):
        cells = {"a": str(i * 0.5), "b": str(1 + i % 3), "label": str(label(i))}
        for (row, column), value in (bad or {}).items():
            if row == i:
                cells[column] = value
        lines.append(sep.join([cells["a"], cells["b"], cells["label"]]))
    return text(path, "\n".join(lines) + "\n")


def prices(path: Path, rows: int = 80, bad: dict | None = None, swap: int | None = None) -> Path:
    import datetime as dt

    days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(rows)]
    if swap is not None:
        days[swap], days[swap + 1] = days[swap + 1], days[swap]
    lines = ["Date,Close"]
    for i, day in enumerate(days):
        cells = [day.isoformat(), f"{100 + np.sin(i):.3f}"]
        for (row, column), value in (bad or {}).items():
            if row == i:
                cells[{"Date": 0, "Close": 1}[column]] = value
        lines.append(",".join(cells))
    return text(path, "\n".join(lines) + "\n")


def sequences_csv(path: Path, bad_cell: str | None = None) -> Path:
    lines = ["sequence_id,t,gap,speed,label"]
    for s in range(12):
        for t in range(5):
            gap = bad_cell if (bad_cell is not None and s == 3 and t == 2) else f"{20 - t:.1f}"
            lines.append(f"s{s},{t * 0.1:.1f},{gap},{10 + t},{s % 2}")
    return text(path, "\n".join(lines) + "\n")


def npz(path: Path, **arrays) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def ragged_npz(path: Path) -> Path:
    """An .npz whose 'x' is an object array (needs pickle): sequences of different lengths."""
    ragged = np.empty(3, dtype=object)
    for i, n in enumerate((4, 6, 5)):
        ragged[i] = np.zeros((n, 2))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=ragged, y=np.array([0, 1, 0]))
    return path


def recipe_file(path: Path, body: str) -> Path:
    return text(path, body)


def run_folder_of(path: Path, status: str = "finished") -> Path:
    """The two files that make a folder an nnkit run folder (enough for the checks before TF)."""
    text(path / "config.toml", '[recipe]\ntask = "binary_classification"\nname = "perceptron"\n')
    text(path / "meta.json", json.dumps({"status": status, "task": "binary_classification"}))
    return path
