"""A seeded parallel corpus generated from real language rules: numbers, dates and times.

English sources, targets in French (default), Spanish, German, Italian or
Japanese, rendered by two real libraries rather than by hand:

* ``num2words``: cardinals (0 .. ``max_number``), ordinals and years;
* ``babel`` (CLDR): dates in the medium, long and full formats, and times.

Cardinals are drawn with a uniform number of digits, so short ("seven") and
long inputs ("nine hundred and ninety-seven thousand, three hundred and
forty-two") are both common. Pairs are unique by source (the first target
seen for a source wins), and :func:`split_by_source` keeps every source in
exactly one of train / validation / test, so test sources are never seen in
training.

    >>> pairs = generate(1000, target_lang="fr", seed=0)
    >>> pairs[0]            # doctest: +SKIP
    ('four hundred and twelve', 'quatre cent douze')
"""

from __future__ import annotations

import datetime as _dt
import random

LANGS = ("fr", "es", "de", "it", "ja")
KINDS = ("cardinal", "ordinal", "year", "date", "time")
# share of each kind in the corpus (renormalised over the kinds asked for)
MIX = {"cardinal": 0.45, "ordinal": 0.15, "year": 0.10, "date": 0.20, "time": 0.10}
DATE_FORMATS = ("medium", "long", "full")
TIME_FORMATS = ("short", "medium")


def _cardinal(rng: random.Random, max_number: int) -> int:
    digits = rng.randint(1, len(str(max_number)))
    low = 0 if digits == 1 else 10 ** (digits - 1)
    return rng.randint(low, min(max_number, 10 ** digits - 1))


def _one(kind: str, rng: random.Random, lang: str, max_number: int) -> tuple[str, str]:
    from num2words import num2words

    if kind == "cardinal":
        n = _cardinal(rng, max_number)
        return num2words(n, lang="en"), num2words(n, lang=lang)
    if kind == "ordinal":
        n = _cardinal(rng, min(max_number, 9999))
        n = max(n, 1)
        return num2words(n, lang="en", to="ordinal"), num2words(n, lang=lang, to="ordinal")
    if kind == "year":
        n = rng.randint(1000, 2099)
        return num2words(n, lang="en", to="year"), num2words(n, lang=lang, to="year")
    from babel.dates import format_date, format_time

    if kind == "date":
        day = _dt.date(1950, 1, 1) + _dt.timedelta(days=rng.randrange(100 * 365))
        fmt = rng.choice(DATE_FORMATS)
        return format_date(day, fmt, locale="en"), format_date(day, fmt, locale=lang)
    if kind == "time":
        fmt = rng.choice(TIME_FORMATS)
        moment = _dt.time(rng.randrange(24), rng.randrange(60), rng.randrange(60) if fmt == "medium" else 0)
        return format_time(moment, fmt, locale="en"), format_time(moment, fmt, locale=lang)
    raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")


def _clean(text: str) -> str:
    # CLDR uses narrow no-break spaces ("9:30\u202fPM"); keep plain spaces
    return " ".join(text.replace("\u202f", " ").replace("\u00a0", " ").split())


def generate(size: int = 30000, *, target_lang: str = "fr", seed: int = 0, kinds=KINDS,
             max_number: int = 999_999) -> list[tuple[str, str]]:
    """``size`` unique (english, target) pairs, the same for the same arguments."""
    if target_lang not in LANGS:
        raise ValueError(f"`target_lang` must be one of {', '.join(LANGS)}. Received: target_lang={target_lang!r}")
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ValueError(f"`kinds` must be a non-empty subset of {', '.join(KINDS)}. Received: kinds={kinds!r}")
    if size < 1 or max_number < 10:
        raise ValueError(f"`size` must be >= 1 and `max_number` >= 10. Received: size={size!r}, "
                         f"max_number={max_number!r}")
    rng = random.Random(f"nnkit-number-corpus-{seed}")
    weights = [MIX[k] for k in kinds]
    seen: set[str] = set()
    pairs: list[tuple[str, str]] = []
    attempts, limit = 0, size * 50
    while len(pairs) < size and attempts < limit:
        attempts += 1
        kind = rng.choices(kinds, weights)[0]
        source, target = (_clean(s) for s in _one(kind, rng, target_lang, max_number))
        if source in seen:
            continue
        seen.add(source)
        pairs.append((source, target))
    return pairs


def split_by_source(pairs, val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0):
    """(train, val, test) lists of pairs; all pairs of one source land in the same part.

    The order of sources is shuffled with ``seed``; with repeated sources (a
    Tatoeba file) the split is by distinct source, so no test source is ever
    seen in training.
    """
    sources = sorted({s for s, _ in pairs})
    random.Random(f"nnkit-split-{seed}").shuffle(sources)
    n = len(sources)
    n_test = max(1, int(round(n * test_fraction))) if test_fraction > 0 else 0
    n_val = max(1, int(round(n * val_fraction))) if val_fraction > 0 else 0
    if n - n_test - n_val < 1:
        raise ValueError(f"too few distinct sources ({n}) to split into train/validation/test")
    part = {}
    for i, s in enumerate(sources):
        part[s] = 2 if i < n_test else (1 if i < n_test + n_val else 0)
    out = ([], [], [])
    for pair in pairs:
        out[part[pair[0]]].append(pair)
    return out
