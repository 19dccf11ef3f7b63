"""Sentence pairs from a TSV file (Tatoeba / manythings.org format) and their clean-up.

``source<TAB>target[<TAB>anything]`` per line, UTF-8. Blank lines are
ignored; a line that does not split into a non-empty source and target is
*bad*: the reader reports how many and the first line numbers, and skips
them only when asked (``data.skip_bad_lines = true``), otherwise it raises a
:class:`~nnkit.errors.DataError`.

The clean-up that must also happen at serving time (whitespace, optional
lowercasing, punctuation spacing, tokenisation) runs as TensorFlow ops in
``nnkit.tasks.translation.tokens`` so training and the SavedModel share one code
path; Unicode normalisation (NFC/NFKC) happens here, in Python, on the
training data and on ``nnkit predict`` inputs (core TensorFlow has no
normalisation op).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from nnkit.datasets.text import read_text
from nnkit.errors import DataError

NORMALIZATIONS = ("NFC", "NFKC", "none")
_SPACES = re.compile(r"[\s\u00a0\u202f]+")


@dataclass
class PairsReport:
    lines: int = 0
    pairs: int = 0
    bad_lines: int = 0
    first_bad: list = field(default_factory=list)


def clean_text(text: str, normalize: str = "NFC", lowercase: bool = False) -> str:
    """Unicode-normalise, collapse whitespace (no-break spaces included), optionally lowercase."""
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"`normalize` must be one of {', '.join(NORMALIZATIONS)}. Received: {normalize!r}")
    if normalize != "none":
        text = unicodedata.normalize(normalize, text)
    text = _SPACES.sub(" ", text).strip()
    return text.lower() if lowercase else text


def read_pairs(path: str | Path, *, skip_bad_lines: bool = False, normalize: str = "NFC",
               lowercase: bool = False, limit: int = 0) -> tuple[list[tuple[str, str]], PairsReport]:
    """(pairs, report) from a TSV file; see the module docstring for what counts as bad."""
    path = Path(path)
    text = read_text(path, "sentence-pairs TSV file")
    report = PairsReport()
    pairs: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        report.lines += 1
        fields = line.split("\t")
        source = clean_text(fields[0], normalize, lowercase) if fields else ""
        target = clean_text(fields[1], normalize, lowercase) if len(fields) > 1 else ""
        if len(fields) < 2 or not source or not target:
            report.bad_lines += 1
            if len(report.first_bad) < 5:
                report.first_bad.append(number)
            continue
        pairs.append((source, target))
        if limit and len(pairs) >= limit:
            break
    report.pairs = len(pairs)
    if report.bad_lines and not skip_bad_lines:
        lines = ", ".join(map(str, report.first_bad))
        raise DataError(f"{path}: {report.bad_lines} line(s) do not split into source<TAB>target "
                        f"(first at line {lines}); expected 'source<TAB>target[<TAB>...]' per line. "
                        "Fix them, or skip them with --set data.skip_bad_lines=true")
    if not pairs:
        raise DataError(f"{path}: no sentence pairs found; expected 'source<TAB>target' lines")
    return pairs, report


def word_dictionary(pairs) -> dict:
    """Source word -> the target word with the best Dice co-occurrence score (a baseline)."""
    from collections import Counter

    count_s, count_t, count_st = Counter(), Counter(), Counter()
    for source, target in pairs:
        s_words, t_words = set(source.split()), set(target.split())
        count_s.update(s_words)
        count_t.update(t_words)
        count_st.update((s, t) for s in s_words for t in t_words)
    best: dict = {}
    for (s, t), c in count_st.items():
        score = 2.0 * c / (count_s[s] + count_t[t])
        if score > best.get(s, (0.0, ""))[0] or (score == best.get(s, (0.0, ""))[0] and t < best[s][1]):
            best[s] = (score, t)
    return {s: t for s, (score, t) in best.items()}


def translate_word_by_word(sentence: str, dictionary: dict) -> str:
    return " ".join(dictionary.get(w, w) for w in sentence.split())
