"""Issue 13 behaviour beyond the bad-input table: permissions, the lock, one decoder, dates, the launcher."""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from helpers import ROOT

# -- files with the user's umask, never over a special file ------------------------------------------


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_get_the_users_umask(tmp_path, mask, mode):
    from nnkit.runs import write_json

    previous = os.umask(mask)
    try:
        write_json(tmp_path / "meta.json", {"a": 1})
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "meta.json").stat().st_mode) == mode


def test_a_fifo_or_a_folder_is_never_replaced(tmp_path):
    from nnkit.errors import NnkitError
    from nnkit.runs import write_text

    os.mkfifo(tmp_path / "report.md")
    with pytest.raises(NnkitError, match=r"report\.md: is a FIFO .*never replaces"):
        write_text(tmp_path / "report.md", "x")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "report.md").st_mode)
    (tmp_path / "metrics.json").mkdir()
    with pytest.raises(NnkitError, match="is a folder"):
        write_text(tmp_path / "metrics.json", "x")
    assert not list(tmp_path.glob(".partial.*"))


def test_writing_under_a_regular_file_is_one_line(tmp_path):
    from nnkit.errors import NnkitError
    from nnkit.runs import create_run, write_text

    (tmp_path / "file").write_text("mine")
    with pytest.raises(NnkitError, match="a part of the path is a file") as info:
        write_text(tmp_path / "file" / "x.json", "x")
    assert "\n" not in str(info.value)
    with pytest.raises(NnkitError, match="a part of the path is a file"):
        create_run("digits", root=tmp_path / "file" / "runs")
    assert (tmp_path / "file").read_text() == "mine"


# -- the run-folder lock --------------------------------------------------------------------------------

HOLDER = """
import sys, time
from nnkit.runs import Run, lock_run
lock_run(Run(sys.argv[1]), "train digits")
print("locked", flush=True)
sys.stdin.read()  # hold until the test closes stdin or kills this process
"""


def _holder(folder: Path) -> subprocess.Popen:
    """A process that holds the run folder's lock; returns once it says so (no clock involved)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout.readline().strip() == "locked"
    return process


def test_a_second_process_is_refused_with_who_holds_the_lock_and_a_kill_frees_it(tmp_path):
    from nnkit.errors import NnkitError
    from nnkit.runs import Run, lock_is_held, lock_run, release_locks

    folder = tmp_path / "run"
    folder.mkdir()
    holder = _holder(folder)
    try:
        assert lock_is_held(folder) is True
        with pytest.raises(NnkitError, match=rf"in use by another nnkit process \(pid {holder.pid} .*train digits"):
            lock_run(Run(folder))
    finally:
        holder.kill()  # SIGKILL: no handler runs; the kernel drops the lock with the process
        holder.wait()
    assert lock_is_held(folder) is False
    lock_run(Run(folder))  # a killed run can be taken over at once
    try:
        lock_run(Run(folder))  # re-entrant within one process
        assert lock_is_held(folder) is True
    finally:
        release_locks()
    assert lock_is_held(folder) is False


def test_a_lock_taken_for_one_call_is_given_back_after_it(tmp_path):
    """The Python API makes many calls in one process: each call's lock ends with the call;
    a lock the CLI holds for its whole command is kept."""
    from nnkit.runs import Run, lock_is_held, lock_run, locked, release_locks

    run = Run(tmp_path)
    with locked(run):
        assert lock_is_held(tmp_path) is True
    assert lock_is_held(tmp_path) is False
    lock_run(run)
    try:
        with locked(run):
            pass
        assert lock_is_held(tmp_path) is True
    finally:
        release_locks()


# -- one decoder for training, evaluation and prediction --------------------------------------------------


def _png16(path: Path, values: np.ndarray) -> Path:
    """A 16-bit grayscale PNG written with zlib only."""
    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    height, width = values.shape
    rows = b"".join(b"\x00" + values[r].astype(">u2").tobytes() for r in range(height))
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([16, 0, 0, 0, 0])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))
    return path


def test_a_16_bit_png_is_read_the_same_for_training_and_prediction(tmp_path):
    from nnkit.datasets.images import decode_image, load_folder, read_image_file

    values = (np.arange(64).reshape(8, 8) * 1000).astype("uint16")  # up to 63,000 of 65,535
    for c in ("a", "b"):
        for i in range(2):
            _png16(tmp_path / "images" / c / f"{i}.png", values)
    training = load_folder(tmp_path / "images")
    predicted = read_image_file(tmp_path / "images" / "a" / "0.png", (8, 8), 1)
    expected = np.round(values / 257.0).astype("uint8")[..., None]  # scaled, not clipped to 255
    np.testing.assert_array_equal(training.x[0], expected)
    np.testing.assert_array_equal(predicted, expected)
    assert read_image_file is decode_image


# -- dates ----------------------------------------------------------------------------------------------


def _dated(path: Path, fmt: str, days: int) -> Path:
    rows = [dt.date(2021, 1, 1) + dt.timedelta(days=i) for i in range(days)]
    path.write_text("Date,Close\n" + "".join(f"{d.strftime(fmt)},{i}\n" for i, d in enumerate(rows)))
    return path


@pytest.mark.parametrize("fmt", ["%d/%m/%Y", "%m/%d/%Y", "%d.%m.%y", "%Y-%m-%d"])
def test_numeric_dates_are_read_the_way_the_file_proves(tmp_path, fmt):
    from nnkit.datasets.prices import read_csv

    series = read_csv(_dated(tmp_path / "p.csv", fmt, days=40))
    assert str(series.dates[0])[:10] == "2021-01-01" and str(series.dates[-1])[:10] == "2021-02-09"
    assert np.all(np.diff(series.dates).astype("timedelta64[D]").astype(int) == 1)


def test_ambiguous_dates_are_refused_or_read_as_configured(tmp_path):
    from nnkit.datasets.prices import read_csv
    from nnkit.errors import DataError

    path = _dated(tmp_path / "p.csv", "%d/%m/%Y", days=12)  # 01/01 .. 12/01: either order is possible
    with pytest.raises(DataError, match="ambiguous date '01/01/2021'.*data.date_format"):
        read_csv(path)
    day_first = read_csv(path, date_format="%d/%m/%Y")
    assert str(day_first.dates[1])[:10] == "2021-01-02"
    month_first = read_csv(path, date_format="%m/%d/%Y")  # the user's word wins: monthly data
    assert str(month_first.dates[1])[:10] == "2021-02-01"
    with pytest.raises(DataError, match=r"line 2, column 'Date': cannot parse '01/01/2021'.*'%Y-%m-%d'"):
        read_csv(path, date_format="%Y-%m-%d")


# -- the local multi-worker launcher with --data and --config ---------------------------------------------


def test_local_launcher_passes_data_and_config_as_absolute_paths(tmp_path, monkeypatch, cli_run):
    """``--strategy multi_worker --workers 2 --local`` with --data/--config (was: NameError: Path)."""
    from nnkit import distribute

    seen = {}

    def fake_launch(command, recipe, args, workers, out, echo=print):
        seen.update(command=command, recipe=recipe, args=args, workers=workers, out=out)
        return 0, str(tmp_path / "run")

    monkeypatch.setattr(distribute, "launch_local", fake_launch)
    (tmp_path / "t.csv").write_text("a,b,label\n1,2,0\n")
    (tmp_path / "c.toml").write_text("[train]\nepochs = 1\n")
    monkeypatch.chdir(tmp_path)
    result = cli_run("run", "perceptron", "--strategy", "multi_worker", "--workers", "2", "--local",
                     "--data", "t.csv", "--config", "c.toml", "--seed", "3")
    args = seen["args"]
    assert args[args.index("--data") + 1] == str(tmp_path / "t.csv")
    assert args[args.index("--config") + 1] == str(tmp_path / "c.toml")
    assert args[args.index("--seed") + 1] == "3" and seen["workers"] == 2 and seen["command"] == "run"
    assert result.output.strip().splitlines()[-1] == str(tmp_path / "run")


def test_the_local_launcher_starts_again_on_new_ports_when_one_was_taken(tmp_path, monkeypatch):
    """A worker that finds its port taken exits 75 (PortTaken) before writing; the launcher clears what
    that attempt left in the run folder and starts the cluster again; other failures are not retried."""
    from nnkit import distribute
    from nnkit.errors import PortTaken

    attempts, lines = [], []

    def fake_cluster(command, recipe, args, workers, run_path, timeout, echo):
        attempts.append(sorted(p.name for p in Path(run_path).iterdir()))
        (Path(run_path) / "config.toml").write_text("left by the attempt")
        return (PortTaken.exit_code, 1) if len(attempts) < 3 else (0, None)

    monkeypatch.setattr(distribute, "_run_cluster", fake_cluster)
    code, run_path = distribute.launch_local("run", "perceptron", [], 2, str(tmp_path / "run"), echo=lines.append)
    assert code == 0 and run_path == str(tmp_path / "run")
    assert attempts == [[], [], []]  # each attempt found the run folder empty
    assert lines == ["multi-worker run: worker 1's port was taken; starting again on new ports"] * 2

    monkeypatch.setattr(distribute, "_run_cluster", lambda *a: (PortTaken.exit_code, 0))
    code, _ = distribute.launch_local("run", "perceptron", [], 2, str(tmp_path / "run2"), echo=lines.append)
    assert code == 1  # gives up after PORT_ATTEMPTS


@pytest.mark.slow  # one TensorFlow start-up (~10-30 s)
def test_a_worker_whose_port_is_taken_exits_75_with_one_line(tmp_path):
    import json
    import socket

    from nnkit import distribute

    taken = socket.socket()
    taken.bind(("localhost", 0))
    taken.listen()
    try:
        ports = [taken.getsockname()[1]] + distribute.free_ports(1)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CONFIG": distribute.tf_config(ports, 0)}
        env.pop(distribute.CPU_DEVICES_ENV, None)
        env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # nnkit's own default, as a user gets it
        result = subprocess.run([sys.executable, "-m", "nnkit.cli", "train", "perceptron", "--strategy",
                                 "multi_worker", "--out", str(tmp_path / "run")], capture_output=True, text=True,
                                env=env, timeout=600)
    finally:
        taken.close()
    assert result.returncode == 75, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        f"error: localhost:{ports[0]}: this worker cannot listen there (the port is taken); choose another port "
        "in TF_CONFIG (the --local launcher does so by itself)"], json.dumps(result.stderr)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("stop", [True, False])
def test_divergence_stops_the_run_unless_train_stop_on_divergence_is_off(tmp_path, stop):
    """On by default (one line, run failed); a lesson that shows divergence turns it off and keeps the curve."""
    from nnkit.config import TRAIN_SCHEMA
    from nnkit.divergence import StopOnDivergence
    from nnkit.lessons.fitting import LESSON_TRAIN
    from nnkit.runs import Run
    from nnkit.train import callbacks_for

    assert TRAIN_SCHEMA["stop_on_divergence"].default is True and LESSON_TRAIN["stop_on_divergence"] is False
    train_cfg = {k: f.default for k, f in TRAIN_SCHEMA.items()} | {"stop_on_divergence": stop}
    callbacks = callbacks_for(Run(tmp_path), train_cfg, has_validation=False)
    guards = [c for c in callbacks if isinstance(c, StopOnDivergence)]
    assert len(guards) == int(stop) and (not stop or callbacks[0] is guards[0])
    if stop:  # its own error type, which a choice of settings catches to let that setting lose
        from nnkit.errors import TrainingDiverged

        with pytest.raises(TrainingDiverged, match="loss is nan at epoch 3"):
            guards[0].on_epoch_end(2, {"loss": float("nan")})
        guards[0].on_epoch_end(2, {"loss": 0.5})  # a finite loss passes
