"""Melodies through music21: tokens to a score, MIDI/MusicXML files, a key analysis and a piano roll."""

from __future__ import annotations

from pathlib import Path

from nnkit.report import pyplot, save_figure
from nnkit.tasks.language_model.tokens import MELODY_RESERVED


def melody_stream(tokens: list[str], title: str = ""):
    """A music21 stream of the note/rest tokens (reserved tokens skipped)."""
    from music21 import metadata, note, stream

    from nnkit.datasets import chorales as ch

    part = stream.Stream()
    for token in tokens:
        if token in MELODY_RESERVED:
            continue
        if "_" in token:
            pitch, ql = ch.parse_token(token)
        else:  # pitch-only tokens: quarter notes
            pitch, ql = (None if token == ch.REST else ch.parse_pitch(token)), 1.0
        element = note.Rest(quarterLength=ql) if pitch is None else note.Note(pitch, quarterLength=ql)
        part.append(element)
    score = stream.Score()
    score.metadata = metadata.Metadata(title=title or "nnkit melody")
    p = stream.Part()
    for element in part:
        p.append(element)
    score.insert(0, p)
    return score


def write_melody(tokens: list[str], out: Path, title: str = "") -> list[Path]:
    """``out`` (.mid), the MusicXML beside it, and a piano-roll PNG beside it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    score = melody_stream(tokens, title)
    score.write("midi", fp=str(out))
    xml = out.with_suffix(".musicxml")
    score.write("musicxml", fp=str(xml))
    png = plot_piano_roll(tokens, out.with_suffix(".png"), title=title)
    return [out, xml, png]


def analyse_melody(tokens: list[str]) -> dict:
    score = melody_stream(tokens)
    notes = list(score.recurse().notes)
    key = score.analyze("key") if notes else None
    lowest = min(notes, key=lambda n: n.pitch.midi).pitch if notes else None
    highest = max(notes, key=lambda n: n.pitch.midi).pitch if notes else None
    return {"notes": len(notes), "rests": len(list(score.recurse().getElementsByClass("Rest"))),
            "key": str(key) if key is not None else "-",
            "key_correlation": float(getattr(key, "correlationCoefficient", 0.0) or 0.0),
            "lowest": lowest.nameWithOctave if lowest else "-",
            "highest": highest.nameWithOctave if highest else "-",
            "ambitus": f"{highest.midi - lowest.midi} semitones" if notes else "-"}


def plot_piano_roll(tokens: list[str], path: Path, title: str = "") -> Path:
    from nnkit.datasets import chorales as ch

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(10, 3.5))
    time, pitches = 0.0, []
    for token in tokens:
        if token in MELODY_RESERVED:
            continue
        if "_" in token:
            pitch, ql = ch.parse_token(token)
        else:
            pitch, ql = (None if token == ch.REST else ch.parse_pitch(token)), 1.0
        if pitch is not None:
            ax.add_patch(plt.Rectangle((time, pitch - 0.4), ql * 0.95, 0.8, color="tab:blue"))
            pitches.append(pitch)
        time += ql
    if pitches:
        lo, hi = min(pitches) - 2, max(pitches) + 2
        ax.set_ylim(lo, hi)
        ticks = [p for p in range(lo, hi + 1) if p % 12 in (0, 4, 7)]
        ax.set_yticks(ticks, [ch.pitch_name(p) for p in ticks])
    ax.set_xlim(0, max(time, 1))
    ax.set_xlabel("time (quarter notes)")
    ax.set_ylabel("pitch")
    ax.set_title(title or "piano roll")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path)
