"""The flow behind `nnkit run`: resolve -> load data -> train -> evaluate -> report -> export.

Each stage reads what it needs from the run folder or from the stage before,
and records itself in ``meta.json`` (``stages``), so ``nnkit resume`` continues
with the first stage not done. Everything that can fail on the user's input
(config, data) happens before the run folder is created, so a bad input
leaves nothing behind.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from nnkit import config as config_mod
from nnkit.errors import NnkitError
from nnkit.registry import Recipe, load_recipe
from nnkit.runs import Run, base_meta, create_run, open_run, sweep_partial, write_json, write_text
from nnkit.tasks import get_task

RUN_STAGES = ("train", "evaluate", "report", "export")

DATA_SCHEMA = {"path": config_mod.Field("", "your data file or folder (empty: the bundled source)")}


def task_schema(task) -> dict:
    schema = config_mod.full_schema(task.schema, task.train_defaults)
    schema["data"] = {**DATA_SCHEMA, **schema.get("data", {})}
    return schema


@dataclass
class Resolved:
    recipe: Recipe
    task: object
    cfg: dict


def resolve(recipe_ref: str, data: str | None = None, config_file: str | None = None,
            overrides: list[str] = (), flags: dict | None = None, own_data: bool | None = None) -> Resolved:
    """Recipe + task defaults + --config + --set (+ dedicated flags) -> validated config.

    ``own_data``: whether the user gives the data (default: ``data`` is set), which brings in the
    recipe's ``[with_data]`` table; the Python API passes True for in-memory data.
    """
    recipe = load_recipe(recipe_ref)
    task = get_task(recipe.task)
    schema = task_schema(task)
    file_layer = config_mod.read_toml(config_file) if config_file else None
    set_layer = config_mod.overrides_to_dict(overrides)
    flag_layer = {}
    for dotted, value in (flags or {}).items():  # --seed, --epochs, ...: sugar for --set
        if value is not None:
            section, key = dotted.split(".")
            flag_layer.setdefault(section, {})[key] = value
    if data is not None:
        flag_layer.setdefault("data", {})["path"] = str(Path(data).expanduser().resolve())
    cfg = config_mod.resolve(schema, recipe.config, file_layer,
                             config_mod.merge(set_layer, flag_layer),
                             recipe_source=str(recipe.path), config_source=str(config_file),
                             with_data=recipe.with_data if (data is not None if own_data is None else own_data)
                             else None)
    cfg["recipe"]["name"] = recipe.name
    return Resolved(recipe, task, cfg)


def run_config(run: Run) -> Resolved:
    """The task and validated config of an existing run folder."""
    cfg = run.config()
    task = get_task(cfg.get("recipe", {}).get("task", ""))
    cfg = config_mod.resolve(task_schema(task), cfg, recipe_source=str(run.config_file))
    recipe = Recipe(cfg["recipe"]["name"], run.config_file, cfg)
    return Resolved(recipe, task, cfg)


# -- interruption ------------------------------------------------------------------------

class Interrupted(Exception):
    pass


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _guard(run: Run, work):
    """Run ``work()``; record the run's status whatever happens, and say how to resume."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        result = work()
    except KeyboardInterrupt:
        run.set_status("interrupted")
        raise Interrupted(f"interrupted; state saved. Continue with: nnkit resume {run.path}") from None
    except NnkitError as exc:
        run.set_status("failed", error=str(exc))
        raise
    except BaseException as exc:
        run.set_status("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    return result


# -- stages ------------------------------------------------------------------------------

def start(resolved: Resolved, stages=RUN_STAGES, out: str | None = None, runs_root: str = "runs",
          command: list[str] | None = None, *, adopt=None, callbacks=None, on_stage=None) -> Run:
    """Load the data (so bad data fails before anything is written), then create and run.

    For callers above the pipeline (``nnkit.api``): ``adopt(run, cfg, prepared) -> cfg`` is
    called once the run folder exists, before ``config.toml`` and ``meta.json`` are written
    (in-memory data staged elsewhere moves into the run folder and the config points at it,
    so later commands read it there); ``callbacks`` are
    extra Keras callbacks for ``train.fit``; ``on_stage(stage, event)`` hears each stage's
    "start" and "done".
    """
    task, cfg = resolved.task, resolved.cfg
    _quiet_tensorflow()
    _prepare_devices(cfg)
    prepared = task.load(cfg)
    run = create_run(resolved.recipe.name, out=out, root=runs_root)
    if adopt is not None:
        cfg = adopt(run, cfg, prepared)
    write_text(run.config_file, config_mod.to_toml(cfg))
    meta = base_meta(resolved.recipe.name, task.name, cfg, command)
    meta.update(requested_stages=list(stages), data_fingerprint=prepared.fingerprint, pid=os.getpid(),
                data=prepared.summary)
    write_json(run.meta_file, meta)
    write_json(run.state_file, prepared.state)
    _guard(run, lambda: _execute(run, task, cfg, stages, prepared, callbacks, on_stage))
    return run


def resume(run_path: str) -> Run:
    run = open_run(run_path)
    resolved = run_config(run)
    meta = run.meta()
    if meta.get("status") == "finished":
        raise NnkitError(f"{run.path}: already finished; nothing to resume")
    stages = meta.get("requested_stages", list(RUN_STAGES))
    sweep_partial(run.path)  # half-written files of the killed process (never renamed into place)
    _quiet_tensorflow()
    _prepare_devices(resolved.cfg)
    run.set_status("running", resumed=meta.get("resumed", 0) + 1, pid=os.getpid())
    _guard(run, lambda: _execute(run, resolved.task, resolved.cfg, stages, None))
    return run


def _execute(run: Run, task, cfg: dict, stages, prepared, callbacks=None, on_stage=None) -> None:
    from nnkit import train

    done = set(run.meta().get("stages", []))
    model = None
    if prepared is None and ({"train", "evaluate"} & (set(stages) - done)):
        prepared = task.load(cfg)
    run.update_meta(versions={**run.meta()["versions"], **train.versions()})
    if "train" in stages and "train" not in done:
        _heard(on_stage, "train", "start")
        model = train.fit(task, cfg, prepared, run, extra_callbacks=callbacks)
        _stage_done(run, "train", on_stage)
    if "train" in run.meta().get("stages", []):
        import shutil  # the resumable checkpoint is no longer needed once model.keras is recorded

        shutil.rmtree(run.checkpoint_dir / "backup", ignore_errors=True)
    if "evaluate" in stages and "evaluate" not in done:
        _heard(on_stage, "evaluate", "start")
        model = model or train.load_model(run.model_file, task.custom_objects())
        evaluate(run, task, cfg, model, prepared)
        _stage_done(run, "evaluate", on_stage)
    if "report" in stages and "report" not in done:
        _heard(on_stage, "report", "start")
        report(run)
        _stage_done(run, "report", on_stage)
    if "export" in stages and "export" not in done:
        from nnkit.export import export

        _heard(on_stage, "export", "start")
        export(run, task, "saved_model", model)
        _stage_done(run, "export", on_stage)
    run.set_status("finished")


def _stage_done(run: Run, stage: str, on_stage=None) -> None:
    stages = run.meta().get("stages", [])
    if stage not in stages:
        run.update_meta(stages=stages + [stage])
    _heard(on_stage, stage, "done")


def _heard(on_stage, stage: str, event: str) -> None:
    if on_stage is not None:
        on_stage(stage, event)


def evaluate(run: Run, task, cfg: dict, model, prepared):
    from nnkit.report import plot_history, write_metrics

    evaluation = task.evaluate(model, prepared, cfg)
    write_metrics(run, evaluation)
    run.plot_dir.mkdir(parents=True, exist_ok=True)
    plot_history(run)
    task.plots(model, prepared, evaluation, run)
    return evaluation


def evaluate_run(run: Run) -> None:
    """``nnkit evaluate RUN``: reload the model and the data the run names, evaluate, rewrite the report."""
    from nnkit import train

    resolved = run_config(run)
    task, cfg = resolved.task, resolved.cfg
    model = train.load_model(run.model_file, task.custom_objects())
    evaluate(run, task, cfg, model, task.load(cfg))
    report(run)


def report(run: Run) -> Path:
    from nnkit.report import write_report
    from nnkit.runs import read_json

    if not run.metrics_file.is_file():
        raise NnkitError(f"{run.path}: no metrics.json yet (run `nnkit evaluate {run.path}` first)")
    document = read_json(run.metrics_file)
    return write_report(run, document, run.meta().get("data"))


def _prepare_devices(cfg: dict) -> None:
    """Before the first TensorFlow op: logical CPU devices, a multi-worker strategy (nnkit.distribute)."""
    from nnkit.distribute import prepare

    prepare(cfg["train"])


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")
    if "tensorflow" not in sys.modules:
        import logging

        logging.getLogger("absl").setLevel(logging.ERROR)
