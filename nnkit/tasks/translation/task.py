"""Translation: sentence pairs in, a seq2seq model with attention, strings out.

Data: the bundled corpus generated from num2words and babel (English ->
French number words, ordinals, years, dates and times; see
``nnkit.datasets.number_corpus``), or ``--data pairs.tsv``
(``source<TAB>target[<TAB>...]``). Sources are split into train /
validation / test so that no test source is seen in training.

Tokenisation (characters or words), the vocabularies (``StringLookup``,
built on the training part), decoding (greedy or beam search in a
``tf.function``) and detokenisation all live in the exported SavedModel:
its ``translate`` endpoint maps a tf.string vector to a tf.string vector.

Evaluation on the test part: sacrebleu BLEU and chrF on detokenised strings,
exact match (all inputs and the longest fifth), beside two baselines:
copying the source, and a word-by-word dictionary learned from the training
pairs (Dice co-occurrence).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nnkit.builders.options import build_from_config
from nnkit.builders.seq2seq import SEQ2SEQ_OPTIONS
from nnkit.config import Field, declared
from nnkit.errors import DataError, NnkitError
from nnkit.runs import fingerprint
from nnkit.tasks.base import Evaluation, Option, Prepared, Task
from nnkit.tasks.translation.plots import attention_heatmaps, prepared_cfg_heatmaps

LANGS = ("fr", "es", "de", "it", "ja")
# languages whose number words are written as one long compound (or without spaces): words won't do
CHAR_LANGS = ("de", "it", "ja")


def _cache_dir() -> Path:
    return Path(os.environ.get("NNKIT_CACHE") or Path.home() / ".cache" / "nnkit") / "number_corpus"


def generated_pairs(size: int, target_lang: str, seed: int, max_number: int) -> list[tuple[str, str]]:
    """The generated corpus, cached as TSV under $NNKIT_CACHE (it takes seconds to render)."""
    from nnkit.datasets.number_corpus import generate

    path = _cache_dir() / f"en-{target_lang}-{size}-{seed}-{max_number}.tsv"
    if path.is_file():
        lines = path.read_text(encoding="utf-8").splitlines()
        pairs = [tuple(line.split("\t")) for line in lines if line]
        if len(pairs) == size and all(len(p) == 2 for p in pairs):
            return pairs  # else: a damaged cache file, render again
    pairs = generate(size, target_lang=target_lang, seed=seed, max_number=max_number)
    try:
        from nnkit.runs import write_text

        write_text(path, "".join(f"{s}\t{t}\n" for s, t in pairs))
    except OSError:
        pass  # a read-only cache is not an error
    return pairs


def tokenization(cfg: dict) -> str:
    mode = cfg["data"]["tokenize"]
    if mode != "auto":
        return mode
    if cfg["data"]["path"]:
        return "subword"  # real text: names, numbers and rare words need open-vocabulary tokens
    return "char" if cfg["data"]["target_lang"] in CHAR_LANGS else "word"


def _vocabulary(token_lists, max_size: int, min_count: int) -> list[str]:
    from collections import Counter

    from nnkit.tasks.translation.tokens import SPECIAL_TOKENS

    counts = Counter(t for tokens in token_lists for t in tokens)
    for special in ("", "[UNK]") + SPECIAL_TOKENS:
        counts.pop(special, None)
    ranked = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    if max_size:
        ranked = ranked[:max_size]
    return list(SPECIAL_TOKENS) + ranked


def lookup(vocab, invert: bool = False):
    import keras

    return keras.layers.StringLookup(vocabulary=list(vocab), mask_token="", oov_token="[UNK]", invert=invert)


def make_translator(model, state: dict, beam_width: int | None = None):
    from nnkit.tasks.translation.serving import Seq2SeqTranslator
    from nnkit.tasks.translation.tokens import text_tokenizer

    return Seq2SeqTranslator(model, state["source_vocab"], state["target_vocab"], tokenize=state["tokenize"],
                             tokenizer=text_tokenizer(state), placeholders=placeholders_of(state),
                             lowercase=state["lowercase"], punctuation_spacing=state["punctuation_spacing"],
                             max_source_len=state["max_source_len"], max_decode_len=state["max_decode_len"],
                             beam_width=state["beam_width"] if beam_width is None else beam_width,
                             length_penalty=state["length_penalty"])


def placeholders_of(state: dict):
    """The run's name/number placeholders (a tf.Module), or None when it has none."""
    if state.get("translate_words") is None:
        return None
    from nnkit.tasks.translation.placeholders import Placeholders

    return Placeholders(state["translate_words"])


def masked_sources(texts: list[str], state: dict) -> list[str]:
    """Sources as the model reads them: names/numbers as placeholders when the run has them."""
    placeholders = placeholders_of(state)
    if placeholders is None or not texts:
        return list(texts)
    import tensorflow as tf

    return [t.decode("utf-8") for t in placeholders.mask(tf.constant(texts))[0].numpy()]


def translate_all(translator, sources: list[str], batch_size: int = 256, beam_width: int | None = None):
    import tensorflow as tf

    out = []
    for i in range(0, len(sources), batch_size):
        text = tf.constant(sources[i:i + batch_size])
        if beam_width is None:
            result = translator.translate(text)["translation"]
        else:
            result = translator.translate_text(text, beam_width)
        out += [t.decode("utf-8") for t in result.numpy()]
    return out


def text_scores(hyps: list[str], refs: list[str], canonical: list[str], long_mask) -> dict:
    """BLEU and chrF (sacrebleu, detokenised strings), exact match overall and on long inputs."""
    import sacrebleu

    exact = np.array([h == c for h, c in zip(hyps, canonical)], dtype=bool)
    return {
        "bleu": float(sacrebleu.corpus_bleu(hyps, [refs]).score),
        "chrf": float(sacrebleu.corpus_chrf(hyps, [refs]).score),
        "exact_match": float(exact.mean()) if len(exact) else 0.0,
        "exact_match_long": float(exact[long_mask].mean()) if long_mask.any() else 0.0,
    }


class TranslationTask(Task):
    name = "translation"
    schema = {
        "data": {
            "target_lang": Field("fr", "generated corpus: target language (source is English)", choices=LANGS),
            "size": Field(30000, "generated corpus: unique sentence pairs", min=100),
            "max_number": Field(999999, "generated corpus: largest cardinal", min=10),
            "skip_bad_lines": Field(False, "TSV: skip lines that do not split into source<TAB>target"),
            "limit": Field(0, "TSV: read at most this many pairs (0 = all)", min=0),
            "normalize": Field("NFC", "Unicode normalisation", choices=("NFC", "NFKC", "none")),
            "lowercase": Field(False, "lowercase both sides (inside the SavedModel too)"),
            "punctuation_spacing": Field(True, "word tokens: split punctuation off words"),
            "tokenize": Field("auto", "tokens: subword (SentencePiece), word, char, or auto (subword for --data; "
                                      "bundled corpus: char for de/it/ja number words, else word)",
                              choices=("auto", "subword", "word", "char")),
            "placeholders": Field(True, "subword tokens: numbers and the capitalised words a translator keeps "
                                        "(unseen in training, or copied there) become placeholders ⦅0⦆, ⦅1⦆... "
                                        "in the source, restored from it in the output (in the SavedModel too)"),
            "copy_augment": Field(1, "subword tokens: per training pair with a name or number on both sides, add "
                                     "this many copies with them replaced by invented names / random numbers, so "
                                     "the model learns to copy them (0 = off)", min=0),
            "subword_vocab": Field(4000, "subword tokens: pieces in the joint source+target vocabulary, learned "
                                         "on the training part (a soft limit for small data)", min=300),
            "max_length": Field(0, "drop pairs with more tokens than this on either side (0 = keep all)", min=0),
            "max_vocab": Field(0, "keep the most frequent tokens per side (0 = all)", min=0),
            "min_count": Field(1, "drop tokens seen fewer times in training", min=1),
            "val_fraction": Field(0.1, "validation share (by distinct source)", min=0.01, max=0.5),
            "test_fraction": Field(0.1, "test share (by distinct source)", min=0.01, max=0.5),
        },
        "model": {
            **declared(SEQ2SEQ_OPTIONS),
        },
        "train": {
            "label_smoothing": Field(0.0, "spread this share of each target token's probability over the whole "
                                          "vocabulary in the loss (0 = off; 0.1 is usual for translation)",
                                     min=0.0, max=0.5, type=float),
        },
        "eval": {
            "beam_width": Field(1, "decoding beam width (1 = greedy); also the SavedModel's", min=1),
            "length_penalty": Field(0.6, "beam search: GNMT length-penalty exponent", min=0.0),
            "max_decode_length": Field(0, "most output tokens (0 = from the longest training target)", min=0),
            "heatmaps": Field(4, "attention heatmaps for this many test sentences (half of them long)", min=0),
            "examples": Field(12, "test translations shown in the report", min=0),
        },
    }
    train_defaults = {"epochs": 8, "batch_size": 64, "learning_rate": 0.003, "clipnorm": 1.0, "patience": 2}
    predict_options = (Option("beam", int, "Beam width (translation).", min=1),)

    # -- data ---------------------------------------------------------------------------
    def load(self, cfg: dict) -> Prepared:
        from nnkit.datasets.number_corpus import split_by_source
        from nnkit.datasets.pairs import clean_text, read_pairs
        from nnkit.tasks.translation.quality import unknown_rates
        from nnkit.tasks.translation.tokens import text_tokenizer, tokenize_texts

        data = cfg["data"]
        seed = cfg["train"]["seed"]
        info: dict = {}
        if data["path"]:
            pairs, report = read_pairs(data["path"], skip_bad_lines=data["skip_bad_lines"],
                                       normalize=data["normalize"], lowercase=data["lowercase"],
                                       limit=data["limit"])
            source_name = str(data["path"])
            info = {"lines": report.lines, "bad_lines_skipped": report.bad_lines}
            if report.bad_lines:
                info["first_bad_lines"] = ", ".join(map(str, report.first_bad))
        else:
            raw = generated_pairs(data["size"], data["target_lang"], seed, data["max_number"])
            pairs = [(clean_text(s, data["normalize"], data["lowercase"]),
                      clean_text(t, data["normalize"], data["lowercase"])) for s, t in raw]
            source_name = f"generated en-{data['target_lang']} numbers/dates/times (num2words + babel)"
        pairs = list(dict.fromkeys(pairs))  # exact duplicates once
        mode = tokenization(cfg)
        lower, punct = data["lowercase"], data["punctuation_spacing"]
        if len(pairs) < 10:
            raise DataError(f"{source_name}: only {len(pairs)} usable sentence pairs; need at least 10")
        try:
            train, val, test = split_by_source(pairs, data["val_fraction"], data["test_fraction"], seed)
        except ValueError as exc:
            raise DataError(f"{source_name}: {exc}") from None
        state = {"tokenize": mode, "lowercase": lower, "punctuation_spacing": punct, "normalize": data["normalize"]}
        model_train, model_val = train, val  # the pairs as the model reads them; train/val/test stay text
        if mode == "subword" and data["placeholders"]:  # names/numbers -> ⦅k⦆ (test sources: in the graph)
            from nnkit.tasks.translation.placeholders import mask_pairs, words_to_translate

            state["translate_words"] = words_to_translate(train)
            placeholders = placeholders_of(state)
            model_train, model_val = mask_pairs(placeholders, train), mask_pairs(placeholders, val)
            info["placeholder share of training sources"] = round(
                sum("⦅" in s for s, _ in model_train) / max(1, len(model_train)), 3)
        if mode == "subword":  # one joint vocabulary, learned on the training part only
            from nnkit.datasets.subwords import encode_model, learn_subwords
            from nnkit.tasks.translation.placeholders import SYMBOLS

            state["subword_model"] = encode_model(learn_subwords(
                [s for s, _ in model_train] + [t for _, t in model_train], data["subword_vocab"],
                symbols=SYMBOLS if "translate_words" in state else ()))
        tokenizer = text_tokenizer(state)

        def tokens(texts):
            if not texts:
                return []
            return [[t.decode("utf-8") for t in row] for row in tokenize_texts(texts, state, tokenizer).to_list()]

        if data["max_length"]:
            def short(part, view):  # measured on the model's view, applied to both
                lengths = zip(tokens([s for s, _ in view]), tokens([t for _, t in view]))
                keep = [max(len(a), len(b)) <= data["max_length"] for a, b in lengths]
                return [p for p, k in zip(part, keep) if k], [p for p, k in zip(view, keep) if k]

            before = len(train) + len(val) + len(test)
            (train, model_train), (val, model_val) = short(train, model_train), short(val, model_val)
            test = short(test, test)[0]
            info["dropped_by_length"] = before - len(train) - len(val) - len(test)
            if not train or not test:
                raise DataError(f"{source_name}: no pairs left in the training or test part with at most "
                                f"{data['max_length']} tokens a side; raise data.max_length")
        copy_pairs = []
        if mode == "subword" and data["copy_augment"] and "translate_words" not in state:  # teach copying
            from nnkit.datasets.names_numbers import substitute, target_words

            known = target_words(t for _, t in train)
            for k in range(data["copy_augment"]):
                copy_pairs += substitute(train, seed * 1000 + k, avoid=known)
            info["copy-augmentation pairs (training)"] = len(copy_pairs)
        tr_src, tr_tgt = tokens([s for s, _ in model_train]), tokens([t for _, t in model_train])
        if mode == "subword":
            from nnkit.datasets.subwords import decode_model, pieces
            from nnkit.tasks.translation.tokens import SPECIAL_TOKENS

            source_vocab = target_vocab = list(SPECIAL_TOKENS) + pieces(decode_model(state["subword_model"]))[4:]
        else:
            source_vocab = _vocabulary(tr_src, data["max_vocab"], data["min_count"])
            target_vocab = _vocabulary(tr_tgt, data["max_vocab"], data["min_count"])
        max_src = max(len(t) for t in tr_src) + 1
        max_tgt = max(len(t) for t in tr_tgt) + 1
        max_decode = cfg["eval"]["max_decode_length"] or max_tgt + max(5, max_tgt // 2)
        state.update({
            "source_vocab": source_vocab, "target_vocab": target_vocab,
            "max_source_len": max(max_src + max(5, max_src // 2), 8), "max_decode_len": int(max_decode),
            "beam_width": cfg["eval"]["beam_width"], "length_penalty": cfg["eval"]["length_penalty"],
            "target_lang": data["target_lang"] if not data["path"] else "",
            "examples": [s for s, _ in sorted(test, key=lambda p: len(p[0]))[:: max(1, len(test) // 3)]][:3],
        })
        summary = {"source": source_name, "pairs": len(pairs), "train": len(train), "validation": len(val),
                   "test": len(test), "tokenization": mode, "source vocabulary": len(source_vocab) + 2,
                   "target vocabulary": len(target_vocab) + 2, "longest source (tokens)": max_src - 1,
                   "longest target (tokens)": max_tgt - 1, **info,
                   **unknown_rates(tokens(masked_sources([s for s, _ in test], state)), source_vocab, mode)}
        extra = {"copy_pairs": copy_pairs, "model_train": model_train, "model_val": model_val}
        return Prepared(train=train, val=val, test=test, state=state, summary=summary, extra=extra,
                        fingerprint=fingerprint(source_name, mode, *[f"{s}\t{t}" for s, t in pairs[:50000]]))

    # -- ids ----------------------------------------------------------------------------
    def _arrays(self, pairs, state):
        """(source ids [N, S], target_in [N, T], target_out [N, T]) as int32 numpy arrays."""
        import tensorflow as tf

        from nnkit.tasks.translation.decoding import END_ID, START_ID
        from nnkit.tasks.translation.tokens import text_tokenizer, tokenize_texts

        tokenizer = text_tokenizer(state)
        src = tokenize_texts([s for s, _ in pairs], state, tokenizer)
        src = tf.concat([src, tf.RaggedTensor.from_tensor(tf.fill([src.nrows(), 1], "[END]"))], axis=1)
        src_ids = tf.cast(lookup(state["source_vocab"])(src), tf.int32).to_tensor(0).numpy()
        tgt = tf.cast(lookup(state["target_vocab"])(tokenize_texts([t for _, t in pairs], state, tokenizer)), tf.int32)
        n = tgt.nrows()
        t_in = tf.concat([tf.fill([n, 1], START_ID), tgt], axis=1).to_tensor(0).numpy()
        t_out = tf.concat([tgt, tf.fill([n, 1], END_ID)], axis=1).to_tensor(0).numpy()
        return src_ids, t_in, t_out

    def _dataset(self, pairs, state, batch_size, shuffle, seed, one_hot: bool = False):
        """Batches ((source, target_in), target_out, mask); targets one-hot for label smoothing."""
        import tensorflow as tf

        src, t_in, t_out = self._arrays(pairs, state)
        ds = tf.data.Dataset.from_tensor_slices((src, t_in, t_out))
        if shuffle:
            ds = ds.shuffle(len(src), seed=seed, reshuffle_each_iteration=True)

        def trim(s, ti, to):  # drop the padding columns the whole batch shares
            s_len = tf.reduce_max(tf.reduce_sum(tf.cast(s != 0, tf.int32), axis=1))
            t_len = tf.reduce_max(tf.reduce_sum(tf.cast(to != 0, tf.int32), axis=1))
            to = to[:, :t_len]
            mask = tf.cast(to != 0, tf.float32)
            if one_hot:  # the Keras loss that smooths labels takes one-hot targets
                to = tf.one_hot(to, len(state["target_vocab"]) + 2)
            return (s[:, :s_len], ti[:, :t_len]), to, mask

        return ds.batch(batch_size).map(trim).prefetch(tf.data.AUTOTUNE)

    def datasets(self, cfg: dict, prepared: Prepared, batch_size: int):
        seed, smooth = cfg["train"]["seed"], cfg["train"]["label_smoothing"] > 0
        extra = prepared.extra  # the model reads the pairs with placeholders when the run has them
        train = self._dataset(extra.get("model_train", prepared.train) + extra.get("copy_pairs", []), prepared.state,
                              batch_size, True, seed, smooth)
        val = (self._dataset(extra.get("model_val", prepared.val), prepared.state, batch_size, False, seed, smooth)
               if prepared.val else None)
        return train, val

    # -- model --------------------------------------------------------------------------
    def build_model(self, cfg: dict, prepared: Prepared):
        from nnkit.builders.seq2seq import build_seq2seq

        state = prepared.state
        return build_from_config(build_seq2seq, SEQ2SEQ_OPTIONS, cfg["model"], len(state["source_vocab"]) + 2,
                                 len(state["target_vocab"]) + 2, max_source_len=state["max_source_len"],
                                 max_target_len=state["max_decode_len"], name="seq2seq")

    def compile_kwargs(self, cfg: dict, prepared: Prepared) -> dict:
        import keras

        smoothing = cfg["train"]["label_smoothing"]
        if smoothing > 0:
            return {"loss": keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing),
                    "weighted_metrics": [keras.metrics.CategoricalAccuracy(name="token_accuracy")]}
        return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                "weighted_metrics": [keras.metrics.SparseCategoricalAccuracy(name="token_accuracy")]}

    def custom_objects(self) -> dict:
        from nnkit.layers.positional import PositionalEmbedding

        return {"PositionalEmbedding": PositionalEmbedding}

    # -- evaluation ---------------------------------------------------------------------
    def canonical(self, texts: list[str], state: dict) -> list[str]:
        """References as the model can write them: tokenised and detokenised the same way."""
        from nnkit.tasks.translation.tokens import text_tokenizer, tf_detokenize, tokenize_texts

        if not texts:
            return []
        tokenizer = text_tokenizer(state)
        tokens = tokenize_texts(texts, state, tokenizer)
        if tokenizer is not None:
            return [t.decode("utf-8") for t in tokenizer.detokenize(tokens).numpy()]
        return [t.decode("utf-8") for t in tf_detokenize(tokens, state["tokenize"],
                                                         state["punctuation_spacing"]).numpy()]

    def evaluate(self, model, prepared: Prepared, cfg: dict) -> Evaluation:
        from nnkit.datasets.names_numbers import copy_rate
        from nnkit.datasets.pairs import translate_word_by_word, word_dictionary
        from nnkit.tasks.translation.quality import example_tables, names_numbers, probe

        state = prepared.state
        test = prepared.test
        sources, refs = [s for s, _ in test], [t for _, t in test]
        translator = make_translator(model, state)
        hyps = translate_all(translator, sources)
        canonical = self.canonical(refs, state)
        lengths = np.array([len(s.split()) if state["tokenize"] != "char" else len(s) for s in sources])
        cut = np.quantile(lengths, 0.8) if len(lengths) else 0
        long_mask = lengths >= cut
        model_scores = text_scores(hyps, refs, canonical, long_mask)
        copy_scores = text_scores(sources, refs, canonical, long_mask)
        dictionary = word_dictionary(prepared.train)
        dict_hyps = [translate_word_by_word(s, dictionary) for s in sources]
        dict_scores = text_scores(dict_hyps, refs, canonical, long_mask)
        kept, n_keep, n_keep_sentences = names_numbers(prepared.train, sources, refs, {
            "model": hyps, "copy_source": sources, "word_dictionary": dict_hyps})
        # the probe: test pairs whose shared names/numbers are swapped for invented ones (hundreds, not a handful)
        probe_pairs, probe_known = probe(prepared.train + prepared.extra.get("copy_pairs", []), test,
                                         cfg["train"]["seed"])
        probe_src, probe_ref = [s for s, _ in probe_pairs], [t for _, t in probe_pairs]
        probe_hyps = translate_all(translator, probe_src)
        probed = {name: copy_rate(probe_src, probe_ref, outputs, probe_known) for name, outputs in
                  (("model", probe_hyps), ("copy_source", probe_src),
                   ("word_dictionary", [translate_word_by_word(s, dictionary) for s in probe_src]))}
        for scores, name in ((model_scores, "model"), (copy_scores, "copy_source"), (dict_scores, "word_dictionary")):
            scores.update(kept[name], copy_rate_probe=probed[name].rate)
        width = state["beam_width"]
        decoding = "greedy decoding" if width == 1 else f"beam search (width {width})"
        verdict = (f"With {decoding}, the model translates {model_scores['exact_match']:.1%} of the "
                   f"{len(test)} test sources exactly ({model_scores['exact_match_long']:.1%} of the longest fifth), "
                   f"BLEU {model_scores['bleu']:.1f} and chrF {model_scores['chrf']:.1f}, against BLEU "
                   f"{copy_scores['bleu']:.1f} for copying the source and {dict_scores['bleu']:.1f} for a "
                   "word-by-word dictionary.")
        if n_keep:
            verdict += (f" Names and numbers: the output keeps {model_scores['copy_rate']:.1%} of the {n_keep} "
                        f"numbers and unseen capitalised words that the references keep ({n_keep_sentences} "
                        "test sentences).")
        if probed["model"].items:
            verdict += (f" On {len(probe_pairs)} test sentences with their names/numbers swapped for invented ones, "
                        f"it keeps {probed['model'].rate:.1%} of {probed['model'].items} (numbers "
                        f"{_pct(probed['model'].numbers)}, names {_pct(probed['model'].names)}).")
        order = np.argsort(-lengths, kind="stable")
        n_show = cfg["eval"]["examples"]
        picks = list(order[: n_show // 2]) + list(range(0, len(test), max(1, len(test) // max(1, n_show - n_show // 2))))
        seen, rows = set(), []
        for i in picks:
            if i in seen or len(rows) >= n_show:
                continue
            seen.add(i)
            mark = "yes" if hyps[i] == canonical[i] else "no"
            rows.append(f"| {_md(sources[i])} | {_md(refs[i])} | {_md(hyps[i])} | {mark} |")
        tables = []
        if rows:
            tables.append(("Test translations (longest first)",
                           "| source | reference | model | exact |\n|---|---|---|---|\n" + "\n".join(rows)))
        wrong = [i for i in order if hyps[i] != canonical[i]][:n_show]
        if wrong:
            tables.append((f"Test mistakes ({sum(h != c for h, c in zip(hyps, canonical))} in all; longest first)",
                           "| source | reference | model |\n|---|---|---|\n" +
                           "\n".join(f"| {_md(sources[i])} | {_md(refs[i])} | {_md(hyps[i])} |" for i in wrong)))
        tables += example_tables(prepared.train, sources, refs, hyps, n_show, masked_sources(sources, state))
        if probe_pairs and n_show:
            probe_in = masked_sources(probe_src[:n_show], state)
            tables.append(("Names/numbers probe (invented names, random numbers; model input: with placeholders)",
                           "| source | model input | model |\n|---|---|---|\n" + "\n".join(
                               f"| {_md(s)} | {_md(m)} | {_md(h)} |" for s, m, h in zip(probe_src, probe_in, probe_hyps))))
        return Evaluation(
            primary="exact_match", higher_is_better=True, model=model_scores,
            baselines={"copy_source": copy_scores, "word_dictionary": dict_scores}, verdict=verdict, tables=tables,
            details={"test_pairs": len(test), "decoding": decoding, "long_inputs_min_length": float(cut),
                     "tokenization": state["tokenize"], "names_numbers_to_keep": n_keep,
                     "names_numbers_sentences": n_keep_sentences, "probe_sentences": len(probe_pairs),
                     "probe_tokens_to_keep": probed["model"].items},
            artifacts={"translator": translator, "sources": sources, "lengths": lengths, "hyps": hyps})

    def plots(self, model, prepared: Prepared, evaluation: Evaluation, run) -> list:
        from nnkit.tasks.translation.decoding import Seq2SeqDecoder

        n = int(prepared_cfg_heatmaps(run))
        decoder = Seq2SeqDecoder(model)
        if not n or decoder.arch != "rnn" or not decoder.has_attention or not evaluation.artifacts.get("sources"):
            return []
        sources, lengths = evaluation.artifacts["sources"], evaluation.artifacts["lengths"]
        order = np.argsort(-lengths, kind="stable")
        picks = list(dict.fromkeys(list(order[: (n + 1) // 2]) + list(order[len(order) // 2:][: n // 2])))[:n]
        texts = [sources[i] for i in picks]
        src_tokens, out_tokens, weights = evaluation.artifacts["translator"].attention(texts)
        return [attention_heatmaps(texts, src_tokens, out_tokens, weights, run.plot_dir / "attention.png")]

    # -- serving and prediction ---------------------------------------------------------
    def serving(self, model, state: dict, cfg: dict):
        translator = make_translator(model, state)
        examples = state.get("examples") or ["twenty-one"]
        if state["tokenize"] == "subword":  # the fresh-process check also sees names, digits and unseen bytes
            examples = list(examples) + ["Zoë paid 1,250 € for 3 tickets to Kyoto 🙂", "Maria bought 25 apples."]
        return translator, {"translate": {"text": np.array(examples)}}

    def predict(self, ctx, inputs: list, options: dict) -> None:
        run, echo = ctx.run, ctx.echo
        from nnkit.datasets.pairs import clean_text
        from nnkit.runs import write_predictions

        if not inputs:
            raise NnkitError("give sentences to translate as arguments or with --file (one per line)")
        state = run.state()
        texts = [clean_text(t, state.get("normalize", "NFC")) for t in inputs]
        beam = options.get("beam")
        if beam is None or beam == state["beam_width"]:
            outputs = ctx.call_endpoint("translate", text=np.array(texts))
            result = [t.decode("utf-8") for t in outputs["translation"]]
        else:
            model = ctx.load_model()
            result = translate_all(make_translator(model, state, beam_width=beam), texts)  # in a tf.function
        write_predictions([{"source": s, "translation": t} for s, t in zip(inputs, result)], options.get("out"),
                          echo)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _pct(value) -> str:
    return "–" if value is None else f"{value:.1%}"
