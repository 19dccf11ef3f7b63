"""Train a lesson's variants with nnkit's own trainer (``nnkit.train.fit``).

A variant is a builder call plus train settings. :class:`ArrayTask` is the
thinnest task that honours the contract ``train.fit`` needs (build_model,
compile_kwargs, datasets) for arrays a lesson made; :meth:`Context.fit_recipe`
trains a bundled recipe with overrides through its own task instead. Each
variant gets a sub-folder ``variants/<tag>/`` of the lesson folder: the
run-folder files ``train.fit`` writes (history.csv, model.keras, TensorBoard
logs), so ``tensorboard --logdir <lesson>/variants`` shows every variant.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnkit import config as config_mod
from nnkit.tasks.base import Prepared, Task

# what every lesson fit shares: quiet, no early stop (a lesson compares fixed budgets), the
# resume checkpoint committed only after the last epoch (a lesson is rerun, not resumed), and
# divergence recorded rather than stopped (the learning-rate lesson shows it on purpose)
LESSON_TRAIN = {"verbose": False, "early_stopping": False, "checkpoint_seconds": 1e9, "stop_on_divergence": False}


class ArrayTask(Task):
    """A task over in-memory arrays: ``build()`` makes the model, (x, y) pairs feed it."""

    name = "lesson"

    def __init__(self, build, loss, metrics=(), shuffle: bool = True):
        self.build, self.loss, self.metrics, self.shuffle = build, loss, list(metrics), shuffle

    def build_model(self, cfg, prepared):
        return self.build()

    def compile_kwargs(self, cfg, prepared):
        return {"loss": self.loss, "metrics": self.metrics}

    def datasets(self, cfg, prepared, batch_size):
        import tensorflow as tf

        def make(pair, shuffle):
            if pair is None:
                return None
            x, y = pair
            ds = tf.data.Dataset.from_tensor_slices((x, y))
            if shuffle:
                n = len(y)
                ds = ds.shuffle(n, seed=cfg["train"]["seed"], reshuffle_each_iteration=True)
            return ds.batch(batch_size).prefetch(2)

        return make(prepared.train, self.shuffle), make(prepared.val, False)

    def custom_objects(self):
        from nnkit.layers import RandomizedLeakyReLU, StepActivation

        return {"RandomizedLeakyReLU": RandomizedLeakyReLU, "StepActivation": StepActivation}


@dataclass
class Fitted:
    model: object
    history: list  # one dict of floats per epoch (history.csv)
    seconds: float  # wall time of train.fit, compile and callbacks included

    def last(self, key: str) -> float:
        return self.history[-1][key]

    def curve(self, key: str) -> list:
        return [row[key] for row in self.history]


def train_config(settings: dict, seed: int) -> dict:
    """The shared train schema's defaults, the lesson defaults, then the variant's settings."""
    schema = {"train": config_mod.TRAIN_SCHEMA}
    layer = {"train": {**LESSON_TRAIN, **settings, "seed": int(seed)}}
    return config_mod.resolve(schema, {}, overrides=layer, recipe_source="lesson variant")


def _history(run) -> list:
    from nnkit.report import read_history

    rows = []
    for row in read_history(run):
        rows.append({k: (float(v) if v not in ("", "NA") else float("nan")) for k, v in row.items()})
    return rows


class Context:
    """What an experiment gets: its options, seeds, folder, and the two ways to train a variant."""

    def __init__(self, lesson, options: dict, quick: bool, folder: Path):
        self.lesson, self.options, self.quick, self.folder = lesson, options, quick, Path(folder)
        self.seed = int(options["seed"])
        self.plot_dir = self.folder / "plots"
        self.fits = 0

    def __getitem__(self, key):
        return self.options[key]

    @property
    def seeds(self) -> list:
        return [self.seed + i for i in range(int(self.options.get("seeds", 1)))]

    def _variant_run(self, tag: str):
        from nnkit.runs import Run

        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in tag)
        path = self.folder / "variants" / safe
        if path.exists():
            raise ValueError(f"lesson {self.lesson.name}: variant tag {tag!r} used twice")
        path.mkdir(parents=True)
        return Run(path)

    def _fit(self, run, task, cfg, prepared, callbacks):
        from nnkit import train

        started = time.perf_counter()
        model = train.fit(task, cfg, prepared, run, extra_callbacks=callbacks)
        seconds = time.perf_counter() - started
        shutil.rmtree(run.checkpoint_dir, ignore_errors=True)  # resume state: a lesson is rerun, not resumed
        self.fits += 1
        return Fitted(model, _history(run), seconds)

    def fit(self, tag: str, build, train_data, *, loss, metrics=(), val=None, train: dict | None = None,
            seed: int | None = None, callbacks=None, shuffle: bool = True) -> Fitted:
        """Train ``build()`` on ``train_data`` = (x, y) with ``train.fit``; ``train`` = train.* settings."""
        run = self._variant_run(tag)
        cfg = {"train": train_config(dict(train or {}), self.seed if seed is None else seed)["train"]}
        prepared = Prepared(train=train_data, val=val, test=None)
        return self._fit(run, ArrayTask(build, loss, metrics, shuffle), cfg, prepared, callbacks)

    def fit_recipe(self, tag: str, recipe: str, overrides: list, seed: int | None = None):
        """Train a bundled recipe with ``--set``-style overrides; returns (Fitted, evaluation)."""
        from nnkit.pipeline import resolve

        seed = self.seed if seed is None else seed
        settings = [f"train.{k}={_toml(v)}" for k, v in LESSON_TRAIN.items()] + [f"train.seed={seed}"]
        resolved = resolve(recipe, overrides=settings + list(overrides))
        prepared = resolved.task.load(resolved.cfg)
        run = self._variant_run(tag)
        fitted = self._fit(run, resolved.task, resolved.cfg, prepared, None)
        return fitted, resolved.task.evaluate(fitted.model, prepared, resolved.cfg)


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def rng(ctx: Context, *salt) -> np.random.Generator:
    """A NumPy generator for a lesson's data, seeded by the lesson seed and a salt."""
    import zlib

    return np.random.default_rng([ctx.seed, *[zlib.crc32(s.encode()) if isinstance(s, str) else int(s)
                                              for s in salt]])


def predict(model, x, batch: int = 1024) -> np.ndarray:
    """Model outputs in inference mode, without ``Model.predict``'s per-call retracing."""
    if isinstance(x, (list, tuple)):
        n = len(x[0])
        return np.concatenate([np.asarray(model([part[i:i + batch] for part in x], training=False))
                               for i in range(0, n, batch)])
    return np.concatenate([np.asarray(model(x[i:i + batch], training=False)) for i in range(0, len(x), batch)])


def load_digits_arrays(scale: bool = True):
    """scikit-learn's bundled 8x8 digits (1,797 images), pixels 0-16, optionally standardised."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.data.astype("float32")
    if scale:
        x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    return x, digits.target.astype("int32")
