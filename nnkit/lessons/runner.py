"""Run one lesson into a folder shaped like a run, and write its report.

    <folder>/config.toml   the lesson's resolved options
             meta.json     versions, seed, command, status, wall time
             metrics.json  {"lesson", "claim", "held", "measures", "verdict", "caveats"}
             plots/*.png   what the report shows
             report.md     claim, setup, numbers, plots, verdict, caveats
             variants/     one train.fit run folder per trained variant

Options resolve like a recipe's config: the lesson's defaults < ``--quick``
sizes < ``--set`` < ``--seed``; unknown keys and wrong types are refused.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

from nnkit import config as config_mod
from nnkit.lessons import get_lesson
from nnkit.runs import create_run, write_json, write_text

COMMON = {
    "seed": config_mod.Field(0, "first seed (a lesson with several seeds uses seed, seed+1, ...)", min=0),
}


def lesson_schema(lesson) -> dict:
    return {"lesson": {**COMMON, **lesson.options}}


def resolve_options(lesson, quick: bool = False, seed: int | None = None, overrides=()) -> dict:
    """Defaults < --quick < --set (``key=value`` or ``lesson.key=value``) < --seed."""
    schema = lesson_schema(lesson)
    items = [item if item.split("=", 1)[0].strip().startswith("lesson.") else f"lesson.{item.strip()}"
             for item in overrides]
    layer = config_mod.overrides_to_dict(items)
    if seed is not None:
        layer = config_mod.merge(layer, {"lesson": {"seed": seed}})
    quick_layer = {"lesson": dict(lesson.quick)} if quick else {}
    cfg = config_mod.resolve(schema, quick_layer, overrides=layer,
                             recipe_source=f"lesson {lesson.name} --quick sizes")
    return cfg["lesson"]


def run_lesson(name: str, *, quick: bool = False, out: str | None = None, seed: int | None = None,
               overrides=(), runs_root: str = "runs", command: list | None = None, echo=None) -> Path:
    """Run the lesson ``name``; returns its folder."""
    from nnkit.lessons.base import Outcome
    from nnkit.lessons.fitting import Context

    lesson = get_lesson(name)
    options = resolve_options(lesson, quick, seed, overrides)
    _quiet_tensorflow()
    run = create_run(name, out=out, root=str(Path(runs_root) / "lessons"))
    write_text(run.config_file, config_mod.to_toml({"lesson": {"name": name, "quick": quick, **options}}))
    meta = {"lesson": name, "status": "running", "quick": quick, "seed": options["seed"],
            "command": list(command if command is not None else sys.argv), "host": platform.node(),
            "pid": os.getpid(), "cpu_threads": os.cpu_count()}
    write_json(run.meta_file, meta)
    ctx = Context(lesson, options, quick, run.path)
    started = time.perf_counter()
    try:
        outcome = lesson.experiment(ctx)
    except BaseException as exc:
        run.set_status("failed" if not isinstance(exc, KeyboardInterrupt) else "interrupted",
                       error=f"{type(exc).__name__}: {exc}")
        raise
    if not isinstance(outcome, Outcome) or not isinstance(outcome.held, bool):
        raise TypeError(f"lesson {name}: experiment must return an Outcome with a boolean 'held'")
    seconds = time.perf_counter() - started
    from nnkit import train

    run.update_meta(status="finished", wall_seconds=round(seconds, 1), variants_trained=ctx.fits,
                    versions={"nnkit": __import__("nnkit").__version__, "python": platform.python_version(),
                              **train.versions()})
    document = {"lesson": name, "claim": lesson.claim, "held": outcome.held,
                "measures": _clean(outcome.measures), "verdict": outcome.verdict, "caveats": list(outcome.caveats),
                "quick": quick, "wall_seconds": round(seconds, 1)}
    write_json(run.metrics_file, document)
    write_report(run, lesson, options, outcome, seconds, quick)
    if echo:
        echo(f"{'HELD' if outcome.held else 'NOT HELD'}: {outcome.verdict}")
    return run.path


def _clean(value):
    from nnkit.report import _clean as clean

    return clean(value)


def write_report(run, lesson, options: dict, outcome, seconds: float, quick: bool) -> Path:
    meta = run.meta()
    plots = sorted(run.plot_dir.glob("*.png")) if run.plot_dir.is_dir() else []
    size = "quick (test) size: numbers are indicative only" if quick else "default size"
    parts = [f"# Lesson: {lesson.name}", "",
             f"**Claim (the notes).** {lesson.claim}", "",
             f"**Result: {'held' if outcome.held else 'did not hold'}.** {outcome.verdict}", "",
             "## Setup", "", lesson.setup, "",
             f"Options ({size}): " + ", ".join(f"`{k}={v}`" for k, v in options.items()) + ".", "",
             f"{meta.get('variants_trained', 0)} variants trained with `nnkit.train.fit` in "
             f"{seconds:.0f} s wall time ({os.cpu_count()} CPU threads; other work may have shared them). "
             "Each variant's history and TensorBoard logs are under `variants/`.", ""]
    if outcome.tables:
        parts += ["## Numbers", ""]
        for title, table in outcome.tables:
            parts += [f"### {title}", "", table, ""]
    if plots:
        parts += ["## Plots", ""] + [f"![{p.stem}](plots/{p.name})" for p in plots] + [""]
    if outcome.caveats:
        parts += ["## Caveats", ""] + [f"- {c}" for c in outcome.caveats] + [""]
    parts += ["## Reproduce", "", "```", " ".join(meta.get("command", [])), "```", "",
              "Versions: " + ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items()
                                      if not isinstance(v, list)), ""]
    write_text(run.report_file, "\n".join(parts))
    return run.report_file


def list_lines() -> list:
    """One line per lesson: name, measured default-size time, claim. Imports no TensorFlow."""
    from nnkit.lessons import lesson_names

    lines = [f"{'lesson':<20} {'time*':>8}  claim"]
    for name in lesson_names():
        lesson = get_lesson(name)
        took = f"{lesson.seconds / 60:.1f} min" if lesson.seconds else "-"
        lines.append(f"{name:<20} {took:>8}  {lesson.claim}")
    lines.append("* CPU time of a default-size run (about the wall time on 2 idle cores); --quick: well under a "
                 "minute. Run one: nnkit lesson NAME [--quick] [--seed N] [--set KEY=VALUE]")
    return lines


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")


