"""Catalogue scale: 1,000,000 products in 500 categories, one epoch of >= 10M skip-gram pairs.

Measures nnkit's item2vec (tf.data pairs + Keras, sparse SGD) on the shop
generator's sessions: training pairs per second, peak memory (RSS), kNN
category accuracy on a sample of held-out products; then gensim's Word2Vec
(skip-gram, same dimension, window, negatives, subsampling, one epoch, same
number of worker threads) on the same sessions, its wall time and accuracy,
and the ratio of wall times.

    python bench/products_scale.py [--products 1000000] [--categories 500] [--sessions 500000] [--zipf 1.0]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument("--categories", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=500_000)
    parser.add_argument("--zipf", type=float, default=1.0,
                        help="popularity exponent (1.0: ~51%% of 1M products appear in 500k sessions; 0.5: ~94%%)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--negatives", type=int, default=5)
    parser.add_argument("--sample", type=float, default=1e-3)
    parser.add_argument("--batch", type=int, default=512, help="centre items per step")
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--eval-sample", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-gensim", action="store_true")
    args = parser.parse_args()

    import tensorflow as tf

    from nnkit import train as T
    from nnkit.pipeline import resolve
    from nnkit.tasks.embedding.baselines import category_metrics

    sets = [f"data.products={args.products}", f"data.categories={args.categories}",
            f"data.sessions={args.sessions}", f"data.zipf={args.zipf}", "data.min_count=1", f"model.dim={args.dim}",
            f"model.window={args.window}", f"model.negatives={args.negatives}", f"model.subsample={args.sample}",
            "train.epochs=1", f"train.batch_size={args.batch}", f"train.learning_rate={args.lr}",
            "train.steps_per_execution=8"]
    resolved = resolve("products", overrides=sets)
    task, cfg = resolved.task, resolved.cfg
    start = time.perf_counter()
    prepared = task.load(cfg)
    t_data = time.perf_counter() - start
    data = prepared.train
    print(f"shop: {args.products:,} products, {args.categories} categories, Zipf {args.zipf}, "
          f"{data.n_sessions:,} sessions, "
          f"{data.tokens.size:,} events, {data.vocab_size:,} products seen; generated and indexed in {t_data:.1f}s")
    print(f"skip-gram: dim {args.dim}, window {args.window}, negatives {args.negatives}, sample {args.sample}, "
          f"{args.batch} centres per step, plain SGD (sparse row updates); {os.cpu_count()} CPU threads")

    # nnkit: one epoch, counting the pairs the pipeline actually produced
    T.apply_seed(cfg["train"])
    ds, _ = task.datasets(cfg, prepared, args.batch)
    pairs = tf.Variable(0, dtype=tf.int64, trainable=False)

    def count(x, y):
        with tf.control_dependencies([pairs.assign_add(tf.cast(tf.shape(x[0])[0], tf.int64))]):
            return tuple(tf.identity(v) for v in x), y

    ds = ds.map(count)
    model = task.build_model(cfg, prepared)
    model.compile(optimizer=T.make_optimizer(cfg["train"], int(ds.cardinality())),
                  steps_per_execution=cfg["train"]["steps_per_execution"], **task.compile_kwargs(cfg, prepared))
    start = time.perf_counter()
    model.fit(ds, epochs=1, verbose=0)
    t_nnkit = time.perf_counter() - start
    n_pairs = int(pairs.numpy())
    rss_nnkit = peak_rss_mb()
    vectors = task.vectors(model)
    print(f"nnkit item2vec: {n_pairs:,} pairs in {t_nnkit:.1f}s = {n_pairs / t_nnkit:,.0f} pairs/s; "
          f"peak RSS so far {rss_nnkit:,.0f} MB (two {data.vocab_size:,} x {args.dim} float32 tables = "
          f"{2 * data.vocab_size * args.dim * 4 / 2**20:,.0f} MB)")

    # the evaluation sample: held-out products seen at least 5 times
    rng = np.random.default_rng(0)
    held = prepared.test[data.counts[prepared.test] >= 5]
    queries = np.sort(rng.choice(held, min(args.eval_sample, held.size), replace=False))
    start = time.perf_counter()
    ours = category_metrics(vectors, data.categories, queries, k=10, probe_folds=0)
    t_eval = time.perf_counter() - start
    rnd = category_metrics(rng.normal(size=(data.vocab_size, 8)).astype(np.float32), data.categories,
                           queries, k=10, probe_folds=0)
    print(f"kNN category accuracy on {queries.size} held-out products (count >= 5; neighbours among all "
          f"{data.vocab_size:,}): nnkit {ours['knn_accuracy']:.3f}, random {rnd['knn_accuracy']:.3f} "
          f"(search {t_eval:.1f}s)")
    del model
    if args.no_gensim:
        return

    from gensim.models import Word2Vec

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "sessions.txt"
        ids = data.item_ids
        with open(corpus, "w") as handle:
            for s, e in zip(data.offsets[:-1], data.offsets[1:]):
                handle.write(" ".join(ids[data.tokens[s:e]]) + "\n")
        start = time.perf_counter()
        w2v = Word2Vec(corpus_file=str(corpus), vector_size=args.dim, window=args.window,
                       negative=args.negatives, sg=1, epochs=1, min_count=1, sample=args.sample,
                       workers=args.workers, seed=0)
        t_gensim = time.perf_counter() - start
    rows = np.array([w2v.wv.key_to_index[i] for i in ids])
    theirs = category_metrics(w2v.wv.vectors[rows], data.categories, queries, k=10, probe_folds=0)
    print(f"gensim Word2Vec (corpus_file, {args.workers} workers, vocabulary + 1 epoch): {t_gensim:.1f}s; "
          f"kNN category accuracy {theirs['knn_accuracy']:.3f}")
    print()
    print("| | wall s | pairs/s | kNN acc | precision@10 |")
    print("|---|---|---|---|---|")
    print(f"| nnkit item2vec | {t_nnkit:.1f} | {n_pairs / t_nnkit:,.0f} | {ours['knn_accuracy']:.3f} | "
          f"{ours['precision_at_10']:.3f} |")
    print(f"| gensim Word2Vec | {t_gensim:.1f} | ~{n_pairs / t_gensim:,.0f} | {theirs['knn_accuracy']:.3f} | "
          f"{theirs['precision_at_10']:.3f} |")
    print(f"\nwall time ratio nnkit / gensim: {t_nnkit / t_gensim:.2f}x (peak RSS {peak_rss_mb():,.0f} MB)")


if __name__ == "__main__":
    main()
