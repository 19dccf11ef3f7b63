"""Bach chorale melodies from music21's bundled corpus (offline), parsed once and cached.

The 371 chorales are listed by music21's Riemenschneider numbering
(``music21.corpus.chorales.ChoraleListRKBWV``), which also gives each one's
tune title. For each chorale the melody line is the part named *Soprano*;
where none is (about 20 files put horns, trumpets or violins first), the
part with the highest average pitch among the vocal-range parts. Chords keep
their top note and tied notes are merged, so a melody is a list of
``(midi pitch or None for a rest, quarter length)`` events.

The parse takes a minute or two for the whole corpus, so the events are
cached as JSON (no pickle) under ``$NNKIT_CACHE`` or ``~/.cache/nnkit``,
one entry per chorale: asking for the first few chorales parses only those.

Tokens are ``<pitch><octave>_<quarter length>`` (``C5_1``, ``F#4_0.5``,
``R_1`` for a rest); pitches are spelled with sharps from the MIDI number,
so enharmonic spellings share a token and transposition is exact.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from fractions import Fraction
from pathlib import Path

from nnkit.errors import DataError

CACHE_VERSION = 1
NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
REST = "R"


# -- cache -------------------------------------------------------------------------------

def cache_dir() -> Path:
    root = os.environ.get("NNKIT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "nnkit")
    return Path(root)


def cache_file() -> Path:
    import music21

    return cache_dir() / f"chorales-v{CACHE_VERSION}-music21-{music21.__version__}.json"


def _read_cache(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # a damaged cache is rebuilt, never trusted
    return data if isinstance(data, dict) and data.get("version") == CACHE_VERSION else {}


def _write_cache(path: Path, entries: dict) -> None:
    from nnkit.runs import write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"version": CACHE_VERSION, "entries": entries})


# -- the catalogue and the parse ---------------------------------------------------------

def catalogue() -> list[dict]:
    """The 371 chorales in Riemenschneider order: number, corpus path, title."""
    from music21.corpus import chorales

    listing = chorales.ChoraleListRKBWV().byRiemenschneider
    return [{"number": int(n), "path": f"bach/bwv{listing[n]['bwv']}", "title": listing[n]["title"]}
            for n in sorted(listing)]


def tune_key(title: str) -> str:
    """A title normalised so spellings of the same tune match (apostrophes, accents, case)."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z0-9]+", " ", text).strip()


def _average_pitch(part) -> float:
    pitches = [p.midi for n in part.recurse().notes for p in n.pitches]
    return sum(pitches) / len(pitches) if pitches else float("-inf")


def melody_part(score):
    """The part named Soprano, else the highest of the parts (by average pitch)."""
    parts = list(score.parts)
    if not parts:
        raise ValueError("no parts")
    for part in parts:
        if (part.partName or "").strip().lower().startswith("soprano"):
            return part
    return max(parts, key=_average_pitch)


def melody_events(part) -> list[list]:
    """``[[midi or None, "quarter length"], ...]`` with ties merged and chords reduced to the top."""
    events = []
    flat = part.stripTies().flatten().notesAndRests
    for element in flat:
        ql = Fraction(element.duration.quarterLength).limit_denominator(48)
        if ql <= 0:  # grace notes
            continue
        if element.isRest:
            pitch = None
        else:
            pitch = max(p.midi for p in element.pitches)
        if events and pitch is None and events[-1][0] is None:  # consecutive rests merge
            events[-1][1] = str(Fraction(events[-1][1]) + ql)
            continue
        events.append([pitch, str(ql)])
    # leading and trailing rests carry no melody
    while events and events[0][0] is None:
        events.pop(0)
    while events and events[-1][0] is None:
        events.pop()
    return events


def parse_chorale(entry: dict) -> dict:
    from music21 import corpus

    score = corpus.parse(entry["path"])
    part = melody_part(score)
    return {**entry, "part": part.partName or part.id or "", "events": melody_events(part)}


def load_chorales(limit: int = 0, progress=None) -> list[dict]:
    """The first ``limit`` chorales (0 = all 371), from the cache or parsed and cached."""
    entries_wanted = catalogue()
    if limit:
        entries_wanted = entries_wanted[:limit]
    path = cache_file()
    cached = _read_cache(path).get("entries", {})
    missing = [e for e in entries_wanted if e["path"] not in cached]
    if missing:
        if progress:
            progress(f"parsing {len(missing)} chorales with music21 (once; cached in {path})")
        for entry in missing:
            try:
                cached[entry["path"]] = parse_chorale(entry)
            except Exception as exc:  # a corpus file music21 cannot read is skipped, not fatal
                cached[entry["path"]] = {**entry, "part": "", "events": [], "error": str(exc)}
        _write_cache(path, cached)
    out = [cached[e["path"]] for e in entries_wanted]
    return [c for c in out if c.get("events")]


# -- tokens ------------------------------------------------------------------------------

def pitch_name(midi: int) -> str:
    return f"{NAMES[midi % 12]}{midi // 12 - 1}"


def format_duration(ql: str | Fraction) -> str:
    q = Fraction(ql)
    return str(q.numerator) if q.denominator == 1 else (
        f"{float(q):g}" if q.denominator in (2, 4, 8, 16) else f"{q.numerator}/{q.denominator}")


def event_token(pitch: int | None, ql: str) -> str:
    return f"{REST if pitch is None else pitch_name(pitch)}_{format_duration(ql)}"


def tokenize(events: list, shift: int = 0) -> list[str]:
    return [event_token(None if p is None else p + shift, ql) for p, ql in events]


def parse_token(token: str) -> tuple[int | None, float]:
    """``"F#4_0.5"`` -> (66, 0.5); ``"R_1"`` -> (None, 1.0). Raises ValueError otherwise."""
    name, _, dur = token.rpartition("_")
    if not name or not dur:
        raise ValueError(f"not a note token: {token!r}")
    ql = float(Fraction(dur))
    if name == REST:
        return None, ql
    return parse_pitch(name), ql


def parse_pitch(text: str) -> int:
    """A pitch name with octave (``C4``, ``Eb5``, ``F#3``, ``B-4``) as a MIDI number."""
    match = re.fullmatch(r"([A-Ga-g])([#b\-]*)(-?\d+)", text.strip())
    if not match:
        raise ValueError(f"not a pitch with octave (such as C4, F#5, Bb3): {text!r}")
    letter, accidentals, octave = match.groups()
    base = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}[letter.upper()]
    base += accidentals.count("#") - accidentals.count("b") - accidentals.count("-")
    return base + 12 * (int(octave) + 1)


def split_by_tune(chorales: list[dict], fractions=(0.8, 0.1, 0.1), seed: int = 0):
    """Train/val/test lists of chorales; all chorales of one tune title land in the same part."""
    import numpy as np

    tunes: dict[str, list] = {}
    for chorale in chorales:
        tunes.setdefault(tune_key(chorale["title"]), []).append(chorale)
    keys = sorted(tunes)
    order = np.random.default_rng(seed).permutation(len(keys))
    total = len(chorales)
    parts: list[list] = [[], [], []]
    if len(keys) < 3:
        raise DataError(f"need chorales of at least 3 different tunes to split train/val/test; "
                        f"got {len(keys)} (raise data.limit)")
    # the first tunes fill test, the next val, the rest train; each part gets at least one tune
    targets = [fractions[2] * total, fractions[1] * total]
    i = 0
    for part_index, target, keep in zip((2, 1), targets, (2, 1)):
        while i < len(order) - keep and (not parts[part_index] or len(parts[part_index]) < target):
            parts[part_index].extend(tunes[keys[order[i]]])
            i += 1
    for j in order[i:]:
        parts[0].extend(tunes[keys[j]])
    return parts[0], parts[1], parts[2]
