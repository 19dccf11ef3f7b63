"""Compile and fit: optimizer and schedule from config, callbacks, strategy, seeds.

One trainer for every task. The task supplies the model builder, the loss
and the datasets; this module supplies everything a careful Keras user
writes around ``model.fit``: seeds and determinism, the distribution
strategy's scope, the optimizer, EarlyStopping that survives a resume,
an atomic per-epoch checkpoint to resume from (RunCheckpoint), the best-model
checkpoint, CSV history and TensorBoard.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from nnkit.distribute import progress_verbosity
from nnkit.divergence import StopOnDivergence
from nnkit.runs import Run, atomic_path


# -- seeds, precision, strategy --------------------------------------------------------

def apply_seed(train_cfg: dict) -> None:
    """Seed Python, NumPy and TensorFlow; optionally make TF ops deterministic."""
    keras.utils.set_random_seed(int(train_cfg["seed"]))
    if train_cfg["deterministic"]:
        tf.config.experimental.enable_op_determinism()


def apply_precision(train_cfg: dict) -> str:
    """Set the global dtype policy; returns its name (recorded in meta.json)."""
    if not train_cfg["mixed_precision"]:
        keras.mixed_precision.set_global_policy("float32")
    elif tf.config.list_physical_devices("GPU"):
        keras.mixed_precision.set_global_policy("mixed_float16")
    else:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    return keras.mixed_precision.global_policy().name


def make_strategy(train_cfg: dict) -> tf.distribute.Strategy:
    from nnkit.distribute import strategy_from_config

    return strategy_from_config(train_cfg)


# -- optimizer ---------------------------------------------------------------------------

def make_learning_rate(train_cfg: dict, steps_per_epoch: int):
    lr = float(train_cfg["learning_rate"])
    schedule = train_cfg["schedule"]
    steps_per_epoch = max(1, int(steps_per_epoch))
    warmup = int(train_cfg.get("warmup_steps", 0))
    if warmup and schedule not in ("constant", "cosine"):
        from nnkit.errors import ConfigError

        raise ConfigError(f"train.warmup_steps works with the constant and cosine schedules, not {schedule!r}")
    if warmup:  # Keras's CosineDecay warms up linearly from 0; alpha=1 keeps the rate constant after it
        return keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=max(1, train_cfg["epochs"] * steps_per_epoch - warmup),
            alpha=1.0 if schedule == "constant" else 0.0, warmup_target=lr, warmup_steps=warmup)
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(lr, decay_steps=train_cfg["epochs"] * steps_per_epoch)
    return keras.optimizers.schedules.ExponentialDecay(
        lr, decay_steps=train_cfg["decay_epochs"] * steps_per_epoch,
        decay_rate=train_cfg["decay_rate"], staircase=(schedule == "step"))


def repeat_to_min_steps(train_ds, epochs: int, min_steps: int):
    """``(dataset, steps per epoch, repeated)``: a dataset of known size repeated to ``train.min_steps``."""
    known = bool(train_ds.cardinality() > 0)
    steps = int(train_ds.cardinality().numpy()) if known else 100
    per_epoch = steps_for_min_steps(epochs, min_steps, steps)
    if known and per_epoch > steps:  # a small data set: repeated within each epoch
        return train_ds.repeat().take(per_epoch), per_epoch, True
    return train_ds, steps, False


def steps_for_min_steps(epochs: int, min_steps: int, steps_per_pass: int) -> int:
    """``train.min_steps``: optimizer steps in one epoch, so that all epochs together make ``min_steps``.

    A recipe's epochs are sized for its bundled data; a user's data set of a
    few batches would get a few dozen steps from them (item2vec on the
    55-invoice Online Retail sample: 10 Adam steps), far from trained. Such
    an epoch repeats the data (reshuffled each pass) up to this many steps;
    the epochs, and what is done per epoch (validation, checkpoints, logs),
    stay as configured. A data set with enough steps keeps one pass.
    """
    return max(int(steps_per_pass), -(-int(min_steps) // max(1, int(epochs))))


def make_optimizer(train_cfg: dict, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    kwargs = {"learning_rate": make_learning_rate(train_cfg, steps_per_epoch)}
    if train_cfg["clipnorm"] > 0:
        kwargs["clipnorm"] = train_cfg["clipnorm"]
    if train_cfg["ema"]:
        kwargs.update(use_ema=True, ema_momentum=train_cfg["ema_momentum"])
    name = train_cfg["optimizer"]
    if name == "sgd":
        return keras.optimizers.SGD(momentum=train_cfg["momentum"], nesterov=train_cfg["nesterov"], **kwargs)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(**kwargs)
    return keras.optimizers.Adam(**kwargs)


# -- callbacks ----------------------------------------------------------------------------

class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping whose patience counter and best weights survive ``nnkit resume``.

    Keras restores neither after an interruption, so a resumed run would
    forget its best epoch. The state is saved by :class:`RunCheckpoint`, in
    the same atomic commit as the weights of the epoch it belongs to.
    """

    def __init__(self, state_dir: Path | None = None, **kwargs):
        super().__init__(**kwargs)
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self._saved_best = (None, None)  # (best_epoch, file) last written

    def checkpoint_state(self, folder: Path, epochs_done: int) -> dict:
        best = None if self.best is None or not np.isfinite(self.best) else float(self.best)
        state = {"wait": self.wait, "best": best, "best_epoch": self.best_epoch,
                 "stopped_epoch": self.stopped_epoch, "best_weights": None}
        if self.restore_best_weights and self.best_weights is not None:
            if self._saved_best[0] != self.best_epoch or not (folder / str(self._saved_best[1])).is_file():
                name = f"best-epoch-{self.best_epoch + 1}.npz"
                with atomic_path(folder / name, suffix=".npz") as tmp:
                    with open(tmp, "wb") as handle:  # arrays only: loaded back with allow_pickle=False
                        np.savez(handle, *self.best_weights)
                self._saved_best = (self.best_epoch, name)
            state["best_weights"] = self._saved_best[1]
        return state

    def restore_checkpoint_state(self, folder: Path, state: dict) -> None:
        self.wait, self.best_epoch = state["wait"], state["best_epoch"]
        self.stopped_epoch = state.get("stopped_epoch", 0)
        if state["best"] is not None:
            self.best = state["best"]
        if state.get("best_weights"):
            with np.load(folder / state["best_weights"], allow_pickle=False) as data:
                self.best_weights = [data[f"arr_{i}"] for i in range(len(data.files))]
            self._saved_best = (self.best_epoch, state["best_weights"])


class AtomicBestModel(keras.callbacks.Callback):
    """Save the model to ``path`` whenever the monitored value improves, atomically."""

    def __init__(self, path: Path, monitor: str = "val_loss"):
        super().__init__()
        self.path, self.monitor = Path(path), monitor
        self.best = np.inf

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or value < self.best:
            self.best = np.inf if value is None else value
            save_model(self.model, self.path)

    def checkpoint_state(self, folder: Path, epochs_done: int) -> dict:
        return {"best": float(self.best) if np.isfinite(self.best) else None}

    def restore_checkpoint_state(self, folder: Path, state: dict) -> None:
        self.best = np.inf if state.get("best") is None else state["best"]


class EpochSummaries(keras.callbacks.Callback):
    """TensorBoard's epoch charts: ``logs/train`` and ``logs/validation``, tags ``epoch_<metric>``.

    The same files and tags ``keras.callbacks.TensorBoard(update_freq="epoch")``
    writes, for 0.35 ms an epoch: Keras 3.15's callback runs TensorFlow
    summary ops (~3.5 ms an epoch) and, even with epoch updates, a Python
    hook on every batch (0.4 ms each); measured on the perceptron recipe
    (57 ms epochs) that was over 20 % of training. Here the events go through TensorBoard's own
    event-file writer (the one PyTorch's SummaryWriter uses), once per epoch.
    Event files are append-only and a torn last record is skipped by
    TensorBoard's reader, so a kill needs no clean-up.
    """

    def __init__(self, log_dir: Path):
        super().__init__()
        self.log_dir = Path(log_dir)
        self._writers = {}

    def _writer(self, name: str):
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        if name not in self._writers:
            # written by its own thread, flushed every few seconds (a live TensorBoard sees each epoch soon)
            self._writers[name] = EventFileWriter(str(self.log_dir / name), flush_secs=2)
        return self._writers[name]

    def on_train_begin(self, logs=None):
        self._writer("train"), self._writer("validation")

    def on_epoch_end(self, epoch, logs=None):
        from tensorboard.compat.proto import event_pb2, summary_pb2

        logs = dict(logs or {})
        learning_rate = _learning_rate(self.model.optimizer)
        if learning_rate is not None:
            logs["learning_rate"] = learning_rate
        for name, keys in (("train", [k for k in logs if not k.startswith("val_")]),
                           ("validation", [k for k in logs if k.startswith("val_")])):
            values = [summary_pb2.Summary.Value(tag=f"epoch_{k.removeprefix('val_')}", simple_value=number)
                      for k in keys if (number := _to_float(logs[k])) is not None]
            if values:
                writer = self._writer(name)
                writer.add_event(event_pb2.Event(wall_time=time.time(), step=epoch,
                                                 summary=summary_pb2.Summary(value=values)))

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def _learning_rate(optimizer) -> float | None:
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # a LossScaleOptimizer wraps the real one
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        return None
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def _to_float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class AtomicCSVLogger(keras.callbacks.Callback):
    """``history.csv``: one row per finished epoch; never a torn or repeated row.

    Keras's CSVLogger appends through a buffered file: a kill in mid-write
    leaves a torn line that the resumed run then appends to, and an epoch
    redone after a resume appears twice. Here the first epoch of a (resumed)
    training rewrites the file atomically without the rows of epochs >= its
    own, and later epochs append their row with one ``write`` call (a killed
    process cannot tear it) and an fsync: 0.2 ms instead of 0.7 ms for a
    rewrite, which mattered for 50 ms epochs. A new column rewrites the file.
    Same format as CSVLogger (``epoch`` then the sorted log keys; ``NA``
    where a column has no value).
    """

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)
        self.rows, self.keys, self._file_matches = [], None, False

    def on_train_begin(self, logs=None):
        import csv

        self.rows, self.keys, self._file_matches = [], None, False
        if self.path.is_file():  # rows a killed attempt left (a resume starts past some of them)
            with open(self.path, newline="") as handle:
                self.rows = [r for r in csv.DictReader(handle) if str(r.get("epoch", "")).isdigit()
                             and None not in r.values()]

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch}
        for key, value in sorted((logs or {}).items()):
            number = _to_float(value)
            row[key] = str(value) if number is None else number
        kept = [r for r in self.rows if int(r["epoch"]) < epoch]
        keys = ["epoch"] + sorted({k for r in kept + [row] for k in r if k != "epoch"})
        if self._file_matches and len(kept) == len(self.rows) and keys == self.keys:
            self._append(row)
        else:
            self._rewrite(keys, kept + [row])
        self.rows, self.keys, self._file_matches = kept + [row], keys, True

    def _lines(self, keys, rows, header: bool) -> bytes:
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=keys, restval="NA", lineterminator="\n")
        if header:
            writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue().encode()

    def _rewrite(self, keys, rows) -> None:
        with atomic_path(self.path) as tmp:
            tmp.write_bytes(self._lines(keys, rows, header=True))

    def _append(self, row) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, self._lines(self.keys, [row], header=False))
            os.fsync(fd)
        finally:
            os.close(fd)


class RunCheckpoint(keras.callbacks.Callback):
    """The training state of a run, saved at the end of every epoch in one atomic commit.

    Replaces ``keras.callbacks.BackupAndRestore``, which writes its weights and
    its epoch counter as two plain files (a kill between them, or during
    them, leaves a checkpoint that disagrees with itself or cannot be read)
    and restores neither the random-seed state of dropout/augmentation layers
    nor the other callbacks' state. Here one commit is: the weights (with the
    optimizer) in ``epoch-K.weights.h5``, then ``checkpoint.json`` naming
    that file and holding the seed-generator states and the state of the
    early-stopping, best-model and EMA callbacks; each file is written to a
    temporary name and renamed, and ``checkpoint.json`` is renamed last, so a
    kill at any instant leaves the previous commit whole. Files no commit
    names are removed after the commit.

    Committed at epoch ends only (not per batch): a kill mid-epoch redoes
    that epoch from its start, which keeps a resumed deterministic run
    identical to an uninterrupted one (Keras restores only the epoch, not the
    batch, so batch-level saves would replay the epoch's first batches on
    newer weights). ``every_seconds`` > 0 skips the commit at an epoch end
    until that many seconds have passed since the last one: a commit (two
    fsynced files) costs 10-80 ms here, most of a 50 ms perceptron epoch, and
    nothing of a 10 s one. A kill then redoes the epochs since the last
    commit; they replay identically (seeds and shuffle order are part of the
    commit). The last epoch and an early stop are always committed.
    It is placed last among the callbacks so that it commits after the others
    have finished the epoch. The folder is kept after training ends; the
    pipeline removes it once the train stage is recorded as done.
    """

    INDEX = "checkpoint.json"
    PREVIOUS = "checkpoint.previous.json"

    def __init__(self, folder: Path, stateful: list | None = None, every_seconds: float = 0.0,
                 clock=time.monotonic):
        super().__init__()
        self.folder = Path(folder)
        self.stateful = list(stateful or [])
        self.every_seconds, self.clock = float(every_seconds), clock
        self._last_commit = 0.0  # set at train begin

    @classmethod
    def read(cls, folder: Path, name: str | None = None) -> dict | None:
        """The last commit (or the one before, if a kill came between their two renames)."""
        for candidate in ([name] if name else [cls.INDEX, cls.PREVIOUS]):
            index = Path(folder) / candidate
            if index.is_file():
                return json.loads(index.read_text())
        return None

    def _keyed(self):
        return [(f"{type(cb).__name__}-{i}", cb) for i, cb in enumerate(self.stateful)]

    def _restore(self) -> None:
        saved = self.read(self.folder)
        if saved is None:
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        self.model.load_weights(self.folder / saved["weights"])
        for variable, value in zip(_seed_variables(self.model), saved.get("seeds", [])):
            variable.assign(np.asarray(value, dtype=variable.dtype))
        states = saved.get("callbacks", {})
        for key, cb in self._keyed():
            if key not in states:
                continue
            if isinstance(cb, keras.callbacks.SwapEMAWeights):
                cb._ema_weights_in_model = bool(states[key]["ema_in_model"])
            else:
                cb.restore_checkpoint_state(self.folder, states[key])
        # an early stop already decided counts as the end of training
        self.model._initial_epoch = self.params["epochs"] if saved.get("stopped") else saved["epoch"]

    def on_train_begin(self, logs=None):
        self._last_commit = self.clock()
        self._restore()

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        last = done >= self.params.get("epochs", done) or self.model.stop_training
        if last or self.clock() - self._last_commit >= self.every_seconds:
            self.commit(done)
            self._last_commit = self.clock()

    def commit(self, done: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        weights = f"epoch-{done}.weights.h5"
        with atomic_path(self.folder / weights, suffix=".weights.h5") as tmp:
            self.model.save_weights(tmp)
        states = {}
        for key, cb in self._keyed():
            if isinstance(cb, keras.callbacks.SwapEMAWeights):
                states[key] = {"ema_in_model": bool(cb._ema_weights_in_model)}
            else:
                states[key] = cb.checkpoint_state(self.folder, done)
        index = {"epoch": done, "weights": weights, "stopped": bool(self.model.stop_training),
                 "seeds": [np.asarray(v.numpy()).tolist() for v in _seed_variables(self.model)],
                 "callbacks": states}
        if (self.folder / self.INDEX).is_file():  # the commit before stays whole: `resume --from last-good`
            os.replace(self.folder / self.INDEX, self.folder / self.PREVIOUS)
        with atomic_path(self.folder / self.INDEX) as tmp:
            tmp.write_text(json.dumps(index))
        keep = {self.INDEX, self.PREVIOUS} | _named_files(index) | _named_files(self.read(self.folder, self.PREVIOUS))
        for path in self.folder.iterdir():
            if path.name not in keep and not path.name.startswith("."):
                path.unlink()


def _named_files(index: dict | None) -> set:
    """The files a checkpoint index names (its weights and any best weights)."""
    if not index:
        return set()
    states = index.get("callbacks", {}).values()
    return {index.get("weights")} | {s.get("best_weights") for s in states if isinstance(s, dict)}


def _seed_variables(model) -> list:
    """The state of every SeedGenerator (dropout, augmentation): not part of save_weights."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def save_model(model: keras.Model, path: Path) -> None:
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


def load_model(path: Path, custom_objects: dict | None = None, unsafe: bool | None = None) -> keras.Model:
    """Load a ``.keras`` file in safe mode: no Lambda bytecode, no unknown objects.

    ``unsafe`` (default: :data:`ALLOW_UNSAFE`, set by the CLI's ``--unsafe``)
    lets Keras deserialize Python lambdas, i.e. run code stored in the file.
    Refusals and unreadable files become one-line ``NnkitError``s.
    """
    from nnkit import layers  # noqa: F401  registers nnkit's serializable layers
    from nnkit.errors import NnkitError

    unsafe = ALLOW_UNSAFE if unsafe is None else unsafe
    path = Path(path)
    if not path.is_file():
        raise NnkitError(f"{path}: no such model file")
    try:
        return keras.saving.load_model(path, custom_objects=custom_objects, safe_mode=not unsafe)
    except Exception as exc:  # Keras raises ValueError/TypeError/OSError/zipfile errors here
        text = " ".join(str(exc).split())
        if not unsafe and ("safe_mode" in text or "lambda" in text.lower()):
            raise NnkitError(f"{path}: refused: the model holds a Lambda layer (Python code that would run "
                             "on loading); load it only if you trust its author, with --unsafe") from None
        if "Could not locate" in text or "custom_objects" in text or "Unknown" in text:
            import re

            found = re.search(r"Could not locate (?:class|function) '([^']+)'", text)
            name = found.group(1) if found else text[:120]
            raise NnkitError(f"{path}: refused: the model needs custom object {name!r}, which neither Keras "
                             "nor nnkit provides (nnkit never imports code named by a model file)") from None
        raise NnkitError(f"{path}: not a loadable .keras model ({type(exc).__name__}: {text[:200]})") from None


ALLOW_UNSAFE = False  # the CLI's --unsafe flag; never set from the environment or a config file


def callbacks_for(run: Run, train_cfg: dict, has_validation: bool, monitor: str = "val_loss") -> list:
    if not has_validation:
        monitor = "loss"
    run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    callbacks = [
        AtomicCSVLogger(run.history_file),
        EpochSummaries(run.log_dir),
    ]
    if train_cfg["ema"]:  # validate, stop early and checkpoint on the averaged weights
        callbacks.insert(0, keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    if train_cfg["early_stopping"]:
        callbacks.insert(1, ResumableEarlyStopping(monitor=monitor,
                                                   patience=train_cfg["patience"],
                                                   restore_best_weights=True))
    callbacks.append(AtomicBestModel(run.model_file, monitor=monitor))
    if train_cfg.get("stop_on_divergence", True):
        callbacks.insert(0, StopOnDivergence(train_cfg))  # first: a NaN epoch is never checkpointed
    stateful = [c for c in callbacks if hasattr(c, "checkpoint_state")
                or isinstance(c, keras.callbacks.SwapEMAWeights)]
    callbacks.append(RunCheckpoint(run.checkpoint_dir / "backup", stateful,  # fit() keeps it last
                                   every_seconds=train_cfg["checkpoint_seconds"]))
    return callbacks


# -- fit ---------------------------------------------------------------------------------

def fit(task, cfg: dict, prepared, run: Run, extra_callbacks: list | None = None) -> keras.Model:
    """Build, compile and train the task's model; save the best model to ``run.model_file``."""
    train_cfg = cfg["train"]
    apply_seed(train_cfg)
    policy = apply_precision(train_cfg)
    strategy = make_strategy(train_cfg)
    replicas = strategy.num_replicas_in_sync
    global_batch = train_cfg["batch_size"] * replicas
    train_ds, val_ds = task.datasets(cfg, prepared, global_batch)
    one_pass = int(train_ds.cardinality().numpy())
    train_ds, steps, repeated = repeat_to_min_steps(train_ds, train_cfg["epochs"], train_cfg["min_steps"])
    if repeated:
        run.update_meta(steps_per_epoch={"steps": steps, "steps_per_pass": one_pass,
                                         "min_steps": train_cfg["min_steps"]})
    with strategy.scope():
        model = task.build_model(cfg, prepared)
        jit = train_cfg["jit_compile"]
        model.compile(optimizer=make_optimizer(train_cfg, steps),
                      jit_compile=jit if isinstance(jit, bool) else "auto",
                      steps_per_execution=train_cfg["steps_per_execution"],
                      **task.compile_kwargs(cfg, prepared))
    run.update_meta(precision=policy, strategy=train_cfg["strategy"], replicas=replicas,
                    global_batch_size=global_batch)
    callbacks = callbacks_for(run, train_cfg, val_ds is not None) + list(extra_callbacks or [])
    average = None
    if train_cfg.get("average_checkpoints", 0) > 1 and val_ds is not None:
        from nnkit.averaging import CheckpointAverage

        average = CheckpointAverage(train_cfg["average_checkpoints"], val_ds)
        callbacks.append(average)  # after early stopping, which restores the best weights at the end
    callbacks.sort(key=lambda c: isinstance(c, RunCheckpoint))  # the commit comes after every other callback
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):  # nnkit's own engine: one per epoch
        _replay_epochs(train_ds, RunCheckpoint.read(run.checkpoint_dir / "backup"), repeated)
    engine = _engine_for(strategy)
    engine(model, train_ds, val_ds, train_cfg, callbacks)
    if average is not None and average.summary:
        run.update_meta(checkpoint_average=average.summary)
    finished = task.finish_model(model, prepared, cfg)
    if finished:
        run.update_meta(finished=finished)
    save_model(model, run.model_file)  # the restored best (or averaged) weights, whatever the last epoch was
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # evaluate/export on this worker alone: a plain copy, not collective variables
        model = load_model(run.model_file, task.custom_objects())
    return model


def _replay_epochs(train_ds, saved: dict | None, repeated: bool = False) -> None:
    """On resume, draw as many iterators as the finished epochs drew, so the shuffle order continues.

    ``Dataset.shuffle(seed=..., reshuffle_each_iteration=True)`` takes new
    seeds each time an iterator is made; a fresh process would otherwise
    replay epoch 0's order at the resumed epoch. Keras 3's ``fit`` (its
    ``EpochIterator`` with no ``steps_per_epoch``) makes two iterators per
    epoch when the batch count is known (one at the start, a spare at the
    end), and one fewer in all when it must discover it in the first epoch;
    ``tests/test_kill_resume.py`` checks this against the installed Keras.
    Making an iterator reads no data.
    """
    if not saved:
        return
    done = int(saved["epoch"])
    if repeated:
        # a repeated (small) data set starts a new shuffle at each pass, so the finished epochs are read
        # through, then each one's spare iterator is made: at most train.min_steps batches, no training
        for _ in range(done):
            for _ in train_ds:
                pass
            iter(train_ds)
        return
    count = 2 * done if int(train_ds.cardinality()) > 0 else max(0, 2 * done - 1)
    for _ in range(count):
        iter(train_ds)


def _engine_for(strategy):
    """``model.fit`` everywhere it works; nnkit's own step under multi-worker (keras#20585)."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        from nnkit.distribute import fit_multi_worker

        return lambda *args: fit_multi_worker(strategy, *args)
    return _keras_fit


def _keras_fit(model, train_ds, val_ds, train_cfg, callbacks):
    model.fit(train_ds, validation_data=val_ds, epochs=train_cfg["epochs"], callbacks=callbacks, shuffle=False,
              verbose=progress_verbosity(train_cfg))


def versions() -> dict:
    return {"tensorflow": tf.__version__, "keras": keras.__version__,
            "devices": [d.device_type for d in tf.config.list_physical_devices()],
            "cpu_threads": os.cpu_count()}
