"""The items CSV of a sessions file (``item_id,category[,name]``): its id column, and rows that repeat an item."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnkit.datasets.csv_reading import CsvTable, check_no_missing, read_csv_table
from nnkit.errors import DataError


def read_items(items_path: str, item_column: str, category_column: str, name_column: str = "") -> tuple[CsvTable, str]:
    """The items CSV and its id column: ``item_column`` (as in the sessions file) or else ``item_id``.

    It names the items' categories, their names, or both: one of the two columns must be there.
    """
    ipath = Path(items_path)
    header = ",".join(c for c in (item_column, category_column, name_column) if c)
    table = read_csv_table(ipath, "items file", {}, example=header)
    columns = list(table.frame.columns)
    if category_column not in columns and name_column not in columns:
        wanted = " or ".join(f"{c!r} (config key data.{k})" for k, c in
                             (("category_column", category_column), ("name_column", name_column)) if c)
        raise DataError(f"{ipath}: no column {wanted}; the items file has columns "
                        f"{', '.join(repr(c) for c in columns)}; set the key to the column that holds them")
    icol = item_column if item_column in columns else "item_id" if "item_id" in columns else None
    if icol is None:
        also = "" if item_column == "item_id" else " or 'item_id'"
        raise DataError(f"{ipath}: no column {item_column!r} (config key data.item_column, the item id "
                        f"column of the sessions file){also}; the items file has columns "
                        f"{', '.join(repr(c) for c in columns)}; expected its item ids under "
                        f"{item_column!r}{also}")
    check_no_missing(table, icol, "data.item_column", "an item id")
    return table, icol


def check_repeats(table: CsvTable, item_column: str, category_column: str) -> int:
    """How many items-file rows repeat an earlier item with the same category; an error when it differs.

    Two categories for one item in two rows are either a mistake or a long table of several
    categories per item; keeping one silently would score the evaluation against a guess.
    """
    ids = table.frame[item_column].str.strip()
    repeated = ids.duplicated(keep="first").to_numpy()
    if not repeated.any() or category_column not in table.frame.columns:
        return int(repeated.sum())
    cats = table.frame[category_column].str.strip()
    first_cat = cats.groupby(ids.to_numpy(), sort=False).transform("first")
    conflict = repeated & (cats != first_cat).to_numpy()
    if conflict.any():
        row = int(np.flatnonzero(conflict)[0])
        first = int(np.flatnonzero((ids == ids.iloc[row]).to_numpy())[0])
        raise DataError(f"{table.where(row)}: item {ids.iloc[row]!r} again, with category {cats.iloc[row]!r}; "
                        f"line {table.line(first)} gave it {cats.iloc[first]!r}; expected one row per item "
                        "(several categories go in one cell, split by data.category_separator, e.g. 'A|B')")
    return int(repeated.sum())
