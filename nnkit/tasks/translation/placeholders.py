"""Names and numbers copied verbatim: numbered placeholders, masked and restored inside the graph.

The technique of OpenNMT's "protected sequences" and Marian's placeholders.
A source span a translator keeps as it is (a run of digits, or a capitalised
word that is either unseen in training or seen copied verbatim there, such
as "Tom" or "Boston") is replaced by ``⦅0⦆``, ``⦅1⦆``, ... in order; each
placeholder is one SentencePiece piece (``user_defined_symbols``). Training
targets get the same placeholder where they hold the span verbatim, so the
model learns to move a placeholder, not to spell a name it has never seen.
After decoding, each ``⦅k⦆`` of the output is replaced by the k-th masked
span of its source. Masking and restoring are ``tf.strings`` ops and a
lookup table in a ``tf.Module`` that the exported translator holds: the
SavedModel still takes raw strings and returns the restored text.

Which capitalised words are translated rather than kept is learned from the
training pairs (:func:`words_to_translate`): "I", "Where", "London" (->
"Londres") and words seen in lower case ("Apples") are translated; every
other capitalised word is kept.
"""

from __future__ import annotations

import re
from collections import Counter

import tensorflow as tf

MAX_PLACEHOLDERS = 10  # ⦅0⦆..⦅9⦆: one digit each; later spans of a long sentence stay plain text
SYMBOLS = tuple(f"⦅{k}⦆" for k in range(MAX_PLACEHOLDERS))
_SEP = "\x1f"  # unit separator: brackets the candidate spans for tf.strings.split; removed from the input first
_DIGITS = "[0-9]+"
_NAME = "(^|[^\\p{L}\\p{M}])(\\p{Lu}[\\p{L}\\p{M}]*)"  # RE2: a capitalised word, not the tail of another word
_PLACEHOLDER = "⦅[0-9]⦆"
_PLACEHOLDER_BYTES = len("⦅".encode())  # the digit's byte offset inside a placeholder
_WORDS = re.compile(r"[^\W\d_]+")  # letter runs: the Python side of _NAME


def words_to_translate(pairs, min_copied: float = 0.5) -> list[str]:
    """Capitalised source words of the training pairs that their targets mostly do not copy verbatim.

    Also the capitalised form of every word seen in lower case ("apples" ->
    "Apples"), unless that form itself is mostly copied.
    """
    seen, copied, lower = Counter(), Counter(), set()
    for source, target in pairs:
        in_target = set(_WORDS.findall(target))
        for word in set(_WORDS.findall(source)):
            if word[0].isupper():
                seen[word] += 1
                copied[word] += word in in_target
            else:
                lower.add(word)
    translate = {w for w in seen if copied[w] < min_copied * seen[w]}
    translate |= {w[0].upper() + w[1:] for w in lower if w[0].upper() + w[1:] not in seen}
    return sorted(translate)


class Placeholders(tf.Module):
    """``mask(text) -> (masked text, spans)`` and ``restore(text, spans) -> text``, as graph ops."""

    def __init__(self, translate_words, name: str = "placeholders"):
        super().__init__(name=name)
        words = list(translate_words) or [""]  # a table needs one key; "" never is a candidate
        self.translate_words = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(words), tf.zeros([len(words)], tf.int64)),
            default_value=1)

    def mask(self, text):
        """Strings [N] -> (strings [N] with placeholders, ragged spans [N, None] in placeholder order)."""
        text = tf.strings.regex_replace(text, _SEP, "")
        text = tf.strings.regex_replace(text, _DIGITS, f"{_SEP}\\0{_SEP}")
        text = tf.strings.regex_replace(text, _NAME, f"\\1{_SEP}\\2{_SEP}")
        parts = tf.strings.split(text, _SEP)  # text, candidate, text, candidate, ..., text
        flat = parts.flat_values
        odd = tf.equal(_position_in_row(parts) % 2, 1)
        keep = tf.logical_or(tf.strings.regex_full_match(flat, _DIGITS),
                             tf.equal(self.translate_words.lookup(flat), 1))
        protect = tf.logical_and(odd, keep)
        rank = _rank_in_row(parts.with_flat_values(tf.cast(protect, tf.int64)))
        protect = tf.logical_and(protect, rank < MAX_PLACEHOLDERS)
        symbols = tf.strings.join(["⦅", tf.strings.as_string(rank), "⦆"])
        masked = tf.strings.reduce_join(parts.with_flat_values(tf.where(protect, symbols, flat)), axis=1)
        spans = tf.ragged.boolean_mask(parts, parts.with_flat_values(protect))
        return masked, spans

    def restore(self, text, spans):
        """Each ``⦅k⦆`` of ``text`` [N] becomes the k-th span of its row (dropped when the source had none)."""
        text = tf.strings.regex_replace(text, _PLACEHOLDER, f"{_SEP}\\0{_SEP}")
        parts = tf.strings.split(text, _SEP)  # text, placeholder, text, ...
        flat = parts.flat_values
        odd = tf.equal(_position_in_row(parts) % 2, 1)
        k = tf.strings.to_number(tf.strings.substr(tf.where(odd, flat, "⦅0⦆"), _PLACEHOLDER_BYTES, 1), tf.int64)
        rows = parts.value_rowids()
        valid = tf.logical_and(odd, k < tf.gather(spans.row_lengths(), rows))
        index = tf.where(valid, tf.gather(spans.row_splits, rows) + k, tf.size(spans.flat_values, out_type=tf.int64))
        span = tf.gather(tf.concat([spans.flat_values, [""]], axis=0), index)  # "" for a placeholder without a span
        return tf.strings.reduce_join(parts.with_flat_values(tf.where(odd, span, flat)), axis=1)


def _position_in_row(ragged):
    """The index of each flat value within its row."""
    return tf.range(tf.size(ragged.flat_values, out_type=tf.int64)) - tf.gather(ragged.row_splits,
                                                                                ragged.value_rowids())


def _rank_in_row(flags):
    """Ragged 0/1 flags -> for each value, how many flags before it in its row (an exclusive cumulative sum)."""
    total = tf.cumsum(flags.flat_values, exclusive=True)
    starts = tf.gather(tf.concat([total, [tf.reduce_sum(flags.flat_values)]], axis=0), flags.row_splits[:-1])
    return total - tf.gather(starts, flags.value_rowids())


# -- training pairs ----------------------------------------------------------------------------

def mask_pairs(placeholders: Placeholders, pairs) -> list[tuple[str, str]]:
    """Training/validation pairs with placeholders on both sides.

    The source is masked by the graph (the same ops as at serving time). A
    span the target holds verbatim becomes the same placeholder there; a
    span the target does not keep ("2" -> "deux") goes back into the source
    as plain text, so a placeholder always means "copy this", and the
    remaining placeholders are renumbered in order.
    """
    if not pairs:
        return []
    masked, spans = placeholders.mask(tf.constant([s for s, _ in pairs]))
    out = []
    for (_, target), source, row in zip(pairs, masked.numpy(), spans.to_list()):
        source, row = source.decode("utf-8"), [s.decode("utf-8") for s in row]
        kept = []
        for span in row:
            target, found = _mark(target, span, len(kept))
            kept.append(span if found else None)
        numbers = iter(range(MAX_PLACEHOLDERS))
        new_ids = [None if span is None else next(numbers) for span in kept]
        source = re.sub(_PLACEHOLDER, lambda m: row[int(m.group()[1])] if new_ids[int(m.group()[1])] is None
                        else SYMBOLS[new_ids[int(m.group()[1])]], source)
        target = re.sub("[\ue000-\ue00f]", lambda m: SYMBOLS[new_ids[ord(m.group()) - 0xE000]], target)
        out.append((source, target))
    return out


def _mark(target: str, span: str, k: int) -> tuple[str, bool]:
    """Replace the first whole-word ``span`` in ``target`` by a private-use mark for placeholder ``k``."""
    edge = "0-9" if span.isdigit() else "^\\W\\d_"  # digits: not inside a longer number; words: not inside a word
    pattern = f"(?<![{edge}]){re.escape(span)}(?![{edge}])"
    new, count = re.subn(pattern, chr(0xE000 + k), target, count=1)
    return new, bool(count)
