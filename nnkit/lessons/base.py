"""What a lesson declares, and what it hands back.

A lesson is one claim from the notes turned into an experiment. It declares
its options (sizes, seeds, epochs: :class:`nnkit.config.Field` objects, so
``--set`` is validated like a recipe's), the values ``--quick`` uses, and an
``experiment(ctx)`` function that trains variants through nnkit's own
builders and ``train.fit`` (:mod:`nnkit.lessons.fitting`) and returns an
:class:`Outcome`. Lesson modules import TensorFlow only inside
``experiment``, so ``nnkit lesson --list`` stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping


@dataclass(frozen=True)
class Lesson:
    name: str
    claim: str  # the notes' claim, one sentence
    setup: str  # what is trained and measured, in words (report.md's "Setup")
    options: Mapping  # key -> config.Field (sizes, seeds, epochs)
    quick: Mapping  # key -> value used by --quick (tests)
    experiment: Callable  # experiment(ctx) -> Outcome
    # CPU seconds (user + sys) of a default-size run, measured for docs/lessons.md; about the wall time on
    # two idle cores (TensorFlow keeps both busy only part of the time). Shown by --list.
    seconds: float | None = None


@dataclass
class Outcome:
    held: bool
    verdict: str  # one plain sentence with the numbers
    measures: dict  # JSON-able numbers: the headline values and per-variant results
    tables: list = field(default_factory=list)  # (title, markdown) pairs for report.md
    caveats: list = field(default_factory=list)  # sentences: what the result depends on


def agreement(flags) -> tuple[int, int]:
    """(how many seeds agreed, how many seeds there were) for a per-seed list of booleans."""
    flags = [bool(f) for f in flags]
    return sum(flags), len(flags)


def markdown_table(header, rows) -> str:
    def cell(value):
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
