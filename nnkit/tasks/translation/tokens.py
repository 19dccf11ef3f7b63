"""Strings to tokens and back, inside the graph (training and the SavedModel share this code)."""

from __future__ import annotations

import tensorflow as tf

from nnkit.builders.blocks import check_choice
from nnkit.tasks.translation.decoding import END_ID, PAD_ID

SPECIAL_TOKENS = ("[START]", "[END]")  # ids 2 and 3, after padding "" (0) and "[UNK]" (1)
TOKENIZATIONS = ("char", "word")  # built in; "subword" is nnkit.datasets.subwords
_SPACES = "[\\s\\x{00a0}\\x{202f}]+"  # RE2; CLDR and French typography use no-break spaces
_PUNCT = "[.,!?;:¿¡\"«»()\\[\\]]"
_CLOSE = " ([.,!?;:»)\\]])"
_OPEN = "([¿¡«(\\[]) "
_NUMERIC = "([0-9]) ([:.,]) ([0-9])"  # "19 : 53" -> "19:53", "1 , 000" -> "1,000"


def tf_standardize(text, lowercase: bool = False):
    """Collapse whitespace (no-break spaces included), strip, optionally lowercase (Unicode-aware)."""
    text = tf.strings.strip(tf.strings.regex_replace(text, _SPACES, " "))
    if lowercase:
        text = tf.strings.lower(text, encoding="utf-8")
    return text


def tf_tokenize(text, tokenize: str = "char", lowercase: bool = False, punctuation_spacing: bool = True):
    """Strings [N] -> ragged tokens [N, None]: characters, or words with punctuation split off."""
    check_choice("tokenize", tokenize, TOKENIZATIONS)
    text = tf_standardize(text, lowercase)
    if tokenize == "char":
        return tf.strings.unicode_split(text, "UTF-8")
    if punctuation_spacing:
        text = tf.strings.regex_replace(text, _PUNCT, " \\0 ")
    return tf.strings.split(text)


def tf_detokenize(tokens, tokenize: str = "char", punctuation_spacing: bool = True):
    """Ragged tokens [N, None] -> strings [N] (the inverse of :func:`tf_tokenize` up to spacing)."""
    if tokenize == "char":
        return tf.strings.reduce_join(tokens, axis=-1)
    text = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
    if punctuation_spacing:
        text = tf.strings.regex_replace(text, _NUMERIC, "\\1\\2\\3")
        text = tf.strings.regex_replace(text, _CLOSE, "\\1")
        text = tf.strings.regex_replace(text, _OPEN, "\\1")
    return text


def until_end(ids):
    """Ids [N, L] -> ragged ids, cut before the first [END] and without padding."""
    keep = tf.logical_and(tf.equal(tf.cumsum(tf.cast(tf.equal(ids, END_ID), tf.int32), axis=1), 0),
                          tf.not_equal(ids, PAD_ID))
    return tf.ragged.boolean_mask(ids, keep)


def text_tokenizer(state: dict):
    """The subword tokenizer of a run (a tf.Module), or None for the built-in word/char tokens."""
    if state["tokenize"] != "subword":
        return None
    from nnkit.datasets.subwords import SubwordTokenizer, decode_model

    return SubwordTokenizer(decode_model(state["subword_model"]), state["normalize"], state["lowercase"])


def tokenize_texts(texts, state: dict, tokenizer=None):
    """Strings -> ragged string tokens, the way the translator tokenizes them."""
    if state["tokenize"] == "subword":
        return (tokenizer or text_tokenizer(state)).tokenize(tf.constant(texts))
    return tf_tokenize(tf.constant(texts), state["tokenize"], state["lowercase"], state["punctuation_spacing"])
