"""Items' name words as side information for item2vec (``model.name_words``).

An item's name ("HAND WARMER RED POLKA DOT") becomes the rows of its words
in a small word table; only words that two or more items share are kept (a
word of one item only would be a second id vector). The matrix feeds
:class:`nnkit.layers.NamedItemEmbedding`.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from nnkit.errors import NnkitError

WORD = re.compile(r"[^\W_]+")  # letters and digits of any script; punctuation and spaces split words
MAX_WORDS = 32  # per item: a long description keeps its first distinct words


def name_words(name: str) -> list[str]:
    """The distinct lower-cased words of a name, in order of first appearance."""
    return list(dict.fromkeys(WORD.findall(str(name).lower())))[:MAX_WORDS]


def word_rows_for(names, weight) -> np.ndarray | None:
    """:func:`item_word_rows` for ``model.name_words = weight``; None without names or shared words.

    A weight > 0 (not 'auto') with no words to use is an error at the door.
    """
    rows = item_word_rows(names)[0] if names is not None else None
    rows = rows if rows is not None and rows.shape[1] else None
    if rows is None and not isinstance(weight, str) and weight > 0:
        raise NnkitError(f"config key 'model.name_words': {weight!r} needs item names with words that two or more "
                         "items share (data.name_column in the sessions or items CSV); these items have none. "
                         "Set model.name_words=0")
    return rows


def item_word_rows(names, min_items: int = 2) -> tuple[np.ndarray, list[str]]:
    """``(rows, words)``: int32 ``(items, width)`` word rows per item (``-1`` padded) and the word list.

    Words shared by fewer than ``min_items`` items are left out; with none
    left, ``rows`` has width 0.
    """
    per_item = [name_words(n) for n in names]
    counts = Counter(w for words in per_item for w in words)
    vocabulary = sorted(w for w, c in counts.items() if c >= min_items)
    index = {w: i for i, w in enumerate(vocabulary)}
    kept = [[index[w] for w in words if w in index] for words in per_item]
    rows = np.full((len(kept), max((len(k) for k in kept), default=0)), -1, np.int32)
    for i, k in enumerate(kept):
        rows[i, :len(k)] = k
    return rows, vocabulary
