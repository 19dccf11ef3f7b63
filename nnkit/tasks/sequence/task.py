"""Sequence tasks on recurrent networks: one label per sequence, or one label per step.

* ``sequence_classification`` (many-to-one, the ``collision`` recipe): will the
  ego car collide within the next few seconds after the observed window?
  Metrics: ROC-AUC, precision/recall/F1 at ``eval.threshold``, the confusion
  matrix. Baselines: logistic regression on the last observed frame and a
  time-to-collision (TTC) rule, on the same test part.
* ``sequence_labeling`` (synced many-to-many, the ``driving`` recipe): what
  should the driver do at every step (keep / ease off / brake)? Metrics: per-step
  accuracy, macro-F1, per-class recall (brake first). Baseline: the TTC rule
  on the noisy sensors.

Data: the project's car-following simulator (``nnkit.datasets.driving``), or
the user's NPZ / long CSV (``nnkit.datasets.sequences``). The model is
``build_rnn`` (simple/lstm/gru, depth, layer norm, dropout) with Masking:
inputs are standardised sensor values plus an "observed" flag, and padded or
dropped-out steps are all-zero rows the recurrent layers skip. The exported
SavedModel takes raw sensor sequences (NaN rows = dropouts) with their
lengths, or with a mask, and returns probabilities and class names.
"""

from __future__ import annotations

import numpy as np

from nnkit.builders.options import build_from_config
from nnkit.builders.rnn import RNN_OPTIONS
from nnkit.config import Field, declared
from nnkit.errors import ConfigError, DataError
from nnkit.datasets.driving_features import ttc_feature_indices
from nnkit.runs import fingerprint
from nnkit.tasks.base import Prepared, Task

CELLS = ("simple", "lstm", "gru")

DATA_FIELDS = {
    "sequences": Field(12000, "simulator: sequences to generate", min=10),
    "seed": Field(0, "simulator: seed (the data; train.seed shuffles the split)", min=0),
    "min_seconds": Field(4.0, "simulator: shortest observed window [s]", min=0.2),
    "max_seconds": Field(10.0, "simulator: longest observed window [s]", min=0.2),
    "noise": Field(1.0, "simulator: sensor noise scale (0 = perfect sensors)", min=0.0),
    "dropout": Field(0.02, "simulator: share of steps lost to sensor dropouts (plus bursts)", min=0.0, max=0.5),
    "brake_ttc": Field(3.0, "TTC below which a safe driver brakes [s] (labels and the TTC rule)", min=0.1),
    "ease_ttc": Field(6.0, "TTC below which a safe driver eases off [s]", min=0.1),
    "val_fraction": Field(0.15, "validation share of sequences", min=0.02, max=0.5),
    "test_fraction": Field(0.15, "test share of sequences", min=0.02, max=0.5),
    "id_column": Field("sequence_id", "CSV: column with the sequence id"),
    "time_column": Field("t", "CSV: column that orders the steps of a sequence"),
    "label_column": Field("label", "CSV: column with the label"),
    "features": Field([], "CSV: feature columns ([] = every other column)", item_type=str),
}

MODEL_FIELDS = {  # build_rnn's declared options, with this task's defaults
    **declared(RNN_OPTIONS, cell="gru", units=48, dense_units=32),
    "class_weight": Field("none", "weight the loss by inverse class frequency", choices=("none", "balanced", "sqrt")),
}


class _SequenceTask(Task):
    """What both sequence tasks share: data, scaling, model, serving, prediction."""

    per_step: bool = False
    train_defaults = {"epochs": 15, "batch_size": 128, "patience": 3, "learning_rate": 3e-3}

    # -- data ---------------------------------------------------------------------------
    def check_config(self, cfg: dict) -> None:
        d = cfg["data"]
        if d["min_seconds"] > d["max_seconds"]:
            raise ConfigError(f"data.min_seconds ({d['min_seconds']}) is above data.max_seconds "
                              f"({d['max_seconds']}); expected min <= max")
        if d["brake_ttc"] >= d["ease_ttc"]:
            raise ConfigError(f"data.brake_ttc ({d['brake_ttc']}) must be below data.ease_ttc ({d['ease_ttc']})")
        if d["val_fraction"] + d["test_fraction"] >= 0.9:
            raise ConfigError("data.val_fraction + data.test_fraction must leave some training data "
                              f"(received {d['val_fraction']} + {d['test_fraction']})")

    def simulate(self, cfg: dict):
        """The bundled data: sequences from the driving simulator, as :class:`Sequences`."""
        from nnkit.datasets.driving_features import simulated_sequences

        return simulated_sequences(cfg["data"], per_step=self.per_step)

    def read(self, cfg: dict, path: str, require_labels: bool = True, state: dict | None = None):
        from nnkit.datasets.sequences import read_sequences

        d = cfg["data"]
        return read_sequences(path, per_step=self.per_step, require_labels=require_labels,
                              class_names=state["class_names"] if state else None,
                              feature_names=state["feature_names"] if state else None,
                              id_column=d["id_column"], time_column=d["time_column"],
                              label_column=d["label_column"], features=tuple(d["features"]))

    def load(self, cfg: dict) -> Prepared:
        self.check_config(cfg)
        d = cfg["data"]
        extra = {}
        if d["path"]:
            seqs = self.read(cfg, d["path"])
        else:
            seqs, sim = self.simulate(cfg)
            extra["simulation"] = sim
        n = len(seqs)
        if n < 10:
            raise DataError(f"{seqs.source}: {n} sequences; expected at least 10 to split into train/validation/test")
        rng = np.random.default_rng(cfg["train"]["seed"])
        order = rng.permutation(n)
        n_test = max(1, int(round(n * d["test_fraction"])))
        n_val = max(1, int(round(n * d["val_fraction"])))
        test, val, train = np.sort(order[:n_test]), np.sort(order[n_test:n_test + n_val]), np.sort(order[n_test + n_val:])
        observed = seqs.observed[train]
        values = seqs.x[train][observed].astype(np.float64)
        mean = values.mean(axis=0)
        std = values.std(axis=0)
        std = np.where(std > 1e-8, std, 1.0)
        counts = self._class_counts(seqs.take(train), len(seqs.class_names))
        state = {
            "feature_names": list(seqs.feature_names), "class_names": list(seqs.class_names),
            "mean": mean.tolist(), "std": std.tolist(), "per_step": self.per_step,
            "positive_class": seqs.class_names[-1] if len(seqs.class_names) == 2 else None,
            "threshold": float(cfg["eval"].get("threshold", 0.5)),
            "class_weights": self._class_weights(counts, cfg["model"]["class_weight"]),
            "ttc_features": ttc_feature_indices(seqs.feature_names),
            "brake_ttc": d["brake_ttc"], "ease_ttc": d["ease_ttc"],
        }
        share = counts / max(1, counts.sum())
        summary = {"source": seqs.source, "sequences": n, "train": len(train), "validation": len(val),
                   "test": len(test), "features": ", ".join(seqs.feature_names),
                   "steps per sequence (min / mean / max)":
                       f"{seqs.lengths.min()} / {seqs.lengths.mean():.1f} / {seqs.lengths.max()}",
                   "dropout steps": f"{1 - seqs.observed.sum() / seqs.valid.sum():.2%}"}
        for name, s in zip(seqs.class_names, share):
            summary[f"share of {name} ({'steps' if self.per_step else 'sequences'}, train)"] = f"{s:.2%}"
        extra["indices"] = (train, val, test)
        return Prepared(train=seqs.take(train), val=seqs.take(val), test=seqs.take(test), state=state,
                        summary=summary, extra=extra,
                        fingerprint=fingerprint(seqs.x, seqs.lengths, seqs.y, train, val, test))

    def _class_counts(self, seqs, classes: int) -> np.ndarray:
        y = seqs.y[seqs.y >= 0] if self.per_step else seqs.y
        return np.bincount(y, minlength=classes).astype(np.float64)

    @staticmethod
    def _class_weights(counts, mode: str):
        if mode == "none":
            return None
        freq = counts / counts.sum()
        w = 1.0 / np.maximum(freq, 1e-6)
        if mode == "sqrt":
            w = np.sqrt(w)
        w = w / (w * freq).sum()  # the average weight stays 1
        return w.tolist()

    # -- model inputs (the serving graph does the same in TensorFlow) ----------------------
    @staticmethod
    def model_inputs(x, lengths, state) -> np.ndarray:
        """Standardised features plus an 'observed' flag; padded and dropped steps are zero rows."""
        x = np.asarray(x, dtype=np.float32)
        observed = (np.arange(x.shape[1])[None, :] < np.asarray(lengths)[:, None]) & ~np.isnan(x).any(axis=-1)
        scaled = (np.nan_to_num(x) - np.asarray(state["mean"], np.float32)) / np.asarray(state["std"], np.float32)
        out = np.concatenate([scaled, np.ones(x.shape[:2] + (1,), np.float32)], axis=-1)
        out[~observed] = 0.0
        return out

    def targets(self, seqs, state):
        """(y, sample_weight) for training: padded labels become 0 with weight 0."""
        weights = state.get("class_weights")
        if self.per_step:
            y = np.where(seqs.y >= 0, seqs.y, 0)
            w = (seqs.y >= 0).astype(np.float32)
            if weights:
                w = w * np.asarray(weights, np.float32)[y]
            return y.astype(np.int32), w
        y = seqs.y.astype(np.int32)
        w = np.ones(len(y), np.float32) if not weights else np.asarray(weights, np.float32)[y]
        return (y.astype(np.float32) if self.binary(state) else y), w

    @staticmethod
    def binary(state) -> bool:
        return len(state["class_names"]) == 2 and not state["per_step"]

    def datasets(self, cfg: dict, prepared: Prepared, batch_size: int):
        import tensorflow as tf

        per_step = self.per_step
        # batches of similar lengths, each padded only to its longest sequence (padding costs steps)
        lengths = prepared.train.lengths
        bounds = sorted({int(b) for b in np.quantile(lengths, np.linspace(0, 1, 7)[1:-1]) if b > 1})

        def trim(x, y, w, length):
            if per_step:
                return x[:length], y[:length], w[:length]
            return x[:length], y, w

        def make(seqs, shuffle):
            x = self.model_inputs(seqs.x, seqs.lengths, prepared.state)
            y, w = self.targets(seqs, prepared.state)
            ds = tf.data.Dataset.from_tensor_slices((x, y, w, seqs.lengths.astype(np.int32)))
            if shuffle:
                ds = ds.shuffle(len(x), seed=cfg["train"]["seed"], reshuffle_each_iteration=True)
            ds = ds.map(trim)
            if not bounds:
                return ds.padded_batch(batch_size).prefetch(tf.data.AUTOTUNE)
            ds = ds.bucket_by_sequence_length(lambda x, y, w: tf.shape(x)[0], bounds,
                                              [batch_size] * (len(bounds) + 1))
            # a bucket holds lengths in [bounds[i-1], bounds[i]): the batch count is known in advance
            per_bucket = np.bincount(np.digitize(seqs.lengths, bounds), minlength=len(bounds) + 1)
            batches = int(np.ceil(per_bucket / batch_size).sum())
            return ds.apply(tf.data.experimental.assert_cardinality(batches)).prefetch(tf.data.AUTOTUNE)

        return make(prepared.train, True), make(prepared.val, False)

    def build_model(self, cfg: dict, prepared: Prepared):
        from nnkit.builders import build_rnn

        s = prepared.state
        binary = self.binary(s)
        return build_from_config(build_rnn, RNN_OPTIONS, cfg["model"], (None, len(s["feature_names"]) + 1),
                                 1 if binary else len(s["class_names"]), head="sequence" if self.per_step else "last",
                                 output_activation="sigmoid" if binary else "softmax", masking=True, mask_value=0.0,
                                 name=self.model_name)

    def compile_kwargs(self, cfg: dict, prepared: Prepared) -> dict:
        import keras

        if self.binary(prepared.state):
            return {"loss": "binary_crossentropy", "weighted_metrics": [keras.metrics.AUC(name="auc")]}
        return {"loss": "sparse_categorical_crossentropy", "weighted_metrics": ["accuracy"]}

    def probabilities(self, model, seqs, state, batch_size: int = 256) -> np.ndarray:
        """[N, C] or [N, T, C] class probabilities (binary: [N, 2])."""
        x = self.model_inputs(seqs.x, seqs.lengths, state)
        p = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), np.float64)
        if self.binary(state):
            p = p.reshape(-1)
            return np.stack([1 - p, p], axis=-1)
        return p

    # -- serving and prediction ----------------------------------------------------------
    def serving(self, model, state: dict, cfg: dict):
        from nnkit.tasks.sequence.serving import SequenceServing

        threshold = float(cfg.get("eval", {}).get("threshold", state.get("threshold", 0.5)))
        module = SequenceServing(model, state, binary=self.binary(state), per_step=self.per_step,
                                 threshold=threshold)
        x, lengths = self.example_inputs(state)
        mask = ((np.arange(x.shape[1])[None, :] < lengths[:, None]) & ~np.isnan(x).any(-1)).astype(np.int32)
        return module, {"predict": {"x": x, "lengths": lengths},
                        "predict_masked": {"x": np.nan_to_num(x), "mask": mask}}

    @staticmethod
    def example_inputs(state):
        """Three raw example sequences of different lengths, with a dropout; not training data."""
        from nnkit.datasets.driving_features import example_sequences

        return example_sequences(state["feature_names"], state["mean"], state["std"])

    def predict(self, ctx, inputs: list, options: dict) -> None:
        run, echo = ctx.run, ctx.echo
        from nnkit.runs import write_predictions

        if not inputs:
            raise DataError("predict: give one or more .npz (x [N,T,F], optional lengths) or long .csv files "
                            "(sequence_id,t,features...)")
        state, cfg = run.state(), ctx.cfg
        rows = []
        for item in inputs:
            seqs = self.read(cfg, item, require_labels=False, state=state)
            out = ctx.call_endpoint("predict", x=seqs.x.astype(np.float32), lengths=seqs.lengths.astype(np.int32))
            rows += self.prediction_rows(seqs, out, state, item if len(inputs) > 1 else None)
        write_predictions(rows, options.get("out"), echo)

    def prediction_rows(self, seqs, out, state, source):
        raise NotImplementedError

    # -- shared evaluation pieces --------------------------------------------------------
    @staticmethod
    def ttc(x, state):
        """Time-to-collision [s] from the noisy gap and relative-speed sensors, [N, T]."""
        from nnkit.datasets.driving_features import ttc_from_sensors

        return ttc_from_sensors(x, state["ttc_features"])


def _decode(values):
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(values).ravel()]


def _last_observed(seqs) -> np.ndarray:
    """Index of each sequence's last observed (not dropped) step."""
    observed = seqs.observed
    steps = np.arange(observed.shape[1])[None, :]
    return np.where(observed, steps, -1).max(axis=1)


def _hold_last(observed: np.ndarray) -> np.ndarray:
    """For every step, the index of the latest observed step up to it (0 when none yet)."""
    steps = np.where(observed, np.arange(observed.shape[1])[None, :], 0)
    return np.maximum.accumulate(steps, axis=1)
