"""Next-item retrieval on held-out session ends: the split, the ranks, and the baselines.

When no categories are given, an item embedding is scored by what it is for:
the last item(s) of some sessions are held out *before* training
(:func:`hold_out_session_ends`), and each is ranked among all items from the
item before it, by cosine (vectors) or by a baseline's scores (popularity,
same-session co-occurrence). Hit rate@k and MRR@k. The held-out sessions are
split into a validation part (used to choose settings) and a test part
(reported), never mixed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnkit.tasks.embedding.baselines import normalize


@dataclass
class HeldOutEnds:
    """Session ends held out of training: the item before (``queries``) and the end (``targets``).

    Rows index the *training* vocabulary; ``targets == -1`` where the end item
    never occurs in training, and ``targets == queries`` where it repeats the
    item before it (a click stream's double view): no method ranks the query
    itself, so both are counted, not scored.
    """

    queries: np.ndarray
    targets: np.ndarray

    def scorable(self) -> "HeldOutEnds":
        ok = (self.targets >= 0) & (self.queries >= 0) & (self.targets != self.queries)
        return HeldOutEnds(self.queries[ok], self.targets[ok])

    @property
    def size(self) -> int:
        return int(self.queries.size)


def hold_out_session_ends(data, validation_fraction: float, test_fraction: float, seed: int, tail: int | None = 1,
                          min_test_cases: int = 0):
    """Remove the last ``tail`` items of a random share of sessions; re-index the rest as training data.

    Returns ``(train_data, validation, test, summary)``. Sessions keeping at
    least 2 items after the cut are eligible (with ``min_test_cases``: at
    least 1); each is validation, test or untouched. See
    :func:`cut_session_ends` for the cases.

    ``min_test_cases > 0`` sizes the cut for a small data set: every session
    of 3+ items is eligible, and each held-out session loses its last
    ``ceil(min_test_cases / test sessions)`` items (never fewer than
    ``tail``, never its first), so the test part has about that many cases
    where one end per session would give a handful.
    """
    order = np.random.default_rng([seed, 13]).permutation(eligible_sessions(data, 1 if min_test_cases else tail))
    n_val = int(round(order.size * validation_fraction))
    n_test = int(round(order.size * test_fraction))
    if min_test_cases and n_test:
        tail = max(tail or 1, -(-min_test_cases // n_test))
    return cut_session_ends(data, np.sort(order[:n_val]), np.sort(order[n_val:n_val + n_test]), tail)


def eligible_sessions(data, tail: int | None) -> np.ndarray:
    """Sessions long enough to lose ``tail`` items (``None``: all but the first) and keep a case."""
    return np.flatnonzero(np.diff(data.offsets) >= (3 if tail is None else tail + 2))


def session_folds(data, folds: int, seed: int, tail: int | None) -> list[np.ndarray]:
    """The eligible sessions in ``folds`` random parts of near-equal size (sorted within each)."""
    order = np.random.default_rng([seed, 13]).permutation(eligible_sessions(data, tail))
    return [np.sort(part) for part in np.array_split(order, folds)]


def cut_session_ends(data, validation_sessions, test_sessions, tail: int | None = 1):
    """Hold out the last ``tail`` items of the given sessions (``None``, or more than a session has: every
    item after the first).

    Returns ``(train_data, validation, test, summary)``. Every held-out item
    is a case: predict it from the item just before it (which may itself be
    held out: its vector is still trained on the other sessions). The
    training vocabulary is rebuilt from what is left (held-out items are not
    counted), so an item seen nowhere else has no row (``targets == -1``).
    """
    from nnkit.datasets.sessions import from_arrays

    lengths = np.diff(data.offsets)
    held = np.concatenate([validation_sessions, test_sessions]).astype(np.int64)
    cut = lengths[held] - 1 if tail is None else np.minimum(lengths[held] - 1, tail)  # the first item stays
    drop = np.zeros(data.tokens.size, bool)
    drop[_tail_positions(data.offsets, held, cut)] = True
    new_lengths = lengths.copy()
    new_lengths[held] -= cut
    offsets = np.zeros(lengths.size + 1, np.int64)
    np.cumsum(new_lengths, out=offsets[1:])
    train = from_arrays(data.tokens[~drop], offsets, data.item_ids, data.categories, data.category_names,
                        data.names, min_count=1, source="training sessions", extra_categories=data.extra_categories)
    row_of = dict(zip(train.item_ids.tolist(), range(train.vocab_size)))
    to_row = np.vectorize(lambda i: row_of.get(i, -1), otypes=[np.int64])

    def cases(sessions, counts):
        if sessions.size == 0:
            return HeldOutEnds(np.zeros(0, np.int64), np.zeros(0, np.int64))
        positions = _tail_positions(data.offsets, sessions, counts)
        return HeldOutEnds(to_row(data.item_ids[data.tokens[positions - 1]]),
                           to_row(data.item_ids[data.tokens[positions]]))

    n_val = len(validation_sessions)
    validation, test = cases(held[:n_val], cut[:n_val]), cases(held[n_val:], cut[n_val:])
    summary = {"sessions with held-out ends (validation, test)": f"{n_val}, {held.size - n_val}",
               "held-out items per such session": _tail_text(tail, cut),
               "held-out items not seen in training (validation, test)":
                   f"{int((validation.targets < 0).sum())}, {int((test.targets < 0).sum())}",
               "held-out items repeating the item before them (validation, test; not scored)":
                   f"{_repeats(validation)}, {_repeats(test)}"}
    return train, validation, test, summary


def _repeats(ends: HeldOutEnds) -> int:
    return int(((ends.targets == ends.queries) & (ends.targets >= 0)).sum())


def _tail_text(tail: int | None, cut: np.ndarray) -> str | int:
    if tail is None or (cut.size and (cut < tail).all()):
        return "all but the first"
    if not cut.size or (cut == tail).all():
        return tail
    return f"the last {tail} (all but the first in sessions of {tail + 1} items or fewer)"


def _tail_positions(offsets: np.ndarray, sessions: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Event positions of the last ``counts[i]`` items of each ``sessions[i]``, in session order."""
    ends = offsets[1:][sessions]
    return np.concatenate([np.arange(end - count, end) for end, count in zip(ends, counts)] or
                          [np.zeros(0, np.int64)]).astype(np.int64)


def target_ranks(scores: np.ndarray, queries: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Rank (1 = first) of each target in its score row, the query item itself excluded.

    Ties take the mid rank (the expected rank under a random tie-break), so
    flat scores earn nothing; scores that are not finite (a diverged model)
    count as the lowest. A target equal to its query (an item repeated) is
    out of every method's reach: rank infinity, a miss for all.
    """
    scores = np.nan_to_num(np.array(scores, np.float64, copy=True), nan=-np.inf, posinf=-np.inf)
    idx = np.arange(queries.size)
    scores[idx, queries] = np.nan  # compares false both ways: neither above nor tied with the target
    target_scores = scores[idx, targets][:, None]
    above = (scores > target_scores).sum(axis=1)
    tied = (scores == target_scores).sum(axis=1) - 1  # minus the target itself
    return np.where(targets == queries, np.inf, 1 + above + 0.5 * tied)


def case_scores(ranks: np.ndarray, k: int) -> dict:
    """Per case: hit (1.0 / 0.0) and reciprocal rank within the top ``k`` (0 beyond); metrics are their means."""
    hit = ranks <= k
    return {f"hit_rate_at_{k}": hit.astype(np.float64), f"mrr_at_{k}": np.where(hit, 1.0 / ranks, 0.0)}


def summarize_ranks(ranks: np.ndarray, k: int) -> dict:
    return {key: float(v.mean()) if v.size else 0.0 for key, v in case_scores(ranks, k).items()}


def case_ranks(score_fn, ends: HeldOutEnds, vocab_size: int) -> np.ndarray:
    """Each case's target rank under ``score_fn(queries) -> (n, vocab)`` scores, in chunks of ~20M scores."""
    chunk = max(1, int(2e7 // max(1, vocab_size)))
    ranks = [target_ranks(score_fn(ends.queries[s:s + chunk]), ends.queries[s:s + chunk],
                          ends.targets[s:s + chunk]) for s in range(0, ends.size, chunk)]
    return np.concatenate(ranks) if ranks else np.zeros(0)


def ranked(score_fn, ends: HeldOutEnds, vocab_size: int, k: int) -> dict:
    """Hit rate@k and MRR@k of ``score_fn``'s scores on the cases."""
    return summarize_ranks(case_ranks(score_fn, ends, vocab_size), k)


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


def baseline_scorers(train, seed: int = 0) -> dict:
    """The next-item baselines' score functions: random, popularity, same-session co-occurrence."""
    return {"random": random_scorer(train.vocab_size, seed), "popularity": popularity_scorer(train.counts),
            "cooccurrence": cooccurrence_scorer(train.tokens, train.offsets, train.counts)}


def next_item_baselines(train, ends: HeldOutEnds, k: int, seed: int = 0, ppmi_vectors=None) -> dict:
    """Random, popularity, same-session co-occurrence (and PPMI-SVD vectors) on the held-out ends."""
    vocab = train.vocab_size
    out = {name: ranked(score, ends, vocab, k) for name, score in baseline_scorers(train, seed).items()}
    if ppmi_vectors is not None:
        out["ppmi_svd"] = ranked(vector_scorer(ppmi_vectors), ends, vocab, k)
    return out
