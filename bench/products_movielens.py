"""MovieLens "latest small": nnkit's item2vec beside gensim's Word2Vec on the same sessions.

One session per user (the movies they rated, ordered by time); a movie's
category is its first listed genre. Both models are skip-gram with negative
sampling with the same dimension, window, negatives, epochs, subsampling
and min_count; both are scored by the same code on the same held-out movies:
kNN genre accuracy (majority of the 10 nearest by cosine), precision@10 and a
logistic-regression probe, beside PPMI-SVD and random vectors.

    python bench/products_movielens.py [--zip ../shared/data/ml-latest-small.zip] [--epochs 10]

The data is read from the zip (research use only: never commit or ship it).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DEFAULT_ZIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-latest-small.zip"


def write_sessions(zip_path: Path, folder: Path) -> tuple[Path, Path]:
    with zipfile.ZipFile(zip_path) as archive:
        ratings = pd.read_csv(archive.open("ml-latest-small/ratings.csv"))
        movies = pd.read_csv(archive.open("ml-latest-small/movies.csv"))
    sessions = folder / "sessions.csv"
    ratings.rename(columns={"userId": "session_id", "movieId": "item_id"})[
        ["session_id", "item_id", "timestamp"]].to_csv(sessions, index=False)
    genre = movies["genres"].str.split("|").str[0]
    items = pd.DataFrame({"item_id": movies["movieId"], "category": genre.where(genre != "(no genres listed)"),
                          "name": movies["title"]})
    path = folder / "items.csv"
    items.to_csv(path, index=False)
    return sessions, path


def train_nnkit(task, cfg, prepared):
    import keras

    from nnkit import train as T

    T.apply_seed(cfg["train"])
    ds, _ = task.datasets(cfg, prepared, cfg["train"]["batch_size"])
    steps = int(ds.cardinality())
    model = task.build_model(cfg, prepared)
    model.compile(optimizer=T.make_optimizer(cfg["train"], steps),
                  steps_per_execution=cfg["train"]["steps_per_execution"], **task.compile_kwargs(cfg, prepared))
    start = time.perf_counter()
    model.fit(ds, epochs=cfg["train"]["epochs"], verbose=0)
    seconds = time.perf_counter() - start
    keras.backend.clear_session(free_memory=False)
    return task.vectors(model), seconds


def train_gensim(data, dim, window, negatives, epochs, sample, seed, workers):
    from gensim.models import Word2Vec

    corpus = [data.item_ids[data.tokens[s:e]].tolist() for s, e in zip(data.offsets[:-1], data.offsets[1:])]
    start = time.perf_counter()
    model = Word2Vec(corpus, vector_size=dim, window=window, negative=negatives, sg=1, epochs=epochs,
                     min_count=1, sample=sample, seed=seed, workers=workers)
    seconds = time.perf_counter() - start
    rows = np.array([model.wv.key_to_index[i] for i in data.item_ids])
    return model.wv.vectors[rows], seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--zip", default=str(DEFAULT_ZIP))
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--negatives", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--sample", type=float, default=1e-3)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--batch", type=int, default=256, help="centre items per step")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from nnkit.pipeline import resolve
    from nnkit.tasks.embedding.baselines import category_metrics, ppmi_svd

    with tempfile.TemporaryDirectory() as tmp:
        sessions, items = write_sessions(Path(args.zip), Path(tmp))
        sets = [f"data.items={items}", f"data.min_count={args.min_count}", f"model.dim={args.dim}",
                f"model.window={args.window}", f"model.negatives={args.negatives}",
                f"model.subsample={args.sample}", f"train.epochs={args.epochs}", f"train.learning_rate={args.lr}",
                f"train.batch_size={args.batch}"]
        resolved = resolve("products", data=str(sessions), overrides=sets)
        task, cfg = resolved.task, resolved.cfg
        prepared = task.load(cfg)
    data, queries = prepared.train, prepared.test
    print(f"MovieLens latest-small: {data.n_sessions} user sessions, {data.tokens.size} ratings, "
          f"{data.vocab_size} movies (min_count {args.min_count}), {len(data.category_names)} genres, "
          f"{queries.size} held-out movies scored")
    print(f"skip-gram: dim {args.dim}, window {args.window}, negatives {args.negatives}, epochs {args.epochs}, "
          f"sample {args.sample}; {os.cpu_count()} CPU threads")

    vectors, t_nnkit = train_nnkit(task, cfg, prepared)
    g_vectors, t_gensim = train_gensim(data, args.dim, args.window, args.negatives, args.epochs, args.sample,
                                       cfg["train"]["seed"], args.workers)
    start = time.perf_counter()
    svd = ppmi_svd(data.tokens, data.offsets, data.vocab_size, args.dim, args.window)
    t_svd = time.perf_counter() - start
    rnd = np.random.default_rng(0).normal(size=vectors.shape)
    rows = []
    for name, vec, seconds in (("nnkit item2vec", vectors, t_nnkit), ("gensim Word2Vec", g_vectors, t_gensim),
                               ("PPMI-SVD", svd, t_svd), ("random", rnd, 0.0)):
        m = category_metrics(vec, data.categories, queries, k=10, probe_folds=3)
        rows.append((name, m, seconds))
    print()
    print(f"| method | kNN genre acc | precision@10 | probe acc | train wall s |")
    print("|---|---|---|---|---|")
    for name, m, seconds in rows:
        print(f"| {name} | {m['knn_accuracy']:.3f} | {m['precision_at_10']:.3f} | {m['probe_accuracy']:.3f} | "
              f"{seconds:.1f} |")
    ours, theirs = rows[0][1]["knn_accuracy"], rows[1][1]["knn_accuracy"]
    print()
    print(f"kNN genre accuracy nnkit - gensim: {ours - theirs:+.3f}; wall time ratio nnkit/gensim: "
          f"{t_nnkit / t_gensim:.2f}x")


if __name__ == "__main__":
    main()
