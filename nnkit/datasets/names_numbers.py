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


# -- invented names and numbers: teach copying (training) and probe it (evaluation) ---------------

_ONSETS = "b c d f g h j k l m n p r s t v z br dr gr kr pl st tr ch sh".split()
_VOWELS = "a e i o u a e i o u ai ou ei".split()


def invented_name(rng) -> str:
    """A capitalised pseudo-name of 2-3 syllables ("Kelaro", "Brunizo"): in no dictionary, seen by no model."""
    syllables = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(int(rng.integers(2, 4)))]
    return "".join(syllables).capitalize()


def invented_number(rng) -> str:
    return str(int(rng.integers(0, 10 ** int(rng.integers(1, 5)))))


def shared_tokens(source: str, target: str) -> list[str]:
    """Numbers and capitalised words written once in the source and once, identically, in the target."""
    src, tgt = Counter(tokens(source)), Counter(tokens(target))
    return [t for t, n in src.items() if n == 1 and tgt[t] == 1 and (t.isdigit() or t[0].isupper())]


def _replace(text: str, old: str, new: str) -> str:
    return re.sub(rf"(?<!\w){re.escape(old)}(?!\w)", new, text, count=1)


def substitute(pairs, seed: int, avoid: set[str] = frozenset()) -> list[tuple[str, str]]:
    """For each pair with shared names/numbers, a copy with each replaced, the same way on both sides.

    Names become invented names, numbers random numbers; names in ``avoid``
    (e.g. the training targets' words, or the names used in training) are never drawn.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for source, target in pairs:
        shared = shared_tokens(source, target)
        if not shared:
            continue
        for token in shared:
            new = invented_number(rng) if token.isdigit() else invented_name(rng)
            while not token.isdigit() and new in avoid:
                new = invented_name(rng)
            source, target = _replace(source, token, new), _replace(target, token, new)
        out.append((source, target))
    return out
