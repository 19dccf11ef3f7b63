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
from nnkit.errors import NnkitError, TrainingDiverged
from nnkit.registry import Recipe, load_recipe
from nnkit.runs import Run, base_meta, create_run, locked, open_run, sweep_partial, write_json, write_text
from nnkit.tasks import get_task
from nnkit.tuning import space as tuning_space

RUN_STAGES = ("train", "evaluate", "report", "export")

DATA_SCHEMA = {"path": config_mod.Field("", "your data file or folder (empty: the bundled source)", path=True)}


def task_schema(task) -> dict:
    schema = config_mod.full_schema(task.schema, task.train_defaults)
    schema["data"] = {**DATA_SCHEMA, **schema.get("data", {})}
    schema["tune"] = tuning_space.tune_section(schema)  # the search space nnkit tune reads
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
    _absolute_paths(schema, cfg)
    cfg["tune"] = tuning_space.merge_layers(schema, [(recipe.config, str(recipe.path)),
                                                     (file_layer, str(config_file)), (set_layer, "--set")])
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
          command: list[str] | None = None, *, adopt=None, callbacks=None, on_stage=None,
          run: Run | None = None) -> Run:
    """Load the data (so bad data fails before anything is written), then create and run.

    For callers above the pipeline (``nnkit.api``): ``adopt(run, cfg, prepared) -> cfg`` is
    called once the run folder exists, before ``config.toml`` and ``meta.json`` are written
    (in-memory data staged elsewhere moves into the run folder and the config points at it,
    so later commands read it there); ``callbacks`` are
    extra Keras callbacks for ``train.fit``; ``on_stage(stage, event)`` hears each stage's
    "start" and "done". ``run``: a folder made beforehand (nnkit tune's, holding its tune/).
    """
    task, cfg = resolved.task, resolved.cfg
    _quiet_tensorflow()
    _prepare_devices(cfg)
    prepared = task.load(cfg)
    run = run or create_run(resolved.recipe.name, out=out, root=runs_root)
    with locked(run):  # held while this call works in the folder (the Python API makes many calls)
        try:  # a run folder without its config and meta would be nobody's: an interruption here removes it
            if adopt is not None:
                cfg = adopt(run, cfg, prepared)
            write_text(run.config_file, config_mod.to_toml(cfg))
            meta = base_meta(resolved.recipe.name, task.name, cfg, command)
            meta.update(requested_stages=list(stages), data_fingerprint=prepared.fingerprint, pid=os.getpid(),
                        data=prepared.summary)
            write_json(run.state_file, prepared.state)
            write_json(run.meta_file, meta)  # last: with meta.json the folder is a run
        except BaseException:
            _remove_unborn(run)
            raise
        _guard(run, lambda: _execute(run, task, cfg, stages, prepared, callbacks, on_stage))
    return run


def _remove_unborn(run: Run) -> None:
    """Remove a run folder created a moment ago that never got its meta.json (nnkit's files only)."""
    import shutil

    if not run.meta_file.exists():
        for name in (run.config_file, run.state_file, run.path / ".lock"):
            name.unlink(missing_ok=True)
        sweep_partial(run.path)
        if run.path.is_dir() and not any(run.path.iterdir()):
            shutil.rmtree(run.path, ignore_errors=True)


def resume(run_path: str, data: str | None = None, restart: str | None = None) -> Run:
    """Continue a run; ``data`` points at its data file where it now is (same content);
    ``restart`` ("last-good", "scratch") goes on past a damaged checkpoint (nnkit.checkpoints)."""
    run = open_run(run_path)
    resolved = run_config(run)
    meta = run.meta()
    if meta.get("status") == "finished":
        raise NnkitError(f"{run.path}: already finished; nothing to resume")
    with locked(run):  # before anything is swept or written: a live process may be working here
        return _resume_locked(run, resolved, data, restart)


def _resume_locked(run: Run, resolved: Resolved, data: str | None, restart: str | None) -> Run:
    from nnkit.checkpoints import check_or_restart

    sweep_partial(run.path)  # half-written files of the killed process (never renamed into place)
    check_or_restart(run, restart)
    meta = run.meta()  # as the lock holder left it
    stages = meta.get("requested_stages", list(RUN_STAGES))
    _quiet_tensorflow()
    _prepare_devices(resolved.cfg)
    prepared = None
    if {"train", "evaluate"} & (set(stages) - set(meta.get("stages", []))):
        prepared, same = load_run_data(run, resolved, data, "resume")
        if not same:
            raise NnkitError(f"{resolved.cfg['data']['path'] or 'the data'}: not the data this run was trained "
                             f"on (fingerprint {prepared.fingerprint}, the run recorded "
                             f"{meta.get('data_fingerprint')}); a run resumes on its own data only")
        if data:
            from nnkit.config import to_toml

            write_text(run.config_file, to_toml(resolved.cfg))  # the data's new place, same content
    run.set_status("running", resumed=meta.get("resumed", 0) + 1, pid=os.getpid())
    _guard(run, lambda: _execute(run, resolved.task, resolved.cfg, stages, prepared))
    return run


def _absolute_paths(schema: dict, cfg: dict) -> None:
    """File keys (``Field(path=True)``, e.g. data.items) as absolute paths, as --data is: a run's config
    must name the same files when ``nnkit evaluate`` or ``resume`` runs from another folder."""
    for section, fields in schema.items():
        for key, field in fields.items() if isinstance(fields, dict) else ():
            value = cfg.get(section, {}).get(key)
            if getattr(field, "path", False) and isinstance(value, str) and value:
                cfg[section][key] = str(Path(value).expanduser().resolve())


def load_run_data(run: Run, resolved: Resolved, data: str | None, command: str):
    """The data a run was made with (or at ``data``, its new place); returns (prepared, same fingerprint).

    A data file that is no longer where the run recorded it is one line saying
    so and how to point at it, not a "file not found" that leaves the user guessing.
    """
    cfg = resolved.cfg
    recorded = cfg.get("data", {}).get("path", "")
    if data:
        cfg["data"]["path"] = str(Path(data).expanduser().resolve())
    elif recorded and not os.path.lexists(recorded):
        raise NnkitError(f"{recorded}: the run needs this data (config.toml data.path), which is gone (moved or "
                         f"deleted); put it back, or point at its new place with: "
                         f"nnkit {command} {run.path} --data NEW_PLACE")
    prepared = resolved.task.load(cfg)
    expected = run.meta().get("data_fingerprint")
    return prepared, expected is None or expected in (prepared.fingerprint, *prepared.earlier_fingerprints)


def _execute(run: Run, task, cfg: dict, stages, prepared, callbacks=None, on_stage=None) -> None:
    from nnkit import train

    done = set(run.meta().get("stages", []))
    model = None
    if prepared is None and ({"train", "evaluate"} & (set(stages) - done)):
        prepared = task.load(cfg)
    run.update_meta(versions={**run.meta()["versions"], **train.versions()})
    if "train" in stages and "train" not in done:
        from nnkit.select import choose_settings

        _heard(on_stage, "train", "start")
        cfg = choose_settings(task, cfg, prepared, run)  # data-dependent settings, on validation
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


def evaluate(run: Run, task, cfg: dict, model, prepared, beside: Path | None = None):
    """Evaluate and write metrics.json and the plots; with ``beside``, write only that metrics file
    (an evaluation on other data never replaces the run's own results)."""
    from nnkit.report import plot_history, write_metrics

    evaluation = task.evaluate(model, prepared, cfg)
    _check_finite(run, evaluation, cfg)  # before anything is drawn or written from it
    write_metrics(run, evaluation, beside)
    if beside is not None:
        return evaluation
    run.plot_dir.mkdir(parents=True, exist_ok=True)
    plot_history(run)
    task.plots(model, prepared, evaluation, run)
    return evaluation


def _check_finite(run: Run, evaluation, cfg: dict) -> None:
    """A model whose outputs overflowed (a loss of 1e19 is finite, its forecasts need not be) fails in one
    line here, instead of in a plot, a baseline or a verdict that divides by it."""
    import math

    value = evaluation.model.get(evaluation.primary)
    try:
        finite = value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        finite = False
    if finite:
        return
    from nnkit.divergence import diverged_outputs_message
    from nnkit.report import read_history

    history = read_history(run)
    raise TrainingDiverged(diverged_outputs_message(evaluation.primary, value, history[-1] if history else {},
                                              cfg["train"]))


def evaluate_run(run: Run, data: str | None = None, warn=None) -> Path:
    """``nnkit evaluate RUN``: reload the model and the data the run names, evaluate, rewrite the report.

    The run's results stay tied to its data: data whose fingerprint differs from
    the one recorded at training is refused, metrics.json left as it was; with
    ``data`` (the user's explicit word) it is evaluated into
    ``metrics-<fingerprint>.json`` beside it, with a warning. The same data at a
    new place is recorded in config.toml. Returns the metrics file written.
    """
    with locked(run):
        return _evaluate_locked(run, data, warn)


def _evaluate_locked(run: Run, data: str | None, warn) -> Path:
    from nnkit import train

    resolved = run_config(run)
    task, cfg = resolved.task, resolved.cfg
    if not run.model_file.is_file():  # before the data: loading it can take a while
        raise NnkitError(f"{run.model_file}: no such model file")
    prepared, same = load_run_data(run, resolved, data, "evaluate")
    where = cfg["data"].get("path") or f"the bundled data of {run.path}"
    beside = None
    if not same and not data:
        raise NnkitError(f"{where}: changed since the run was trained (fingerprint {prepared.fingerprint}, the "
                         f"run recorded {run.meta().get('data_fingerprint')}); metrics.json was left as it was. "
                         f"To evaluate this data anyway: nnkit evaluate {run.path} --data {where} "
                         "(results go beside metrics.json)")
    if not same:
        beside = run.path / f"metrics-{prepared.fingerprint}.json"
        (warn or print)(f"warning: {where}: not the data this run was trained on; results in {beside.name}, "
                        "metrics.json unchanged")
    elif data:
        write_text(run.config_file, config_mod.to_toml(cfg))  # the same data at its new place
    model = train.load_model(run.model_file, task.custom_objects())
    evaluate(run, task, cfg, model, prepared, beside)
    if beside is None:
        report(run)
    return beside or run.metrics_file


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
