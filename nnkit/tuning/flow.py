"""`nnkit tune RECIPE`: search on the validation part, then one normal run with the best config.

The run folder (``--out DIR`` or ``runs/<recipe>/<id>/``) is made when the
search starts and holds the search in ``tune/``::

    tune/spec.json     what is searched (config, space, algorithm): a rerun must match it to resume
    tune/search/       KerasTuner's project: oracle state and every trial (resume reads it)
    tune/trials/<id>/  each trial's training (history.csv, logs/, score.json)
    tune/progress.json time used so far (the budget counts earlier sessions)

When the search ends, the best config is trained by the ordinary pipeline
into DIR itself (so DIR is a normal run folder), the default recipe's model is
scored on the same test part, and ``tune/`` gains trials.csv, search.png,
best.toml and report.md (also appended to DIR/report.md). The test part is
read only then, after every choice is made.

Rerunning the same command with ``--out DIR`` continues an interrupted search
(or an interrupted final run).
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from nnkit import config as config_mod
from nnkit import pipeline
from nnkit.errors import NnkitError
from nnkit.runs import Run, create_run, read_json, write_json, write_text
from nnkit.tuning import distributed, results, space
from nnkit.tuning.search import ALGORITHMS, Limits, TrialRunner, make_oracle, make_tuner


class ViewCache:
    """The search's data: the task's validation view, reloaded only when a data setting changes."""

    def __init__(self, task):
        self.task, self.key, self.view = task, None, None

    def __call__(self, cfg: dict):
        key = json.dumps([cfg["data"], cfg.get("eval"), cfg["train"]["seed"]], sort_keys=True, default=str)
        if key != self.key:
            self.view, self.key = None, None
            self.view = self.task.validation_view(self.task.load(cfg))  # the test part is dropped here
            self.key = key
        return self.view


def check(resolved: pipeline.Resolved, algorithm: str) -> list:
    """The space of a resolved config, or one line saying why it cannot be searched."""
    if algorithm not in ALGORITHMS:
        raise NnkitError(f"--algorithm {algorithm!r}: expected one of {', '.join(ALGORITHMS)}")
    dims = space.dimensions(resolved.cfg, pipeline.task_schema(resolved.task))
    if not dims:
        raise NnkitError(f"recipe '{resolved.recipe.name}' declares no search space: add a [tune] table "
                         "(e.g. model.units = [32, 64, 128]) or --set tune.model.units=[32,64]")
    if algorithm == "hyperband" and any(d.key == "train.epochs" for d in dims):
        raise NnkitError("tune key 'train.epochs': Hyperband sets each trial's epochs itself; "
                         "drop it from the space (--set tune.train.epochs=[]) or use another --algorithm")
    return dims


def _spec(resolved, dims, algorithm) -> dict:
    cfg = {k: v for k, v in resolved.cfg.items() if k != "tune"}
    cfg["train"] = {k: v for k, v in cfg["train"].items() if k != "verbose"}
    spec = {"recipe": resolved.recipe.name, "config": cfg, "algorithm": algorithm,
            "space": {d.key: d.describe() for d in dims}}
    return json.loads(json.dumps(spec, default=str))


def _open_folder(resolved, spec, out, runs_root, who) -> tuple[Run, bool]:
    """The run folder: a new one, or the one an interrupted search of the same spec left."""
    spec_file = Path(out) / "tune" / "spec.json" if out is not None else None
    if who == "worker":
        if spec_file is None:
            raise NnkitError("a tune worker needs --out DIR: the chief's run folder")
        distributed.await_port(spec_file.parent)
        distributed.wait_for(spec_file, "search (spec.json)")  # the chief writes it before it serves
    if spec_file is not None and spec_file.is_file():
        if read_json(spec_file) != spec:
            raise NnkitError(f"--out {out}: holds a search of another recipe, config, space or algorithm; "
                             "rerun with the same options to continue it, or choose a new --out")
        return Run(out), True
    run = create_run(resolved.recipe.name, out=out, root=runs_root)
    write_json(run.path / "tune" / "spec.json", spec)
    return run, False


def tune(resolved: pipeline.Resolved, *, algorithm: str = "bayesian", trials: int | None = 10,
         budget_minutes: float | None = None, out: str | None = None, runs_root: str = "runs",
         echo=print, command: list[str] | None = None, stages=pipeline.RUN_STAGES) -> Run | None:
    """Search, then train the best config as a normal run; returns the run (None on a worker).

    ``stages``: the final run's stages (tests leave out the export)."""
    dims = check(resolved, algorithm)
    who = distributed.role()
    task, cfg = resolved.task, resolved.cfg
    pipeline._quiet_tensorflow()
    pipeline._prepare_devices(cfg)
    views = ViewCache(task)
    views(cfg)  # bad data fails here, before anything is written
    spec = _spec(resolved, dims, algorithm)
    run, resumed = _open_folder(resolved, spec, out, runs_root, who)
    tune_dir = run.path / "tune"
    progress_file = tune_dir / "progress.json"
    prior = read_json(progress_file)["seconds_used"] if progress_file.is_file() else 0.0
    limits = Limits(trials, None if budget_minutes is None else budget_minutes * 60.0, prior,
                    first_values=None if algorithm == "hyperband" else space.default_values(dims, cfg))
    oracle = make_oracle(algorithm, space.to_hyperparameters(dims, cfg), limits, cfg["train"]["seed"],
                         cfg["train"]["epochs"], len(dims))
    runner = TrialRunner(task, cfg, dims, views, tune_dir / "trials", limits, echo,
                         space.default_values(dims, cfg), None if who == "worker" else progress_file)
    if resumed and who != "worker":
        echo(f"tune: continuing the search in {tune_dir} ({prior / 60:.1f} min used before)")
    tuner = make_tuner(oracle, runner, tune_dir)
    if who != "worker" and algorithm != "hyperband":
        tuner.oracle.max_trials = trials  # a rerun may allow more (or fewer) trials than the first session
    previous = signal.signal(signal.SIGTERM, pipeline._raise_interrupt)
    try:
        if who == "chief":
            tuner.save()
            distributed.serve(tuner.oracle, tune_dir, echo)
        else:
            tuner.search()
    except KeyboardInterrupt:
        raise pipeline.Interrupted("interrupted; the search is saved. Continue it with the same command and "
                                   f"--out {run.path}") from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        limits.stopped = time.monotonic()
        if who != "worker":
            write_json(progress_file, {"seconds_used": round(limits.used_s(), 1)})
    if who == "worker":
        echo("tune: worker finished (the chief trains the final run)")
        return None
    return finish(resolved, dims, tuner.oracle, run, limits, algorithm, echo, command, stages)


def finish(resolved, dims, oracle, run: Run, limits: Limits, algorithm: str, echo, command, stages) -> Run:
    """Train the best config into the run folder, score the default recipe, write tune/'s results."""
    task, cfg = resolved.task, resolved.cfg
    tune_dir = run.path / "tune"
    best = oracle.get_best_trials(1)
    if not best:
        raise NnkitError(f"no trial of the search finished (see {tune_dir / 'search'}); nothing to train")
    best_values = space.from_hyperparameters(dims, best[0].hyperparameters.values)
    best_cfg = space.apply(cfg, best_values)
    write_text(tune_dir / "best.toml", best_toml(resolved, best_cfg, best[0].trial_id, run))
    echo(f"tune: best trial {int(best[0].trial_id) + 1}: "
         + " ".join(f"{k}={v}" for k, v in best_values.items()) + "; training it as the run")
    if run.meta_file.is_file():
        if run.meta().get("status") != "finished":
            pipeline.resume(str(run.path))
    else:
        pipeline.start(pipeline.Resolved(resolved.recipe, task, best_cfg), stages=stages, run=run, command=command)
    default = default_test_score(task, cfg, best_values, dims, tune_dir, run)
    summary = results.write(run, tune_dir, dims, oracle, limits, algorithm, best[0].trial_id, default)
    echo(summary)
    return run


def best_toml(resolved, best_cfg: dict, trial_id: str, run: Run) -> str:
    """The keys where the best config differs from the recipe file, as a --config file."""
    schema = pipeline.task_schema(resolved.task)
    plain = config_mod.resolve(schema, resolved.recipe.config, recipe_source=str(resolved.recipe.path))
    diff: dict = {}
    for section, values in best_cfg.items():
        if section in ("recipe", "tune") or not isinstance(values, dict):
            continue
        for key, value in values.items():
            if key == "verbose":
                continue
            if plain.get(section, {}).get(key) != value:
                diff.setdefault(section, {})[key] = value
    from nnkit.registry import recipes_dir

    bundled = resolved.recipe.path.resolve().parent == recipes_dir().resolve()
    ref = resolved.recipe.name if bundled else str(resolved.recipe.path)
    header = (f"# nnkit tune: the best trial ({int(trial_id) + 1}) of the search in {run.path}\n"
              f"# reproduce: nnkit run {ref} --config {run.path / 'tune' / 'best.toml'}\n")
    return header + config_mod.to_toml(diff)


def default_test_score(task, cfg: dict, best_values: dict, dims, tune_dir: Path, run: Run) -> dict:
    """The default recipe's test score, beside the tuned run's (same split, same seed)."""
    from nnkit import train

    metrics = read_json(run.metrics_file)
    if best_values == {d.key: space.get(cfg, d.key) for d in dims}:
        return {"score": metrics["model"][metrics["primary"]], "source": "the tuned run (the best trial is the "
                                                                          "recipe's own values)"}
    trial = next((p.parent for p in sorted((tune_dir / "trials").glob("*/score.json"))
                  if read_json(p).get("default") and (p.parent / "model.keras").is_file()), None)
    prepared = task.load(cfg)
    if trial is not None:
        model = train.load_model(trial / "model.keras", task.custom_objects())
        source = f"trial {int(trial.name) + 1}'s model (the recipe's values, same training path and seed)"
    else:  # Hyperband, or the default trial did not run: train the recipe's values now
        quiet = {**cfg, "train": {**cfg["train"], "verbose": False}}
        model = train.fit(task, quiet, prepared, Run(tune_dir / "default"))
        source = "the recipe's values, trained after the search (same path and seed)"
    evaluation = task.evaluate(model, prepared, cfg)
    return {"score": float(evaluation.model[evaluation.primary]), "source": source}
