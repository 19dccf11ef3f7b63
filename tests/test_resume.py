"""Interrupted runs: SIGKILL mid-training then `nnkit resume`, and a clean Ctrl-C."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys

import pytest
from helpers import ROOT, nnkit_subprocess, sigint_as_on_a_terminal

ARGS = ["--quiet", "--set", "train.epochs=12", "--set", "train.early_stopping=false",
        "--set", "model.filters=[8]", "--set", "model.dense_units=16", "--set", 'eval.baselines=["majority"]',
        "--set", "train.checkpoint_seconds=0"]  # commit every epoch: the SIGKILL test checks none is redone
SMALL = ["--quiet", "--set", "train.epochs=3", "--set", "train.checkpoint_seconds=0"]  # perceptron, seconds


AT_EPOCH = r"""
import os, signal, sys
epoch_at, action = int(sys.argv[1]), sys.argv[2]
sys.argv = ["nnkit"] + sys.argv[3:]
from nnkit.startup import quiet_tensorflow
quiet_tensorflow()  # as the CLI does: this wrapper imports Keras first
import keras
from nnkit import train


class AtEpoch(keras.callbacks.Callback):
    # at the end of epoch `epoch_at` (before its checkpoint commit): a signal, or a pause the test ends
    def on_epoch_end(self, epoch, logs=None):
        if epoch != epoch_at:
            return
        if action == "pause":
            print("paused", flush=True)
            sys.stdin.readline()  # until the test kills this process
        else:
            signal.raise_signal(getattr(signal, action))


original = train.callbacks_for
train.callbacks_for = lambda *a, **k: original(*a, **k) + [AtEpoch()]
from nnkit.cli import main
main()
"""


def _start(out, epoch: int, action: str, recipe: str = "digits", args=ARGS) -> subprocess.Popen:
    """``nnkit run`` in a process that fires ``action`` (a signal name, or "pause") at the end of
    ``epoch``: the interruption lands at a known point, whatever the machine's speed."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", AT_EPOCH, str(epoch), action, "run", recipe, "--out", str(out),
                             *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, preexec_fn=sigint_as_on_a_terminal)


def _wait_for_pause(process) -> None:
    line = process.stdout.readline()
    if line.strip() != "paused":
        raise AssertionError(f"run ended before the pause: {line!r} {process.stderr.read()[-2000:]}")


@pytest.mark.slow  # the default run covers a mid-epoch kill in test_kill_resume.py (with exact equality)
def test_sigkill_mid_training_then_resume_finishes_without_restarting(tmp_path):
    out = tmp_path / "run"
    process = _start(out, 2, "pause")
    _wait_for_pause(process)  # epochs 0 and 1 committed, epoch 2 trained
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


@pytest.mark.parametrize("signame", ["SIGINT", pytest.param("SIGTERM", marks=pytest.mark.slow)])
def test_ctrl_c_or_sigterm_stops_cleanly_and_says_how_to_resume(tmp_path, signame):
    out = tmp_path / "run"
    process = _start(out, 1, signame, "perceptron", SMALL)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 130, stderr[-3000:]
    assert stderr.strip().splitlines() == [f"interrupted; state saved. Continue with: nnkit resume {out}"]
    assert json.loads((out / "meta.json").read_text())["status"] == "interrupted"
    assert not list(out.rglob(".partial.*")), "half-written files left behind"
    if signame == "SIGINT":  # the resume is the same for both
        nnkit_subprocess("resume", out)
        assert json.loads((out / "meta.json").read_text())["status"] == "finished"


@pytest.mark.slow  # three TensorFlow start-ups (~30-60 s); the in-process lock tests run by default
def test_a_live_run_is_locked_and_a_sigkilled_one_resumes(tmp_path):
    out = tmp_path / "run"
    process = _start(out, 0, "pause", "perceptron", SMALL)
    try:
        _wait_for_pause(process)  # training, holding the lock
        second = nnkit_subprocess("resume", out, check=False)
        assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
        assert f"in use by another nnkit process (pid {process.pid}" in second.stderr
        again = nnkit_subprocess("run", "perceptron", "--out", out, check=False)
        assert again.returncode == 2 and "not an empty folder" in again.stderr
    finally:
        process.kill()  # SIGKILL: the kernel releases the lock
        process.wait()
    assert json.loads((out / "meta.json").read_text())["status"] == "running"
    nnkit_subprocess("resume", out)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "finished" and meta["resumed"] == 1


def test_resume_refuses_a_finished_run(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.toml").write_text('[recipe]\ntask = "image_classification"\nname = "digits"\n')
    (out / "meta.json").write_text('{"status": "finished"}')
    result = nnkit_subprocess("resume", out, check=False)
    assert result.returncode == 2 and "already finished" in result.stderr
