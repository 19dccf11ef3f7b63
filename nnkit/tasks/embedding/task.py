"""Item embeddings from user sessions: item2vec (skip-gram; negative sampling or a full softmax).

The notes' shop: millions of sparse product ids become dense vectors in which
products of the same category sit together. Data: a seeded shop generator
with planted categories (bundled), or a sessions CSV (``--data``) with an
optional items CSV (``data.items``) naming each item's category.

Evaluation, on parts held out before training, each split into validation
(for choosing settings) and test (reported): *category recovery* of held-out
items with known categories (never shown to the optional category head; an
item may have several): kNN category accuracy, precision@k and a
logistic-regression probe; and *next-item retrieval* of held-out session
ends (hit rate@k, MRR@k), the primary score when no categories are given.
Baselines on the same parts: random vectors, truncated SVD of the PPMI
co-occurrence matrix, popularity and same-session co-occurrence.

Settings: the recipe's values suit the generated shop; its ``[with_data]``
table sets the user sessions' (the full softmax, every context in the
window, and ``model.window = "auto"``: chosen among ``window_candidates`` on
the validation part, ``nnkit.select``). After training ``model.postprocess``
("auto") keeps the best of none/center/all-but-the-top on validation.

Serving: the SavedModel maps item ids (strings) to vectors (``embed``) and to
the top-k similar item ids with cosine scores (``similar``), lookup table and
brute-force top-k inside the graph; unknown ids answer ``known = False``.
"""

from __future__ import annotations

import time

import numpy as np

from nnkit.builders.embedding import ITEM2VEC_OPTIONS
from nnkit.builders.options import build_from_config
from nnkit.config import Field, declared
from nnkit.errors import DataError, NnkitError, TrainingDiverged
from nnkit.tasks.base import Evaluation, Option, Prepared, Task
from nnkit.tasks.embedding.baselines import category_matrix, category_metrics, normalize, ppmi_factors
from nnkit.tasks.embedding.data import (data_fingerprint, frequent, load_sessions, sessions_fingerprint,
                                        split_known_items)
from nnkit.tasks.embedding.next_item import hold_out_session_ends, next_item_baselines, ranked, vector_scorer
from nnkit.tasks.embedding import postprocess
from nnkit.tasks.embedding.verdicts import category_verdict, neighbour_table, next_item_verdict


class EmbeddingTask(Task):
    name = "embedding"
    schema = {
        "data": {
            "items": Field("", "items CSV (item_id,category[,name]) naming categories of --data's items",
                           path=True),
            "session_column": Field("session_id", "sessions CSV: the session (basket, invoice, user) column"),
            "item_column": Field("item_id", "sessions and items CSV: the item id column"),
            "timestamp_column": Field("timestamp", "sessions CSV: orders events in a session when present "
                                                   "(numbers or dates); '' keeps the file order"),
            "category_column": Field("category", "items CSV (or sessions CSV): the category column"),
            "name_column": Field("name", "items CSV (or sessions CSV): an item's readable name"),
            "category_separator": Field("", "splits a category cell into several categories (e.g. '|' for "
                                            "MovieLens genres); the first listed is the item's main one"),
            "min_count": Field(2, "drop items seen fewer times (counted in the report)", min=1),
            "products": Field(10000, "shop generator: products", min=2),
            "categories": Field(100, "shop generator: categories", min=1),
            "sessions": Field(20000, "shop generator: sessions", min=1),
            "session_length": Field(8.0, "shop generator: mean session length", min=2.0),
            "noise": Field(0.3, "shop generator: share of items drawn outside the session's category",
                           min=0.0, max=1.0),
            "zipf": Field(1.0, "shop generator: Zipf exponent of product popularity", min=0.0),
            "seed": Field(0, "shop generator seed", min=0),
        },
        "model": {
            **declared(ITEM2VEC_OPTIONS),
            "window": Field(3, "context window: items on each side within a session (context = 'session': "
                               "2 x window items drawn from the whole session); 'auto': chosen on validation "
                               "among EmbeddingTask.window_candidates (the recipe's [with_data] for --data)",
                            type=(int, str)),
            "context": Field("window", "'window': an item's neighbours in its session; 'session': items drawn "
                                       "from anywhere in its session (order ignored)",
                             choices=("window", "session")),
            "negatives": Field(5, "negative samples per positive pair", min=1),
            "shared_negatives": Field(0, "> 0: negatives are drawn once per batch and shared by all its pairs, "
                                         "each draw serving about this many pairs, weighed as `negatives` per "
                                         "pair (fewer rows to read and update); 0: word2vec's own draws for "
                                         "every pair", min=0),
            "noise_power": Field(0.75, "negatives from the unigram distribution raised to this power "
                                       "(negative: rare items are drawn more often)", min=-1.0, max=1.0),
            "subsample": Field(1e-3, "word2vec frequent-item subsampling threshold (0 = off)", min=0.0),
            "shrink_window": Field(True, "draw each centre's window in 1..window (word2vec; nearer items "
                                         "weigh more); false: every item within the window"),
            "init": Field("random", "'random': word2vec's start (small random targets, zero contexts); "
                                    "'ppmi_svd': both tables start from the PPMI-SVD factors (target U*sqrt(S), "
                                    "context V*sqrt(S), same window and dim) and skip-gram fine-tunes them "
                                    "(measured with 4 epochs at rate 0.1: docs/products.md)",
                          choices=("random", "ppmi_svd")),
            "postprocess": Field("auto", "after training: 'center' the item vectors, or remove the mean and "
                                         "top principal component ('all_but_the_top'); 'auto': whichever of "
                                         "these and 'none' scores best on validation",
                                 choices=("auto", *postprocess.CHOICES)),
            "name_words": Field(0.0, "> 0: each item's vector adds this weight x the mean vector of its name's "
                                     "words (words shared by 2+ items; data.name_column), so items named alike "
                                     "start alike and rarely bought ones borrow their words' training; 'auto': "
                                     "chosen among EmbeddingTask.name_word_candidates on validation where items "
                                     "have names", type=(float, int, str)),
            "category_weight": Field(0.0, "> 0: the embedding also predicts the item's category "
                                          "(loss weight), where categories are known", min=0.0),
        },
        "eval": {
            "k": Field(10, "neighbours for kNN accuracy and precision@k", min=1),
            "test_fraction": Field(0.3, "share of items with a known category held out for evaluation "
                                        "(never shown to the category head)", min=0.05, max=0.9),
            "validation_fraction": Field(0.15, "share of items with a known category held out for choosing "
                                               "settings (never the test items)", min=0.0, max=0.5),
            "min_count": Field(5, "only held-out items seen at least this often are scored", min=1),
            "heldout_sessions": Field(0.2, "share of sessions whose last items are held out before training "
                                           "(half validation, half test): next-item retrieval", min=0.0, max=0.9),
            "heldout_items": Field("auto", "items held out at the end of each such session (an integer, or 'all': "
                                           "all but the first); 'auto': 1, or as many as give about "
                                           "eval.min_test_ends test cases on a small data set", type=(int, str)),
            "min_test_ends": Field(200, "eval.heldout_items = 'auto': hold out more than the last item of each "
                                        "such session when one would give fewer test cases than this", min=1),
            "select_budget": Field(0.5, "model.window = 'auto': each candidate window trains for this share "
                                        "of train.epochs and is scored on validation (0: the first candidate)",
                                   min=0.0, max=1.0),
            "sample": Field(5000, "at most this many held-out items are evaluated", min=10),
            "probe_folds": Field(3, "linear-probe cross-validation folds (0 = no probe)", min=0),
            "projector_items": Field(10000, "most frequent items written to embeddings.tsv", min=1),
            "map_items": Field(3000, "items in the 2-D PCA map", min=10),
        },
    }
    # plain SGD keeps the embedding updates sparse (Adam's moments touch every row each
    # step); the loss is summed over pairs, so the rate is per pair, as in word2vec
    train_defaults = {"optimizer": "sgd", "momentum": 0.0, "learning_rate": 0.5, "schedule": "cosine",
                      "epochs": 12, "batch_size": 1024, "early_stopping": False, "patience": 2,
                      "steps_per_execution": 8}
    predict_options = (Option("similar", str, "Item id to find neighbours of (embeddings)."),
                       Option("k", int, "How many neighbours.", min=1, flag="-k"))
    # model.window = "auto" (recipes/products.toml [with_data]: users' sessions) tries these on
    # validation, the first one first. bench/products_real.py (MovieLens, Online Retail): 5 neighbours
    # each side beat 3 and 10 on MovieLens's validation films; the window that wins depends on the data
    window_candidates = (5, 3, 10)
    # model.name_words = "auto" (users' sessions with item names) tries these on validation: off, and the
    # weight that did best on the Online Retail sample's validation ends (docs/products.md)
    name_word_candidates = (0.0, 3.0)
    # model.objective = "softmax" scores every item at every step: batch x items x dim per step
    softmax_max_items = 20_000

    # -- data and model ---------------------------------------------------------------------
    def load(self, cfg: dict) -> Prepared:
        full, source = load_sessions(cfg["data"], {key: f.default for key, f in self.schema["data"].items()})
        e, seed = cfg["eval"], cfg["train"]["seed"]
        self.check_settings(cfg)
        self.check_catalogue(cfg, full.vocab_size)
        # the last items of some sessions are held out before training (next-item retrieval)
        share = e["heldout_sessions"] / 2
        tail, min_cases = self.heldout_tail(e)
        data, val_ends, test_ends, ends_summary = hold_out_session_ends(full, share, share, seed, tail=tail,
                                                                        min_test_cases=min_cases)
        val_rows, test_rows = split_known_items(data.categories, e["validation_fraction"], e["test_fraction"], seed)
        if not (test_rows.size and (data.categories >= 0).sum() > e["k"]) and not test_ends.scorable().size:
            raise DataError(self.nothing_to_evaluate(e))
        item_words = self.check_names(cfg, data)
        train_categories = data.categories.copy()
        train_categories[np.concatenate([val_rows, test_rows])] = -1  # never shown to the category head
        labels = None
        if data.extra_categories is not None:
            labels = category_matrix(data.categories, len(data.category_names), data.extra_categories)
        state = {
            "item_ids": data.item_ids.tolist(),
            "categories": data.categories.tolist(),
            "category_names": list(data.category_names),
            "names": None if data.names is None else data.names.tolist(),
            "dim": cfg["model"]["dim"],
        }
        summary = {"source": source, **full.summary, "held-out items (validation, test)":
                   f"{val_rows.size}, {test_rows.size}", **ends_summary,
                   "items in the training sessions (what the model embeds)": data.vocab_size}
        without_test = data.categories.copy()
        without_test[test_rows] = -1  # validation neighbours vote without the test items' categories
        return Prepared(train=data, val=val_rows, test=test_rows, state=state, summary=summary,
                        fingerprint=data_fingerprint(full), earlier_fingerprints=(sessions_fingerprint(full),),
                        extra={"train_categories": train_categories, "labels": labels,
                               "val_ends": val_ends.scorable(), "test_ends": test_ends.scorable(),
                               "categories_without_test": without_test, "item_words": item_words})

    @staticmethod
    def heldout_tail(e: dict) -> tuple[int | None, int]:
        """``eval.heldout_items`` as ``(tail, min_test_cases)`` for :func:`hold_out_session_ends`."""
        items = e["heldout_items"]
        if items == "auto":  # one end per session, more where that gives too few cases to rank anything
            return 1, e["min_test_ends"]
        return (None, 0) if items == "all" else (items, 0)

    @staticmethod
    def nothing_to_evaluate(e: dict) -> str:
        items = e["heldout_items"]
        shortest = items + 2 if isinstance(items, int) else 3
        return ("no item categories and no held-out session end seen elsewhere in the sessions (ends are held "
                f"out from sessions of {shortest} items or more, share eval.heldout_sessions): "
                "nothing to evaluate on; give data.items with categories, or more and longer sessions")

    # -- settings: a window 'auto' is chosen on validation --------------------------------------
    def check_settings(self, cfg: dict) -> None:
        for key, words, least in (("model.window", ("auto",), 1), ("eval.heldout_items", ("auto", "all"), 1),
                                  ("model.name_words", ("auto",), 0)):
            section, name = key.split(".")
            value = cfg[section][name]
            if isinstance(value, str) and value not in words or not isinstance(value, str) and value < least:
                kind = "an integer >= 1" if least else "a number >= 0"
                raise NnkitError(f"config key '{key}': received {value!r}; expected {kind} or "
                                 + " or ".join(repr(w) for w in words))

    @staticmethod
    def check_names(cfg: dict, data):
        """The items' name-word rows (None without names or shared words); a weight > 0 needs them."""
        from nnkit.tasks.embedding.name_words import word_rows_for

        return word_rows_for(data.names, cfg["model"]["name_words"])

    def check_catalogue(self, cfg: dict, items: int) -> None:
        """The full softmax only where it fits: at the door, before any run folder is made."""
        if cfg["model"]["objective"] == "softmax" and items > self.softmax_max_items:
            raise NnkitError(
                f"config key 'model.objective': 'softmax' scores all {items:,} items at every step; expected "
                f"at most {self.softmax_max_items:,}. For this catalogue use negative sampling, as the bundled "
                "shop does: --set model.objective=negative_sampling --set train.optimizer=sgd "
                "--set train.learning_rate=0.5 --set train.epochs=12 --set train.schedule=cosine")

    def settings(self, cfg: dict, prepared: Prepared) -> dict:
        """The model section, a window or name weight still 'auto' (no choice made): the first candidate."""
        m = cfg["model"]
        return {**m, "window": self.window_candidates[0] if m["window"] == "auto" else m["window"],
                "name_words": self.name_word_candidates[0] if m["name_words"] == "auto" else m["name_words"]}

    def candidate_settings(self, cfg: dict, prepared: Prepared) -> list[dict]:
        """The settings left 'auto' to try on validation, every combination (none when the budget is 0).

        ``model.window``: :attr:`window_candidates`; ``model.name_words``:
        :attr:`name_word_candidates`, where the items have name words.
        """
        m = cfg["model"]
        windows = self.window_candidates if m["window"] == "auto" else (None,)
        named = m["name_words"] == "auto" and prepared.extra.get("item_words") is not None
        weights = self.name_word_candidates if named else (None,)
        candidates = [{**({"model.window": w} if w is not None else {}),
                       **({"model.name_words": x} if x is not None else {})} for w in windows for x in weights]
        if cfg["eval"]["select_budget"] <= 0 or len(candidates) < 2 or not self._has_validation(prepared, cfg):
            return []  # nothing to choose on: the first candidates (settings()), as the report says
        return candidates

    def selection_budget(self, cfg: dict) -> dict:
        share, t = cfg["eval"]["select_budget"], cfg["train"]
        return {"epochs": max(1, round(t["epochs"] * share)), "min_steps": round(t["min_steps"] * share)}

    def validation_metric(self, cfg: dict, prepared: Prepared) -> str:
        if self._scores_categories(prepared, prepared.val, cfg):
            return "knn_accuracy (validation items)"
        return f"hit_rate_at_{cfg['eval']['k']} (validation session ends)"

    def validation_score(self, model, prepared: Prepared, cfg: dict) -> float:
        """Scored on the validation part only (items or session ends); the test part is not read."""
        return self._validation_score_of(self.trained_vectors(model), prepared, cfg)

    def _has_validation(self, prepared: Prepared, cfg: dict) -> bool:
        return self._scores_categories(prepared, prepared.val, cfg) or prepared.extra["val_ends"].size > 0

    def _validation_score_of(self, vectors: np.ndarray, prepared: Prepared, cfg: dict) -> float:
        k = cfg["eval"]["k"]
        if self._scores_categories(prepared, prepared.val, cfg):
            queries = self._queries(prepared, prepared.val, cfg)
            return category_metrics(vectors, prepared.extra["categories_without_test"], queries, k=k,
                                    probe_folds=0, labels=prepared.extra["labels"])["knn_accuracy"]
        ends = prepared.extra["val_ends"]
        return ranked(vector_scorer(vectors), ends, prepared.train.vocab_size, k)[f"hit_rate_at_{k}"]

    def _queries(self, prepared: Prepared, rows: np.ndarray, cfg: dict) -> np.ndarray:
        e, seed = cfg["eval"], cfg["train"]["seed"]
        rows = frequent(rows, prepared.train.counts, e["min_count"])
        if rows.size > e["sample"]:
            rows = np.sort(np.random.default_rng([seed, 5]).choice(rows, e["sample"], replace=False))
        return rows

    def _scores_categories(self, prepared: Prepared, rows: np.ndarray, cfg: dict) -> bool:
        return rows.size > 0 and (prepared.train.categories >= 0).sum() > cfg["eval"]["k"]

    def validation_view(self, prepared: Prepared) -> Prepared:
        """The validation items and session ends where the test ones were (``nnkit tune``).

        Neighbours vote without the test items' categories, and the test
        session ends are replaced by the validation ones, so ``evaluate`` on
        this view reads nothing of the test part.
        """
        import dataclasses

        data = dataclasses.replace(prepared.train, categories=prepared.extra["categories_without_test"])
        return dataclasses.replace(prepared, train=data, test=prepared.val,
                                   extra={**prepared.extra, "test_ends": prepared.extra["val_ends"]})

    def _category_head(self, cfg, prepared) -> int:
        if cfg["model"]["category_weight"] > 0 and (prepared.extra["train_categories"] >= 0).any():
            return len(prepared.train.category_names)
        return 0

    def build_model(self, cfg: dict, prepared: Prepared):
        from nnkit.builders.embedding import build_item2vec

        # the sampler's settings (model.negatives, shared_negatives, noise_power) are passed by the task;
        # the model draws negatives itself only when they are shared (else the pipeline does)
        m = self.settings(cfg, prepared)
        shared = self._shared_negatives(m)
        noise = np.asarray(prepared.train.counts, np.float64) ** m["noise_power"] if shared else None
        words = self._name_weight(cfg, prepared)
        model = build_from_config(build_item2vec, ITEM2VEC_OPTIONS, m, prepared.train.vocab_size,
                                  num_negatives=m["negatives"], shared_negatives=shared, noise=noise,
                                  num_categories=self._category_head(cfg, prepared),
                                  item_words=prepared.extra["item_words"] if words else None, word_weight=words)
        if m["init"] == "ppmi_svd":
            # on small real data (MovieLens) skip-gram from a random start leaves rare items' vectors
            # noisy, and they crowd the neighbour lists; the SVD's start gives them its shared
            # directions, and the fine-tuning refines what the data supports (bench/products_real.py
            # --init ppmi_svd: +2.3 points over the random start there, level with PPMI-SVD itself)
            target, context = self._ppmi_factors(cfg, prepared)
            self._target_layer(model).embeddings.assign(target)
            self._context_layer(model).embeddings.assign(context)
        return model

    def _name_weight(self, cfg: dict, prepared: Prepared) -> float:
        """``model.name_words`` as trained: 0 where no choice was made or the items have no shared words."""
        weight = self.settings(cfg, prepared)["name_words"]
        return float(weight) if prepared.extra.get("item_words") is not None else 0.0

    @staticmethod
    def _shared_negatives(m: dict) -> int:
        # the softmax draws no negatives: the sampler's keys apply to negative sampling only
        return 0 if m["objective"] == "softmax" else m["shared_negatives"]

    def _ppmi_factors(self, cfg: dict, prepared: Prepared) -> tuple[np.ndarray, np.ndarray]:
        """PPMI-SVD's two factors for the run's window, context and dim (computed once per setting)."""
        m, data, seed = self.settings(cfg, prepared), prepared.train, cfg["train"]["seed"]
        key = (m["window"], m["context"], m["dim"], seed)
        cache = prepared.extra.setdefault("ppmi_factors", {})
        if key not in cache:
            cache[key] = ppmi_factors(data.tokens, data.offsets, data.vocab_size, m["dim"], m["window"],
                                      seed=seed, context=m["context"])
        return cache[key]

    def compile_kwargs(self, cfg: dict, prepared: Prepared) -> dict:
        import keras

        from nnkit.layers.embedding import SharedNegativesLoss, SoftmaxContextsLoss

        if cfg["model"]["objective"] == "softmax":  # a mean over centres: trained with Adam (docs/products.md)
            loss = {"skipgram": SoftmaxContextsLoss()}
        elif self._shared_negatives(cfg["model"]):
            loss = {"skipgram": SharedNegativesLoss(cfg["model"]["negatives"], reduction="sum")}
        else:
            loss = {"skipgram": keras.losses.BinaryCrossentropy(from_logits=True, reduction="sum")}
        weights = {"skipgram": 1.0}
        if self._category_head(cfg, prepared):
            # a mean over the batch: the head's dense kernel sees every pair of the batch, so a
            # summed loss would take steps thousands of times larger than the embedding rows do
            loss["category"] = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
            weights["category"] = cfg["model"]["category_weight"]
        return {"loss": loss, "loss_weights": weights}

    def datasets(self, cfg: dict, prepared: Prepared, batch_size: int):
        from nnkit.datasets.sessions import skipgram_dataset

        m = self.settings(cfg, prepared)
        cats = prepared.extra["train_categories"] if self._category_head(cfg, prepared) else None
        # shared negatives are drawn in the model (the softmax's grouped batches have none to draw)
        negatives = 0 if self._shared_negatives(m) else m["negatives"]
        train = skipgram_dataset(prepared.train, window=m["window"], negatives=negatives,
                                 centers_per_batch=batch_size, power=m["noise_power"], sample=m["subsample"],
                                 shrink=m["shrink_window"], seed=cfg["train"]["seed"], category_labels=cats,
                                 context=m["context"], grouped=m["objective"] == "softmax")
        return train, None

    def _postprocessed(self, vectors: np.ndarray, prepared: Prepared, cfg: dict):
        """``(vectors, how, validation scores or None)`` under ``model.postprocess``."""
        how, scores = cfg["model"]["postprocess"], None
        if how == "auto":
            if not self._has_validation(prepared, cfg):
                return vectors, "none", None
            how, scores = postprocess.choose(vectors, lambda v: self._validation_score_of(v, prepared, cfg))
        return postprocess.apply(vectors, how), how, scores

    def finish_model(self, model, prepared: Prepared, cfg: dict) -> dict:
        """``model.postprocess`` applied to the item vectors ('auto': the best on validation)."""
        vectors = self.vectors(model)  # one copy of the table (a million rows is 256 MB)
        check_not_diverged(vectors, cfg)  # the raw table: the softmax's sum of unit vectors hides a blow-up
        softmax, words = cfg["model"]["objective"] == "softmax", self._name_weight(cfg, prepared)
        if softmax or words:  # from here on the model's target table holds the item vectors (names baked in)
            vectors = self.trained_vectors(model)
            self._set_item_vectors(model, vectors)
        if cfg["model"]["postprocess"] == "auto" and not self._has_validation(prepared, cfg):
            return {}
        vectors, how, scores = self._postprocessed(vectors, prepared, cfg)
        if how != "none":
            self._set_item_vectors(model, vectors)
        text = (f"Item vectors post-processed with `{how}` after training "
                f"({'chosen on ' + self.validation_metric(cfg, prepared) if scores else 'model.postprocess'}; "
                "the test part was not used). `center` subtracts the mean vector; `all_but_the_top` also "
                "removes the top principal component (Mu & Viswanath 2018). The PPMI-SVD baseline's vectors "
                "get the same treatment, chosen on the same validation part.")
        if softmax and not words:
            text += (" With `model.objective = \"softmax\"` the item vectors are the sum of each item's "
                     "normalised target and context vectors, both trained at every step (Levy et al. 2015).")
        if words:
            text += (f" With `model.name_words = {words:g}` each item's vector is its id vector plus {words:g} x "
                     "the mean vector of its name's words (words two or more items share), baked into one "
                     "table for serving.")
        return {"title": "Post-processing of the item vectors", "text": text, "setting": "model.postprocess",
                "chosen": how, "scores": scores}

    def custom_objects(self) -> dict:
        from nnkit.layers import embedding

        return {name: getattr(embedding, name) for name in
                ("SparseEmbedding", "NamedItemEmbedding", "ContextScores", "SharedNegativeContexts", "SharedNegativesLoss",
                 "SoftmaxContexts", "SoftmaxContextsLoss")}

    # -- evaluation ---------------------------------------------------------------------------
    @staticmethod
    def _target_layer(model):
        return next(layer for layer in model.layers if layer.name.endswith("_target"))

    @staticmethod
    def _context_layer(model):
        return next(layer for layer in model.layers if layer.name.endswith("_context"))

    @classmethod
    def vectors(cls, model) -> np.ndarray:
        """The item vectors of a finished model (what evaluation and serving read)."""
        from nnkit.layers.embedding import NamedItemEmbedding

        table = cls._target_layer(model)
        if isinstance(table, NamedItemEmbedding):  # id rows plus name words (baked in by finish_model)
            return table.item_vectors()
        return np.asarray(table.get_weights()[0])

    @classmethod
    def _set_item_vectors(cls, model, vectors: np.ndarray) -> None:
        from nnkit.layers.embedding import NamedItemEmbedding

        table = cls._target_layer(model)
        if isinstance(table, NamedItemEmbedding):
            table.bake(vectors)
        else:
            table.set_weights([vectors])

    @classmethod
    def trained_vectors(cls, model) -> np.ndarray:
        """The item vectors straight after training, before ``finish_model``.

        Negative sampling, or any objective with name words: the target table
        (with name words, id rows plus words). Full softmax: each item's
        normalised target vector plus its normalised context vector. The
        softmax trains every context row at every step, so both tables carry
        the item (Levy et al. 2015's w + c); on MovieLens's validation films
        the sum beat the target table on 2 of 3 seeds, and on the test films
        on all 3 (bench/products_real.py, docs/products.md).
        """
        from nnkit.layers.embedding import NamedItemEmbedding, SoftmaxContexts

        target, context = cls.vectors(model), cls._context_layer(model)
        if not isinstance(context, SoftmaxContexts) or isinstance(cls._target_layer(model), NamedItemEmbedding):
            # with name words the target vectors carry the names and the context ones do not: the sum
            # dilutes them (Online Retail validation ends: 0.467 target alone, 0.369 summed)
            return target
        return normalize(target) + normalize(np.asarray(context.embeddings))

    def evaluate(self, model, prepared: Prepared, cfg: dict) -> Evaluation:
        """Test part only: held-out items' categories (when known) and held-out session ends."""
        data, e, seed, k = prepared.train, cfg["eval"], cfg["train"]["seed"], cfg["eval"]["k"]
        m = self.settings(cfg, prepared)
        vectors = self.vectors(model)
        timings = {}
        t0 = time.perf_counter()
        svd_vectors = self._ppmi_factors(cfg, prepared)[0]  # the same as model.init = "ppmi_svd" started from
        svd_vectors, svd_post, _ = self._postprocessed(svd_vectors, prepared, cfg)  # as the model's vectors were
        timings["ppmi_svd_fit"] = time.perf_counter() - t0
        random_vectors = np.random.default_rng([seed, 3]).normal(size=vectors.shape).astype(np.float32)
        model_metrics, baselines = {}, {}
        ends = prepared.extra["test_ends"]
        if ends.size:
            model_metrics.update(ranked(vector_scorer(vectors), ends, data.vocab_size, k))
            baselines = next_item_baselines(data, ends, k, seed, ppmi_vectors=svd_vectors)
        details = {"items": data.vocab_size, "held-out session ends scored": ends.size,
                   "ppmi_svd post-processing": svd_post,
                   "settings": {key: m[key] for key in ("objective", "init", "context", "window", "shrink_window",
                                                        "noise_power", "subsample", "name_words")}}
        queries = self._queries(prepared, prepared.test, cfg)
        if self._scores_categories(prepared, queries, cfg):
            kwargs = dict(k=k, probe_folds=e["probe_folds"], seed=seed, labels=prepared.extra["labels"])
            t0 = time.perf_counter()
            model_metrics = {**category_metrics(vectors, data.categories, queries, **kwargs), **model_metrics}
            timings["model"] = time.perf_counter() - t0
            for name, v in (("random", random_vectors), ("ppmi_svd", svd_vectors)):
                baselines[name] = {**category_metrics(v, data.categories, queries, **kwargs),
                                   **baselines.get(name, {})}
            primary, verdict = "knn_accuracy", category_verdict(model_metrics, baselines, k)
            details["queries"] = int(queries.size)
        elif ends.size:
            primary = f"hit_rate_at_{k}"
            verdict = next_item_verdict(model_metrics, baselines, k, ends.size,
                                        with_category=int((data.categories >= 0).sum()), items=data.vocab_size)
        else:
            raise DataError(self.nothing_to_evaluate(e))
        details["seconds"] = {k_: round(v, 2) for k_, v in timings.items()}
        tables = [("Nearest neighbours of the most frequent items", neighbour_table(vectors, data, k))]
        return Evaluation(primary=primary, higher_is_better=True, model=model_metrics, baselines=baselines,
                          details=details, verdict=verdict, tables=tables,
                          artifacts={"vectors": vectors, "queries": queries})

    def plots(self, model, prepared: Prepared, evaluation: Evaluation, run) -> list:
        from nnkit.tasks.embedding.plots import write_plots

        vectors = evaluation.artifacts.get("vectors")
        return write_plots(self.vectors(model) if vectors is None else vectors, prepared.train, cfg_eval(run), run)

    # -- serving and prediction ----------------------------------------------------------------
    def serving(self, model, state: dict, cfg: dict):
        from nnkit.tasks.embedding.serving import ItemEmbeddings

        module = ItemEmbeddings(self.vectors(model), state)
        ids = state["item_ids"]
        examples_ids = np.array(ids[:3] + ["__not_an_item__"])
        examples = {
            "similar": {"item_ids": examples_ids, "k": np.array(min(cfg["eval"]["k"], 5), np.int32)},
            "embed": {"item_ids": examples_ids},
        }
        return module, examples

    def predict(self, ctx, inputs: list[str], options: dict) -> None:
        run, echo = ctx.run, ctx.echo
        from nnkit.runs import write_predictions

        queries = ([options["similar"]] if options.get("similar") else []) + list(inputs)
        if not queries:
            raise NnkitError("predict: give an item id, e.g. nnkit predict RUN --similar ITEM_ID -k 10")
        k = options.get("k") or cfg_eval(run)["k"]
        out = ctx.call_endpoint("similar", item_ids=np.array(queries), k=np.array(k, np.int32))
        rows = []
        for q, query in enumerate(queries):
            if not out["known"][q]:
                rows.append({"query": query, "rank": "", "item_id": "", "score": "", "name": "",
                             "category": "", "note": "unknown item id (not in this run's vocabulary)"})
                continue
            for rank in range(out["item_ids"].shape[1]):
                rows.append({"query": query, "rank": rank + 1, "item_id": _text(out["item_ids"][q, rank]),
                             "score": round(float(out["scores"][q, rank]), 4),
                             "name": _text(out["names"][q, rank]), "category": _text(out["categories"][q, rank]),
                             "note": ""})
        write_predictions(rows, options.get("out"), echo)


DIVERGED_NORM = 100.0  # skip-gram's item vectors have norms of about 1-10; diverged runs reached 1e5


def check_not_diverged(vectors: np.ndarray, cfg: dict) -> None:
    """An error naming the settings to change when training blew the item vectors up.

    Summed sparse updates can overshoot where an item fills much of a batch
    (few items, big batches): the loss stays finite while the vectors grow to
    norms of 1e5 and their neighbours are noise, so the loss check alone
    would let such a model through.
    """
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
    median = float(np.median(norms)) if norms.size else 0.0
    if np.all(np.isfinite(norms)) and median <= DIVERGED_NORM:
        return
    rate = cfg["train"]["learning_rate"]
    tries = [f"a lower train.learning_rate (now {rate:g}; try {rate / 2:g})", "a smaller train.batch_size"]
    if EmbeddingTask._shared_negatives(cfg["model"]):
        tries.append("model.shared_negatives = 0")
    raise TrainingDiverged(f"training diverged: the item vectors' median norm is {median:.3g} (skip-gram's stay "
                     f"below about 10, so their neighbours are noise); try " + ", ".join(tries))


def cfg_eval(run) -> dict:
    """The run's eval section with the schema's defaults filled in."""
    defaults = {k: f.default for k, f in EmbeddingTask.schema["eval"].items()}
    return {**defaults, **run.config().get("eval", {})}


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
