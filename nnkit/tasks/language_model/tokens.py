"""Language-model tokens: reserved tokens, the vocabulary, and the user's start as tokens."""

from __future__ import annotations

from nnkit.errors import DataError

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
MELODY_RESERVED = [PAD, BOS, EOS, UNK]
TEXT_RESERVED = [PAD, UNK]


def json_ids(sequences) -> str:
    return ";".join(",".join(map(str, s)) for s in sequences)


def _vocabulary(sequences, reserved) -> list[str]:
    """Reserved tokens, then every training token by descending frequency (ties by name)."""
    from collections import Counter

    counts = Counter(t for s in sequences for t in s)
    return list(reserved) + sorted((t for t in counts if t not in reserved), key=lambda t: (-counts[t], t))


def start_tokens(state: dict, start: str, what: str = "--start") -> list[str]:
    """The user's start (``C4``, ``C4 E4 G4``, ``D5_0.5``, or text) as vocabulary tokens."""
    vocab = state["vocabulary"]
    if state["mode"] == "text":
        unknown = sorted({c for c in start if c not in vocab})
        if unknown:
            raise DataError(f"{what} {start!r}: character(s) {''.join(unknown)!r} never occur in the "
                            "training text")
        return list(start)
    from nnkit.datasets import chorales as ch

    known = set(vocab)
    out = []
    for item in start.replace(",", " ").split():
        token = None
        if item in known:
            token = item
        else:
            pitch_text, _, duration = item.partition("_")
            try:
                name = ch.REST if pitch_text.upper() == ch.REST else ch.pitch_name(ch.parse_pitch(pitch_text))
            except ValueError:
                raise DataError(f"{what} {item!r}: expected a note such as C4, F#5, Bb3 (optionally with a "
                                f"duration in quarter notes, e.g. C4_1 or C4_0.5)") from None
            if duration:
                candidate = f"{name}_{ch.format_duration(duration)}" if _is_duration(duration) else None
                token = candidate if candidate in known else None
            elif state["tokens"] == "pitch":
                token = name if name in known else None
            else:  # the pitch with its most common duration (the vocabulary is ordered by frequency)
                token = next((t for t in vocab if t.rpartition("_")[0] == name), None)
        if token is None:
            pitches = [ch.parse_pitch(t.partition("_")[0]) for t in vocab
                       if t not in MELODY_RESERVED and not t.startswith(ch.REST)]
            span = f"{ch.pitch_name(min(pitches))}..{ch.pitch_name(max(pitches))}" if pitches else "none"
            raise DataError(f"{what} {item!r}: this note never occurs in the training melodies "
                            f"(their pitches span {span}; raise data.transpose for more keys)")
        out.append(token)
    if not out:
        raise DataError(f"{what}: give at least one note, e.g. C4")
    return out


def _is_duration(text: str) -> bool:
    from fractions import Fraction

    try:
        return Fraction(text) > 0
    except (ValueError, ZeroDivisionError):
        return False
