"""The Python API: ``nnkit.run(...)`` for notebooks and scripts, the CLI's machinery underneath.

``nnkit.run`` resolves the recipe with the same priority and validation as
``nnkit run`` (``overrides`` are ``--set``, ``config`` is ``--config``), runs
the same pipeline and returns a :class:`~nnkit.api_run.Run` on the run
folder. Problems with the input raise the CLI's ``NnkitError`` subclasses
with the CLI's one-line message (the CLI prints it after ``error:``).

In-memory data (DataFrames, arrays, lists of strings) is written in the
task's user format and read by the task's reader (``nnkit.api_data``); it
ends up in ``<run>/data/``, so the CLI can evaluate, resume and predict
on the run afterwards.

Nothing here imports TensorFlow at import time; ``import nnkit`` stays light.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterable, Mapping

from nnkit.errors import ConfigError, NnkitError

__all__ = ["run", "load_run", "list_recipes", "show"]


def run(recipe: str, data: Any = None, *, config: str | os.PathLike | None = None,
        overrides: Mapping | Iterable[str] | None = None, out: str | os.PathLike | None = None,
        seed: int | None = None, epochs: int | None = None, strategy: str | None = None,
        stages: str | Iterable[str] | None = None, quiet: bool = False):
    """Train (and by default evaluate, report and export) ``recipe``; return the run.

    ``data``: None (the bundled source), a path (as ``--data``), or in-memory
    data the task can take: a pandas DataFrame (tables; prices with a date
    column or a DatetimeIndex; sessions; sentence pairs), ``(x, y)`` numpy
    arrays (images, sequences), a list of (source, target) string pairs
    (translation), a list of sessions or a string / list of strings (text).
    ``overrides``: ``{"train.epochs": 5}`` (dotted keys or nested dicts), or
    ``["train.epochs=5"]`` as ``--set`` takes them. ``stages``: ``"train"``
    trains only (``nnkit train``); default all four. ``quiet``: no progress.
    In a Jupyter kernel progress is one bar per stage instead of Keras's log.
    """
    from nnkit import api_data, pipeline
    from nnkit.api_progress import NotebookProgress, in_notebook
    from nnkit.api_run import Run

    wanted = _stages(stages)
    notebook = in_notebook()
    set_items = _override_items(overrides)
    flags = {"train.seed": seed, "train.epochs": epochs, "train.strategy": strategy,
             "train.verbose": False if quiet or notebook else None}
    in_memory = api_data.is_in_memory(data)
    resolved = pipeline.resolve(recipe, None if in_memory else data, config, set_items, flags,
                                own_data=data is not None)  # in-memory data is the user's too: [with_data]
    command = cli_command(recipe, None if in_memory else data, config, set_items, out, seed, epochs, strategy,
                          quiet, wanted)
    staged = None
    if in_memory:
        staged = api_data.stage(resolved.task.name, data, resolved.cfg)
        for key in staged.files:
            if resolved.cfg["data"].get(key):
                staged.cleanup()
                raise ConfigError(f"data.{key} is set ({resolved.cfg['data'][key]!r}) and data= holds it in "
                                  f"memory too; give it one way")
        staged.apply(resolved.cfg)
        command[3:3] = ["--data", str(staged.path("path").resolve())]  # rewritten to <run>/data/ on adoption
        if "items" in staged.files:
            command += ["--set", f"data.items={staged.path('items').resolve()}"]
    progress = NotebookProgress() if notebook and not quiet else None
    try:
        with _tensorflow_info_muted(notebook or quiet):
            folder = pipeline.start(
                resolved, stages=wanted, out=None if out is None else str(out), command=command,
                adopt=None if staged is None else staged.adopter(command),
                callbacks=progress.callbacks() if progress else None,
                on_stage=progress.on_stage if progress else None)
    except NnkitError as exc:
        if staged is not None and staged.final is None:  # failed while reading the staged files
            raise type(exc)(staged.rename(str(exc))) from None
        raise
    finally:
        if staged is not None:
            staged.cleanup()
    return Run(folder.path)


@contextlib.contextmanager
def _tensorflow_info_muted(mute: bool):
    """No "INFO:tensorflow:Assets written to ..." lines in a notebook cell (restored afterwards)."""
    import logging

    logger = logging.getLogger("tensorflow")
    level = logger.level
    if mute:
        logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def load_run(path: str | os.PathLike):
    """Reopen a run folder (made by ``nnkit.run`` or the CLI)."""
    from nnkit.api_run import Run

    return Run(path)


def list_recipes() -> list[dict]:
    """The bundled recipes: ``[{"name", "task", "description"}, ...]`` (as ``nnkit list``)."""
    from nnkit.registry import bundled_names, load_recipe

    recipes = []
    for name in bundled_names():
        recipe = load_recipe(name)
        recipes.append({"name": name, "task": recipe.task, "description": recipe.description})
    return recipes


def show(recipe: str, overrides: Mapping | Iterable[str] | None = None, *, data: str | os.PathLike | None = None,
         config: str | os.PathLike | None = None) -> dict:
    """The resolved config of ``recipe`` as a nested dict (as ``nnkit show``); no TensorFlow."""
    from nnkit import pipeline

    return pipeline.resolve(recipe, data, config, _override_items(overrides)).cfg


# -- arguments ---------------------------------------------------------------------------------

def _stages(stages) -> tuple:
    from nnkit.pipeline import RUN_STAGES

    if stages is None:
        return RUN_STAGES
    wanted = [stages] if isinstance(stages, str) else list(stages)
    unknown = [s for s in wanted if s not in RUN_STAGES]
    if unknown:
        raise ConfigError(f"stages: unknown stage {unknown[0]!r}; expected some of {', '.join(RUN_STAGES)}")
    if "train" not in wanted:
        raise ConfigError("stages: a new run trains first; include 'train' (evaluate, report and export "
                          "an existing run with load_run(path).evaluate() / .export())")
    return tuple(s for s in RUN_STAGES if s in wanted)


def _override_items(overrides) -> list[str]:
    """``{"train.epochs": 5}`` (or nested dicts) -> ``["train.epochs=5"]``, the ``--set`` text.

    Going through the ``--set`` parser keeps one validation path, and the
    errors are the CLI's own.
    """
    if overrides is None:
        return []
    if isinstance(overrides, str):
        return [overrides]
    if not isinstance(overrides, Mapping):
        return [str(item) for item in overrides]
    items = []
    for key, value in _flatten(overrides):
        items.append(f"{key}={_toml_value(key, value)}")
    return items


def _flatten(mapping: Mapping, prefix: str = ""):
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, name + ".")
        else:
            yield name, value


def _toml_value(key: str, value) -> str:
    import tomli_w

    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalars
        value = value.item()
    elif hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    try:
        return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()
    except TypeError:
        raise ConfigError(f"overrides: {key!r}: received {value!r} ({type(value).__name__}); expected a "
                          "number, boolean, string or list") from None


def cli_command(recipe, data, config, set_items, out, seed, epochs, strategy, quiet, stages) -> list[str]:
    """The ``nnkit`` command line that does what this call does (meta.json's ``command``)."""
    command = ["nnkit", "train" if stages == ("train",) else "run", str(recipe)]
    if data is not None:
        command += ["--data", str(os.path.abspath(data))]
    if config is not None:
        command += ["--config", str(os.path.abspath(config))]
    for item in set_items:
        command += ["--set", item]
    for flag, value in (("--out", out), ("--seed", seed), ("--epochs", epochs), ("--strategy", strategy)):
        if value is not None:
            command += [flag, str(value)]
    if quiet:
        command.append("--quiet")
    return command
