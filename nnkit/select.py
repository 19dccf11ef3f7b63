"""Choosing data-dependent settings on the validation part, before the real training.

A task that has such settings offers ``candidate_settings(cfg, prepared)``
(a list of overrides, the task's first choice first; empty: nothing to
choose) and ``validation_score(model, prepared, cfg)`` (higher is better;
it reads only the validation part). Each candidate is trained by the one
``train.fit``, for the budget the task states (``selection_budget``), in
its own folder under ``RUN/selection/``; the best on validation wins (ties:
the earlier candidate; one whose training diverges is recorded and loses).
The winner's settings are written into the run's ``config.toml``, so evaluation, export and resume use what was chosen; the
table of candidates goes to ``meta.json`` (``selection``) and the report.
"""

from __future__ import annotations

import copy
import shutil
import time

from nnkit.errors import TrainingDiverged
from nnkit.runs import Run, write_text


def choose_settings(task, cfg: dict, prepared, run: Run) -> dict:
    """Return ``cfg`` with the chosen settings (unchanged when the task offers no choice)."""
    candidates = task.candidate_settings(cfg, prepared) if hasattr(task, "candidate_settings") else []
    if len(candidates) < 2:
        return cfg
    from nnkit import config as config_mod
    from nnkit import train

    budget = task.selection_budget(cfg)
    folder = run.path / "selection"
    shutil.rmtree(folder, ignore_errors=True)  # a resumed run chooses again from scratch
    rows, best, best_score = [], 0, None
    for i, overrides in enumerate(candidates):
        trial_cfg = with_settings(cfg, overrides)
        trial_cfg["train"].update(budget)
        trial_run = Run(folder / f"candidate-{i}")
        trial_run.path.mkdir(parents=True)
        write_text(trial_run.meta_file, "{}")
        start = time.perf_counter()
        try:
            model = train.fit(task, trial_cfg, prepared, trial_run)
        except TrainingDiverged as exc:  # a candidate that diverges loses; the others still compete
            rows.append({"settings": overrides, "validation": None, "diverged": str(exc),
                         "seconds": round(time.perf_counter() - start, 1)})
            continue
        score = float(task.validation_score(model, prepared, trial_cfg))
        rows.append({"settings": overrides, "validation": round(score, 4),
                     "seconds": round(time.perf_counter() - start, 1)})
        if best_score is None or score > best_score:
            best, best_score = i, score
    shutil.rmtree(folder, ignore_errors=True)  # trial models are not kept; the table is
    if best_score is None:
        raise TrainingDiverged(f"every candidate setting diverged on validation; the first: {rows[0]['diverged']}")
    chosen = with_settings(cfg, candidates[best])
    write_text(run.config_file, config_mod.to_toml(chosen))
    run.update_meta(selection={"metric": task.validation_metric(cfg, prepared), "budget": budget,
                               "candidates": rows, "chosen": candidates[best]})
    return chosen


def with_settings(cfg: dict, overrides: dict) -> dict:
    """A copy of ``cfg`` with ``{"section.key": value}`` overrides applied."""
    out = copy.deepcopy(cfg)
    for dotted, value in overrides.items():
        section, key = dotted.split(".")
        out[section][key] = value
    return out
