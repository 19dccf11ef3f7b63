"""Embedding evaluation: cosine neighbours, category metrics (one or several categories per item), and the
baselines (co-occurrence SVD, random)."""

from __future__ import annotations

import numpy as np


def normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def nearest(normed: np.ndarray, queries: np.ndarray, k: int, pool: np.ndarray | None = None,
            chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows (cosine) to each query row, excluding itself: (rows, scores)."""
    pool = np.arange(normed.shape[0]) if pool is None else np.asarray(pool)
    candidates = normed[pool]
    k = min(k, pool.size - 1)
    rows = np.empty((queries.size, k), np.int64)
    scores = np.empty((queries.size, k), np.float32)
    position = np.full(normed.shape[0], -1, np.int64)
    position[pool] = np.arange(pool.size)
    chunk = max(1, min(chunk, int(2e8 // max(1, pool.size))))  # ~0.8 GB of scores at most
    for start in range(0, queries.size, chunk):
        q = queries[start:start + chunk]
        sims = normed[q] @ candidates.T
        own = position[q]
        has = own >= 0
        sims[np.flatnonzero(has), own[has]] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < pool.size else np.argsort(-sims, axis=1)
        top_scores = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        rows[start:start + q.size] = pool[np.take_along_axis(top, order, axis=1)]
        scores[start:start + q.size] = np.take_along_axis(top_scores, order, axis=1)
    return rows, scores


def majority(labels: np.ndarray) -> np.ndarray:
    """Most common label per row; ties go to the label seen first (the nearest)."""
    same = labels[:, :, None] == labels[:, None, :]
    votes = same.sum(axis=2)
    return labels[np.arange(labels.shape[0]), np.argmax(votes, axis=1)]


def category_metrics(vectors: np.ndarray, categories: np.ndarray, queries: np.ndarray, *, k: int = 10,
                     probe_folds: int = 3, probe_max: int = 5000, seed: int = 0, labels=None) -> dict:
    """kNN category accuracy, precision@k and a linear probe for ``queries`` (rows).

    Neighbours are searched among every item with a known category. With
    ``labels`` (items x categories boolean CSR: several categories per item)
    a prediction or a neighbour is a hit when it shares one of the query's
    categories (:func:`multilabel_knn`); the probe predicts the
    main category.
    """
    normed = normalize(vectors)
    pool = np.flatnonzero(categories >= 0)
    rows, _ = nearest(normed, queries, k, pool)
    if labels is not None:
        hit, share = multilabel_knn(rows, queries, labels)
        out = {"knn_accuracy": float(hit.mean()), f"precision_at_{k}": float(share.mean())}
    else:
        truth = categories[queries]
        neighbour_cats = categories[rows]
        out = {
            "knn_accuracy": float(np.mean(majority(neighbour_cats) == truth)),
            f"precision_at_{k}": float(np.mean(neighbour_cats == truth[:, None])),
        }
    if probe_folds >= 2:
        out["probe_accuracy"] = linear_probe(normed, categories, queries, probe_folds, probe_max, seed)
    return out


def linear_probe(normed, categories, queries, folds: int, max_items: int, seed: int) -> float | None:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold, cross_val_score

    rng = np.random.default_rng([seed, 11])
    rows = queries if queries.size <= max_items else np.sort(rng.choice(queries, max_items, replace=False))
    if rows.size < 2 * folds or np.unique(categories[rows]).size < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        scores = cross_val_score(LogisticRegression(max_iter=300, C=10.0), normed[rows], categories[rows],
                                 cv=KFold(folds, shuffle=True, random_state=seed), n_jobs=1)
    return float(np.mean(scores))


def ppmi_svd(tokens, offsets, vocab_size: int, dim: int, window: int, seed: int = 0,
             cds: float = 0.75, context: str = "window") -> np.ndarray:
    """Truncated SVD of the PPMI item-item co-occurrence matrix (Levy et al. 2015): U * sqrt(S).

    Co-occurrence within ``window`` positions, or (``context="session"``)
    anywhere in the same session, each session counting once per pair.
    """
    return ppmi_factors(tokens, offsets, vocab_size, dim, window, seed, cds, context)[0]


def ppmi_factors(tokens, offsets, vocab_size: int, dim: int, window: int, seed: int = 0,
                 cds: float = 0.75, context: str = "window") -> tuple[np.ndarray, np.ndarray]:
    """Both factors of :func:`ppmi_svd`'s SVD: ``(U * sqrt(S), V * sqrt(S))``, float32, ``(vocab, dim)``.

    Their dot products approximate the PPMI matrix, the quantity skip-gram's
    target and context vectors fit (shifted by log k, Levy & Goldberg 2014):
    the starting point of item2vec's ``model.init = "ppmi_svd"``.
    """
    import scipy.sparse as sp
    from sklearn.decomposition import TruncatedSVD

    from nnkit.datasets.sessions import skipgram_pairs

    if context == "session":
        session = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
        incidence = sp.csr_matrix((np.ones(len(tokens), np.float32), (tokens, session)),
                                  shape=(vocab_size, len(offsets) - 1))
        incidence.data[:] = 1.0
        counts = (incidence @ incidence.T).tocsr()
        counts.setdiag(0)
        counts.eliminate_zeros()
    else:
        targets, contexts = skipgram_pairs(tokens, offsets, window)
        counts = sp.coo_matrix((np.ones(targets.size, np.float32), (targets, contexts)),
                               shape=(vocab_size, vocab_size)).tocsr()
        counts.sum_duplicates()
    total = counts.sum()
    row = np.asarray(counts.sum(axis=1)).ravel()
    col = np.asarray(counts.sum(axis=0)).ravel() ** cds  # context-distribution smoothing
    col_p = col / col.sum()
    coo = counts.tocoo()
    pmi = np.log(coo.data / total) - np.log(row[coo.row] / total) - np.log(col_p[coo.col])
    keep = pmi > 0
    ppmi = sp.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=counts.shape)
    components = max(1, min(dim, vocab_size - 1))
    svd = TruncatedSVD(n_components=components, random_state=seed, algorithm="randomized", n_iter=5)
    us = svd.fit_transform(ppmi)  # U * S
    root = np.sqrt(np.maximum(svd.singular_values_, 1e-12))
    factors = (us / root, svd.components_.T * root)
    if components < dim:
        factors = tuple(np.pad(f, [(0, 0), (0, dim - components)]) for f in factors)
    return tuple(f.astype(np.float32) for f in factors)


# -- categories (one or several per item) ------------------------------------------------------

def category_matrix(categories: np.ndarray, n_categories: int, extra=None):
    """Items x categories boolean CSR: the item's main category plus ``extra`` (a CSR or None)."""
    import scipy.sparse as sp

    rows = np.flatnonzero(categories >= 0)
    main = sp.csr_matrix((np.ones(rows.size, bool), (rows, categories[rows])),
                         shape=(categories.size, max(1, n_categories)))
    if extra is not None:
        main = (main + extra.astype(bool)).astype(bool).tocsr()
    return main


def multilabel_knn(neighbours: np.ndarray, queries: np.ndarray, labels) -> tuple[np.ndarray, np.ndarray]:
    """Per query: kNN hit (most voted category among its own) and share of neighbours sharing one.

    ``labels`` is an items x categories boolean CSR. Ties between voted
    categories go to the category of the nearest neighbour holding one.
    """
    n_q, k = neighbours.shape
    dense_q = labels[queries].toarray()  # (n_q, C)
    votes = np.zeros_like(dense_q, dtype=np.float64)
    shares = np.zeros(n_q)
    for j in range(k):  # k sparse row gathers; the tie-break favours nearer neighbours slightly
        nb = labels[neighbours[:, j]].toarray()
        votes += nb * (1.0 + 1e-6 * (k - j))
        shares += (nb & dense_q).any(axis=1)
    predicted = np.argmax(votes, axis=1)
    hit = dense_q[np.arange(n_q), predicted] & (votes.max(axis=1) > 0)
    return hit, shares / k
