"""Catalogue scale: 1,000,000 products in 500 categories, one epoch of >= 10M skip-gram pairs.

Measures nnkit's item2vec (tf.data pairs + Keras, sparse SGD, the recipe's
shared negatives: each batch's negatives drawn once, each draw serving about
``--shared-negatives`` pairs; 0 = word2vec's per-pair draws) on the shop
generator's sessions and gensim's Word2Vec (skip-gram, same dimension,
window, negatives, subsampling, one epoch, same number of worker threads) on
the same sessions, in ``--rounds`` alternating rounds inside this one process
(nnkit, gensim, nnkit, gensim, ...), so a machine shared with other jobs
slows both sides alike within a round. Prints every round's wall times and
ratio, the median ratio and its spread (min-max), the load average around
each round, nnkit's training pairs per second and peak memory, and kNN
category accuracy of both (last round's vectors) on held-out products.

    python bench/products_scale.py [--rounds 3] [--products 1000000] [--categories 500] [--sessions 500000]
                                   [--shared-negatives 100 | 0]
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
    parser.add_argument("--shared-negatives", type=int, default=None,
                        help="pairs served by one shared negative draw (default: the recipe's; 0: per-pair draws)")
    parser.add_argument("--sample", type=float, default=1e-3)
    parser.add_argument("--batch", type=int, default=512, help="centre items per step")
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--eval-sample", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-gensim", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps-per-execution", type=int, default=8)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from nnkit import train as T
    from nnkit.pipeline import resolve
    from nnkit.tasks.embedding.baselines import category_metrics

    sets = [f"data.products={args.products}", f"data.categories={args.categories}",
            f"data.sessions={args.sessions}", f"data.zipf={args.zipf}", "data.min_count=1", f"model.dim={args.dim}",
            f"model.window={args.window}", f"model.negatives={args.negatives}", f"model.subsample={args.sample}",
            *([] if args.shared_negatives is None else [f"model.shared_negatives={args.shared_negatives}"]),
            "model.context=window", "train.epochs=1", f"train.batch_size={args.batch}",
            f"train.learning_rate={args.lr}",
            f"train.steps_per_execution={args.steps_per_execution}"]
    resolved = resolve("products", overrides=sets)
    task, cfg = resolved.task, resolved.cfg
    start = time.perf_counter()
    prepared = task.load(cfg)
    t_data = time.perf_counter() - start
    data = prepared.train
    print(f"shop: {args.products:,} products, {args.categories} categories, Zipf {args.zipf}, "
          f"{data.n_sessions:,} sessions, "
          f"{data.tokens.size:,} events, {data.vocab_size:,} products seen; generated and indexed in {t_data:.1f}s")
    shared = cfg["model"]["shared_negatives"]
    print(f"skip-gram: dim {args.dim}, window {args.window}, negatives {args.negatives} "
          f"({f'shared, one draw per ~{shared} pairs' if shared else 'drawn per pair'}), sample {args.sample}, "
          f"{args.batch} centres per step, plain SGD (sparse row updates); "
          f"{os.cpu_count()} CPU threads; load average {os.getloadavg()[0]:.1f} (1 min)")

    corpus_dir = tempfile.TemporaryDirectory()
    corpus = Path(corpus_dir.name) / "sessions.txt"
    with open(corpus, "w") as handle:  # gensim's fastest input; written once, outside the timings
        for s, e in zip(data.offsets[:-1], data.offsets[1:]):
            handle.write(" ".join(data.item_ids[data.tokens[s:e]]) + "\n")

    def run_nnkit():
        """One epoch from a fresh model; returns (seconds, pairs, vectors)."""
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
        seconds = time.perf_counter() - start
        vectors = task.vectors(model)
        del model
        keras.backend.clear_session(free_memory=False)
        return seconds, int(pairs.numpy()), vectors

    def run_gensim():
        from gensim.models import Word2Vec

        start = time.perf_counter()
        w2v = Word2Vec(corpus_file=str(corpus), vector_size=args.dim, window=args.window,
                       negative=args.negatives, sg=1, epochs=1, min_count=1, sample=args.sample,
                       workers=args.workers, seed=0)
        seconds = time.perf_counter() - start
        rows = np.array([w2v.wv.key_to_index[i] for i in data.item_ids])
        return seconds, w2v.wv.vectors[rows]

    rounds = []
    print()
    print("| round | load avg before | nnkit wall s | nnkit pairs/s | gensim wall s | ratio nnkit/gensim |")
    print("|---|---|---|---|---|---|")
    for r in range(args.rounds):
        load = os.getloadavg()[0]
        t_nnkit, n_pairs, vectors = run_nnkit()
        t_gensim, g_vectors = (float("nan"), None) if args.no_gensim else run_gensim()
        rounds.append((t_nnkit, t_gensim))
        print(f"| {r + 1} | {load:.1f} | {t_nnkit:.1f} | {n_pairs / t_nnkit:,.0f} | {t_gensim:.1f} | "
              f"{t_nnkit / t_gensim:.2f}x |", flush=True)
    corpus_dir.cleanup()
    ratios = np.array([a / b for a, b in rounds])
    nn, gs = np.array(rounds).T
    print(f"\nnnkit {np.median(nn):.1f}s (min {nn.min():.1f}, max {nn.max():.1f}); gensim {np.median(gs):.1f}s "
          f"(min {gs.min():.1f}, max {gs.max():.1f}); ratio nnkit/gensim median {np.median(ratios):.2f}x "
          f"(min {ratios.min():.2f}, max {ratios.max():.2f}) over {args.rounds} rounds; "
          f"{n_pairs:,} nnkit pairs per epoch; peak RSS {peak_rss_mb():,.0f} MB; load average now "
          f"{os.getloadavg()[0]:.1f}")

    # recovery, on the last round's vectors: held-out products seen at least 5 times
    rng = np.random.default_rng(0)
    held = prepared.test[data.counts[prepared.test] >= 5]
    queries = np.sort(rng.choice(held, min(args.eval_sample, held.size), replace=False))
    ours = category_metrics(vectors, data.categories, queries, k=10, probe_folds=0)
    rnd = category_metrics(rng.normal(size=(data.vocab_size, 8)).astype(np.float32), data.categories,
                           queries, k=10, probe_folds=0)
    line = (f"kNN category accuracy on {queries.size} held-out products (count >= 5; neighbours among all "
            f"{data.vocab_size:,}): nnkit {ours['knn_accuracy']:.3f} (precision@10 {ours['precision_at_10']:.3f})")
    if g_vectors is not None:
        theirs = category_metrics(g_vectors, data.categories, queries, k=10, probe_folds=0)
        line += f", gensim {theirs['knn_accuracy']:.3f} (precision@10 {theirs['precision_at_10']:.3f})"
    print(line + f", random {rnd['knn_accuracy']:.3f}")


if __name__ == "__main__":
    main()
