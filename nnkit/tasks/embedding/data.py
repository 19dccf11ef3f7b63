"""Embedding data: sessions (bundled shop generator or the user's CSV) and the held-out query items
(validation and test items; the held-out session ends are in ``next_item``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnkit.errors import DataError


def data_fingerprint(data) -> str:
    """The sessions and what the items CSV says of them (every category, names): an items CSV changed
    since is other data, not the run's."""
    from nnkit.runs import fingerprint

    extra = data.extra_categories
    more = () if extra is None else (extra.indptr, extra.indices)
    names = "" if data.names is None else "\x1f".join(data.names.tolist())
    return fingerprint(data.tokens, data.offsets, data.item_ids.astype("U"), data.categories,
                       "\x1f".join(map(str, data.category_names)), *more, names)


def sessions_fingerprint(data) -> str:
    """The sessions alone: what runs recorded before the items CSV counted (they still evaluate, resume)."""
    from nnkit.runs import fingerprint

    return fingerprint(data.tokens, data.offsets, data.item_ids.astype("U"))


def load_sessions(data_cfg: dict, defaults: dict):
    """The sessions (``data.path``'s CSV, or the shop generator) and a line naming their source.

    ``defaults``: the data section's schema defaults. An optional column
    (timestamp, category, name) set to anything else was named by the user
    and must be in the file.
    """
    from nnkit.datasets import sessions as S

    if data_cfg["path"]:
        required = [key for key in S.OPTIONAL_COLUMNS if data_cfg[key] != defaults[key]]
        return S.read_sessions(
            data_cfg["path"], items_path=data_cfg["items"], session_column=data_cfg["session_column"],
            item_column=data_cfg["item_column"], timestamp_column=data_cfg["timestamp_column"],
            category_column=data_cfg["category_column"], name_column=data_cfg["name_column"],
            category_separator=data_cfg["category_separator"],
            min_count=data_cfg["min_count"], required_columns=required), f"sessions csv {Path(data_cfg['path']).name}"
    if data_cfg["items"]:
        raise DataError("data.items needs a sessions file too: give --data sessions.csv")
    from nnkit.datasets.shop import Shop

    try:
        shop = Shop(n_products=data_cfg["products"], n_categories=data_cfg["categories"],
                    mean_length=data_cfg["session_length"], noise=data_cfg["noise"], zipf=data_cfg["zipf"],
                    seed=data_cfg["seed"])
    except ValueError as exc:
        raise DataError(f"shop generator: {exc}") from None
    data = S.from_shop(shop, data_cfg["sessions"], min_count=data_cfg["min_count"])
    return data, (f"shop generator: {data_cfg['products']} products, {data_cfg['categories']} categories, "
                  f"{data_cfg['sessions']} sessions, noise {data_cfg['noise']}")


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
