"""Interrupted runs: SIGKILL mid-training then `nnkit resume`, and a clean Ctrl-C."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import ROOT, nnkit_subprocess

ARGS = ["--quiet", "--set", "train.epochs=12", "--set", "train.early_stopping=false",
        "--set", "model.filters=[8]", "--set", "model.dense_units=16", "--set", 'eval.baselines=["majority"]',
        "--set", "train.checkpoint_seconds=0"]  # commit every epoch: the SIGKILL test checks none is redone


def _start(out):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "nnkit.cli", "run", "digits", "--out", str(out), *ARGS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_epochs(history, count, process, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if history.is_file() and len(history.read_text().strip().splitlines()) > count:
            return
        if process.poll() is not None:
            raise AssertionError(f"run ended early: {process.stderr.read()[-2000:]}")
        time.sleep(0.05)
    raise AssertionError("training did not reach the epoch in time")


@pytest.mark.slow  # the default run covers a mid-epoch kill in test_kill_resume.py (with exact equality)
def test_sigkill_mid_training_then_resume_finishes_without_restarting(tmp_path):
    out = tmp_path / "run"
    process = _start(out)
    _wait_for_epochs(out / "history.csv", 3, process)
    process.kill()  # SIGKILL: no handler runs
    process.wait()
    assert json.loads((out / "meta.json").read_text())["status"] == "running"
    result = nnkit_subprocess("resume", out)
    assert result.stdout.strip().splitlines()[-1] == str(out)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "finished" and meta["resumed"] == 1
    assert meta["stages"] == ["train", "evaluate", "report", "export"]
    with open(out / "history.csv") as handle:
        epochs = [int(row["epoch"]) for row in csv.DictReader(handle)]
    assert epochs.count(0) == 1, f"training restarted from scratch: {epochs}"
    assert sorted(set(epochs)) == list(range(12))
    assert (out / "metrics.json").is_file() and (out / "export" / "saved_model").is_dir()
    assert not (out / "checkpoints" / "backup").exists()  # the backup is removed once training ends


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path):
    out = tmp_path / "run"
    process = _start(out)
    _wait_for_epochs(out / "history.csv", 2, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert f"nnkit resume {out}" in stderr and "Traceback" not in stderr
    assert json.loads((out / "meta.json").read_text())["status"] == "interrupted"
    nnkit_subprocess("resume", out)
    assert json.loads((out / "meta.json").read_text())["status"] == "finished"


def test_resume_refuses_a_finished_run(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.toml").write_text('[recipe]\ntask = "image_classification"\nname = "digits"\n')
    (out / "meta.json").write_text('{"status": "finished"}')
    result = nnkit_subprocess("resume", out, check=False)
    assert result.returncode == 2 and "already finished" in result.stderr
