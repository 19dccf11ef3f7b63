"""Item embeddings from user sessions: item2vec (skip-gram with negative sampling).

The notes' shop: millions of sparse product ids become dense vectors in which
products of the same category sit together. Data: a seeded shop generator
with planted categories (bundled), or a sessions CSV (``--data``) with an
optional items CSV (``data.items``) naming each item's category.

Evaluation is *category recovery* on held-out items with known categories
(their categories are never shown to the optional category head): kNN
category accuracy (majority of the ``eval.k`` nearest by cosine), precision@k
and a cross-validated logistic-regression probe, beside two baselines on the
same items: random vectors, and truncated SVD of the PPMI co-occurrence matrix
of the same sessions and window.

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
from nnkit.errors import NnkitError
from nnkit.runs import fingerprint
from nnkit.tasks.base import Evaluation, Option, Prepared, Task
from nnkit.tasks.embedding.baselines import (category_metrics, cooccur_at_k, cooccurrence, nearest, normalize,
                                             ppmi_svd)
from nnkit.tasks.embedding.data import load_sessions, split_items


class EmbeddingTask(Task):
    name = "embedding"
    schema = {
        "data": {
            "items": Field("", "items CSV (item_id,category[,name]) naming categories of --data's items"),
            "session_column": Field("session_id", "sessions CSV: the session (basket, invoice, user) column"),
            "item_column": Field("item_id", "sessions and items CSV: the item id column"),
            "timestamp_column": Field("timestamp", "sessions CSV: orders events in a session when present "
                                                   "(numbers or dates); '' keeps the file order"),
            "category_column": Field("category", "items CSV (or sessions CSV): the category column"),
            "name_column": Field("name", "items CSV (or sessions CSV): an item's readable name"),
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
            "window": Field(3, "context window: items on each side within a session", min=1),
            "negatives": Field(5, "negative samples per positive pair", min=1),
            "noise_power": Field(0.75, "negatives from the unigram distribution raised to this power",
                                 min=0.0, max=1.0),
            "subsample": Field(1e-3, "word2vec frequent-item subsampling threshold (0 = off)", min=0.0),
            "shrink_window": Field(True, "draw each centre's window in 1..window (word2vec)"),
            "category_weight": Field(0.0, "> 0: the embedding also predicts the item's category "
                                          "(loss weight), where categories are known", min=0.0),
        },
        "eval": {
            "k": Field(10, "neighbours for kNN accuracy and precision@k", min=1),
            "test_fraction": Field(0.3, "share of items with a known category held out for evaluation "
                                        "(never shown to the category head)", min=0.05, max=1.0),
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

    # -- data and model ---------------------------------------------------------------------
    def load(self, cfg: dict) -> Prepared:
        data, source = load_sessions(cfg["data"])
        seed = cfg["train"]["seed"]
        test_rows = split_items(data.categories, cfg["eval"]["test_fraction"], seed)
        train_categories = data.categories.copy()
        train_categories[test_rows] = -1
        state = {
            "item_ids": data.item_ids.tolist(),
            "categories": data.categories.tolist(),
            "category_names": list(data.category_names),
            "names": None if data.names is None else data.names.tolist(),
            "dim": cfg["model"]["dim"],
        }
        summary = {"source": source, **data.summary, "held-out items (evaluation)": int(test_rows.size)}
        return Prepared(train=data, val=None, test=test_rows, state=state, summary=summary,
                        fingerprint=fingerprint(data.tokens, data.offsets, data.item_ids.astype("U")),
                        extra={"train_categories": train_categories})

    def _category_head(self, cfg, prepared) -> int:
        if cfg["model"]["category_weight"] > 0 and (prepared.extra["train_categories"] >= 0).any():
            return len(prepared.train.category_names)
        return 0

    def build_model(self, cfg: dict, prepared: Prepared):
        from nnkit.builders.embedding import build_item2vec

        # num_negatives is the sampler's setting too (model.negatives): passed by the task
        return build_from_config(build_item2vec, ITEM2VEC_OPTIONS, cfg["model"], prepared.train.vocab_size,
                                 num_negatives=cfg["model"]["negatives"],
                                 num_categories=self._category_head(cfg, prepared))

    def compile_kwargs(self, cfg: dict, prepared: Prepared) -> dict:
        import keras

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

        m = cfg["model"]
        cats = prepared.extra["train_categories"] if self._category_head(cfg, prepared) else None
        train = skipgram_dataset(prepared.train, window=m["window"], negatives=m["negatives"],
                                 centers_per_batch=batch_size, power=m["noise_power"], sample=m["subsample"],
                                 shrink=m["shrink_window"], seed=cfg["train"]["seed"], category_labels=cats)
        return train, None

    def custom_objects(self) -> dict:
        from nnkit.layers.embedding import SparseEmbedding

        return {"SparseEmbedding": SparseEmbedding}

    # -- evaluation ---------------------------------------------------------------------------
    @staticmethod
    def vectors(model) -> np.ndarray:
        layer = next(layer for layer in model.layers if layer.name.endswith("_target"))
        return np.asarray(layer.get_weights()[0])

    def evaluate(self, model, prepared: Prepared, cfg: dict) -> Evaluation:
        data, e = prepared.train, cfg["eval"]
        seed = cfg["train"]["seed"]
        vectors = self.vectors(model)
        queries = prepared.test
        if queries.size > e["sample"]:
            queries = np.sort(np.random.default_rng([seed, 5]).choice(queries, e["sample"], replace=False))
        k = e["k"]
        details = {"items": data.vocab_size, "queries": int(queries.size)}
        if queries.size == 0 or (data.categories >= 0).sum() <= k:
            return self._evaluate_without_categories(vectors, data, cfg)
        kwargs = dict(k=k, probe_folds=e["probe_folds"], seed=seed)
        timings = {}
        t0 = time.perf_counter()
        model_metrics = category_metrics(vectors, data.categories, queries, **kwargs)
        timings["model"] = time.perf_counter() - t0
        rng = np.random.default_rng([seed, 3])
        random_vectors = rng.normal(size=vectors.shape).astype(np.float32)
        t0 = time.perf_counter()
        svd_vectors = ppmi_svd(data.tokens, data.offsets, data.vocab_size, cfg["model"]["dim"],
                               cfg["model"]["window"], seed=seed)
        timings["ppmi_svd_fit"] = time.perf_counter() - t0
        baselines = {
            "random": category_metrics(random_vectors, data.categories, queries, **kwargs),
            "ppmi_svd": category_metrics(svd_vectors, data.categories, queries, **kwargs),
        }
        details["seconds"] = {k_: round(v, 2) for k_, v in timings.items()}
        tables = [("Nearest neighbours of the most frequent items", self._neighbour_table(vectors, data, k))]
        return Evaluation(primary="knn_accuracy", higher_is_better=True, model=model_metrics,
                          baselines=baselines, details=details, verdict=_verdict(model_metrics, baselines, k),
                          tables=tables, artifacts={"vectors": vectors, "queries": queries})

    def _evaluate_without_categories(self, vectors, data, cfg) -> Evaluation:
        """No categories: how many of an item's k nearest it was ever seen with (same window)."""
        e, seed, dim, window = cfg["eval"], cfg["train"]["seed"], cfg["model"]["dim"], cfg["model"]["window"]
        k = min(e["k"], data.vocab_size - 1)
        queries = np.arange(data.vocab_size)
        if queries.size > e["sample"]:
            queries = np.sort(np.random.default_rng([seed, 5]).choice(queries, e["sample"], replace=False))
        random_vectors = np.random.default_rng([seed, 3]).normal(size=vectors.shape).astype(np.float32)
        svd_vectors = ppmi_svd(data.tokens, data.offsets, data.vocab_size, dim, window, seed=seed)
        seen = cooccurrence(data.tokens, data.offsets, data.vocab_size, window)
        key = f"cooccur_at_{k}"
        score = lambda v: {key: cooccur_at_k(v, seen, queries, k)}  # noqa: E731
        model_metrics = score(vectors)
        baselines = {"random": score(random_vectors), "ppmi_svd": score(svd_vectors)}
        verdict = (f"No item categories were given (data.items or data.category_column), so category recovery "
                   f"is not measured; instead, {model_metrics[key]:.3f} of each item's {k} nearest neighbours "
                   f"were seen with it within {window} positions in a session (PPMI-SVD "
                   f"{baselines['ppmi_svd'][key]:.3f}, random {baselines['random'][key]:.3f}).")
        return Evaluation(primary=key, higher_is_better=True, model=model_metrics, baselines=baselines,
                          details={"items": data.vocab_size, "queries": int(queries.size)}, verdict=verdict,
                          split="training sessions",
                          tables=[("Nearest neighbours of the most frequent items",
                                   self._neighbour_table(vectors, data, k))],
                          artifacts={"vectors": vectors})

    @staticmethod
    def _neighbour_table(vectors, data, k: int, n: int = 5) -> str:
        queries = np.arange(min(n, data.vocab_size))
        rows, scores = nearest(normalize(vectors), queries, min(k, 5))
        def label(r):
            text = str(data.item_ids[r])
            if data.names is not None and data.names[r]:
                text += f" {data.names[r][:30]}"
            if data.categories[r] >= 0:
                text += f" [{data.category_names[data.categories[r]]}]"
            return text.replace("|", "/")
        lines = ["| item | nearest (cosine) |", "|---|---|"]
        for q, (nr, ns) in zip(queries, zip(rows, scores)):
            lines.append(f"| {label(q)} | " + "; ".join(f"{label(r)} {s:.2f}" for r, s in zip(nr, ns)) + " |")
        return "\n".join(lines)

    def plots(self, model, prepared: Prepared, evaluation: Evaluation, run) -> list:
        from sklearn.decomposition import PCA

        from nnkit.report import pyplot, save_figure
        from nnkit.runs import atomic_path

        plt = pyplot()
        data, e = prepared.train, cfg_eval(run)
        vectors = evaluation.artifacts.get("vectors")
        if vectors is None:
            vectors = self.vectors(model)
        paths = []
        # TensorBoard Projector files: the most frequent items (rows are in count order)
        top = min(e["projector_items"], data.vocab_size)
        with atomic_path(run.path / "embeddings.tsv") as tmp:
            np.savetxt(tmp, vectors[:top], delimiter="\t", fmt="%.6g")
        with atomic_path(run.path / "metadata.tsv") as tmp:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write("item_id\tcategory\tname\tcount\n")
                for r in range(top):
                    cat = data.category_names[data.categories[r]] if data.categories[r] >= 0 else ""
                    name = data.names[r] if data.names is not None else ""
                    handle.write("\t".join(_tsv(v) for v in (data.item_ids[r], cat, name, data.counts[r])) + "\n")
        paths += [run.path / "embeddings.tsv", run.path / "metadata.tsv"]
        # a 2-D PCA map of a sample of items, coloured by their ten most common categories
        rng = np.random.default_rng(0)
        known = np.flatnonzero(data.categories >= 0)
        pool = known if known.size else np.arange(data.vocab_size)
        sample = np.sort(rng.choice(pool, min(e["map_items"], pool.size), replace=False))
        if sample.size >= 3:
            xy = PCA(n_components=2, random_state=0).fit_transform(normalize(vectors[sample]))
            fig, ax = plt.subplots(figsize=(7, 6))
            cats = data.categories[sample]
            common = [c for c in np.argsort(-np.bincount(cats[cats >= 0], minlength=1))[:10]
                      if (cats == c).any()] if known.size else []
            other = ~np.isin(cats, common)
            ax.scatter(xy[other, 0], xy[other, 1], s=4, c="lightgrey", label="other" if common else "items")
            cmap = plt.get_cmap("tab10")
            for i, c in enumerate(common):
                sel = cats == c
                ax.scatter(xy[sel, 0], xy[sel, 1], s=6, color=cmap(i), label=str(data.category_names[c])[:20])
            ax.set_title(f"item vectors, PCA of {sample.size} items (coloured: 10 largest categories)")
            ax.legend(fontsize=7, markerscale=2, loc="best")
            fig.tight_layout()
            path = run.plot_dir / "embedding_map.png"
            save_figure(fig, path)
            paths.append(path)
        return paths

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


def cfg_eval(run) -> dict:
    """The run's eval section with the schema's defaults filled in."""
    defaults = {k: f.default for k, f in EmbeddingTask.schema["eval"].items()}
    return {**defaults, **run.config().get("eval", {})}


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _tsv(value) -> str:
    return str(value).replace("\t", " ").replace("\n", " ")


def _verdict(model: dict, baselines: dict, k: int) -> str:
    best_name = max(baselines, key=lambda n: baselines[n]["knn_accuracy"])
    best = baselines[best_name]["knn_accuracy"]
    gap = model["knn_accuracy"] - best
    word = "above" if gap > 0 else "not above"
    return (f"item2vec's kNN category accuracy ({k} nearest) is {model['knn_accuracy']:.3f}, {word} the best "
            f"baseline ({best_name} {best:.3f}, {gap * 100:+.1f} points); random vectors give "
            f"{baselines['random']['knn_accuracy']:.3f}.")
