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

from nnkit.config import Field
from nnkit.errors import ConfigError, DataError
from nnkit.runs import fingerprint
from nnkit.tasks.base import Evaluation, Prepared, Task

CELLS = ("simple", "lstm", "gru")
GAP_NAMES = ("gap", "distance", "headway_m")
REL_NAMES = ("rel_speed", "relative_speed", "range_rate")

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

MODEL_FIELDS = {
    "cell": Field("gru", "recurrent cell", choices=CELLS),
    "units": Field(48, "units per recurrent layer", min=1),
    "depth": Field(1, "stacked recurrent layers (deep RNN when > 1)", min=1),
    "bidirectional": Field(False, "read the sequence both ways"),
    "norm": Field("none", "normalisation after each recurrent layer", choices=("layer", "batch", "none")),
    "dropout": Field(0.0, "dropout after each recurrent layer", min=0.0, max=0.9),
    "recurrent_dropout": Field(0.0, "dropout on the recurrent state (slower)", min=0.0, max=0.9),
    "dense_units": Field(32, "hidden dense layer before the head (0 = none)", min=0),
    "class_weight": Field("none", "weight the loss by inverse class frequency", choices=("none", "balanced", "sqrt")),
}


class _SequenceTask(Task):
    """What both sequence tasks share: data, scaling, model, serving, prediction."""

    per_step: bool = False
    train_defaults = {"epochs": 15, "batch_size": 128, "patience": 3, "learning_rate": 3e-3}
    predict_options = frozenset()

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
        from nnkit.datasets import driving
        from nnkit.datasets.sequences import Sequences

        d = cfg["data"]
        data = driving.generate(d["sequences"], seed=d["seed"], min_seconds=d["min_seconds"],
                                max_seconds=d["max_seconds"], horizon=d.get("horizon", 3.0), noise=d["noise"],
                                dropout=d["dropout"], brake_ttc=d["brake_ttc"], ease_ttc=d["ease_ttc"],
                                events="anywhere" if self.per_step else "end")
        if self.per_step:
            y, names = data.actions.astype(np.int32), list(driving.ACTIONS)
        else:
            y, names = data.collision.astype(np.int32), list(driving.COLLISION_CLASSES)
        seqs = Sequences(data.x, data.lengths, y, names, list(driving.FEATURES),
                         [str(i) for i in range(len(data.x))], f"driving simulator (seed {d['seed']})")
        return seqs, data

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
            "ttc_features": self._ttc_features(seqs.feature_names),
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

    @staticmethod
    def _ttc_features(names):
        gap = next((names.index(n) for n in GAP_NAMES if n in names), None)
        rel = next((names.index(n) for n in REL_NAMES if n in names), None)
        return None if gap is None or rel is None else [gap, rel]

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

        m, s = cfg["model"], prepared.state
        classes = len(s["class_names"])
        binary = self.binary(s)
        return build_rnn((None, len(s["feature_names"]) + 1), 1 if binary else classes, cell=m["cell"],
                         units=m["units"], depth=m["depth"], bidirectional=m["bidirectional"], norm=m["norm"],
                         dropout=m["dropout"], recurrent_dropout=m["recurrent_dropout"],
                         head="sequence" if self.per_step else "last",
                         output_activation="sigmoid" if binary else "softmax", masking=True, mask_value=0.0,
                         dense_units=m["dense_units"], name=self.model_name)

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
        import tensorflow as tf

        features = len(state["feature_names"])
        mean = np.asarray(state["mean"], np.float32)
        std = np.asarray(state["std"], np.float32)
        names = list(state["class_names"])
        binary, per_step = self.binary(state), self.per_step
        threshold = float(cfg.get("eval", {}).get("threshold", state.get("threshold", 0.5)))

        class SequenceServing(tf.Module):
            def __init__(self):
                super().__init__()
                self.model = model
                self.class_names = tf.constant(names)
                self.mean, self.std = tf.constant(mean), tf.constant(std)

            def _run(self, x, observed, lengths):
                x = tf.cast(x, tf.float32)
                scaled = (tf.where(tf.math.is_nan(x), 0.0, x) - self.mean) / self.std
                inputs = tf.concat([scaled, tf.ones_like(scaled[..., :1])], axis=-1)
                inputs = tf.where(observed[..., None], inputs, 0.0)
                out = self.model(inputs, training=False)
                if binary:
                    p = tf.reshape(out, [-1])
                    index = tf.cast(p >= threshold, tf.int32)
                    return {"probability": p, "label": tf.gather(self.class_names, index),
                            "probabilities": tf.stack([1 - p, p], axis=-1)}
                index = tf.argmax(out, axis=-1, output_type=tf.int32)
                label = tf.gather(self.class_names, index)
                if per_step:
                    inside = tf.sequence_mask(lengths, tf.shape(x)[1])
                    label = tf.where(inside, label, "")
                    out = tf.where(inside[..., None], out, 0.0)
                return {"probabilities": out, "label": label,
                        "probability": tf.reduce_max(out, axis=-1)}

            @tf.function(input_signature=[tf.TensorSpec([None, None, features], tf.float32, name="x"),
                                          tf.TensorSpec([None], tf.int32, name="lengths")])
            def predict(self, x, lengths):
                """x: raw sensors [B, T, F], padded; NaN rows are dropouts. lengths: [B] steps."""
                inside = tf.sequence_mask(lengths, tf.shape(x)[1])
                observed = inside & ~tf.reduce_any(tf.math.is_nan(x), axis=-1)
                return self._run(x, observed, lengths)

            @tf.function(input_signature=[tf.TensorSpec([None, None, features], tf.float32, name="x"),
                                          tf.TensorSpec([None, None], tf.int32, name="mask")])
            def predict_masked(self, x, mask):
                """x: raw sensors [B, T, F]; mask: [B, T], 1 = observed step, 0 = padding or dropout."""
                steps = tf.range(1, tf.shape(x)[1] + 1)
                lengths = tf.reduce_max(tf.where(mask > 0, steps[None, :], 0), axis=1)
                observed = (mask > 0) & ~tf.reduce_any(tf.math.is_nan(x), axis=-1)
                return self._run(x, observed, lengths)

        x, lengths = self.example_inputs(state)
        mask = ((np.arange(x.shape[1])[None, :] < lengths[:, None]) & ~np.isnan(x).any(-1)).astype(np.int32)
        return SequenceServing(), {"predict": {"x": x, "lengths": lengths},
                                   "predict_masked": {"x": np.nan_to_num(x), "mask": mask}}

    @staticmethod
    def example_inputs(state):
        """Three raw example sequences of different lengths, with a dropout; not training data."""
        from nnkit.datasets import driving

        if list(state["feature_names"]) == list(driving.FEATURES):
            data = driving.generate(3, seed=12345, min_seconds=2.0, max_seconds=4.0)
            x, lengths = data.x, data.lengths
        else:
            rng = np.random.default_rng(0)
            lengths = np.array([12, 7, 3], np.int32)
            x = (rng.normal(size=(3, 12, len(state["mean"]))) * state["std"] + state["mean"]).astype(np.float32)
            x[np.arange(12)[None, :] >= lengths[:, None]] = 0.0
        x = x.astype(np.float32).copy()
        x[0, 1] = np.nan
        return x, lengths.astype(np.int32)

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
        from nnkit.datasets.driving import time_to_collision

        gap, rel = state["ttc_features"]
        return time_to_collision(x[..., gap], x[..., rel])


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


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class SequenceClassificationTask(_SequenceTask):
    """Many-to-one: one label per sequence (collision within the next seconds, or any class)."""

    name = "sequence_classification"
    model_name = "sequence_classifier"
    per_step = False
    schema = {
        "data": {**DATA_FIELDS,
                 "horizon": Field(3.0, "simulator: the label looks this many seconds past the window", min=0.1)},
        "model": dict(MODEL_FIELDS),
        "eval": {
            "threshold": Field(0.5, "decision threshold on P(positive class) for precision/recall/F1", min=0.0,
                               max=1.0),
            "ttc_threshold": Field(3.0, "TTC rule baseline: alarm when the last frame's TTC is below this [s]",
                                   min=0.0),
        },
    }

    def evaluate(self, model, prepared: Prepared, cfg: dict) -> Evaluation:
        from sklearn.linear_model import LogisticRegression

        state, test, train = prepared.state, prepared.test, prepared.train
        names = state["class_names"]
        p = self.probabilities(model, test, state)
        if not self.binary(state):
            return self._evaluate_multiclass(p, prepared, cfg)
        threshold = cfg["eval"]["threshold"]
        y = test.y
        model_metrics, details = binary_metrics(y, p[:, 1], threshold, names)
        baselines, scores = {}, {"model": p[:, 1]}
        # logistic regression on the last observed frame
        def last_frame(seqs):
            idx = _last_observed(seqs)
            frame = seqs.x[np.arange(len(seqs)), idx]
            return (frame - np.asarray(state["mean"])) / np.asarray(state["std"])
        lr = LogisticRegression(max_iter=1000).fit(last_frame(train), train.y)
        lr_p = lr.predict_proba(last_frame(test))[:, 1]
        baselines["logreg_last_frame"], _ = binary_metrics(y, lr_p, threshold, names)
        scores["logreg_last_frame"] = lr_p
        if state["ttc_features"]:
            idx = _last_observed(test)
            ttc = self.ttc(test.x[np.arange(len(test)), idx], state)
            inverse = np.where(np.isfinite(ttc), 1.0 / np.maximum(ttc, 1e-3), 0.0)
            baselines["ttc_rule"], _ = binary_metrics(y, inverse, 1.0 / max(cfg["eval"]["ttc_threshold"], 1e-3),
                                                      names)
            scores["ttc_rule"] = inverse
        share = float(np.mean(train.y))
        baselines["prior"], _ = binary_metrics(y, np.full(len(y), share), threshold, names)
        auc, best = model_metrics["roc_auc"], max((b["roc_auc"] for k, b in baselines.items() if k != "prior"),
                                                 default=float("nan"))
        rivals = [k for k in baselines if k != "prior"]
        against = ", ".join(f"{k} {baselines[k]['roc_auc']:.3f}" for k in rivals)
        verdict = (f"ROC-AUC {auc:.3f} vs {against}: the "
                   f"model {'beats' if auc > best else 'does not beat'} every baseline; at threshold {threshold:g} "
                   f"it catches {model_metrics['recall']:.0%} of the {names[1]} cases with precision "
                   f"{model_metrics['precision']:.0%}.")
        cm = details["confusion_matrix"]
        table = (f"| true \\ predicted | {names[0]} | {names[1]} |\n|---|---|---|\n"
                 f"| {names[0]} | {cm[0][0]} | {cm[0][1]} |\n| {names[1]} | {cm[1][0]} | {cm[1][1]} |")
        return Evaluation(primary="roc_auc", higher_is_better=True, model=model_metrics, baselines=baselines,
                          details=details, verdict=verdict,
                          tables=[(f"Confusion matrix (test, threshold {threshold:g})", table)],
                          artifacts={"scores": scores, "y": y, "probabilities": p})

    def _evaluate_multiclass(self, p, prepared, cfg):
        from nnkit.tasks import classification as clf

        test, train, names = prepared.test, prepared.train, prepared.state["class_names"]
        predicted = p.argmax(axis=1)
        headline, details = clf.classification_metrics(test.y, predicted, names, p)
        majority = np.full(len(test.y), np.bincount(train.y).argmax())
        baselines = {"majority": clf.classification_metrics(test.y, majority, names)[0]}
        idx_tr, idx_te = _last_observed(train), _last_observed(test)
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(max_iter=1000).fit(train.x[np.arange(len(train)), idx_tr], train.y)
        baselines["logreg_last_frame"] = clf.classification_metrics(
            test.y, lr.predict(test.x[np.arange(len(test)), idx_te]), names)[0]
        return Evaluation(primary="macro_f1", higher_is_better=True, model=headline, baselines=baselines,
                          details=details, verdict=clf.verdict("macro_f1", headline, baselines),
                          tables=[("Per class (test)", clf.per_class_table(details))],
                          artifacts={"probabilities": p})

    def plots(self, model, prepared: Prepared, evaluation: Evaluation, run) -> list:
        paths = []
        if "scores" in evaluation.artifacts:
            paths.append(self._plot_roc(evaluation, run.plot_dir / "roc.png"))
        paths.append(self._plot_example(model, prepared, evaluation, run.plot_dir / "example_sequence.png"))
        return [p for p in paths if p]

    def _plot_roc(self, evaluation, path):
        from sklearn.metrics import roc_curve

        from nnkit.report import save_figure

        plt = _plt()
        y = evaluation.artifacts["y"]
        if len(np.unique(y)) < 2:
            return None
        fig, ax = plt.subplots(figsize=(4.5, 4.2))
        for name, score in evaluation.artifacts["scores"].items():
            fpr, tpr, _ = roc_curve(y, score)
            auc = evaluation.model["roc_auc"] if name == "model" else evaluation.baselines[name]["roc_auc"]
            ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})", lw=2 if name == "model" else 1)
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title("ROC on the test part")
        ax.legend(fontsize=8)
        fig.tight_layout()
        return save_figure(fig, path)

    def _plot_example(self, model, prepared, evaluation, path):
        """A test sequence: sensors, and P(positive) after every step (the running warning)."""
        from nnkit.report import save_figure

        state, test = prepared.state, prepared.test
        p = evaluation.artifacts["probabilities"]
        positive = np.flatnonzero(test.y == len(state["class_names"]) - 1)
        if positive.size:  # a caught case with a long history: the warning should rise near the end
            long = positive[test.lengths[positive] >= np.median(test.lengths)]
            long = long if long.size else positive
            pick = int(long[np.argmax(p[long, -1])])
        else:
            pick = int(np.argmax(test.lengths))
        length = int(test.lengths[pick])
        x = test.x[pick, :length]
        prefixes = np.repeat(x[None], length, axis=0)
        from nnkit.datasets.sequences import Sequences

        running = self.probabilities(model, Sequences(prefixes, np.arange(1, length + 1, dtype=np.int32), None),
                                     state)[:, -1]
        t = np.arange(length) / 10.0
        plt = _plt()
        fig, axes = plt.subplots(3, 1, figsize=(8, 6.5), sharex=True)
        names = state["feature_names"]
        for ax, k in zip(axes[:2], range(min(2, len(names)))):
            ax.plot(t, x[:, k], ".-", ms=3, lw=0.8, label=f"{names[k]} (sensor)")
            ax.set_ylabel(names[k])
            ax.legend(fontsize=8, loc="upper right")
        for s in np.flatnonzero(~test.observed[pick, :length]):
            axes[0].axvspan(t[s] - 0.05, t[s] + 0.05, color="red", alpha=0.15, lw=0)
        true_name = state["class_names"][int(test.y[pick])]
        axes[2].plot(t, running, lw=2, label="model: P(" + state["class_names"][-1] + ") after each step")
        if "simulation" in prepared.extra:
            sim = prepared.extra["simulation"]
            index = prepared.extra["indices"][2][pick]
            hit = sim.collision_step[index]
            ends = np.arange(1, length + 1)
            truth = (hit > ends) & (hit <= ends + sim.horizon_steps)
            axes[2].step(t, truth.astype(float), where="post", color="k", lw=1, label="true label for that window")
        axes[2].axhline(state.get("threshold", 0.5), color="grey", ls=":", lw=0.8)
        axes[2].set_ylim(-0.05, 1.05)
        axes[2].set_xlabel("seconds")
        axes[2].legend(fontsize=8, loc="upper left")
        fig.suptitle(f"test sequence {test.ids[pick]}: true {true_name}, predicted P = {p[pick, -1]:.2f} "
                     "(red bands: sensor dropouts)")
        fig.tight_layout()
        return save_figure(fig, path)

    def prediction_rows(self, seqs, out, state, source):
        rows = []
        for i, sid in enumerate(seqs.ids):
            row = {"sequence_id": sid} if source is None else {"file": source, "sequence_id": sid}
            row.update({"steps": int(seqs.lengths[i]),
                        "label": _decode(out["label"])[i]})
            if "probability" in out and self.binary(state):
                row[f"p_{state['class_names'][1]}"] = round(float(out["probability"][i]), 6)
            else:
                for k, name in enumerate(state["class_names"]):
                    row[f"p_{name}"] = round(float(out["probabilities"][i, k]), 6)
            rows.append(row)
        return rows


def binary_metrics(y, score, threshold, names) -> tuple[dict, dict]:
    """ROC-AUC and average precision of ``score``; precision/recall/F1 and confusion at ``threshold``."""
    from sklearn.metrics import (accuracy_score, average_precision_score, confusion_matrix, f1_score,
                                 precision_score, recall_score, roc_auc_score)

    y = np.asarray(y).astype(int)
    predicted = (np.asarray(score) >= threshold).astype(int)
    both = len(np.unique(y)) == 2
    metrics = {
        "roc_auc": float(roc_auc_score(y, score)) if both else float("nan"),
        "average_precision": float(average_precision_score(y, score)) if both else float("nan"),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "accuracy": float(accuracy_score(y, predicted)),
    }
    details = {"confusion_matrix": confusion_matrix(y, predicted, labels=[0, 1]).tolist(),
               "class_names": list(names), "threshold": float(threshold)}
    return metrics, details


class SequenceLabelingTask(_SequenceTask):
    """Synced many-to-many: one label per step (the safe action at every step, or any classes)."""

    name = "sequence_labeling"
    model_name = "sequence_labeler"
    per_step = True
    schema = {
        "data": dict(DATA_FIELDS),
        "model": {**MODEL_FIELDS,
                  "causal": Field(True, "decisions use only past steps (then bidirectional is refused)")},
        "eval": {
            "example": Field(-1, "test sequence shown in the example plot (-1 = the one with most brake steps)",
                             min=-1),
        },
    }

    def check_config(self, cfg: dict) -> None:
        super().check_config(cfg)
        m = cfg["model"]
        if m["bidirectional"] and m["causal"]:
            raise ConfigError("model.bidirectional = true reads each sequence backwards from its end, so a per-step "
                              "decision would see the future; this task is causal (model.causal = true). Set "
                              "model.bidirectional = false, or model.causal = false for offline labelling")

    def build_model(self, cfg: dict, prepared: Prepared):
        self.check_config(cfg)
        return super().build_model(cfg, prepared)

    def _rule(self, seqs, state):
        """The TTC rule on the noisy sensors; a dropout step keeps the last decision."""
        from nnkit.datasets.driving import actions_from_ttc

        ttc = self.ttc(seqs.x, state)
        decision = actions_from_ttc(np.where(np.isnan(ttc), np.inf, ttc), state["brake_ttc"], state["ease_ttc"])
        held = _hold_last(seqs.observed)
        return np.take_along_axis(decision, held, axis=1)

    def ttc_rule_applies(self, state) -> bool:
        return bool(state["ttc_features"]) and list(state["class_names"]) == ["keep", "ease_off", "brake"]

    def evaluate(self, model, prepared: Prepared, cfg: dict) -> Evaluation:
        state, test, train = prepared.state, prepared.test, prepared.train
        names = state["class_names"]
        p = self.probabilities(model, test, state)
        predicted = p.argmax(axis=-1)
        valid = test.valid
        y = test.y[valid]
        model_metrics, details = step_metrics(y, predicted[valid], names)
        baselines, predictions = {}, {"model": predicted}
        if self.ttc_rule_applies(state):
            rule = self._rule(test, state)
            baselines["ttc_rule"], rule_details = step_metrics(y, rule[valid], names)
            predictions["ttc_rule"] = rule
            details["ttc_rule_confusion_matrix"] = rule_details["confusion_matrix"]
        majority = int(np.bincount(train.y[train.valid], minlength=len(names)).argmax())
        baselines["majority"], _ = step_metrics(y, np.full(len(y), majority), names)
        focus = "recall_brake" if "brake" in names else None
        if "ttc_rule" in baselines:
            r = baselines["ttc_rule"]
            won = (model_metrics["macro_f1"] > r["macro_f1"]) and (focus is None or model_metrics[focus] > r[focus])
            verdict = (f"Per step, the model {'beats' if won else 'does not beat'} the TTC rule on the noisy sensors: "
                       f"macro-F1 {model_metrics['macro_f1']:.3f} vs {r['macro_f1']:.3f}, brake recall "
                       f"{model_metrics['recall_brake']:.3f} vs {r['recall_brake']:.3f}, accuracy "
                       f"{model_metrics['accuracy']:.3f} vs {r['accuracy']:.3f}.")
        else:
            from nnkit.tasks.classification import verdict as clf_verdict

            verdict = clf_verdict("macro_f1", model_metrics, baselines)
        header = "| true \\ predicted | " + " | ".join(names) + " |\n|---" * 1 + "|---" * len(names) + "|"
        table = "\n".join([header] + [f"| {n} | " + " | ".join(str(v) for v in row) + " |"
                                      for n, row in zip(names, details["confusion_matrix"])])
        return Evaluation(primary="macro_f1", higher_is_better=True, model=model_metrics, baselines=baselines,
                          details=details, verdict=verdict, tables=[("Per-step confusion matrix (test)", table)],
                          artifacts={"predictions": predictions, "probabilities": p})

    def plots(self, model, prepared: Prepared, evaluation: Evaluation, run) -> list:
        from nnkit.report import save_figure

        state, test = prepared.state, prepared.test
        names = state["class_names"]
        example = run.config()["eval"]["example"] if run.config_file.exists() else -1
        if 0 <= example < len(test):
            pick = example
        else:
            top = len(names) - 1
            pick = int(np.argmax(((test.y == top).sum(axis=1)) + 1e-3 * test.lengths))
        length = int(test.lengths[pick])
        t = np.arange(length) / 10.0
        plt = _plt()
        fig, axes = plt.subplots(3, 1, figsize=(9, 6.5), sharex=True,
                                 gridspec_kw={"height_ratios": [2, 2, 1.6]})
        fnames = state["feature_names"]
        for ax, k in zip(axes[:2], range(min(2, len(fnames)))):
            ax.plot(t, test.x[pick, :length, k], ".-", ms=3, lw=0.8)
            ax.set_ylabel(fnames[k])
        dropped = ~test.observed[pick, :length]
        for s in np.flatnonzero(dropped):
            axes[0].axvspan(t[s] - 0.05, t[s] + 0.05, color="red", alpha=0.15, lw=0)
        rows = [("true", test.y[pick, :length])]
        rows += [(k, v[pick, :length]) for k, v in evaluation.artifacts["predictions"].items()]
        colors = plt.get_cmap("RdYlGn_r", len(names))
        image = np.stack([r[1] for r in rows])
        axes[2].imshow(image, aspect="auto", cmap=colors, vmin=-0.5, vmax=len(names) - 0.5,
                       extent=(-0.05, t[-1] + 0.05, len(rows) - 0.5, -0.5), interpolation="nearest")
        axes[2].set_yticks(range(len(rows)), [r[0] for r in rows])
        handles = [plt.Rectangle((0, 0), 1, 1, color=colors(i)) for i in range(len(names))]
        axes[2].legend(handles, names, ncol=len(names), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.35))
        axes[2].set_xlabel("seconds")
        fig.suptitle(f"test sequence {test.ids[pick]}: true vs predicted action per step "
                     "(red bands: sensor dropouts)")
        fig.tight_layout()
        return [save_figure(fig, run.plot_dir / "example_sequence.png")]

    def prediction_rows(self, seqs, out, state, source):
        rows = []
        labels = np.asarray(out["label"])
        for i, sid in enumerate(seqs.ids):
            for s in range(int(seqs.lengths[i])):
                row = {"sequence_id": sid} if source is None else {"file": source, "sequence_id": sid}
                row.update({"step": s, "observed": int(not np.isnan(seqs.x[i, s]).any()),
                            "label": _decode(labels[i, s:s + 1])[0]})
                for k, name in enumerate(state["class_names"]):
                    row[f"p_{name}"] = round(float(out["probabilities"][i, s, k]), 6)
                rows.append(row)
        return rows


def step_metrics(y, predicted, names) -> tuple[dict, dict]:
    """Per-step accuracy, macro-F1 and per-class recall (the last class, e.g. brake, first)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    labels = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(y, predicted, labels=labels, zero_division=0)
    metrics = {f"recall_{names[k]}": float(recall[k]) for k in reversed(labels)}
    metrics = {"macro_f1": float(f1_score(y, predicted, labels=labels, average="macro", zero_division=0)),
               "accuracy": float(accuracy_score(y, predicted)), **metrics}
    details = {"per_class": {n: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                             for n, p, r, f, s in zip(names, precision, recall, f1, support)},
               "confusion_matrix": confusion_matrix(y, predicted, labels=labels).tolist(),
               "class_names": list(names)}
    return metrics, details
