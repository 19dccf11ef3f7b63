"""Compile and fit: optimizer and schedule from config, callbacks, strategy, seeds.

One trainer for every task. The task supplies the model builder, the loss
and the datasets; this module supplies everything a careful Keras user
writes around ``model.fit``: seeds and determinism, the distribution
strategy's scope, the optimizer, EarlyStopping that survives a resume,
BackupAndRestore, the best-model checkpoint, CSV history and TensorBoard.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

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
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(lr, decay_steps=train_cfg["epochs"] * steps_per_epoch)
    return keras.optimizers.schedules.ExponentialDecay(
        lr, decay_steps=train_cfg["decay_epochs"] * steps_per_epoch,
        decay_rate=train_cfg["decay_rate"], staircase=(schedule == "step"))


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

    Keras's BackupAndRestore restores the model and the epoch but not the
    callbacks' state, so a resumed run would forget its best epoch.
    """

    def __init__(self, state_dir: Path, **kwargs):
        super().__init__(**kwargs)
        self.state_dir = Path(state_dir)

    @property
    def _state_file(self):
        return self.state_dir / "early_stopping.json"

    @property
    def _weights_file(self):
        return self.state_dir / "best.weights.h5"

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self._state_file.is_file():
            saved = json.loads(self._state_file.read_text())
            self.wait, self.best_epoch = saved["wait"], saved["best_epoch"]
            self.best = saved["best"] if saved["best"] is not None else self.best
            if self._weights_file.is_file() and self.restore_best_weights:
                current = self.model.get_weights()
                self.model.load_weights(self._weights_file)
                self.best_weights = self.model.get_weights()
                self.model.set_weights(current)

    def on_epoch_end(self, epoch, logs=None):
        improved_before = self.best_epoch
        super().on_epoch_end(epoch, logs)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        improved = self.best_epoch != improved_before or not self._weights_file.exists()
        if self.restore_best_weights and improved:
            with atomic_path(self._weights_file, suffix=".weights.h5") as tmp:
                self.model.save_weights(tmp)
        best = None if self.best is None or not np.isfinite(self.best) else float(self.best)
        with atomic_path(self._state_file) as tmp:
            tmp.write_text(json.dumps({"wait": self.wait, "best": best, "best_epoch": self.best_epoch}))


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


def save_model(model: keras.Model, path: Path) -> None:
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


def load_model(path: Path, custom_objects: dict | None = None, unsafe: bool = False) -> keras.Model:
    """Load a ``.keras`` file in safe mode: no Lambda bytecode, no unknown objects."""
    from nnkit import layers  # noqa: F401  registers nnkit's serializable layers

    return keras.saving.load_model(path, custom_objects=custom_objects, safe_mode=not unsafe)


def callbacks_for(run: Run, train_cfg: dict, has_validation: bool, monitor: str = "val_loss") -> list:
    if not has_validation:
        monitor = "loss"
    run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(run.checkpoint_dir / "backup"), save_freq="epoch",
                                         delete_checkpoint=True),
        keras.callbacks.CSVLogger(str(run.history_file), append=True),
        keras.callbacks.TensorBoard(str(run.log_dir), write_graph=False, profile_batch=0),
    ]
    if train_cfg["ema"]:  # validate, stop early and checkpoint on the averaged weights
        callbacks.insert(0, keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    if train_cfg["early_stopping"]:
        callbacks.insert(1, ResumableEarlyStopping(run.checkpoint_dir, monitor=monitor,
                                                   patience=train_cfg["patience"],
                                                   restore_best_weights=True))
    callbacks.append(AtomicBestModel(run.model_file, monitor=monitor))
    return callbacks


# -- fit ---------------------------------------------------------------------------------

def _progress_verbosity(train_cfg: dict) -> int:
    if not train_cfg["verbose"]:
        return 0
    return 1 if sys.stdout.isatty() else 2  # one line per epoch in logs and CI


def fit(task, cfg: dict, prepared, run: Run, extra_callbacks: list | None = None) -> keras.Model:
    """Build, compile and train the task's model; save the best model to ``run.model_file``."""
    train_cfg = cfg["train"]
    apply_seed(train_cfg)
    policy = apply_precision(train_cfg)
    strategy = make_strategy(train_cfg)
    replicas = strategy.num_replicas_in_sync
    global_batch = train_cfg["batch_size"] * replicas
    train_ds, val_ds = task.datasets(cfg, prepared, global_batch)
    steps = int(train_ds.cardinality().numpy()) if train_ds.cardinality() > 0 else 100
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
    engine = _engine_for(strategy)
    engine(model, train_ds, val_ds, train_cfg, callbacks)
    save_model(model, run.model_file)  # the restored best weights, whatever the last epoch was
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # evaluate/export on this worker alone: a plain copy, not collective variables
        model = load_model(run.model_file, task.custom_objects())
    return model


def _engine_for(strategy):
    """``model.fit`` everywhere it works; nnkit's own step under multi-worker (keras#20585)."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        from nnkit.distribute import fit_multi_worker

        return lambda *args: fit_multi_worker(strategy, *args)
    return _keras_fit


def _keras_fit(model, train_ds, val_ds, train_cfg, callbacks):
    model.fit(train_ds, validation_data=val_ds, epochs=train_cfg["epochs"], callbacks=callbacks, shuffle=False,
              verbose=_progress_verbosity(train_cfg))


def versions() -> dict:
    return {"tensorflow": tf.__version__, "keras": keras.__version__,
            "devices": [d.device_type for d in tf.config.list_physical_devices()],
            "cpu_threads": os.cpu_count()}
