"""Scoring item vectors on real sessions: categories with several labels, and next-item retrieval.

Two honest scores, shared by the ``embedding`` task and ``bench/``:

* **Categories** (items may have several, e.g. a film's genres): the
  ``k`` nearest items by cosine vote with every category they have; the kNN
  prediction is a hit when the most voted category is among the query's
  categories; precision@k is the share of neighbours sharing a category with
  the query. With one category per item this is the usual kNN accuracy.
* **Next item** (when no categories are given): the last item of some
  sessions is held out *before* training (:func:`hold_out_session_ends`);
  each held-out end is ranked among all items from the item before it, by
  cosine (vectors) or by a baseline's scores (popularity, same-session
  co-occurrence). Hit rate@k and MRR@k.

Both split their held-out part into a *validation* part (used to choose
settings) and a *test* part (reported), never mixed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


# -- metrics (NumPy and scikit-learn; shared by the task and bench/) -------------------------

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
    vectors = us / np.sqrt(np.maximum(svd.singular_values_, 1e-12))
    if components < dim:
        vectors = np.pad(vectors, [(0, 0), (0, dim - components)])
    return vectors.astype(np.float32)


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


# -- next-item retrieval -----------------------------------------------------------------------

@dataclass
class HeldOutEnds:
    """Session ends held out of training: the item before (``queries``) and the end (``targets``).

    Rows index the *training* vocabulary; ``targets == -1`` where the end item
    never occurs in training (no method can rank it; counted, not scored).
    """

    queries: np.ndarray
    targets: np.ndarray

    def scorable(self) -> "HeldOutEnds":
        ok = (self.targets >= 0) & (self.queries >= 0)
        return HeldOutEnds(self.queries[ok], self.targets[ok])

    @property
    def size(self) -> int:
        return int(self.queries.size)


def hold_out_session_ends(data, validation_fraction: float, test_fraction: float, seed: int, tail: int = 1):
    """Remove the last ``tail`` items of a random share of sessions; re-index the rest as training data.

    Returns ``(train_data, validation, test, summary)``. Sessions keeping at
    least 2 items after the cut are eligible; each is validation, test or
    untouched. Every held-out item is a case: predict it from the item just
    before it (which may itself be held out: its vector is still trained on
    the other sessions). The training vocabulary is rebuilt from what is left
    (held-out items are not counted), so an item seen nowhere else has no row
    (``targets == -1``).
    """
    from nnkit.datasets.sessions import from_arrays

    lengths = np.diff(data.offsets)
    eligible = np.flatnonzero(lengths >= tail + 2)
    rng = np.random.default_rng([seed, 13])
    order = rng.permutation(eligible)
    n_val = int(round(order.size * validation_fraction))
    n_test = int(round(order.size * test_fraction))
    val_sessions, test_sessions = np.sort(order[:n_val]), np.sort(order[n_val:n_val + n_test])
    held = np.concatenate([val_sessions, test_sessions])
    drop = np.zeros(data.tokens.size, bool)
    for back in range(1, tail + 1):
        drop[data.offsets[1:][held] - back] = True
    new_lengths = lengths.copy()
    new_lengths[held] -= tail
    offsets = np.zeros(lengths.size + 1, np.int64)
    np.cumsum(new_lengths, out=offsets[1:])
    train = from_arrays(data.tokens[~drop], offsets, data.item_ids, data.categories, data.category_names,
                        data.names, min_count=1, source="training sessions", extra_categories=data.extra_categories)
    row_of = dict(zip(train.item_ids.tolist(), range(train.vocab_size)))
    to_row = np.vectorize(lambda i: row_of.get(i, -1), otypes=[np.int64])

    def cases(sessions):
        if sessions.size == 0:
            return HeldOutEnds(np.zeros(0, np.int64), np.zeros(0, np.int64))
        positions = (data.offsets[1:][sessions][:, None] - np.arange(tail, 0, -1)[None, :]).ravel()
        return HeldOutEnds(to_row(data.item_ids[data.tokens[positions - 1]]),
                           to_row(data.item_ids[data.tokens[positions]]))

    validation, test = cases(val_sessions), cases(test_sessions)
    summary = {"sessions with held-out ends (validation, test)": f"{val_sessions.size}, {test_sessions.size}",
               "held-out items per such session": tail,
               "held-out items not seen in training (validation, test)":
                   f"{int((validation.targets < 0).sum())}, {int((test.targets < 0).sum())}"}
    return train, validation, test, summary


def target_ranks(scores: np.ndarray, queries: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Rank (1 = first) of each target in its score row, the query item itself excluded.

    Ties count in the target's favour (a baseline with flat scores is not
    penalised for the order of equal items).
    """
    scores = np.array(scores, np.float64, copy=True)
    idx = np.arange(queries.size)
    scores[idx, queries] = -np.inf
    target_scores = scores[idx, targets]
    return 1 + (scores > target_scores[:, None]).sum(axis=1)


def summarize_ranks(ranks: np.ndarray, k: int) -> dict:
    hit = ranks <= k
    if not hit.size:
        return {f"hit_rate_at_{k}": 0.0, f"mrr_at_{k}": 0.0}
    return {f"hit_rate_at_{k}": float(hit.mean()), f"mrr_at_{k}": float(np.where(hit, 1.0 / ranks, 0.0).mean())}


def ranked(score_fn, ends: HeldOutEnds, vocab_size: int, k: int) -> dict:
    """Metrics of ``score_fn(queries) -> (n, vocab)`` scores, in chunks of ~20M scores."""
    chunk = max(1, int(2e7 // max(1, vocab_size)))
    ranks = [target_ranks(score_fn(ends.queries[s:s + chunk]), ends.queries[s:s + chunk],
                          ends.targets[s:s + chunk]) for s in range(0, ends.size, chunk)]
    return summarize_ranks(np.concatenate(ranks) if ranks else np.zeros(0), k)


def vector_scorer(vectors: np.ndarray):
    normed = normalize(vectors)
    return lambda queries: normed[queries] @ normed.T


def popularity_scorer(counts: np.ndarray):
    counts = np.asarray(counts, np.float64)
    return lambda queries: np.broadcast_to(counts, (queries.size, counts.size))


def cooccurrence_scorer(tokens, offsets, counts):
    """How often each item shared a training session with the query item; popularity breaks ties."""
    import scipy.sparse as sp

    vocab = counts.size
    session = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    incidence = sp.csr_matrix((np.ones(tokens.size, np.float64), (tokens, session)),
                              shape=(vocab, offsets.size - 1))
    incidence.data[:] = 1.0  # a session counts once per item pair
    tie_break = np.asarray(counts, np.float64)[None, :] / (counts.max() + 1.0)
    return lambda queries: (incidence[queries] @ incidence.T).toarray() + tie_break


def random_scorer(vocab_size: int, seed: int):
    rng = np.random.default_rng([seed, 3])
    return lambda queries: rng.random((queries.size, vocab_size))


def next_item_baselines(train, ends: HeldOutEnds, k: int, seed: int = 0, ppmi_vectors=None) -> dict:
    """Random, popularity, same-session co-occurrence (and PPMI-SVD vectors) on the held-out ends."""
    vocab = train.vocab_size
    out = {"random": ranked(random_scorer(vocab, seed), ends, vocab, k),
           "popularity": ranked(popularity_scorer(train.counts), ends, vocab, k),
           "cooccurrence": ranked(cooccurrence_scorer(train.tokens, train.offsets, train.counts), ends, vocab, k)}
    if ppmi_vectors is not None:
        out["ppmi_svd"] = ranked(vector_scorer(ppmi_vectors), ends, vocab, k)
    return out


# -- the task's splits -------------------------------------------------------------------------

def split_known_items(categories: np.ndarray, validation_fraction: float, test_fraction: float,
                      seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(validation rows, test rows): disjoint random shares of the items with a known category."""
    known = np.flatnonzero(categories >= 0)
    rng = np.random.default_rng([seed, 7])
    n_test = int(round(known.size * test_fraction))
    if known.size >= 2:
        n_test = min(max(n_test, 1), known.size - 1)
    order = rng.permutation(known)
    n_val = min(int(round(known.size * validation_fraction)), known.size - n_test)
    return np.sort(order[n_test:n_test + n_val]), np.sort(order[:n_test])


def frequent(rows: np.ndarray, counts: np.ndarray, min_count: int) -> np.ndarray:
    """The rows seen at least ``min_count`` times (all of them when none is)."""
    kept = rows[counts[rows] >= min_count]
    return kept if kept.size else rows
