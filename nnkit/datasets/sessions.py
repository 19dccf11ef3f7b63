"""User sessions for item embeddings: reading them, and turning them into skip-gram pairs.

A sessions CSV has one row per event::

    session_id,item_id[,timestamp]

(events are ordered by timestamp within a session when the column is
there, else kept in file order), plus an optional items CSV
``item_id,category[,name]``. Column names are mapped by config, so an
invoice table such as the UCI Online Retail data reads as it is::

    --set data.session_column=InvoiceNo --set data.item_column=StockCode \\
    --set data.name_column=Description --set data.timestamp_column=InvoiceDate

Everything is held as flat NumPy arrays (:class:`SessionData`): ``tokens``
(one int32 item row per event, sessions concatenated) and ``offsets``
(session ``s`` is ``tokens[offsets[s]:offsets[s+1]]``).

:func:`skipgram_dataset` produces the training pairs in tf.data, vectorised
per batch of centre positions: windows, word2vec's shrunk windows and
frequent-item subsampling, negatives from the unigram distribution raised to
0.75 (by ``searchsorted`` on its cumulative sum). TensorFlow is imported
inside the functions that need it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nnkit.datasets.csv_reading import check_no_missing, read_csv_table
from nnkit.datasets.csv_times import read_times
from nnkit.datasets.items_file import check_repeats, read_items
from nnkit.errors import DataError


@dataclass
class SessionData:
    tokens: np.ndarray  # int32 item row per event
    offsets: np.ndarray  # int64, n_sessions + 1
    item_ids: np.ndarray  # str per row (rows sorted by count, most frequent first)
    counts: np.ndarray  # int64 occurrences per row
    categories: np.ndarray  # int32 category index per row, -1 unknown
    category_names: list = field(default_factory=list)
    names: np.ndarray | None = None  # str per row ('' unknown), or None
    summary: dict = field(default_factory=dict)
    # items x categories boolean CSR of every category of an item (several per item: a film's
    # genres), or None when each item has one; ``categories`` holds the first one listed
    extra_categories: object = None

    @property
    def vocab_size(self) -> int:
        return int(self.item_ids.size)

    @property
    def n_sessions(self) -> int:
        return int(self.offsets.size - 1)

    def session_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per event: the start and end (exclusive) position of its session, int32 or int64."""
        lengths = np.diff(self.offsets)
        dtype = np.int32 if self.tokens.size < 2**31 else np.int64
        return (np.repeat(self.offsets[:-1], lengths).astype(dtype),
                np.repeat(self.offsets[1:], lengths).astype(dtype))


# -- building SessionData ------------------------------------------------------------------

def from_arrays(tokens, offsets, item_ids, categories=None, category_names=(), names=None,
                min_count: int = 1, source: str = "sessions", extra_categories=None) -> SessionData:
    """Index items by frequency, drop rare items and sessions shorter than 2; report the counts.

    ``tokens`` index into ``item_ids`` (and ``categories``/``names``, per item).
    """
    tokens = np.asarray(tokens)
    offsets = np.asarray(offsets, dtype=np.int64)
    item_ids = np.asarray(item_ids)
    n_items = item_ids.size
    counts = np.bincount(tokens, minlength=n_items)
    keep_item = counts >= max(1, min_count)
    dropped_items = int(((counts > 0) & ~keep_item).sum())
    dropped_events = int(counts[~keep_item].sum())
    # rows: kept items by count (descending), ties by first index (stable)
    kept = np.flatnonzero(keep_item)
    kept = kept[np.argsort(-counts[kept], kind="stable")]
    row_of = np.full(n_items, -1, np.int64)
    row_of[kept] = np.arange(kept.size)
    rows = row_of[tokens]
    lengths = np.diff(offsets)
    session_of = np.repeat(np.arange(lengths.size), lengths)
    ok = rows >= 0
    rows, session_of = rows[ok], session_of[ok]
    new_lengths = np.bincount(session_of, minlength=lengths.size)
    long_enough = new_lengths >= 2
    dropped_sessions = int((~long_enough).sum())
    keep_event = long_enough[session_of]
    rows = rows[keep_event]
    new_lengths = new_lengths[long_enough]
    if rows.size == 0:
        if lengths.size == 0 or lengths.max() < 2:  # min_count is not the cause: nothing to lower
            raise DataError(f"{source}: every session has fewer than 2 events ({lengths.size} sessions), so "
                            "no two items are ever seen together; expected sessions (baskets, invoices, "
                            "visits) of 2 or more events: check that data.session_column names them")
        raise DataError(f"{source}: no session has 2 or more items left after dropping items seen fewer "
                        f"than data.min_count={min_count} times ({int((lengths >= 2).sum())} sessions had 2 "
                        "or more events before); lower data.min_count or give longer sessions")
    # items seen only in dropped sessions leave the vocabulary too (no training signal)
    kept_before = kept.size
    final_counts = np.bincount(rows, minlength=kept.size)
    present = np.flatnonzero(final_counts > 0)  # already in count order; re-rank by final counts
    present = present[np.argsort(-final_counts[present], kind="stable")]
    remap = np.full(kept.size, -1, np.int64)
    remap[present] = np.arange(present.size)
    rows = remap[rows]
    kept = kept[present]
    out_offsets = np.zeros(new_lengths.size + 1, np.int64)
    np.cumsum(new_lengths, out=out_offsets[1:])
    cats = (np.full(n_items, -1, np.int32) if categories is None else np.asarray(categories, np.int32))
    data = SessionData(
        tokens=rows.astype(np.int32),
        offsets=out_offsets,
        item_ids=item_ids[kept].astype(str),
        counts=final_counts[present].astype(np.int64),
        categories=cats[kept],
        category_names=list(category_names),
        names=None if names is None else np.asarray(names, dtype=str)[kept],
        extra_categories=None if extra_categories is None else extra_categories[kept],
    )
    data.summary = {
        "sessions": data.n_sessions,
        "events": int(data.tokens.size),
        "items": data.vocab_size,
        "items with a category": int((data.categories >= 0).sum()),
        "categories": len(data.category_names),
        "min_count": int(min_count),
        "items dropped (min_count)": dropped_items,
        "items dropped (only in short sessions)": int(kept_before - kept.size),
        "events dropped (min_count)": dropped_events,
        "sessions dropped (< 2 items)": dropped_sessions,
        "mean session length": round(float(data.tokens.size) / max(1, data.n_sessions), 2),
    }
    return data


def from_shop(shop, n_sessions: int, min_count: int = 1) -> SessionData:
    tokens, offsets = shop.sessions(n_sessions)
    data = from_arrays(tokens, offsets, shop.product_ids(), shop.categories, shop.category_names(),
                       min_count=min_count, source="shop generator")
    return data


# -- reading CSV files ---------------------------------------------------------------------

# the sessions file's optional columns: used when present; an error when missing only if the caller
# names them in ``required_columns`` (the user set the key to something other than its default)
OPTIONAL_COLUMNS = {"timestamp_column": "data.timestamp_column", "category_column": "data.category_column",
                    "name_column": "data.name_column"}


def read_sessions(path, *, items_path: str = "", session_column: str = "session_id",
                  item_column: str = "item_id", timestamp_column: str = "timestamp",
                  category_column: str = "category", name_column: str = "name",
                  category_separator: str = "", min_count: int = 1,
                  required_columns: Collection[str] = ()) -> SessionData:
    """Read a sessions CSV (and optional items CSV) into :class:`SessionData`.

    The timestamp, category and name columns are optional in the sessions file
    (used when present) unless named in ``required_columns`` (e.g.
    ``("timestamp_column",)``: then a missing column is an error; the category
    and name columns may also be in the items file). An items file must have the
    item column and the category or the name column (or both). ``category_separator`` (e.g. ``|``) splits a cell
    into several categories; the first one listed is the item's main category.
    """
    import pandas as pd

    path = Path(path)
    table = read_csv_table(path, "sessions file", {"data.session_column": session_column,
                                                    "data.item_column": item_column})
    frame = table.frame
    sessions = check_no_missing(table, session_column, "data.session_column", "a session id")
    items = check_no_missing(table, item_column, "data.item_column", "an item id")
    items_table, icol = read_items(items_path, item_column, category_column, name_column) if items_path else (None, "")
    _check_required(table, items_table, required_columns, timestamp_column=timestamp_column,
                    category_column=category_column, name_column=name_column)
    session_codes, session_uniques = pd.factorize(sessions, sort=False)  # order of first appearance
    if timestamp_column and timestamp_column in frame.columns:
        stamps = read_times(table, timestamp_column, session_codes)
    else:
        stamps = np.zeros(len(frame))
    order = np.lexsort((np.arange(len(frame)), stamps, session_codes))
    item_codes, item_uniques = pd.factorize(items, sort=False)
    tokens = item_codes[order]
    lengths = np.bincount(session_codes, minlength=len(session_uniques))
    offsets = np.zeros(lengths.size + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    item_ids = np.asarray(item_uniques, dtype=str)

    categories, category_names, names, extra = None, [], None, None
    cat_source = name_source = None
    repeated = 0
    if items_table is not None:
        iframe = items_table.frame
        repeated = check_repeats(items_table, icol, category_column)
        iframe = iframe.assign(**{icol: iframe[icol].str.strip()}).drop_duplicates(icol, keep="first")
        unmatched = _check_items_match(iframe[icol], item_ids, items_path, path)
        if category_column in iframe.columns:
            cat_source = iframe.set_index(icol)[category_column]
        if name_column and name_column in iframe.columns:
            name_source = iframe.set_index(icol)[name_column]
    if cat_source is None and category_column and category_column in frame.columns:
        cat_source = _first_per_item(frame[category_column], items)
    if name_source is None and name_column and name_column in frame.columns:
        name_source = _first_per_item(frame[name_column], items)
    if cat_source is not None:
        per_item = cat_source.reindex(item_ids)
        per_item = per_item.where(per_item.notna() & (per_item.astype(str).str.strip() != ""))
        categories, category_names, extra = _category_codes(per_item.astype("string").str.strip(),
                                                            category_separator)
    if name_source is not None:
        names = name_source.reindex(item_ids).fillna("").astype(str).str.strip().to_numpy(dtype=str)
    data = from_arrays(tokens, offsets, item_ids, categories, category_names, names,
                       min_count=min_count, source=str(path), extra_categories=extra)
    if items_path:
        data.summary["items file"] = str(items_path)
    if repeated:
        data.summary["items file rows repeating an item (first kept)"] = repeated
    if items_table is not None and unmatched:
        data.summary["items file rows naming no item of the sessions"] = unmatched
    return data


def _check_items_match(file_ids, item_ids: np.ndarray, items_path, path) -> int:
    """How many items-file ids name no item of the sessions; an error when none does (e.g. lost zeros)."""
    import pandas as pd

    known = pd.Index(item_ids)
    matched = file_ids.isin(known)
    if len(file_ids) and not matched.any():
        raise DataError(f"{items_path}: none of its {len(file_ids):,} item ids occurs in {path} (e.g. "
                        f"{file_ids.iloc[0]!r} there, {item_ids[0]!r} in the sessions); expected the same ids in "
                        "both files (a spreadsheet may have dropped leading zeros or changed the ids' format)")
    return int((~matched).sum())


def _first_per_item(column, items):
    """Per item id: its first non-empty cell of ``column`` in the sessions file."""
    cells = column.str.strip()
    return cells.where(cells != "").groupby(items.to_numpy(), sort=False).first()


def _check_required(table, items_table, required_columns, **columns) -> None:
    """A column named in ``required_columns`` must be in the sessions file (category/name: or the items file)."""
    unknown = set(required_columns) - set(OPTIONAL_COLUMNS)
    if unknown:
        raise ValueError(f"required_columns: unknown {sorted(unknown)}; expected some of {sorted(OPTIONAL_COLUMNS)}")
    for param in required_columns:
        column, key = columns[param], OPTIONAL_COLUMNS[param]
        found = column in table.frame.columns or (
            param != "timestamp_column" and items_table is not None and column in items_table.frame.columns)
        if column and not found:
            files = "the sessions file" if param == "timestamp_column" or items_table is None else "either file"
            raise DataError(f"{table.path}: no column {column!r} (config key {key}) in {files}; the file has "
                            f"columns {', '.join(repr(c) for c in table.frame.columns)}; set {key} to one of "
                            "them, or leave it unset (the column is then optional)")


def _category_codes(per_item, separator: str):
    """(main category code per item (-1 none), sorted names, items x categories CSR or None)."""
    import pandas as pd

    if not separator:
        codes, uniques = pd.factorize(per_item, sort=True)
        return codes.astype(np.int32), [str(u) for u in uniques], None  # NaN -> -1
    import scipy.sparse as sp

    parts = per_item.str.split(separator, regex=False).explode().str.strip()
    parts = parts[parts.notna() & (parts != "")]
    item_rows = np.asarray(parts.index.map(dict(zip(per_item.index, range(len(per_item))))), np.int64)
    codes, uniques = pd.factorize(parts, sort=True)
    matrix = sp.csr_matrix((np.ones(codes.size, bool), (item_rows, codes)), shape=(len(per_item), len(uniques)))
    main = np.full(len(per_item), -1, np.int32)
    first = np.unique(item_rows, return_index=True)[1]  # explode keeps the listed order
    main[item_rows[first]] = codes[first]
    return main, [str(u) for u in uniques], matrix


# -- skip-gram pairs -------------------------------------------------------------------------

def skipgram_pairs(tokens, offsets, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (target, context) pair within ``window`` positions in the same session (NumPy).

    The reference the tf.data pipeline is tested against, and the co-occurrence
    counts of the PPMI baseline. Pairs come out grouped by distance.
    """
    tokens = np.asarray(tokens)
    offsets = np.asarray(offsets)
    session = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    targets, contexts = [], []
    for d in range(1, window + 1):
        same = session[:-d] == session[d:]
        left, right = tokens[:-d][same], tokens[d:][same]
        targets += [left, right]
        contexts += [right, left]
    return np.concatenate(targets), np.concatenate(contexts)


def noise_distribution(counts, power: float = 0.75) -> np.ndarray:
    """Cumulative unigram^power distribution (float64, last value 1.0) for negative sampling."""
    weights = np.asarray(counts, np.float64) ** power
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def keep_probabilities(counts, sample: float) -> np.ndarray:
    """word2vec's subsampling: P(keep) = (sqrt(f / s) + 1) * s / f, capped at 1 (s=0: keep all)."""
    counts = np.asarray(counts, np.float64)
    if sample <= 0:
        return np.ones_like(counts, dtype=np.float32)
    threshold = sample * counts.sum()
    keep = (np.sqrt(counts / threshold) + 1.0) * threshold / np.maximum(counts, 1.0)
    return np.minimum(keep, 1.0).astype(np.float32)


def skipgram_dataset(data: SessionData, *, window: int = 3, negatives: int = 5, centers_per_batch: int = 512,
                     power: float = 0.75, sample: float = 1e-3, shrink: bool = True, seed: int = 0,
                     category_labels: np.ndarray | None = None, labels: bool = True, context: str = "window",
                     grouped: bool = False):
    """tf.data of skip-gram batches: ``((target, contexts), {"skipgram"[, "category"]})``.

    One element per batch of ``centers_per_batch`` centre positions (a fresh
    permutation every epoch); each centre gives up to ``2 * window`` pairs, so
    batches vary in size. ``contexts[:, 0]`` is the true context, the other
    columns negatives drawn from unigram^``power`` (``negatives=0``: the
    true context only, for a model that draws shared negatives itself). ``shrink`` draws each
    centre's window uniformly in 1..window (word2vec). ``sample`` drops
    frequent items per occurrence (0 = off). ``category_labels`` (int per
    item, -1 unknown) adds the target's category as a second label.
    ``context="session"`` draws each centre's ``2 * window`` contexts
    uniformly from anywhere in its session instead of its neighbours (the
    "window = whole session" of item2vec, Caselles-Dupré et al. 2018, at the
    cost of a fixed window); shrinking and subsampling apply the same way.
    ``grouped=True`` (the full-softmax objective) yields one row per centre
    instead of one per pair: ``(target, {"skipgram": contexts[, "category"]})``
    with ``contexts`` ``(centres, 2 * window)`` item rows, ``-1`` where a
    context is out of the session, beyond the shrunk window or subsampled;
    centres left with no context are dropped, and no negatives are drawn.
    The dataset has a known cardinality (batches per epoch).
    """
    import tensorflow as tf

    if context not in ("window", "session"):
        raise ValueError(f"context must be 'window' or 'session'. Received: context={context!r}")
    whole_session = context == "session"

    n = int(data.tokens.size)
    batches = -(-n // centers_per_batch)
    starts, ends = data.session_bounds()
    tokens_t = tf.constant(data.tokens, tf.int32)
    starts_t = tf.constant(starts.astype(np.int32))
    ends_t = tf.constant(ends.astype(np.int32))
    cdf_t = tf.constant(noise_distribution(data.counts, power), tf.float64)
    keep_t = tf.constant(keep_probabilities(data.counts, sample))
    subsample = sample > 0
    offs = np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)]).astype(np.int32)
    offs_t = tf.constant(offs)
    dist_t = tf.constant(np.abs(offs))
    vocab = data.vocab_size
    cats_t = None if category_labels is None else tf.constant(np.asarray(category_labels, np.int32))
    label_row = tf.constant([[1.0] + [0.0] * negatives])

    def epoch(s):
        perm = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int32),
                                                       seed=tf.stack([s, tf.constant(1, tf.int64)]))
        perm = tf.pad(perm, [[0, batches * centers_per_batch - n]], constant_values=-1)
        perm = tf.reshape(perm, [batches, centers_per_batch])
        return tf.data.Dataset.from_tensor_slices(
            (perm, tf.range(batches, dtype=tf.int64), tf.fill([batches], s)))

    def make(centers, index, s):
        seed_a = tf.stack([s, index * 4 + 2])
        seed_b = tf.stack([s, index * 4 + 3])
        seed_c = tf.stack([s, index * 4 + 4])
        seed_e = tf.stack([s, index * 4 + 5])
        valid = centers >= 0
        centers = tf.maximum(centers, 0)
        start, end = tf.gather(starts_t, centers)[:, None], tf.gather(ends_t, centers)[:, None]
        if whole_session:  # 2 * window other positions of the session, uniformly (order ignored)
            draw = tf.random.stateless_uniform([centers_per_batch, 2 * window], seed_e)
            pos = start + tf.cast(draw * tf.cast(end - start - 1, tf.float32), tf.int32)
            pos = tf.minimum(pos, end - 2)
            pos += tf.cast(pos >= centers[:, None], tf.int32)  # skip the centre itself
        else:
            pos = centers[:, None] + offs_t[None, :]
        mask = (pos >= start) & (pos < end) & valid[:, None]
        if shrink and window > 1:
            reach = tf.random.stateless_uniform([centers_per_batch], seed_a, minval=1, maxval=window + 1,
                                                dtype=tf.int32)
            mask &= dist_t[None, :] <= reach[:, None]
        pos = tf.clip_by_value(pos, 0, n - 1)
        target = tf.gather(tokens_t, centers)
        context = tf.gather(tokens_t, pos)
        if subsample:
            u = tf.random.stateless_uniform([centers_per_batch, 2 * window + 1], seed_b)
            mask &= (u[:, :1] < tf.gather(keep_t, target)[:, None]) & (u[:, 1:] < tf.gather(keep_t, context))
        if grouped:  # one row per centre: its contexts, -1 where masked
            kept = tf.reduce_any(mask, axis=1)
            x = tf.boolean_mask(target, kept)
            contexts = tf.boolean_mask(tf.where(mask, context, -1), kept)
            if not labels:
                return x
            y = {"skipgram": contexts}
            if cats_t is not None:
                y["category"] = tf.gather(cats_t, x)
            return x, y
        target = tf.boolean_mask(tf.broadcast_to(target[:, None], tf.shape(pos)), mask)
        context = tf.boolean_mask(context, mask)
        m = tf.shape(target)[0]
        if negatives:
            draws = tf.random.stateless_uniform([1, m * negatives], seed_c, dtype=tf.float64)
            noise = tf.searchsorted(cdf_t[None, :], draws, side="right", out_type=tf.int32)
            noise = tf.reshape(tf.minimum(noise, vocab - 1), [m, negatives])
            x = (target, tf.concat([context[:, None], noise], axis=1))
        else:  # the model draws its own (shared) negatives
            x = (target, context[:, None])
        if not labels:
            return x
        y = {"skipgram": tf.tile(label_row, [m, 1])}
        if cats_t is not None:
            y["category"] = tf.gather(cats_t, target)
        return x, y

    ds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    ds = ds.flat_map(epoch).map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.apply(tf.data.experimental.assert_cardinality(batches))
    return ds.prefetch(tf.data.AUTOTUNE)
