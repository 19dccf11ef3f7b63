"""N-gram language-model baselines: add-k unigram/bigram/trigram and an interpolated trigram.

Sequences are lists of integer token ids. Every token after the first of a
sequence is a *target*; the first is context only (a start token, or the
first character of a text chunk), exactly what a recurrent language model
predicts when it reads ``seq[:-1]`` and is scored on ``seq[1:]``. Contexts
that reach before the start of a sequence are a padding symbol, so the first
target of every sequence has the trigram context ``(PAD, seq[0])``.

``num_outcomes`` is the number of tokens a model may predict (the size of
the distribution): add-k gives every one of them ``k`` pseudo-counts, and
the interpolated model mixes in a uniform distribution over them, so no
target ever gets probability zero.

Interpolated trigram (Jelinek–Mercer, recursive)::

    P1(w)     = l1 * c(w) / N            + (1 - l1) / V
    P2(w|v)   = l2 * c(v, w) / c(v, .)   + (1 - l2) * P1(w)     (P1(w) if c(v, .) = 0)
    P3(w|u,v) = l3 * c(u,v,w) / c(u,v,.) + (1 - l3) * P2(w|v)   (P2(w|v) if c(u,v,.) = 0)

with ``l1, l2, l3`` chosen to minimise the validation log-loss. Counting is
vectorised with NumPy, so a book of a million characters counts in a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

PAD = -1
K_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
LAMBDA_GRID = tuple(np.round(np.arange(0.01, 1.0, 0.01), 2))


def trigram_arrays(sequences) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(u, v, w)`` for every target ``w = seq[i]``, ``i >= 1``: ``u = seq[i-2]`` (or PAD), ``v = seq[i-1]``."""
    us, vs, ws = [], [], []
    for seq in sequences:
        seq = np.asarray(seq, dtype=np.int64).reshape(-1)
        if seq.size < 2:
            continue
        padded = np.concatenate([[PAD], seq])
        ws.append(seq[1:])
        vs.append(seq[:-1])
        us.append(padded[:-2])
    if not ws:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    return np.concatenate(us), np.concatenate(vs), np.concatenate(ws)


class _Table:
    """Counts of integer keys, looked up in bulk (sorted keys + searchsorted)."""

    def __init__(self, keys: np.ndarray):
        self.keys, self.counts = np.unique(keys, return_counts=True)

    def __getitem__(self, keys: np.ndarray) -> np.ndarray:
        keys = np.asarray(keys, dtype=np.int64)
        if self.keys.size == 0:
            return np.zeros(keys.shape, np.float64)
        index = np.clip(np.searchsorted(self.keys, keys), 0, self.keys.size - 1)
        return np.where(self.keys[index] == keys, self.counts[index], 0).astype(np.float64)


@dataclass
class NGramCounts:
    """Unigram, bigram and trigram counts of the targets of ``sequences``."""

    sequences: list
    num_outcomes: int
    base: int = 0
    total: int = 0
    tables: dict = field(default_factory=dict)

    def __post_init__(self):
        u, v, w = trigram_arrays(self.sequences)
        top = max([int(a.max()) for a in (u, v, w) if a.size] + [0])
        self.base = top + 2  # ids shifted by one so PAD (-1) becomes 0
        self.total = int(w.size)
        self.tables = {
            "w": _Table(w),
            "vw": _Table(self._key(v, w)),
            "v.": _Table(v),
            "uvw": _Table(self._key(self._key(u, v), w)),
            "uv.": _Table(self._key(u, v)),
        }
        self.sequences = []  # not kept: the counts are the model

    def _key(self, a, b):
        return (np.asarray(a, np.int64) + 1) * self.base + (np.asarray(b, np.int64) + 1)

    def lookup(self, sequences) -> dict:
        """The counts every target of ``sequences`` needs, as float arrays."""
        u, v, w = trigram_arrays(sequences)
        top = self.base - 2  # the largest id seen in training
        # ids beyond it were never counted, and their keys could collide: clip, then zero
        out_u, out_v, out_w = u > top, v > top, w > top
        u, v, w = np.minimum(u, top), np.minimum(v, top), np.minimum(w, top)
        t = self.tables
        return {
            "w": t["w"][w] * ~out_w,
            "vw": t["vw"][self._key(v, w)] * ~(out_v | out_w),
            "v": t["v."][v] * ~out_v,
            "uvw": t["uvw"][self._key(self._key(u, v), w)] * ~(out_u | out_v | out_w),
            "uv": t["uv."][self._key(u, v)] * ~(out_u | out_v),
            "N": float(self.total),
        }


# -- add-k -----------------------------------------------------------------------------

def addk_log_probs(counts: NGramCounts, sequences, order: int, k: float) -> np.ndarray:
    """Natural-log probabilities of every target under the add-k ``order``-gram."""
    c = counts.lookup(sequences)
    V = counts.num_outcomes
    if order == 1:
        p = (c["w"] + k) / (c["N"] + k * V)
    elif order == 2:
        p = (c["vw"] + k) / (c["v"] + k * V)
    elif order == 3:
        p = (c["uvw"] + k) / (c["uv"] + k * V)
    else:
        raise ValueError(f"order must be 1, 2 or 3. Received: order={order!r}")
    return np.log(p)


# -- interpolated (Jelinek-Mercer) -------------------------------------------------------

def interpolated_log_probs(counts: NGramCounts, sequences, lambdas) -> np.ndarray:
    return np.log(_interpolated(counts.lookup(sequences), counts.num_outcomes, lambdas))


def _interpolated(c: dict, V: int, lambdas) -> np.ndarray:
    l1, l2, l3 = lambdas
    p1 = l1 * (c["w"] / max(c["N"], 1.0)) + (1 - l1) / V
    seen_v = c["v"] > 0
    p2 = np.where(seen_v, l2 * c["vw"] / np.maximum(c["v"], 1) + (1 - l2) * p1, p1)
    seen_uv = c["uv"] > 0
    return np.where(seen_uv, l3 * c["uvw"] / np.maximum(c["uv"], 1) + (1 - l3) * p2, p2)


def tune_lambdas(counts: NGramCounts, val_sequences, rounds: int = 4) -> tuple[float, float, float]:
    """Coordinate descent over a 0.01 grid, minimising the validation log-loss."""
    c = counts.lookup(val_sequences)
    V = counts.num_outcomes
    lambdas = [0.5, 0.5, 0.5]
    if c["w"].size == 0:
        return tuple(lambdas)

    def loss(ls):
        return float(-np.mean(np.log(_interpolated(c, V, ls))))

    best = loss(lambdas)
    for _ in range(rounds):
        changed = False
        for i in (2, 1, 0):
            for value in LAMBDA_GRID:
                trial = list(lambdas)
                trial[i] = float(value)
                score = loss(trial)
                if score < best - 1e-12:
                    best, lambdas, changed = score, trial, True
        if not changed:
            break
    return tuple(lambdas)


def tune_k(counts: NGramCounts, val_sequences, order: int, grid=K_GRID) -> float:
    """The add-k constant from ``grid`` with the lowest validation log-loss."""
    scores = [(-float(np.mean(addk_log_probs(counts, val_sequences, order, k))), k) for k in grid]
    return min(scores)[1]


# -- the baselines of a report ----------------------------------------------------------

def nll(log_probs: np.ndarray) -> float:
    return float(-np.mean(log_probs)) if log_probs.size else math.nan


def baselines(train_sequences, val_sequences, test_sequences, num_outcomes: int) -> tuple[dict, dict]:
    """Per-token NLL and perplexity of the four baselines on ``test_sequences``.

    Returns ``(metrics, settings)``: metrics maps a baseline name to
    ``{"nll": ..., "perplexity": ...}``; settings records the tuned k and lambdas.
    """
    counts = NGramCounts(list(train_sequences), num_outcomes)
    metrics, settings = {}, {}
    for order, name in ((1, "unigram"), (2, "bigram"), (3, "trigram")):
        k = tune_k(counts, val_sequences, order)
        value = nll(addk_log_probs(counts, test_sequences, order, k))
        metrics[name] = {"nll": value, "perplexity": math.exp(value)}
        settings[name] = {"k": k}
    lambdas = tune_lambdas(counts, val_sequences)
    value = nll(interpolated_log_probs(counts, test_sequences, lambdas))
    metrics["interpolated_trigram"] = {"nll": value, "perplexity": math.exp(value)}
    settings["interpolated_trigram"] = {"lambdas": [round(x, 2) for x in lambdas]}
    return metrics, settings
