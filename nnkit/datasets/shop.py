"""A seeded shop with planted structure: the bundled data of the ``products`` recipe.

``N`` products belong to ``K`` categories (balanced, randomly assigned).
Product popularity follows Zipf's law over a random ranking of all products.
Each session picks one category (in proportion to its products' total
popularity) and draws its items from that category by popularity; with
probability ``noise`` an item is instead drawn from the whole catalogue.
Session lengths are ``2 + Poisson(mean_length - 2)``.

Sessions are produced in chunks of flat NumPy arrays (``tokens``, ``lengths``),
never as Python lists, so a catalogue of 1,000,000 products and millions of
sessions costs a few arrays of int32::

    shop = Shop(n_products=1_000_000, n_categories=500, seed=0)
    for tokens, lengths in shop.iter_chunks(n_sessions=300_000):
        ...
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CHUNK_SESSIONS = 65_536


@dataclass
class Shop:
    n_products: int = 5000
    n_categories: int = 50
    mean_length: float = 8.0
    noise: float = 0.1
    zipf: float = 1.0
    seed: int = 0
    _built: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.n_products < 2 or self.n_categories < 1 or self.n_categories > self.n_products:
            raise ValueError(f"need 2 <= n_products and 1 <= n_categories <= n_products; received "
                             f"n_products={self.n_products}, n_categories={self.n_categories}")
        if not 0.0 <= self.noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1]; received noise={self.noise}")
        if self.mean_length < 2:
            raise ValueError(f"mean_length must be >= 2; received mean_length={self.mean_length}")
        rng = np.random.default_rng([self.seed, 0])
        n, k = self.n_products, self.n_categories
        category = (rng.permutation(n) % k).astype(np.int32)  # balanced
        rank = rng.permutation(n)
        weight = 1.0 / (rank + 1.0) ** self.zipf
        # products sorted by category; within a category, a cumulative distribution
        # shifted by the category index, so one searchsorted samples any category
        order = np.argsort(category, kind="stable").astype(np.int32)
        sorted_cat = category[order]
        sorted_w = weight[order]
        totals = np.bincount(sorted_cat, weights=sorted_w, minlength=k)
        cum = np.cumsum(sorted_w)
        starts = np.searchsorted(sorted_cat, np.arange(k))
        before = np.concatenate([[0.0], cum])[starts]
        within = (cum - before[sorted_cat]) / totals[sorted_cat]
        within[np.r_[starts[1:] - 1, n - 1]] = 1.0  # exact ends against round-off
        self._built = {
            "category": category,
            "weight": weight / weight.sum(),
            "order": order,
            "shifted_cdf": sorted_cat + within,  # in (c, c + 1] for category c
            "category_cdf": np.cumsum(totals) / totals.sum(),
            "global_cdf": np.cumsum(weight) / weight.sum(),
        }

    # -- the catalogue --------------------------------------------------------------------
    @property
    def categories(self) -> np.ndarray:
        """int32 category of every product."""
        return self._built["category"]

    @property
    def popularity(self) -> np.ndarray:
        """Probability of each product under the Zipf popularity."""
        return self._built["weight"]

    def product_ids(self) -> np.ndarray:
        """String ids ``P0000000``, ``P0000001``, ... (one NumPy array, not a list)."""
        width = max(7, len(str(self.n_products - 1)))
        return np.char.add("P", np.char.zfill(np.arange(self.n_products).astype(str), width))

    def category_names(self) -> list[str]:
        width = max(3, len(str(self.n_categories - 1)))
        return [f"category-{c:0{width}d}" for c in range(self.n_categories)]

    # -- sessions ---------------------------------------------------------------------------
    def _chunk(self, index: int, n_sessions: int) -> tuple[np.ndarray, np.ndarray]:
        b = self._built
        rng = np.random.default_rng([self.seed, 1, index])
        lengths = (2 + rng.poisson(self.mean_length - 2, n_sessions)).astype(np.int32)
        session_cat = np.searchsorted(b["category_cdf"], rng.random(n_sessions), side="right")
        session_cat = np.minimum(session_cat, self.n_categories - 1)
        token_cat = np.repeat(session_cat, lengths)
        u = rng.random(token_cat.size)
        pos = np.searchsorted(b["shifted_cdf"], token_cat + u, side="left")
        tokens = b["order"][np.minimum(pos, self.n_products - 1)]
        noisy = rng.random(token_cat.size) < self.noise
        if noisy.any():
            glob = np.searchsorted(b["global_cdf"], rng.random(int(noisy.sum())), side="right")
            tokens[noisy] = np.minimum(glob, self.n_products - 1)
        return tokens.astype(np.int32), lengths

    def iter_chunks(self, n_sessions: int):
        """Yield ``(tokens, lengths)`` chunks: int32 product rows and session lengths.

        Chunks hold up to 65,536 sessions; the same seed gives the same sessions.
        """
        done, index = 0, 0
        while done < n_sessions:
            size = min(CHUNK_SESSIONS, n_sessions - done)
            yield self._chunk(index, size)
            done += size
            index += 1

    def sessions(self, n_sessions: int) -> tuple[np.ndarray, np.ndarray]:
        """All sessions as ``(tokens, offsets)``; session ``s`` is ``tokens[offsets[s]:offsets[s+1]]``."""
        parts, lens = [], []
        for tokens, lengths in self.iter_chunks(n_sessions):
            parts.append(tokens)
            lens.append(lengths)
        lengths = np.concatenate(lens)
        offsets = np.zeros(lengths.size + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return np.concatenate(parts), offsets
