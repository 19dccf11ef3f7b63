"""SIGKILL at three points (mid-epoch, mid-checkpoint, mid-export), then `nnkit resume`.

Each killed run must end, after one ``nnkit resume``, as a valid run folder
whose metrics.json equals that of the same deterministic run left alone
(tolerance: exact equality of every number; the runs use
``train.deterministic = true`` and the same seed on the same machine).

The kill is placed by a tiny wrapper (``python -c``) that monkeypatches one
function before calling the real CLI, so no test hook lives in nnkit:

* mid-epoch: a callback sends SIGKILL to its own process at batch 3 of epoch 3;
* mid-checkpoint: ``keras.Model.save_weights`` (used only by the run
  checkpoint) writes half of the epoch-2 weights file, then SIGKILL;
* mid-export: SIGKILL after the SavedModel is written to its temporary folder,
  before the fresh-process check and the rename into ``export/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, check_run_folder, nnkit_subprocess

EPOCHS = 4
ARGS = ["--quiet", "--seed", "7", "--set", "train.deterministic=true", "--set", f"train.epochs={EPOCHS}",
        "--set", "train.early_stopping=true", "--set", "train.patience=1", "--set", "model.filters=[8]",
        "--set", "model.dense_units=16", "--set", 'eval.baselines=["majority"]',
        "--set", "train.checkpoint_seconds=0"]  # a commit after every epoch: the kill points below count on it

KILLER = r'''
import os, signal, sys
point = sys.argv[1]
sys.argv = ["nnkit"] + sys.argv[2:]

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if point == "epoch":
    import keras
    from nnkit import train

    class Killer(keras.callbacks.Callback):
        epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 2 and batch == 3:
                die()

    original = train.callbacks_for
    train.callbacks_for = lambda *a, **k: original(*a, **k) + [Killer()]
elif point == "checkpoint":
    import keras

    calls = []
    save_weights = keras.Model.save_weights

    def half_then_die(self, filepath, *args, **kwargs):
        calls.append(filepath)
        save_weights(self, filepath, *args, **kwargs)
        if len(calls) == 2:  # the commit of epoch 2: leave a torn file, die before the rename
            size = os.path.getsize(filepath)
            with open(filepath, "r+b") as handle:
                handle.truncate(size // 2)
            die()

    keras.Model.save_weights = half_then_die
elif point == "export":
    from nnkit import export

    export.check_in_fresh_process = lambda *a, **k: die()

from nnkit.cli import main
main()
'''


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}


def _killed_run(point: str, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", KILLER, point, "run", "digits", "--out", str(out), *ARGS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def _reference(out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nnkit.cli", "run", "digits", "--out", str(out), *ARGS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def _numbers(metrics: dict) -> dict:
    return {"model": metrics["model"], "baselines": metrics["baselines"], "details": metrics.get("details")}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run, started once for the module (in the background)."""
    out = tmp_path_factory.mktemp("reference") / "run"
    process = _reference(out)
    yield out, process
    if process.poll() is None:
        process.kill()


def _finish_reference(reference) -> dict:
    out, process = reference
    _, stderr = process.communicate(timeout=900)
    assert process.returncode == 0, stderr[-3000:]
    return json.loads((out / "metrics.json").read_text())


def _kill_and_resume(point: str, tmp_path: Path) -> tuple[Path, dict]:
    out = tmp_path / "run"
    process = _killed_run(point, out)
    _, stderr = process.communicate(timeout=900)
    assert process.returncode == -9, f"the {point} kill did not happen: {stderr[-3000:]}"
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "running"  # SIGKILL: no handler ran
    state = {"meta": meta, "partial": sorted(p.name for p in out.rglob(".partial.*"))}
    result = nnkit_subprocess("resume", out, timeout=900)
    assert result.stdout.strip().splitlines()[-1] == str(out)
    return out, state


def _assert_valid_and_equal(out: Path, reference) -> None:
    metrics = check_run_folder(out, "digits", "image_classification")
    meta = json.loads((out / "meta.json").read_text())
    assert meta["resumed"] == 1
    assert not list(out.rglob(".partial.*")), "half-written files left behind"
    assert not (out / "checkpoints" / "backup").exists()
    assert sorted(p.name for p in (out / "export").iterdir()) == ["saved_model"]
    assert _numbers(metrics) == _numbers(_finish_reference(reference))  # exact, not approximate


def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(tmp_path, reference):
    out, state = _kill_and_resume("epoch", tmp_path)
    assert state["meta"]["stages"] == []
    _assert_valid_and_equal(out, reference)
    # epochs 0 and 1 were committed before the kill: the resume did not redo them
    rows = (out / "history.csv").read_text().strip().splitlines()[1:]
    epochs = [int(r.split(",")[0]) for r in rows]
    assert epochs.count(0) == 1 and epochs.count(1) == 1


@pytest.mark.slow
def test_sigkill_mid_checkpoint_leaves_the_previous_commit_whole(tmp_path, reference):
    out, state = _kill_and_resume("checkpoint", tmp_path)
    assert any(name.endswith(".weights.h5") for name in state["partial"]), state  # the torn file
    _assert_valid_and_equal(out, reference)


@pytest.mark.slow
def test_sigkill_mid_export_leaves_no_garbage_and_resume_redoes_it(tmp_path, reference):
    out, state = _kill_and_resume("export", tmp_path)
    assert state["meta"]["stages"] == ["train", "evaluate", "report"]
    assert any(name.startswith(".partial.saved_model") for name in state["partial"]), state
    _assert_valid_and_equal(out, reference)


@pytest.mark.parametrize("known_batches,repeated", [(True, False), (False, False), (True, True)])
def test_checkpoint_resume_replays_shuffle_order_and_dropout_seeds(tmp_path, known_batches, repeated):
    """In one process, fast: 3 epochs straight == 1 epoch, a crash, and a resume from the checkpoint.

    Guards the two things Keras does not restore (the shuffle's per-iterator
    seeds, the dropout seed state) and the installed Keras's iterator count
    per epoch that ``nnkit.train._replay_epochs`` relies on.
    """
    import numpy as np
    import keras
    import tensorflow as tf

    from nnkit.train import ResumableEarlyStopping, RunCheckpoint, _replay_epochs, apply_seed

    x = np.random.default_rng(0).normal(size=(96, 5)).astype("float32")
    y = (x.sum(1) > 0).astype("float32")

    def build():
        apply_seed({"seed": 3, "deterministic": True})
        ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(96, seed=3, reshuffle_each_iteration=True).batch(16)
        if not known_batches:
            ds = ds.filter(lambda a, b: True)  # cardinality unknown until the first epoch ends
        if repeated:  # train.min_steps on a small data set: 2.5 reshuffled passes an epoch
            ds = ds.repeat().take(15)
        inputs = keras.Input((5,))
        hidden = keras.layers.Dropout(0.4)(keras.layers.Dense(8, activation="relu")(inputs))
        model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden))
        model.compile("adam", "binary_crossentropy")
        return model, ds

    def callbacks(folder):
        stopping = ResumableEarlyStopping(monitor="loss", patience=5, restore_best_weights=True)
        return [stopping, RunCheckpoint(folder, [stopping])]

    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    model, ds = build()
    model.fit(ds, epochs=3, verbose=0, callbacks=callbacks(tmp_path / "straight"))
    straight = model.get_weights()
    model, ds = build()
    with pytest.raises(KeyboardInterrupt):
        model.fit(ds, epochs=3, verbose=0, callbacks=[Crash()] + callbacks(tmp_path / "ck"))
    assert RunCheckpoint.read(tmp_path / "ck")["epoch"] == 1
    model, ds = build()
    _replay_epochs(ds, RunCheckpoint.read(tmp_path / "ck"), repeated)
    model.fit(ds, epochs=3, verbose=0, callbacks=callbacks(tmp_path / "ck"))
    for a, b in zip(straight, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    files = {p.name for p in (tmp_path / "ck").iterdir()}
    kept = {"checkpoint.json", "checkpoint.previous.json", "epoch-3.weights.h5", "epoch-2.weights.h5"}
    assert {"checkpoint.json", "epoch-3.weights.h5", "checkpoint.previous.json"} <= files
    assert {f for f in files if not f.startswith("best-epoch-")} <= kept  # the last commit and the one before


def test_checkpoint_interval_commits_by_time_and_a_resume_redoes_the_rest(tmp_path):
    """``train.checkpoint_seconds``: commits only once the interval has passed (and after the last epoch);
    a crash after uncommitted epochs resumes from the last commit and ends equal to a straight run."""
    import numpy as np
    import keras
    import tensorflow as tf

    from nnkit.train import RunCheckpoint, _replay_epochs, apply_seed

    x = np.random.default_rng(1).normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    now = [0.0]

    def clock():
        return now[0]

    class Tick(keras.callbacks.Callback):  # each epoch "takes" 4 s; a crash at the start of epoch `crash_at`
        def __init__(self, crash_at=None):
            super().__init__()
            self.crash_at, self.committed = crash_at, []

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == self.crash_at:
                raise KeyboardInterrupt

        def on_epoch_end(self, epoch, logs=None):
            now[0] += 4.0

    def train(folder, tick, epochs=6):
        apply_seed({"seed": 5, "deterministic": True})
        ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(64, seed=5, reshuffle_each_iteration=True).batch(16)
        _replay_epochs(ds, RunCheckpoint.read(folder))
        inputs = keras.Input((4,))
        model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(
            keras.layers.Dropout(0.3)(keras.layers.Dense(8, activation="relu")(inputs))))
        model.compile("adam", "binary_crossentropy")
        checkpoint = RunCheckpoint(folder, every_seconds=10, clock=clock)
        commits = []
        original = checkpoint.commit
        checkpoint.commit = lambda done: (commits.append(done), original(done))
        model.fit(ds, epochs=epochs, verbose=0, callbacks=[tick, checkpoint])
        return model, commits

    straight, commits = train(tmp_path / "straight", Tick())
    assert commits == [3, 6]  # 12 s and 24 s after the start; epoch 6 is the last
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "ck", Tick(crash_at=5))  # epochs 4 and 5 finished but were not committed
    assert RunCheckpoint.read(tmp_path / "ck")["epoch"] == 3
    resumed, commits = train(tmp_path / "ck", Tick())
    assert commits == [6]
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
