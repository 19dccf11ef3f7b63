"""nnkit's translate recipe vs a plain Keras Transformer on real Tatoeba pairs, same wall time.

Data: ``../shared/data/fra-eng.tsv`` (manythings.org / Tatoeba English ->
French, CC-BY 2.0; never committed). Both systems get the same split
(nnkit's, by distinct source: no test source is seen in training).

1. nnkit: the ``translate`` recipe with ``--data fra-eng.tsv`` (word tokens,
   GRU encoder-decoder with additive attention unless ``--set`` says
   otherwise); its training wall time T is measured.
2. The reference: the keras.io "English-to-Spanish translation with a
   sequence-to-sequence Transformer" design (TextVectorization, vocabulary
   15,000, sequence length 20, PositionalEmbedding + TransformerEncoder +
   TransformerDecoder, dropout 0.5, rmsprop), shrunk as in the issue
   (embed 128, latent 512, 4 heads), trained for the same wall time T, then
   decoded greedily as in the example (batched here, which gives the same output).

Both are scored with sacrebleu on the same test references: as written
(BLEU/chrF on detokenised text), lowercased, and lowercased with
punctuation stripped (the reference model's own standardisation, the view
most favourable to it). Copying the source is printed as a floor.

    python bench/translate_tatoeba.py [--data PATH] [--set model.units=256 ...]
"""

from __future__ import annotations

import argparse
import os
import re
import string
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_SETS = ["model.units=192", "model.embed_dim=128", "model.dropout=0.2", "train.epochs=6",
                "train.patience=2", "train.learning_rate=0.002", "data.tokenize=word"]


# -- scoring -----------------------------------------------------------------------------------

_STRIP = string.punctuation + "¿¡«»…’“”"


def strip_punct(text: str) -> str:
    return " ".join(re.sub("[%s]" % re.escape(_STRIP), " ", text.lower()).split())


def scores(hyps, refs) -> dict:
    import sacrebleu

    lower_h, lower_r = [h.lower() for h in hyps], [r.lower() for r in refs]
    bare_h, bare_r = [strip_punct(h) for h in hyps], [strip_punct(r) for r in refs]
    return {"bleu": sacrebleu.corpus_bleu(hyps, [refs]).score, "chrf": sacrebleu.corpus_chrf(hyps, [refs]).score,
            "bleu_lower": sacrebleu.corpus_bleu(lower_h, [lower_r]).score,
            "bleu_bare": sacrebleu.corpus_bleu(bare_h, [bare_r]).score,
            "chrf_bare": sacrebleu.corpus_chrf(bare_h, [bare_r]).score}


# -- 1. nnkit ------------------------------------------------------------------------------------

def run_nnkit(data: str, sets: list[str], folder: Path, quiet: bool):
    from nnkit import train
    from nnkit.config import to_toml
    from nnkit.pipeline import resolve
    from nnkit.runs import base_meta, create_run, write_json, write_text

    resolved = resolve("translate", data=data, overrides=sets + (["train.verbose=false"] if quiet else []))
    task, cfg = resolved.task, resolved.cfg
    prepared = task.load(cfg)
    run = create_run("translate", out=str(folder / "nnkit"))
    write_text(run.config_file, to_toml(cfg))
    write_json(run.meta_file, base_meta("translate", task.name, cfg, ["bench/translate_tatoeba.py"]))
    write_json(run.state_file, prepared.state)
    began = time.perf_counter()
    model = train.fit(task, cfg, prepared, run)
    seconds = time.perf_counter() - began
    evaluation = task.evaluate(model, prepared, cfg)
    return prepared, evaluation.artifacts["hyps"], seconds, evaluation


# -- 2. the keras.io reference -----------------------------------------------------------------

def run_reference(train_pairs, test_sources, seconds: float, seed: int, embed_dim=128, latent_dim=512,
                  num_heads=4, vocab_size=15000, sequence_length=20, batch_size=64):
    import keras
    import numpy as np
    import tensorflow as tf
    from keras import layers, ops

    keras.utils.set_random_seed(seed)
    strip_chars = (string.punctuation + "¿").replace("[", "").replace("]", "")

    def custom_standardization(input_string):
        lowercase = tf.strings.lower(input_string)
        return tf.strings.regex_replace(lowercase, "[%s]" % re.escape(strip_chars), "")

    eng_vectorization = layers.TextVectorization(max_tokens=vocab_size, output_mode="int",
                                                 output_sequence_length=sequence_length)
    fra_vectorization = layers.TextVectorization(max_tokens=vocab_size, output_mode="int",
                                                 output_sequence_length=sequence_length + 1,
                                                 standardize=custom_standardization)
    eng_texts = [s for s, _ in train_pairs]
    fra_texts = ["[start] " + t + " [end]" for _, t in train_pairs]
    eng_vectorization.adapt(eng_texts)
    fra_vectorization.adapt(fra_texts)

    def format_dataset(eng, fra):
        eng = eng_vectorization(eng)
        fra = fra_vectorization(fra)
        return ({"encoder_inputs": eng, "decoder_inputs": fra[:, :-1]}, fra[:, 1:])

    ds = tf.data.Dataset.from_tensor_slices((eng_texts, fra_texts)).batch(batch_size)
    ds = ds.map(format_dataset).cache().shuffle(2048, seed=seed).prefetch(16)

    class TransformerEncoder(layers.Layer):
        def __init__(self, embed_dim, dense_dim, num_heads, **kwargs):
            super().__init__(**kwargs)
            self.attention = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.dense_proj = keras.Sequential([layers.Dense(dense_dim, activation="relu"), layers.Dense(embed_dim)])
            self.layernorm_1 = layers.LayerNormalization()
            self.layernorm_2 = layers.LayerNormalization()
            self.supports_masking = True

        def call(self, inputs, mask=None):
            padding_mask = ops.cast(mask[:, None, :], dtype="int32") if mask is not None else None
            attention_output = self.attention(query=inputs, value=inputs, key=inputs, attention_mask=padding_mask)
            proj_input = self.layernorm_1(inputs + attention_output)
            return self.layernorm_2(proj_input + self.dense_proj(proj_input))

    class PositionalEmbedding(layers.Layer):
        def __init__(self, sequence_length, vocab_size, embed_dim, **kwargs):
            super().__init__(**kwargs)
            self.token_embeddings = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
            self.position_embeddings = layers.Embedding(input_dim=sequence_length, output_dim=embed_dim)

        def call(self, inputs):
            positions = ops.arange(0, ops.shape(inputs)[-1], 1)
            return self.token_embeddings(inputs) + self.position_embeddings(positions)

        def compute_mask(self, inputs, mask=None):
            return ops.not_equal(inputs, 0)

    class TransformerDecoder(layers.Layer):
        def __init__(self, embed_dim, latent_dim, num_heads, **kwargs):
            super().__init__(**kwargs)
            self.attention_1 = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.attention_2 = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.dense_proj = keras.Sequential([layers.Dense(latent_dim, activation="relu"), layers.Dense(embed_dim)])
            self.layernorm_1 = layers.LayerNormalization()
            self.layernorm_2 = layers.LayerNormalization()
            self.layernorm_3 = layers.LayerNormalization()
            self.supports_masking = True

        def call(self, inputs, mask=None):
            inputs, encoder_outputs = inputs
            if mask is None:
                inputs_padding_mask, encoder_outputs_padding_mask = None, None
            else:
                inputs_padding_mask, encoder_outputs_padding_mask = mask
            attention_output_1 = self.attention_1(query=inputs, value=inputs, key=inputs, use_causal_mask=True,
                                                  query_mask=inputs_padding_mask)
            out_1 = self.layernorm_1(inputs + attention_output_1)
            attention_output_2 = self.attention_2(query=out_1, value=encoder_outputs, key=encoder_outputs,
                                                  query_mask=inputs_padding_mask,
                                                  key_mask=encoder_outputs_padding_mask)
            out_2 = self.layernorm_2(out_1 + attention_output_2)
            return self.layernorm_3(out_2 + self.dense_proj(out_2))

    encoder_inputs = keras.Input(shape=(None,), dtype="int64", name="encoder_inputs")
    x = PositionalEmbedding(sequence_length, vocab_size, embed_dim)(encoder_inputs)
    encoder_outputs = TransformerEncoder(embed_dim, latent_dim, num_heads)(x)
    decoder_inputs = keras.Input(shape=(None,), dtype="int64", name="decoder_inputs")
    x = PositionalEmbedding(sequence_length, vocab_size, embed_dim)(decoder_inputs)
    x = TransformerDecoder(embed_dim, latent_dim, num_heads)([x, encoder_outputs])
    x = layers.Dropout(0.5)(x)
    decoder_outputs = layers.Dense(vocab_size, activation="softmax")(x)
    transformer = keras.Model([encoder_inputs, decoder_inputs], decoder_outputs, name="transformer")
    transformer.compile("rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    class WallClock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.began = time.perf_counter()
            self.epochs = 0

        def on_train_batch_end(self, batch, logs=None):
            if time.perf_counter() - self.began >= seconds:
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            self.epochs = epoch + 1

    clock = WallClock()
    transformer.fit(ds, epochs=10_000, callbacks=[clock], verbose=2)
    trained = time.perf_counter() - clock.began

    # the example's greedy decoding, batched over sentences
    vocab = fra_vectorization.get_vocabulary()
    start_id, end_id = vocab.index("[start]"), vocab.index("[end]")

    @tf.function
    def decode(source_ids):
        n = tf.shape(source_ids)[0]
        tokens = tf.concat([tf.fill([n, 1], tf.constant(start_id, tf.int64)),
                            tf.zeros([n, sequence_length - 1], tf.int64)], axis=1)
        for i in tf.range(sequence_length - 1):
            probs = transformer([source_ids, tokens], training=False)
            next_id = tf.argmax(probs[:, i, :], axis=-1)
            column = tf.one_hot(i + 1, sequence_length, dtype=tf.int64)[None, :]
            tokens = tokens * (1 - column) + next_id[:, None] * column
        return tokens[:, 1:]

    outputs = []
    for i in range(0, len(test_sources), 256):
        ids = decode(eng_vectorization(tf.constant(test_sources[i:i + 256]))).numpy()
        for row in ids:
            words = []
            for token in row:
                if token == end_id:
                    break
                words.append(vocab[token])
            outputs.append(" ".join(words))
    return outputs, trained, clock.epochs, transformer.count_params()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fra-eng.tsv"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--show", type=int, default=6, help="print this many test translations")
    args = parser.parse_args()
    if not Path(args.data).is_file():
        sys.exit(f"{args.data}: not found (the Tatoeba file lives in ../shared/data, never in the repo)")
    sets = DEFAULT_SETS + args.overrides
    with tempfile.TemporaryDirectory(prefix="nnkit-tatoeba-") as tmp:
        prepared, nnkit_hyps, seconds, evaluation = run_nnkit(args.data, sets, Path(tmp), args.quiet)
    sources, refs = [s for s, _ in prepared.test], [t for _, t in prepared.test]
    print(f"\nnnkit trained for {seconds:.0f} s; training the keras.io reference for the same wall time")
    ref_hyps, ref_seconds, ref_epochs, ref_params = run_reference(prepared.train, sources, seconds,
                                                                  seed=0)
    rows = {"nnkit (GRU + attention)": scores(nnkit_hyps, refs),
            f"keras.io Transformer ({ref_epochs} epochs)": scores(ref_hyps, refs),
            "copy the source": scores(sources, refs)}
    print(f"\ntest pairs: {len(refs)} (train {len(prepared.train)}), same split for both; "
          f"train wall time nnkit {seconds:.0f} s, reference {ref_seconds:.0f} s ({ref_params:,} parameters)")
    print(f"{'system':<34} {'BLEU':>6} {'chrF':>6} {'BLEU lc':>8} {'BLEU lc-nopunct':>16} {'chrF lc-nopunct':>16}")
    for name, s in rows.items():
        print(f"{name:<34} {s['bleu']:>6.2f} {s['chrf']:>6.2f} {s['bleu_lower']:>8.2f} {s['bleu_bare']:>16.2f} "
              f"{s['chrf_bare']:>16.2f}")
    ours, theirs = list(rows.values())[:2]
    print(f"\nratio nnkit / reference: BLEU {ours['bleu'] / max(theirs['bleu'], 1e-9):.2f}, "
          f"BLEU lc-nopunct {ours['bleu_bare'] / max(theirs['bleu_bare'], 1e-9):.2f}, "
          f"chrF {ours['chrf'] / max(theirs['chrf'], 1e-9):.2f}; nnkit exact match "
          f"{evaluation.model['exact_match']:.3f}; settings: {' '.join(sets)}")
    for i in range(0, len(refs), max(1, len(refs) // max(1, args.show)))[: args.show]:
        print(f"  {sources[i]}\n    ref:   {refs[i]}\n    nnkit: {nnkit_hyps[i]}\n    keras: {ref_hyps[i]}")


if __name__ == "__main__":
    main()
