"""Embeddings: category structure recovered from sessions vs dimension; one-hot vs dense memory."""

from __future__ import annotations

import time

import numpy as np

from nnkit.config import Field
from nnkit.lessons.base import Lesson, Outcome, agreement, markdown_table
from nnkit.lessons.plots import figure, save


def one_hot_vs_lookup(items: int, dim: int, batch: int, repeats: int = 5) -> dict:
    """Bytes and measured time of one forward+backward: Dense on one-hot rows vs an Embedding lookup.

    Both compute the same vectors (one_hot(i) @ W is row i of W); the one-hot route materialises
    batch x items inputs and multiplies by the whole table. A measurement of cost, not training.
    """
    import keras
    import tensorflow as tf

    ids = tf.constant(np.random.default_rng(0).integers(0, items, batch), dtype=tf.int32)
    dense = keras.layers.Dense(dim, use_bias=False)
    lookup = keras.layers.Embedding(items, dim)
    dense.build((None, items))
    lookup.build((None,))

    @tf.function
    def step_dense():
        with tf.GradientTape() as tape:
            out = dense(tf.one_hot(ids, items))
        return tape.gradient(tf.reduce_sum(out ** 2), dense.kernel)

    @tf.function
    def step_lookup():
        with tf.GradientTape() as tape:
            out = lookup(ids)
        return tape.gradient(tf.reduce_sum(out ** 2), lookup.embeddings)

    seconds = {}
    for name, step in (("one_hot_dense", step_dense), ("embedding", step_lookup)):
        step()  # trace
        started = time.perf_counter()
        for _ in range(repeats):
            step()
        seconds[name] = (time.perf_counter() - started) / repeats
    return {"items": items, "dim": dim, "batch": batch,
            "input_bytes": {"one_hot_dense": batch * items * 4, "embedding": batch * 4},
            "table_bytes": items * dim * 4, "seconds": seconds}


def embedding_experiment(ctx) -> Outcome:
    dims = list(ctx["dims"])
    shop = [f"data.products={ctx['products']}", f"data.categories={ctx['categories']}",
            f"data.sessions={ctx['sessions']}", f"train.epochs={ctx['epochs']}", "eval.probe_folds=0"]
    results, rows, agree = {}, [], []
    for seed in ctx.seeds:
        for dim in dims:
            fitted, evaluation = ctx.fit_recipe(f"dim{dim}-s{seed}", "products",
                                                shop + [f"model.dim={dim}", f"data.seed={seed}"], seed=seed)
            results[(dim, seed)] = {"knn_accuracy": evaluation.model["knn_accuracy"],
                                    "random": evaluation.baselines["random"]["knn_accuracy"],
                                    "ppmi_svd": evaluation.baselines["ppmi_svd"]["knn_accuracy"]}
            rows.append([seed, dim, results[(dim, seed)]["knn_accuracy"], results[(dim, seed)]["ppmi_svd"],
                         results[(dim, seed)]["random"]])
        best = max(results[(d, seed)]["knn_accuracy"] for d in dims)
        chance = max(results[(d, seed)]["random"] for d in dims)
        agree.append(best >= ctx["min_accuracy"] and best >= 3 * chance)
    ok, total = agreement(agree)
    held = ok * 2 > total
    mean = {d: {k: float(np.mean([results[(d, s)][k] for s in ctx.seeds])) for k in ("knn_accuracy", "random",
                                                                                          "ppmi_svd")} for d in dims}
    cost = one_hot_vs_lookup(ctx["timing_items"], 64, 256)
    millions = {"items": 1_000_000, "dim": 64, "one_hot_row_bytes": 1_000_000 * 4, "id_bytes": 4,
                "table_bytes": 1_000_000 * 64 * 4}
    _draw(ctx, mean, dims)
    best_dim = max(dims, key=lambda d: mean[d]["knn_accuracy"])
    verdict = (f"From sessions alone, {ctx['products']} product ids (a one-hot of {ctx['products']} dimensions) "
               f"became dense vectors whose 10 nearest neighbours named the product's category "
               f"{mean[best_dim]['knn_accuracy']:.0%} of the time at {best_dim} dimensions (" + ", ".join(
                   f"{d}: {mean[d]['knn_accuracy']:.2f}" for d in dims) + f"; random vectors "
               f"{mean[best_dim]['random']:.2f}, {ctx['categories']} categories); at least "
               f"{ctx['min_accuracy']:.0%} and 3 times random in {ok} of {total} seeds. A one-hot batch of 256 over "
               f"{cost['items']} items is {cost['input_bytes']['one_hot_dense'] / 2**20:.0f} MiB against 1 KiB of ids, "
               f"and a Dense layer on it took {cost['seconds']['one_hot_dense'] / cost['seconds']['embedding']:.0f} "
               "times an Embedding lookup's time for the same vectors.")
    tables = [("kNN category accuracy of held-out products (k = 10)",
               markdown_table(["seed", "dimension", "item2vec (nnkit)", "PPMI + SVD", "random vectors"], rows)),
              ("One-hot + linear vs embedding lookup (same vectors)",
               markdown_table(["", "one-hot + Dense", "Embedding"], [
                   ["input per batch of 256", f"{cost['input_bytes']['one_hot_dense']:,} bytes",
                    f"{cost['input_bytes']['embedding']:,} bytes"],
                   [f"forward + backward, {cost['items']:,} items (measured, shared CPU)",
                    f"{cost['seconds']['one_hot_dense'] * 1e3:.2f} ms", f"{cost['seconds']['embedding'] * 1e3:.2f} ms"],
                   ["one item at 1,000,000 products", "4,000,000 bytes (a 1M-float row)", "4 bytes (an id)"],
                   ["weights at 1,000,000 x 64", "256 MB", "256 MB (the same table)"]]))]
    return Outcome(held, verdict, {"knn_accuracy": {str(d): m for d, m in mean.items()}, "seeds_agreeing": ok,
                                   "seeds": total, "one_hot_vs_lookup": cost, "at_a_million": millions},
                   tables,
                   ["The shop is nnkit's generator with planted categories (the products recipe's data), "
                    f"scaled down ({ctx['products']} products, {ctx['sessions']} sessions); real catalogues have "
                    "weaker, overlapping structure.",
                    "The one-hot route and the embedding hold the same weights (one-hot times a matrix is a row "
                    "lookup); the difference is the input's size and the wasted multiply, not what can be learned.",
                    "Timings are on a shared CPU: read the ratio, not the milliseconds."])


def _draw(ctx, mean, dims) -> None:
    fig, axes = figure()
    ax = axes[0][0]
    for key, label, style in (("knn_accuracy", "item2vec (nnkit)", "o-"), ("ppmi_svd", "PPMI + SVD baseline", "s--"),
                              ("random", "random vectors", ":")):
        ax.semilogx(dims, [mean[d][key] for d in dims], style, base=2, label=label)
    ax.set_xlabel("embedding dimension")
    ax.set_ylabel("kNN category accuracy")
    ax.set_ylim(0, 1.05)
    ax.legend()
    save(ctx, fig, "category_vs_dimension", f"{ctx['products']} products, {ctx['categories']} categories")


EMBEDDING = Lesson(
    name="embedding",
    claim="Embeddings turn sparse, high-dimensional ids into dense, low-dimensional vectors that keep the "
          "structure (millions of products -> hundreds of categories).",
    setup="The products recipe (item2vec skip-gram on sessions from nnkit's shop generator with planted "
          "categories), trained through its own task for each `model.dim`; its evaluation reports how often the "
          "10 nearest products of a held-out product share its category, beside PPMI+SVD and random vectors. "
          "Separately, the bytes and measured time of one-hot + Dense vs an Embedding lookup. Held when, in most "
          "seeds, the best dimension reaches `min_accuracy` and 3 times the random vectors' score.",
    options={"dims": Field([2, 4, 8, 16, 32, 64], "embedding dimensions", min=1),
             "products": Field(2000, "products in the shop", min=10),
             "categories": Field(20, "planted categories", min=2),
             "sessions": Field(6000, "sessions", min=10), "epochs": Field(6, "epochs", min=1),
             "seeds": Field(1, "seeds (shop and training)", min=1),
             "timing_items": Field(20000, "items in the one-hot vs lookup timing", min=10),
             "min_accuracy": Field(0.7, "kNN category accuracy needed", min=0.0, max=1.0, type=float)},
    quick={"dims": [2, 16], "products": 400, "categories": 8, "sessions": 800, "epochs": 2, "timing_items": 2000},
    experiment=embedding_experiment,
    seconds=28,  # CPU s of the default run in docs/lessons.md
)
