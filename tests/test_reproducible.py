"""`--seed S` with `train.deterministic = true`: two runs give byte-identical metrics.json.

Each pair runs as two separate processes (as two users on one machine
would), started together. The report and meta.json record the setting.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers import ROOT

TINY = {
    "perceptron": ["--set", "train.epochs=3"],
    "digits": ["--set", "train.epochs=2", "--set", "model.filters=[8]", "--set", "model.dense_units=16",
               "--set", 'eval.baselines=["majority", "logistic"]'],
}


def _runs(recipe: str, outs, seed: int = 11):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    processes = [subprocess.Popen([sys.executable, "-m", "nnkit.cli", "run", recipe, "--out", str(out), "--quiet",
                                   "--seed", str(seed), "--set", "train.deterministic=true", *TINY[recipe]],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                 for out in outs]
    for process in processes:
        _, stderr = process.communicate(timeout=900)
        assert process.returncode == 0, stderr[-3000:]


@pytest.mark.parametrize("recipe", ["perceptron", pytest.param("digits", marks=pytest.mark.slow)])
def test_two_deterministic_runs_give_identical_metrics(recipe, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    _runs(recipe, [first, second])
    assert (first / "metrics.json").read_bytes() == (second / "metrics.json").read_bytes()
    assert (first / "history.csv").read_text() == (second / "history.csv").read_text()
    for out in (first, second):
        meta = json.loads((out / "meta.json").read_text())
        assert meta["seed"] == 11 and meta["deterministic"] is True
        assert "Seed 11, deterministic ops: on" in (out / "report.md").read_text()
        assert "deterministic = true" in (out / "config.toml").read_text()
