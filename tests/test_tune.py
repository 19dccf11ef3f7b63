"""`nnkit tune`: the [tune] space, a tiny search end to end, the test part sealed, resume, two workers."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
from helpers import ROOT, check_run_folder

# a one-epoch perceptron search: every trial takes a fraction of a second to train
TINY = ["--quiet", "--set", "train.epochs=1", "--set", "tune.train.epochs=[]", "--algorithm", "random"]


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# -- the space: checked before anything runs ---------------------------------------------------------

@pytest.mark.parametrize("entry, words", [
    ("tune.model.widht=[8,16]", ["tune key 'model.widht'", "did you mean 'model.width'"]),
    ("tune.train.momentum=[0.5,1.5]", ["tune key 'train.momentum'", "choice 2", "out of range", "1.5"]),
    ("tune.model.activation=['step','swish']", ["tune key 'model.activation'", "'swish'", "one of"]),
    ("tune.train.learning_rate={log=[0.0,0.01]}", ["tune key 'train.learning_rate'", "low > 0"]),
    ("tune.train.learning_rate={range=[0.1,0.01]}", ["tune key 'train.learning_rate'", "low < high"]),
    ("tune.train.learning_rate={between=[0.001,0.01]}", ["tune key 'train.learning_rate'", "expected a list"]),
    ("tune.model.depth={range=[1,3],step=0.5}", ["tune key 'model.depth'", "integers"]),
    ("tune.model.activation={range=[1,2]}", ["tune key 'model.activation'", "list its values"]),
    ("tune.train.epochs=5", ["tune key 'train.epochs'", "received 5", "expected a list"]),
    ("tune.train.seed=[0,1]", ["tune key 'train.seed'", "not searchable"]),
    ("tune.recipe.name=['a']", ["unknown config key 'tune.recipe'"]),
])
def test_bad_space_refused_with_one_line_before_anything_runs(cli_run, tmp_path, entry, words):
    out = tmp_path / "run"
    result = cli_run("tune", "perceptron", "--set", entry, "--out", out, expect=2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --set: tune key" if "tune key" in words[0]
                                                   else "error: --set: "), lines
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not out.exists()


def test_bad_space_in_a_recipe_file_names_the_file(cli_run, tmp_path):
    recipe = tmp_path / "mine.toml"
    recipe.write_text((ROOT / "recipes" / "perceptron.toml").read_text()
                      + "\n[tune.model]\nwidth = {log = [8, 4]}\n")
    result = cli_run("show", recipe, expect=2)
    assert result.stderr.count("\n") == 1
    assert str(recipe) in result.stderr and "tune key 'model.width'" in result.stderr and "low < high" in result.stderr


def test_every_bundled_recipe_declares_a_valid_space():
    from nnkit.pipeline import resolve, task_schema
    from nnkit.registry import bundled_names
    from nnkit.tuning import space

    for name in bundled_names():
        resolved = resolve(name)
        dims = space.dimensions(resolved.cfg, task_schema(resolved.task))
        assert len(dims) >= 3, name
        hp = space.to_hyperparameters(dims, resolved.cfg)  # KerasTuner accepts it, defaults included
        assert space.from_hyperparameters(dims, space.default_values(dims, resolved.cfg)) == \
            {d.key: space.get(resolved.cfg, d.key) for d in dims}
        assert {p.name for p in hp.space} == {d.key for d in dims}


def test_a_recipe_value_outside_its_choices_joins_them_even_of_another_kind():
    from nnkit.pipeline import resolve, task_schema
    from nnkit.tuning import space

    # products' model.window "auto" (its [with_data] value, here set by hand) and [2, 3, 5] in its space:
    # a Choice holds one type, so the values travel as JSON text and come back as they were
    resolved = resolve("products", overrides=["model.window=auto", "tune.model.window=[2, 3, 5]"])
    assert resolved.cfg["model"]["window"] == "auto"
    dims = [d for d in space.dimensions(resolved.cfg, task_schema(resolved.task)) if d.key == "model.window"]
    hp = space.to_hyperparameters(dims, resolved.cfg)
    assert sorted(space.from_hyperparameters(dims, {"model.window": v})["model.window"]
                  for v in hp.space[0].values if v != '"auto"') == [2, 3, 5]
    assert space.from_hyperparameters(dims, space.default_values(dims, resolved.cfg)) == {"model.window": "auto"}


def test_set_replaces_and_removes_space_entries():
    from nnkit.pipeline import resolve

    cfg = resolve("perceptron", overrides=["tune.train.epochs=[]", "tune.train.ema_momentum=[0.5]",
                                           "tune.model.dropout={range=[0.0,0.5]}"]).cfg
    assert "epochs" not in cfg["tune"]["train"]
    assert cfg["tune"]["train"]["ema_momentum"] == [0.5]
    assert cfg["tune"]["model"]["dropout"] == {"range": [0.0, 0.5]}
    assert cfg["tune"]["train"]["learning_rate"] == {"log": [1e-3, 1e-1]}  # the recipe's entry stays


def test_oracle_stops_when_the_budget_or_trial_cap_is_spent(tmp_path):
    from nnkit.pipeline import resolve, task_schema
    from nnkit.tuning import space
    from nnkit.tuning.search import Limits, make_oracle

    resolved = resolve("perceptron")
    dims = space.dimensions(resolved.cfg, task_schema(resolved.task))
    hp = space.to_hyperparameters(dims, resolved.cfg)
    first = space.default_values(dims, resolved.cfg)

    def oracle(limits, name):
        made = make_oracle("random", hp, limits, 0, 10, len(dims))
        made._set_project_dir(str(tmp_path), name)
        return made

    spent = oracle(Limits(trials=5, budget_s=60.0, prior_s=60.0, first_values=first), "spent")
    assert spent.create_trial("t").status == "STOPPED"  # an earlier session used the whole budget
    fresh = oracle(Limits(trials=2, budget_s=60.0, first_values=first), "fresh")
    trial = fresh.create_trial("t")
    assert trial.status == "RUNNING" and trial.hyperparameters.values == first  # the recipe's values first
    fresh.update_trial(trial.trial_id, {"val_objective": 0.5})
    trial.status = "COMPLETED"
    fresh.end_trial(trial)
    second = fresh.create_trial("t")
    assert second.status == "RUNNING" and second.trial_id != trial.trial_id
    second.status = "COMPLETED"
    fresh.update_trial(second.trial_id, {"val_objective": 0.4})
    fresh.end_trial(second)
    assert fresh.create_trial("t").status == "STOPPED"  # two trials allowed


# -- a tiny search end to end; the test part never read by it -------------------------------------------

def test_tiny_search_end_to_end_never_reads_the_test_part(cli_run, tmp_path, monkeypatch):
    from nnkit import config as config_mod
    from nnkit import pipeline
    from nnkit.tasks import get_task

    phase = {"final": False}
    reads = []

    class Tripwire:
        """The test part, recording every read and whether the final run had started."""

        def __init__(self, inner):
            self._inner = inner

        def __iter__(self):
            reads.append(phase["final"])
            return iter(self._inner)

        def __getitem__(self, index):
            reads.append(phase["final"])
            return self._inner[index]

        def __len__(self):
            reads.append(phase["final"])
            return len(self._inner)

        def __getattr__(self, name):
            reads.append(phase["final"])
            return getattr(self._inner, name)

    task_class = type(get_task("binary_classification"))
    real_load, real_start = task_class.load, pipeline.start

    def load(self, cfg):
        prepared = real_load(self, cfg)
        prepared.test = Tripwire(prepared.test)
        return prepared

    def start(*args, **kwargs):
        phase["final"] = True
        return real_start(*args, **kwargs)

    monkeypatch.setattr(task_class, "load", load)
    monkeypatch.setattr(pipeline, "start", start)
    out = tmp_path / "tuned"
    result = cli_run("tune", "perceptron", "--trials", "2", "--out", out, *TINY)

    assert reads and all(reads), "the search read the test part" if not all(reads) else "tripwire never read"
    assert "tune: trial 1 of 2" in result.output and "best so far: val accuracy" in result.output
    assert result.output.strip().splitlines()[-1] == str(out)
    metrics = check_run_folder(out, "perceptron", "binary_classification")  # a normal run folder
    rows = _rows(out / "tune" / "trials.csv")
    assert [r["trial"] for r in rows] == ["1", "2"] and all(r["status"] == "COMPLETED" for r in rows)
    assert all(0.0 <= float(r["val_accuracy"]) <= 1.0 for r in rows)
    assert rows[0]["default"] == "True" and float(rows[0]["train.learning_rate"]) == 0.01  # the recipe first
    assert len({(r["train.learning_rate"], r["train.ema_momentum"]) for r in rows}) == 2
    summary = json.loads((out / "tune" / "summary.json").read_text())
    best = max(rows, key=lambda r: float(r["val_accuracy"]))
    assert summary["best_val_score"] == pytest.approx(float(best["val_accuracy"]))
    assert summary["test"]["tuned"] == metrics["model"]["accuracy"]
    assert 0.0 <= summary["test"]["default"] <= 1.0
    assert (out / "tune" / "search.png").stat().st_size > 1000
    report = (out / "report.md").read_text()
    assert "## Hyperparameter search" in report and "Test accuracy: tuned" in report
    # best.toml reproduces the final run's config with `nnkit run perceptron --config best.toml`
    again = pipeline.resolve("perceptron", config_file=str(out / "tune" / "best.toml")).cfg
    final = config_mod.read_toml(out / "config.toml")
    for section in ("data", "model", "train", "eval"):
        mine = {k: v for k, v in again.get(section, {}).items() if k != "verbose"}
        theirs = {k: v for k, v in final.get(section, {}).items() if k != "verbose"}
        assert mine == theirs, section


def test_interrupted_search_resumes_where_it_stopped(tmp_path, monkeypatch):
    from nnkit import pipeline
    from nnkit.tuning import flow, search

    real_run = search.TrialRunner.run
    seen = []

    def run(self, trial):
        seen.append((trial.trial_id, dict(trial.hyperparameters.values)))
        if len(seen) == 2:  # the second trial is interrupted mid-way
            raise KeyboardInterrupt
        return real_run(self, trial)

    monkeypatch.setattr(search.TrialRunner, "run", run)
    resolved = pipeline.resolve("perceptron", overrides=["train.epochs=1", "tune.train.epochs=[]"],
                                flags={"train.verbose": False})
    out = tmp_path / "tuned"
    lines = []
    kwargs = dict(algorithm="random", trials=2, out=str(out), echo=lines.append, stages=("train", "evaluate"))
    with pytest.raises(pipeline.Interrupted, match=f"same command and --out {out}"):
        flow.tune(resolved, **kwargs)
    assert not (out / "meta.json").exists()  # no final run yet
    first_score = (out / "tune" / "trials" / "0" / "score.json").stat().st_mtime_ns
    assert json.loads((out / "tune" / "progress.json").read_text())["seconds_used"] > 0

    run_dir = flow.tune(resolved, **kwargs)
    assert any("continuing the search" in line for line in lines)
    assert [trial_id for trial_id, _ in seen] == ["0", "1", "1"]  # trial 1 retried, trial 0 kept
    assert seen[1][1] == seen[2][1]  # ... with the values it had when interrupted
    assert (out / "tune" / "trials" / "0" / "score.json").stat().st_mtime_ns == first_score
    rows = _rows(out / "tune" / "trials.csv")
    assert [r["status"] for r in rows] == ["COMPLETED"] * 2
    assert json.loads((run_dir.meta_file).read_text())["status"] == "finished"
    with pytest.raises(Exception, match="another recipe, config, space"):
        flow.tune(pipeline.resolve("perceptron", overrides=["train.epochs=2", "tune.train.epochs=[]"]), **kwargs)


# -- two local workers sharing one search --------------------------------------------------------------

@pytest.mark.slow
def test_two_local_workers_share_one_search(tmp_path):
    out = tmp_path / "shared"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        env.pop(name, None)
    result = subprocess.run([sys.executable, "-m", "nnkit.cli", "tune", "perceptron", "--trials", "6", "--workers",
                             "2", "--out", str(out), *TINY], capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "chief serving the search on 127.0.0.1:" in result.stdout
    assert result.stdout.count("worker finished") == 2
    rows = _rows(out / "tune" / "trials.csv")
    assert [r["trial"] for r in rows] == [str(i) for i in range(1, 7)]  # each trial run once, by one worker
    assert all(r["status"] == "COMPLETED" for r in rows)
    assert {r["worker"] for r in rows} <= {"worker0", "worker1"}
    print("trials per worker:", {w: sum(r["worker"] == w for r in rows) for w in ("worker0", "worker1")})
    check_run_folder(out, "perceptron", "binary_classification")  # the chief trained the final run
    assert not (out / "tune" / "oracle-port").exists()
