"""The search itself: KerasTuner's oracles and bookkeeping around nnkit's own training path.

KerasTuner proposes values (random, Bayesian optimisation, Hyperband), keeps
every trial on disk (``tune/search/``) and reloads it after an interruption,
retrying the trial that was running. nnkit supplies the trial: the config
with the trial's values, trained by :func:`nnkit.train.fit` (the task's data,
builder and early stopping, as ``nnkit run`` trains) and scored by the task's
own ``evaluate`` on :meth:`Task.validation_view`, where the validation part
stands in the test part's place: the search never holds the test part.

Two limits end the search, checked by the oracle before each new trial (so
they hold for every worker of a distributed search): the number of trials and
the time budget (time used before an interruption counts too). The first
trial is the recipe's own values, so the search always measures the default.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from nnkit.runs import Run, read_json, write_json
from nnkit.tuning import space

OBJECTIVE = "val_objective"  # minimised: the validation score, negated when higher is better
ALGORITHMS = ("random", "bayesian", "hyperband")


@dataclass
class Limits:
    """When the oracle stops starting trials; the first trial's values."""

    trials: int | None
    budget_s: float | None
    prior_s: float = 0.0  # time used by earlier sessions of this search
    first_values: dict | None = None
    started: float = field(default_factory=time.monotonic)
    stopped: float | None = None  # set when the search ends: the final run is not search time

    def used_s(self) -> float:
        return self.prior_s + (self.stopped or time.monotonic()) - self.started

    def left_s(self) -> float | None:
        return None if self.budget_s is None else max(0.0, self.budget_s - self.used_s())

    def spent(self) -> bool:
        return self.budget_s is not None and self.used_s() >= self.budget_s


class _LimitedOracle:
    """Mixed into a KerasTuner oracle: the trial cap, the time budget, the recipe's values first."""

    limits: Limits

    def populate_space(self, trial_id):
        started = len(self.trials)
        if (self.limits.trials is not None and started >= self.limits.trials) or self.limits.spent():
            return {"status": "STOPPED", "values": None}
        if started == 0 and self.limits.first_values is not None:
            return {"status": "RUNNING", "values": dict(self.limits.first_values)}
        with warnings.catch_warnings():  # the Gaussian process's fit warnings say nothing a user can act on
            warnings.filterwarnings("ignore", module="sklearn")
            return super().populate_space(trial_id)


def make_oracle(algorithm: str, hp, limits: Limits, seed: int, max_epochs: int, dims: int):
    import keras_tuner as kt

    bases = {"random": kt.oracles.RandomSearchOracle, "bayesian": kt.oracles.BayesianOptimizationOracle,
             "hyperband": kt.oracles.HyperbandOracle}
    oracle_class = type(f"Limited{bases[algorithm].__name__}", (_LimitedOracle, bases[algorithm]), {})
    kwargs = dict(objective=kt.Objective(OBJECTIVE, "min"), hyperparameters=hp, seed=seed)
    if algorithm == "hyperband":  # it sets each trial's epochs itself; the cap is ours
        kwargs.update(max_epochs=max_epochs, factor=3)
    else:
        kwargs["max_trials"] = limits.trials
    if algorithm == "bayesian":  # random points first; few when few trials are allowed
        kwargs["num_initial_points"] = max(2, min(3 * dims, (limits.trials or 10) // 2))
    oracle = oracle_class(**kwargs)
    oracle.limits = limits
    oracle.verbose = 0  # nnkit prints its own progress line
    return oracle


def make_tuner(oracle, trial_runner, directory: Path):
    """A KerasTuner tuner whose trials are nnkit trainings (``trial_runner``)."""
    from keras_tuner.src.engine.base_tuner import BaseTuner

    class NnkitTuner(BaseTuner):
        def __init__(self):
            super().__init__(oracle=oracle, directory=str(directory), project_name="search")

        def run_trial(self, trial, *args, **kwargs):
            return trial_runner.run(trial)

        def on_trial_begin(self, trial):
            trial_runner.begins(trial, self.oracle)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            trial_runner.ends(trial)

    return NnkitTuner()


class TrialRunner:
    """Trains and scores one trial; prints progress; remembers the validation metric's name."""

    def __init__(self, task, cfg: dict, dims: list, view_for, trials_dir: Path, limits: Limits, echo,
                 default_values: dict, progress_file: Path | None = None):
        self.task, self.cfg, self.dims, self.view_for = task, cfg, dims, view_for
        self.trials_dir, self.limits, self.echo = Path(trials_dir), limits, echo
        self.default_values = default_values
        self.metric, self.higher = None, None
        self.progress_file = progress_file

    def trial_cfg(self, values: dict) -> dict:
        cfg = space.apply(self.cfg, space.from_hyperparameters(self.dims, values))
        cfg["train"]["verbose"] = False
        if "tuner/epochs" in values:  # Hyperband's share of epochs for this trial
            cfg["train"]["epochs"] = int(values["tuner/epochs"])
        return cfg

    def run(self, trial) -> dict:
        from nnkit import train

        values = trial.hyperparameters.values
        cfg = self.trial_cfg(values)
        folder = self.trials_dir / trial.trial_id
        view = self.view_for(cfg)
        t0 = time.monotonic()
        model = train.fit(self.task, cfg, view, Run(folder))  # resumes a retried trial's checkpoint
        evaluation = self.task.evaluate(model, view, cfg)
        score = float(evaluation.model[evaluation.primary])
        self.metric, self.higher = evaluation.primary, bool(evaluation.higher_is_better)
        is_default = space.from_hyperparameters(self.dims, values) == \
            space.from_hyperparameters(self.dims, self.default_values) and "tuner/epochs" not in values
        epochs = _epochs_trained(folder / "history.csv")
        write_json(folder / "score.json", {
            "trial": trial.trial_id, "metric": evaluation.primary, "higher_is_better": self.higher,
            "split": "validation", "score": score, "values": space.from_hyperparameters(self.dims, values),
            "epochs": epochs, "seconds": round(time.monotonic() - t0, 2), "default": is_default,
            "worker": os.environ.get("KERASTUNER_TUNER_ID", "local")})
        shutil.rmtree(folder / "checkpoints", ignore_errors=True)
        if not is_default:  # the default trial's model is scored on the test part at the end
            (folder / "model.keras").unlink(missing_ok=True)
        return {OBJECTIVE: -score if self.higher else score, "val_score": score}

    def begins(self, trial, oracle) -> None:
        values = space.from_hyperparameters(self.dims, trial.hyperparameters.values)
        shown = " ".join(f"{k}={_short(v)}" for k, v in values.items())
        of = f" of {self.limits.trials}" if self.limits.trials else ""
        best = self.best_text(oracle)
        left = self.limits.left_s()
        clock = "" if left is None else f" | {left / 60:.1f} of {self.limits.budget_s / 60:.1f} min left"
        self.echo(f"tune: trial {int(trial.trial_id) + 1}{of} | {shown} | best so far: {best}{clock}")

    def best_text(self, oracle) -> str:
        try:
            best = oracle.get_best_trials(1)
        except Exception:  # a worker whose chief is busy: progress is not worth failing for
            best = []
        if not best or best[0].score is None:
            return "none yet"
        score = best[0].metrics.get_last_value("val_score")
        if self.metric is None:  # a resumed search: the metric's name is in the earlier trials' files
            found = next(iter(sorted(self.trials_dir.glob("*/score.json"))), None)
            self.metric = read_json(found)["metric"] if found else None
        name = f"val {self.metric}" if self.metric else "validation score"
        return f"{name} {score:.4g} (trial {int(best[0].trial_id) + 1})"

    def ends(self, trial) -> None:
        if self.progress_file is not None:  # so a killed search (SIGKILL) still counts this time
            write_json(self.progress_file, {"seconds_used": round(self.limits.used_s(), 1)})
        found = self.trials_dir / trial.trial_id / "score.json"
        if found.is_file():
            done = read_json(found)
            self.echo(f"tune: trial {int(trial.trial_id) + 1} done in {done['seconds']:.1f} s, "
                      f"{done['epochs']} epochs: val {done['metric']} {done['score']:.4g}")
        else:
            message = (trial.message or "").strip().splitlines()
            self.echo(f"tune: trial {int(trial.trial_id) + 1} failed: {message[-1] if message else trial.status}")


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else json.dumps(value).replace(" ", "")


def _epochs_trained(history: Path) -> int:
    if not history.is_file():
        return 0
    return max(0, len(history.read_text().strip().splitlines()) - 1)
