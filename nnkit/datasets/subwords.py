"""Subword tokens for translation: a SentencePiece model learned on the training text, applied in the graph.

Why SentencePiece (unigram) through tensorflow-text: the vocabulary is
learned by the reference implementation (the ``sentencepiece`` trainer), and
tokenisation and detokenisation run as TensorFlow ops
(``tensorflow_text.SentencepieceTokenizer``), so the same code makes the
training ids and runs inside the exported SavedModel: raw strings in,
detokenised strings out. tensorflow-text releases track TensorFlow's minor
version (2.21.x for TF 2.21), and its ops must be registered
(``import tensorflow_text``) before a SavedModel that uses them is loaded:
:func:`load_text_ops`.

Choices, each for a reason:

* one *joint* vocabulary for source and target: a name or a number is cut
  into the same pieces on both sides, so the model can learn to copy it;
* ``split_digits``: every digit is a piece of its own, so any number is
  spelt from ten known pieces;
* ``byte_fallback``: a character never seen in training (an emoji, a rare
  letter) becomes its UTF-8 bytes rather than ``[UNK]``, so no input is
  unknown and detokenisation gives the text back;
* ids 0 padding, 1 ``[UNK]``, 2 ``[START]``, 3 ``[END]``: the seq2seq
  builder's convention, so SentencePiece ids are the model's ids;
* normalisation: Unicode NFC/NFKC by tensorflow-text's ``normalize_utf8``
  and whitespace collapsed, in the graph; the SentencePiece model itself
  uses the identity rule, so ``detokenize(tokenize(s)) == normalise(s)``.
"""

from __future__ import annotations

import base64
import io

import tensorflow as tf

from nnkit.errors import NnkitError

SPECIALS = {"pad_piece": "[PAD]", "unk_piece": "[UNK]", "bos_piece": "[START]", "eos_piece": "[END]"}
DEFAULT_VOCAB_SIZE = 4000
_SPACES = "[\\s\\x{00a0}\\x{202f}]+"  # RE2; French typography uses no-break spaces


def load_text_ops():
    """Import tensorflow-text, which registers its ops (needed before loading a subword SavedModel)."""
    try:
        import tensorflow_text
    except ImportError as exc:  # e.g. Windows, where tensorflow-text ships no wheel
        raise NnkitError("subword tokens need tensorflow-text (pip install 'tensorflow-text>=2.16,<2.22', the "
                         f"release matching your TensorFlow): {exc}; or use --set data.tokenize=word") from None
    return tensorflow_text


def learn_subwords(texts, vocab_size: int = DEFAULT_VOCAB_SIZE, model_type: str = "unigram",
                   symbols: tuple[str, ...] = ()) -> bytes:
    """A serialized SentencePiece model learned on ``texts`` (already normalised), at most ``vocab_size`` pieces.

    ``vocab_size`` is a soft limit: a small corpus that cannot fill it gets
    the largest vocabulary it supports instead of an error, and a vocabulary
    too small to hold every character seen (plus the 256 byte pieces and 4
    specials) is raised to that size. ``symbols`` are pieces of their own,
    never split or merged (``user_defined_symbols``: the placeholders ``⦅0⦆``...).
    """
    import sentencepiece as spm

    texts = [t for t in texts if t]
    if not texts:
        raise ValueError("learn_subwords needs at least one non-empty text")
    needed = len(SPECIALS) + 256 + len(symbols) + len({c for t in texts for c in t if not c.isspace()})
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=model, vocab_size=max(int(vocab_size), needed), model_type=model_type,
        hard_vocab_limit=False, pad_id=0, unk_id=1, bos_id=2, eos_id=3, **SPECIALS, byte_fallback=True,
        split_digits=True, character_coverage=1.0, user_defined_symbols=list(symbols), normalization_rule_name="identity",
        input_sentence_size=0, shuffle_input_sentence=False, num_threads=1, minloglevel=2)  # one thread, every sentence, no shuffling: deterministic
    return model.getvalue()


def encode_model(model: bytes) -> str:
    """The model as text for state.json."""
    return base64.b64encode(model).decode("ascii")


def decode_model(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


def pieces(model: bytes) -> list[str]:
    """Every piece in id order (0 = ``[PAD]``, 1 = ``[UNK]``, 2 = ``[START]``, 3 = ``[END]``)."""
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_proto=model)
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())]


def byte_piece(piece: str) -> bool:
    """True for a byte-fallback piece such as ``<0xF0>``."""
    return len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">")


def standardize(text, normalize: str = "NFC", lowercase: bool = False):
    """In-graph clean-up: Unicode normalisation, whitespace collapsed and stripped, optional lowercasing."""
    if normalize != "none":
        text = load_text_ops().normalize_utf8(text, normalize)
    text = tf.strings.strip(tf.strings.regex_replace(text, _SPACES, " "))
    if lowercase:
        text = tf.strings.lower(text, encoding="utf-8")
    return text


class SubwordTokenizer(tf.Module):
    """``tokenize``: strings [N] -> ragged pieces [N, None] (tf.string); ``detokenize``: pieces or ids -> strings.

    A ``tf.Module``, so the SentencePiece model is saved with any module that holds it.
    """

    def __init__(self, model: bytes, normalize: str = "NFC", lowercase: bool = False, name: str = "subwords"):
        super().__init__(name=name)
        self.normalize = normalize
        self.lowercase = bool(lowercase)
        self.sentencepiece = load_text_ops().SentencepieceTokenizer(model=model, out_type=tf.string)

    def tokenize(self, text):
        return self.sentencepiece.tokenize(standardize(text, self.normalize, self.lowercase))

    def detokenize(self, tokens):
        return self.sentencepiece.detokenize(tokens)
