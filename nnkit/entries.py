"""Explicit registries: a name mapped to ``"module:attribute"``, imported only when used.

Tasks and lessons are both registered this way (no side-effect
registration), so listing them never imports TensorFlow.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping

from nnkit.errors import NnkitError


def import_entry(table: Mapping[str, str], name: str, kind: str):
    """The attribute ``table[name]`` points at; an unknown name is one clear error with a suggestion."""
    if name not in table:
        close = difflib.get_close_matches(name, table, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise NnkitError(f"unknown {kind} {name!r}; known {kind}s: {', '.join(table)}{hint}")
    module_name, attribute = table[name].split(":")
    return getattr(importlib.import_module(module_name), attribute)
