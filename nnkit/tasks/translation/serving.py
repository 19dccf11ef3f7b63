"""The exported translator: strings in, strings out (tokenisation, lookup, decoding, detokenisation in graph)."""

from __future__ import annotations

import keras
import tensorflow as tf

from nnkit.builders.blocks import check_choice, check_positive
from nnkit.tasks.translation.decoding import Seq2SeqDecoder, beam_search, greedy_search
from nnkit.tasks.translation.tokens import TOKENIZATIONS, tf_detokenize, tf_tokenize, until_end


class Seq2SeqTranslator(tf.Module):
    """A trained seq2seq model with its vocabularies and decoding: strings in, strings out.

    ``translate(text)`` takes a tf.string vector and returns
    ``{"translation": tf.string vector}``; tokenisation (``StringLookup``),
    decoding (greedy, or beam search when ``beam_width > 1``) and
    detokenisation all run inside the graph, so the SavedModel needs nothing else.
    """

    def __init__(self, model, source_vocab, target_vocab, *, tokenize: str = "char", lowercase: bool = False,
                 punctuation_spacing: bool = True, max_source_len: int = 256, max_decode_len: int = 128,
                 beam_width: int = 1, length_penalty: float = 0.6, tokenizer=None, placeholders=None,
                 name: str = "translator"):
        super().__init__(name=name)
        # a tokenizer module (``tokenize(text) -> ragged tokens``, ``detokenize(tokens) -> text``; the subword
        # one of nnkit.datasets.subwords) replaces the built-in word/char tokens; ids and decoding stay the same
        self.tokenizer = tokenizer
        # names and numbers masked as ⦅k⦆ before tokenisation and restored after decoding (translation.placeholders)
        self.placeholders = placeholders
        if tokenizer is None:
            check_choice("tokenize", tokenize, TOKENIZATIONS)
        check_positive("beam_width", beam_width)
        check_positive("max_decode_len", max_decode_len)
        self.model = model
        self._decoder = Seq2SeqDecoder(model)
        self.tokenize_mode = tokenize
        self.lowercase = bool(lowercase)
        self.punctuation_spacing = bool(punctuation_spacing)
        self.max_source_len = int(max_source_len)
        self.max_decode_len = int(max_decode_len)
        if self._decoder.arch == "transformer":  # no more steps than position embeddings
            self.max_decode_len = min(self.max_decode_len, int(self._decoder.max_target_len))
        self.beam_width = int(beam_width)
        self.length_penalty = float(length_penalty)
        self.source_lookup = keras.layers.StringLookup(vocabulary=list(source_vocab), mask_token="",
                                                       oov_token="[UNK]", name="source_lookup")
        self.target_lookup = keras.layers.StringLookup(vocabulary=list(target_vocab), mask_token="",
                                                       oov_token="[UNK]", name="target_lookup")
        self.target_words = keras.layers.StringLookup(vocabulary=list(target_vocab), mask_token="",
                                                      oov_token="[UNK]", invert=True, name="target_words")
        self.translate = tf.function(self._translate,
                                     input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        self._greedy_with_attention = tf.function(
            lambda ids: greedy_search(self._decoder, ids, self.max_decode_len, return_attention=True))

    # tokens and ids
    def tokens(self, text):
        if self.tokenizer is not None:
            return self.tokenizer.tokenize(text)
        return tf_tokenize(text, self.tokenize_mode, self.lowercase, self.punctuation_spacing)

    def source_ids(self, text):
        """Strings [N] -> int ids [N, S] (tokens + [END], 0-padded)."""
        tokens = self.tokens(text)
        if self._decoder.arch == "transformer":
            tokens = tokens[:, : self.max_source_len - 1]
        ends = tf.fill([tokens.nrows(), 1], "[END]")
        tokens = tf.concat([tokens, tf.RaggedTensor.from_tensor(ends)], axis=1)
        return tf.cast(self.source_lookup(tokens).to_tensor(0), tf.int32)

    def target_ids(self, text):
        """Strings [N] -> ragged target ids (no [START]/[END])."""
        return tf.cast(self.target_lookup(self.tokens(text)), tf.int32)

    def ids_to_text(self, ids):
        if self.tokenizer is not None:
            return self.tokenizer.detokenize(self.target_words(until_end(ids)))
        return tf_detokenize(self.target_words(until_end(ids)), self.tokenize_mode, self.punctuation_spacing)

    # decoding
    def decode_ids(self, source_ids, beam_width: int | None = None):
        width = self.beam_width if beam_width is None else int(beam_width)
        if width <= 1:
            return greedy_search(self._decoder, source_ids, self.max_decode_len)[0]
        return beam_search(self._decoder, source_ids, self.max_decode_len, width, self.length_penalty)

    def translate_text(self, text, beam_width: int | None = None):
        """Strings [N] -> translations [N]: mask names/numbers, encode, decode, detokenise, restore."""
        if self.placeholders is None:
            return self.ids_to_text(self.decode_ids(self.source_ids(text), beam_width))
        masked, spans = self.placeholders.mask(text)
        return self.placeholders.restore(self.ids_to_text(self.decode_ids(self.source_ids(masked), beam_width)), spans)

    def _translate(self, text):
        return {"translation": self.translate_text(text)}

    def attention(self, text):
        """(source tokens, output tokens, weights [N, T, S]) of greedy decoding, for heatmaps."""
        text = tf.constant(text)
        if self.placeholders is not None:
            text = self.placeholders.mask(text)[0]
        out, weights = self._greedy_with_attention(self.source_ids(text))
        src_tokens = [[t.decode("utf-8") for t in row] for row in self.tokens(text).to_list()]
        out_tokens = [[t.decode("utf-8") for t in row] for row in self.target_words(until_end(out)).to_list()]
        return src_tokens, out_tokens, weights.numpy()
