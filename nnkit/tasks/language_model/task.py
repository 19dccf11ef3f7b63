"""Language models (one note in, a song out): Bach chorale melodies, or characters of any text.

Data: music21's bundled Bach chorales (the melody line of each, tokens =
pitch + duration and rests; see :mod:`nnkit.datasets.chorales`), split by
tune title so the test melodies are unseen; or ``--data book.txt``: the
characters of a UTF-8 text file, split into contiguous train / validation /
test parts and cut into fixed-length chunks.

Metrics: held-out per-token negative log-likelihood (nats), perplexity and
bits per token, beside add-k unigram / bigram / trigram baselines and an
interpolated trigram whose weights are tuned on the validation part, all
scored on exactly the same test targets (:mod:`nnkit.datasets.ngram`).

Serving: ``generate(start, length, temperature, top_k, seed)`` samples
inside the graph (a ``tf.while_loop`` over the model's own layers, one token
at a time, ``tf.random.stateless_categorical`` seeded by ``(seed, step)``),
so the same seed gives the same melody in any process. Token strings in,
token strings out: the vocabulary is a lookup table inside the SavedModel.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from nnkit.builders.language_model import LANGUAGE_MODEL_OPTIONS
from nnkit.builders.options import build_from_config
from nnkit.config import Field, declared
from nnkit.errors import DataError
from nnkit.runs import fingerprint
from nnkit.tasks.base import Evaluation, Option, Prepared, Task

from nnkit.tasks.language_model.melody import analyse_melody, plot_piano_roll, write_melody
from nnkit.tasks.language_model.tokens import (BOS, EOS, MELODY_RESERVED, PAD, TEXT_RESERVED, UNK, json_ids,
                                              start_tokens, _vocabulary)

BASELINE_NAMES = {"unigram": "add-k unigram", "bigram": "add-k bigram", "trigram": "add-k trigram",
                  "interpolated_trigram": "interpolated trigram"}


class LanguageModelTask(Task):
    name = "language_model"
    schema = {
        "data": {
            "limit": Field(0, "chorales: use only the first N of the 371 (0 = all)", min=0),
            "tokens": Field("pitch_duration", "chorales: what a token is",
                            choices=("pitch_duration", "pitch")),
            "transpose": Field(0, "chorales: augmentation: each epoch, every training melody in a random key "
                                  "within N semitones up or down (0 = off, 6 = all 12 keys)", min=0, max=6),
            "seq_len": Field(100, "text: characters per training chunk", min=2),
            "max_chars": Field(0, "text: use only the first N characters (0 = all)", min=0),
            "val_fraction": Field(0.1, "validation share (tunes for chorales, characters for text)",
                                  min=0.01, max=0.4),
            "test_fraction": Field(0.1, "test share (tunes for chorales, characters for text)",
                                   min=0.01, max=0.4),
        },
        "model": {
            **declared(LANGUAGE_MODEL_OPTIONS, embedding_dim=32, units=128, dropout=0.3),
        },
        "eval": {
            "sample_start": Field("", "start of the sample in the report (empty: the most common first "
                                      "note, or the text's first character)"),
            "sample_length": Field(64, "tokens in the report's sample", min=1),
            "temperature": Field(0.9, "sampling temperature of the report's sample", min=0.01,
                                 type=float),
        },
    }
    train_defaults = {"epochs": 60, "batch_size": 16, "learning_rate": 6e-3, "patience": 8,
                      "clipnorm": 1.0}
    predict_options = (Option("start", str, "Start note or text (melody / text generation)."),
                       Option("length", int, "Tokens to generate.", min=1),
                       Option("temperature", float, "Sampling temperature.", min=0.0, min_open=True),
                       Option("top_k", int, "Sample from the k most likely tokens.", min=0),
                       Option("seed", int, "Sampling seed.", min=0, max=2**32 - 1))  # NumPy's seed range

    # -- data ---------------------------------------------------------------------------
    def load(self, cfg: dict) -> Prepared:
        data_cfg = cfg["data"]
        if data_cfg["val_fraction"] + data_cfg["test_fraction"] >= 0.8:
            raise DataError(f"data.val_fraction + data.test_fraction must leave some training data; received "
                            f"{data_cfg['val_fraction']} + {data_cfg['test_fraction']}")
        prepared = self._load_text(cfg) if data_cfg["path"] else self._load_chorales(cfg)
        if cfg["eval"]["sample_start"]:  # a bad start fails now, not after training
            start_tokens(prepared.state, cfg["eval"]["sample_start"], what="eval.sample_start")
        return prepared

    def _load_chorales(self, cfg: dict) -> Prepared:
        from nnkit.datasets import chorales as ch

        d = cfg["data"]
        melodies = ch.load_chorales(d["limit"])
        fractions = (1 - d["val_fraction"] - d["test_fraction"], d["val_fraction"], d["test_fraction"])
        train, val, test = ch.split_by_tune(melodies, fractions, seed=cfg["train"]["seed"])

        def tokens(chorale, shift=0):
            if d["tokens"] == "pitch":
                return [ch.REST if p is None else ch.pitch_name(p + shift) for p, _ in chorale["events"]]
            return ch.tokenize(chorale["events"], shift)

        shifts = [0] + [s for t in range(1, d["transpose"] + 1) for s in (t, -t)]
        shifts = [s for s in shifts if s != -6]  # +6 and -6 are the same key
        train_tokens = [tokens(c, s) for c in train for s in shifts]
        vocab = _vocabulary(train_tokens, MELODY_RESERVED)
        index = {t: i for i, t in enumerate(vocab)}
        unk, bos, eos = index[UNK], index[BOS], index[EOS]

        def encode(seq):
            return [bos] + [index.get(t, unk) for t in seq] + [eos]

        train_ids = [encode(s) for s in train_tokens]
        val_ids = [encode(tokens(c)) for c in val]
        test_ids = [encode(tokens(c)) for c in test]
        firsts = [s[0] for s in train_tokens if s]
        default_start = max(set(firsts), key=lambda t: (firsts.count(t), t)) if firsts else vocab[-1]
        state = {"mode": "melody", "tokens": d["tokens"], "vocabulary": vocab, "bos": True,
                 "separator": " ", "banned": [PAD, BOS, EOS, UNK], "default_start": default_start,
                 "num_outcomes": len(vocab) - 2}
        summary = {"source": "music21 Bach chorales (soprano line), split by tune title",
                   "chorales": len(melodies), "tunes": len({ch.tune_key(c["title"]) for c in melodies}),
                   "train chorales": len(train), "validation chorales": len(val), "test chorales": len(test),
                   "keys per training melody": len(shifts), "tokens": d["tokens"], "vocabulary": len(vocab),
                   "train tokens": sum(len(s) - 1 for s in train_ids),
                   "test tokens": sum(len(s) - 1 for s in test_ids),
                   "test tokens unknown to training": int(sum(t == unk for s in test_ids for t in s))}
        # train_ids holds every melody in each of its keys, consecutively (for the n-gram counts);
        # datasets() samples one key per melody per epoch
        extra = {"test_titles": sorted({c["title"] for c in test}), "keys": len(shifts)}
        return Prepared(train=train_ids, val=val_ids, test=test_ids, state=state, summary=summary,
                        fingerprint=fingerprint(json_ids(train_ids), json_ids(test_ids)), extra=extra)

    def _load_text(self, cfg: dict) -> Prepared:
        from nnkit.datasets.text import read_text

        d = cfg["data"]
        path = Path(d["path"])
        text = read_text(path, "text file")
        if d["max_chars"]:
            text = text[: d["max_chars"]]
        n = len(text)
        n_test, n_val = int(n * d["test_fraction"]), int(n * d["val_fraction"])
        n_train = n - n_val - n_test
        seq_len = d["seq_len"]
        if min(n_train, n_val, n_test) < 3:
            raise DataError(f"{path}: {n} characters is too short to split into train/validation/test parts "
                            f"(at least {math.ceil(3 / min(d['val_fraction'], d['test_fraction']))} needed)")
        parts = text[:n_train], text[n_train:n_train + n_val], text[n_train + n_val:]
        vocab = _vocabulary([parts[0]], TEXT_RESERVED)
        index = {t: i for i, t in enumerate(vocab)}
        unk = index[UNK]

        def chunks(part):
            ids = [index.get(c, unk) for c in part]
            return [ids[i:i + seq_len + 1] for i in range(0, max(len(ids) - 1, 1), seq_len)
                    if len(ids[i:i + seq_len + 1]) >= 2]

        train_ids, val_ids, test_ids = chunks(parts[0]), chunks(parts[1]), chunks(parts[2])
        state = {"mode": "text", "tokens": "char", "vocabulary": vocab, "bos": False, "separator": "",
                 "banned": [PAD, UNK], "default_start": parts[0][0], "num_outcomes": len(vocab) - 1}
        summary = {"source": f"{path.name}: characters, split in order (train, validation, test)",
                   "characters": n, "train characters": len(parts[0]), "validation characters": len(parts[1]),
                   "test characters": len(parts[2]), "vocabulary": len(vocab), "chunk length": seq_len,
                   "test tokens unknown to training": sum(c not in index for c in parts[2])}
        return Prepared(train=train_ids, val=val_ids, test=test_ids, state=state, summary=summary,
                        fingerprint=fingerprint(text.encode("utf-8"), seq_len))

    def datasets(self, cfg: dict, prepared: Prepared, batch_size: int):
        import tensorflow as tf

        seed = cfg["train"]["seed"]

        def pad(sequences):
            longest = max(len(s) for s in sequences)
            padded = np.zeros((len(sequences), longest), np.int32)
            for i, s in enumerate(sequences):
                padded[i, :len(s)] = s
            return padded

        def finish(ds, shuffle, size):
            if shuffle:
                ds = ds.shuffle(size, seed=seed, reshuffle_each_iteration=True)
            ds = ds.batch(batch_size)
            # trim each batch to its longest sequence: less padding, faster epochs
            ds = ds.map(_trim_batch, num_parallel_calls=tf.data.AUTOTUNE)
            return ds.prefetch(tf.data.AUTOTUNE)

        def split(padded):
            x, y = padded[..., :-1], padded[..., 1:]
            return x, y, tf.cast(y != 0, tf.float32)

        def make(sequences, shuffle):
            if not sequences:
                return None
            padded = pad(sequences)
            ds = tf.data.Dataset.from_tensor_slices(split(padded))
            return finish(ds, shuffle, len(padded))

        keys = prepared.extra.get("keys", 1)
        if keys > 1:
            # transposition augmentation on the fly: every epoch, each melody in one random key
            # of its ``keys`` versions (an epoch costs the same as without augmentation)
            grouped = pad(prepared.train).reshape(-1, keys, max(len(s) for s in prepared.train))
            ds = tf.data.Dataset.from_tensor_slices(grouped)
            ds = ds.shuffle(len(grouped), seed=seed, reshuffle_each_iteration=True)
            draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
            ds = tf.data.Dataset.zip((ds, draws)).map(lambda versions, r: split(versions[r % keys]))
            return finish(ds, False, len(grouped)), make(prepared.val, False)
        return make(prepared.train, True), make(prepared.val, False)

    # -- model --------------------------------------------------------------------------
    def build_model(self, cfg: dict, prepared: Prepared):
        from nnkit.builders import build_language_model

        return build_from_config(build_language_model, LANGUAGE_MODEL_OPTIONS, cfg["model"],
                                 len(prepared.state["vocabulary"]), name="language_model")

    def compile_kwargs(self, cfg: dict, prepared: Prepared) -> dict:
        import keras

        # the mean over real (non-padding) tokens: the loss is the per-token NLL in nats
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight")
        return {"loss": loss}

    # -- evaluation ---------------------------------------------------------------------
    def evaluate(self, model, prepared: Prepared, cfg: dict) -> Evaluation:
        from nnkit.datasets import ngram

        state = prepared.state
        log_probs = sequence_log_probs(model, prepared.test)
        value = ngram.nll(log_probs)
        headline = _metrics(value)
        metrics, settings = ngram.baselines(prepared.train, prepared.val, prepared.test, state["num_outcomes"])
        baselines = {name: _metrics(m["nll"]) for name, m in metrics.items()}
        best_name = min(baselines, key=lambda k: baselines[k]["perplexity"])
        best = baselines[best_name]["perplexity"]
        ppl = headline["perplexity"]
        change = (best - ppl) / best * 100
        unit = "note" if state["mode"] == "melody" else "character"
        cell = cfg["model"]["cell"].upper() if cfg["model"]["cell"] != "simple" else "simple RNN"
        if ppl < best:
            verdict = (f"The {cell} language model's test perplexity is {ppl:.3g}, {change:.1f}% below the best "
                       f"n-gram ({BASELINE_NAMES[best_name]}, {best:.3g}); "
                       f"{headline['nll']:.3f} vs {baselines[best_name]['nll']:.3f} nats per {unit}.")
        else:
            verdict = (f"The {cell} language model does NOT beat the n-grams: test perplexity {ppl:.3g} vs "
                       f"{best:.3g} for the {BASELINE_NAMES[best_name]} ({-change:.1f}% worse); train longer "
                       f"(train.epochs, train.patience) or change the model.")
        headline["improvement_over_best_ngram_pct"] = change
        details = {"test_tokens": int(log_probs.size), "best_baseline": best_name, "ngram_settings": settings,
                   "vocabulary": len(state["vocabulary"])}
        if "test_titles" in prepared.extra:
            details["test_titles"] = prepared.extra["test_titles"]
        rows = ["| model | perplexity | NLL (nats/token) | setting |", "|---|---|---|---|",
                f"| {cell} | {ppl:.3f} | {headline['nll']:.4f} | trained |"]
        for name, m in baselines.items():
            setting = ", ".join(f"{k}={v}" for k, v in settings[name].items())
            rows.append(f"| {BASELINE_NAMES[name]} | {m['perplexity']:.3f} | {m['nll']:.4f} | {setting} "
                        "(tuned on validation) |")
        tables = [("Held-out per-token likelihood", "\n".join(rows))]
        sample = self._sample(model, state, cfg)
        tables.append(("A sample", sample["table"]))
        details["sample"] = {k: v for k, v in sample.items() if k != "table"}
        return Evaluation(primary="perplexity", higher_is_better=False, model=headline, baselines=baselines,
                          details=details, verdict=verdict, tables=tables, artifacts={"sample": sample})

    def plots(self, model, prepared: Prepared, evaluation: Evaluation, run) -> list:
        from nnkit.report import pyplot, save_figure

        plt = pyplot()
        paths = []
        names = ["model"] + list(evaluation.baselines)
        values = [evaluation.model["perplexity"]] + [m["perplexity"] for m in evaluation.baselines.values()]
        fig, ax = plt.subplots(figsize=(6.5, 3.2))
        ax.barh([BASELINE_NAMES.get(n, n) for n in names], values,
                color=["tab:blue"] + ["tab:gray"] * (len(names) - 1))
        for y, v in enumerate(values):
            ax.text(v, y, f" {v:.2f}", va="center")
        ax.invert_yaxis()
        ax.set_xlabel("test perplexity (lower is better)")
        ax.set_xlim(0, max(values) * 1.15)
        fig.tight_layout()
        paths.append(save_figure(fig, run.plot_dir / "perplexity.png"))
        sample = evaluation.artifacts.get("sample")
        if sample and prepared.state["mode"] == "melody":
            paths.append(plot_piano_roll(sample["tokens"], run.plot_dir / "sample_piano_roll.png",
                                         title=sample["title"]))
        return paths

    def _sample(self, model, state: dict, cfg: dict) -> dict:
        """A sample for the report: ``eval.sample_length`` tokens from ``eval.sample_start``."""
        e = cfg["eval"]
        start = e["sample_start"] or state["default_start"]
        module, _ = self.serving(model, state, cfg)
        tokens = start_tokens(state, start)
        seed = cfg["train"]["seed"]
        generated = _generate(module, tokens, max(e["sample_length"] - len(tokens), 0), e["temperature"], 0, seed)
        title = f"sample from {start!r} (temperature {e['temperature']}, seed {seed})"
        if state["mode"] == "text":
            text = "".join(generated)
            return {"tokens": generated, "title": title,
                    "table": f"{title}:\n\n```text\n{text}\n```"}
        a = analyse_melody(generated)
        table = "\n".join([
            f"{title}, as music21 hears it:", "",
            "| notes | rests | key (Krumhansl) | correlation | lowest | highest | range |",
            "|---|---|---|---|---|---|---|",
            f"| {a['notes']} | {a['rests']} | {a['key']} | {a['key_correlation']:.2f} | {a['lowest']} | "
            f"{a['highest']} | {a['ambitus']} |", "",
            "`" + " ".join(generated) + "`"])
        return {"tokens": generated, "title": title, "table": table, "analysis": a}

    # -- serving and prediction --------------------------------------------------------
    def serving(self, model, state: dict, cfg: dict):
        from nnkit.tasks.language_model.serving import LanguageModelServing

        start = start_tokens(state, state["default_start"])
        examples = {"generate": {"start": np.array(start), "length": np.int32(16),
                                 "temperature": np.float32(0.9), "top_k": np.int32(0), "seed": np.int64(1)}}
        return LanguageModelServing(model, state), examples

    def predict(self, ctx, inputs: list, options: dict) -> None:
        run, echo = ctx.run, ctx.echo
        state = run.state()
        melody = state["mode"] == "melody"
        start = options.get("start")
        if start is None and inputs:
            start = (" " if melody else "\n").join(inputs)
        elif inputs:
            raise DataError("give the start either as --start or as inputs, not both")
        start = start if start else state["default_start"]
        tokens = start_tokens(state, start)
        length = options.get("length") or (64 if melody else 400)
        temperature = options.get("temperature") or 1.0
        seed = options.get("seed") if options.get("seed") is not None else 0
        top_k = options.get("top_k") or 0
        new_tokens = max(length - len(tokens), 0)  # --length counts the whole output, the start included
        outputs = ctx.call_endpoint("generate", start=np.array(tokens), length=np.int32(new_tokens),
                                temperature=np.float32(temperature), top_k=np.int32(top_k), seed=np.int64(seed))
        result = [t.decode("utf-8") for t in outputs["tokens"]]
        out = options.get("out")
        if not melody:
            text = "".join(result)
            if out:
                from nnkit.runs import write_text

                write_text(out, text + "\n")
                echo(out)
            else:
                echo(text)
            return
        out = Path(out) if out else run.path / "predictions" / f"melody-seed{seed}.mid"
        if out.suffix.lower() not in (".mid", ".midi"):
            raise DataError(f"--out {out}: expected a MIDI file name ending in .mid (MusicXML and a piano-roll "
                            "PNG are written beside it)")
        echo(" ".join(result))
        paths = write_melody(result, out, title=f"nnkit melody from {start} (seed {seed})")
        analysis = analyse_melody(result)
        echo(f"notes: {analysis['notes']}, rests: {analysis['rests']}, key: {analysis['key']} "
             f"(correlation {analysis['key_correlation']:.2f}), range: {analysis['lowest']}-{analysis['highest']} "
             f"({analysis['ambitus']})")
        for path in paths:
            echo(str(path))


# -- helpers ---------------------------------------------------------------------------


def _trim_batch(x, y, w):
    import tensorflow as tf

    length = tf.maximum(tf.reduce_max(tf.reduce_sum(tf.cast(w > 0, tf.int32), axis=1)), 1)
    return x[:, :length], y[:, :length], w[:, :length]


def _metrics(nll_value: float) -> dict:
    return {"perplexity": math.exp(nll_value), "nll": nll_value, "bits_per_token": nll_value / math.log(2)}


def sequence_log_probs(model, sequences, batch_size: int = 64) -> np.ndarray:
    """Natural-log probability the model gives each target ``seq[1:]`` of every sequence, in order."""
    out = []
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    per_sequence = {}
    for start in range(0, len(order), batch_size):
        batch = [sequences[i] for i in order[start:start + batch_size]]
        longest = max(len(s) for s in batch)
        x = np.zeros((len(batch), max(longest - 1, 1)), np.int32)
        for j, s in enumerate(batch):
            x[j, :len(s) - 1] = s[:-1]
        logits = np.asarray(model(x, training=False), dtype=np.float64)
        logits -= logits.max(axis=-1, keepdims=True)
        log_softmax = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
        for j, s in enumerate(batch):
            targets = np.asarray(s[1:], np.int64)
            per_sequence[order[start + j]] = log_softmax[j, np.arange(len(targets)), targets]
    for i in range(len(sequences)):
        out.append(per_sequence[i])
    return np.concatenate(out) if out else np.zeros(0)


def _generate(module, tokens, length, temperature, top_k, seed) -> list[str]:
    import tensorflow as tf

    outputs = module.generate(tf.constant(tokens), tf.constant(length, tf.int32),
                              tf.constant(temperature, tf.float32), tf.constant(top_k, tf.int32),
                              tf.constant(seed, tf.int64))
    return [t.decode("utf-8") for t in outputs["tokens"].numpy()]
