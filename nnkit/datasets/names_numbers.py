"""Do names and numbers survive translation? The copy rate of a system's output.

A source token is *to keep* when a translator would reproduce it unchanged:

* it is a number (a run of digits), or a capitalised word that never occurs
  in the training targets (a name the model cannot have memorised a
  translation for: "Madrid", "Zürich", but not "Tom", seen thousands of times);
* and the reference translation contains it verbatim (the translator did
  keep it: "London" -> "Londres" does not count, "The" never does).

The copy rate is the share of those tokens found in the output (as many
times as the source holds them), over the test sentences that have any.
Copying the source scores 1 by construction: it is the ceiling, not a
baseline to beat.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

_TOKENS = re.compile(r"\d+|[^\W\d_]+")  # digit runs and letter runs ("25th" -> "25", "th")


def tokens(text: str) -> list[str]:
    return _TOKENS.findall(text)


def target_words(texts) -> set[str]:
    """Every letter/digit run of the training targets."""
    return {t for text in texts for t in tokens(text)}


@dataclass
class CopyScore:
    rate: float | None  # None when no test sentence has a token to keep
    numbers: float | None
    names: float | None
    items: int  # tokens to keep in all
    sentences: int  # test sentences holding at least one


def to_keep(source: str, reference: str, known_targets: set[str]) -> list[str]:
    """The tokens of ``source`` a translator keeps (see the module docstring), with repeats."""
    in_reference = Counter(tokens(reference))
    kept, seen = [], Counter()
    for token in tokens(source):
        number = token.isdigit()
        name = token[0].isupper() and token not in known_targets
        if (number or name) and seen[token] < in_reference[token]:
            seen[token] += 1
            kept.append(token)
    return kept


def copy_rate(sources, references, outputs, known_targets: set[str]) -> CopyScore:
    """How many tokens to keep each output reproduces; see the module docstring."""
    found = {"numbers": [0, 0], "names": [0, 0]}  # [copied, total]
    sentences = 0
    for source, reference, output in zip(sources, references, outputs):
        keep = to_keep(source, reference, known_targets)
        if not keep:
            continue
        sentences += 1
        available = Counter(tokens(output))
        for token in keep:
            kind = "numbers" if token.isdigit() else "names"
            found[kind][1] += 1
            if available[token] > 0:
                available[token] -= 1
                found[kind][0] += 1

    def share(copied, total):
        return copied / total if total else None

    copied = found["numbers"][0] + found["names"][0]
    total = found["numbers"][1] + found["names"][1]
    return CopyScore(rate=share(copied, total), numbers=share(*found["numbers"]), names=share(*found["names"]),
                     items=total, sentences=sentences)
