"""Binary classification of a table: the perceptron (one neuron, step activation) or an MLP.

Bundled tables from scikit-learn: ``breast_cancer`` (569 x 30, nearly
linearly separable) and ``iris`` (setosa vs versicolor: exactly separable).
Any CSV works with ``--data`` and ``data.label_column``. Features are
standardised with the training part's mean and standard deviation; the
exported model does that inside the graph, so it takes raw feature values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnkit.builders.mlp import MLP_OPTIONS
from nnkit.builders.options import build_from_config
from nnkit.config import Field, declared
from nnkit.errors import DataError
from nnkit.runs import fingerprint, write_predictions
from nnkit.tasks import classification as clf
from nnkit.tasks.base import Evaluation, Prepared, Task


def load_table(source: str, path: str, label_column: str):
    """(features float64 [N, F], labels int [N], feature names, class names, description)."""
    if not path:
        from sklearn import datasets

        if source == "iris":
            bunch = datasets.load_iris()
            keep = bunch.target < 2  # setosa vs versicolor: linearly separable
            return (bunch.data[keep], bunch.target[keep], list(bunch.feature_names),
                    list(bunch.target_names[:2]), "sklearn iris (setosa vs versicolor)")
        bunch = datasets.load_breast_cancer()
        return bunch.data, bunch.target, list(bunch.feature_names), list(bunch.target_names), \
            "sklearn breast cancer"
    import pandas as pd

    from nnkit.datasets.tables import read_csv

    frame = read_csv(Path(path))
    if label_column not in frame.columns:
        raise DataError(f"{path}: no label column {label_column!r} (columns: {', '.join(map(str, frame.columns))}); "
                        "set data.label_column")
    labels = frame.pop(label_column)
    if labels.isna().any():
        row = int(np.flatnonzero(labels.isna().to_numpy())[0]) + 2
        raise DataError(f"{path}, line {row}: empty label in column {label_column!r}")
    for column in frame.columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.to_numpy(dtype="float64", na_value=np.nan))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raw = frame[column].iloc[row]
            shown = "empty cell" if isinstance(raw, float) and np.isnan(raw) else repr(str(raw))
            raise DataError(f"{path}, line {row + 2}, column {column!r}: {shown} is not a "
                            "finite number; expected numeric features")
        frame[column] = values
    classes = sorted(labels.astype(str).unique())
    if len(classes) != 2:
        raise DataError(f"{path}: column {label_column!r} has {len(classes)} classes "
                        f"({', '.join(classes[:5])}); a binary task needs exactly 2")
    y = labels.astype(str).map({c: i for i, c in enumerate(classes)}).to_numpy()
    return frame.to_numpy(dtype="float64"), y, [str(c) for c in frame.columns], classes, f"csv {Path(path).name}"


class BinaryClassificationTask(Task):
    name = "binary_classification"
    schema = {
        "data": {
            "source": Field("breast_cancer", "bundled table", choices=("breast_cancer", "iris")),
            "label_column": Field("label", "CSV: the column holding the two classes"),
            "test_fraction": Field(0.2, "held-out test share (stratified)", min=0.05, max=0.5),
            "val_fraction": Field(0.15, "validation share (stratified)", min=0.05, max=0.5),
        },
        "model": {
            "arch": Field("perceptron", "one neuron, or a multi-layer perceptron", choices=("perceptron", "mlp")),
            "activation": Field("step", "perceptron: step (Heaviside) or sigmoid; mlp: hidden activation",
                                choices=("step", "sigmoid", "tanh", "relu", "leaky_relu", "rrelu")),
            **declared(MLP_OPTIONS, ("depth", "width", "norm", "dropout"), help_prefix="mlp: ", width=32),
        },
        "eval": {},
    }
    # plain SGD with a squared error: for a step neuron that is Rosenblatt's rule
    train_defaults = {"epochs": 60, "batch_size": 16, "optimizer": "sgd", "momentum": 0.0,
                      "learning_rate": 0.01, "patience": 10}

    def load(self, cfg: dict) -> Prepared:
        data = cfg["data"]
        x, y, features, classes, source = load_table(data["source"], data["path"], data["label_column"])
        if len(x) < 10:
            raise DataError(f"{source}: {len(x)} rows; need at least 10 to split into train/validation/test")
        train, val, test = clf.stratified_split(y, test_fraction=data["test_fraction"],
                                                val_fraction=data["val_fraction"], seed=cfg["train"]["seed"])
        mean = x[train].mean(axis=0)
        std = x[train].std(axis=0)
        std[std == 0] = 1.0  # constant columns: leave them centred, not divided by zero
        scale = lambda a: ((a - mean) / std).astype("float32")  # noqa: E731
        state = {"class_names": classes, "features": features, "mean": mean.tolist(), "std": std.tolist()}
        summary = {"source": source, "rows": len(x), "features": len(features), "train": len(train),
                   "validation": len(val), "test": len(test), "positive share": float(np.mean(y))}
        return Prepared(train=(scale(x[train]), y[train]), val=(scale(x[val]), y[val]),
                        test=(scale(x[test]), y[test]), state=state, summary=summary,
                        fingerprint=fingerprint(x, y, train, test))

    def datasets(self, cfg: dict, prepared: Prepared, batch_size: int):
        import tensorflow as tf

        def make(arrays, shuffle):
            ds = tf.data.Dataset.from_tensor_slices((arrays[0], arrays[1].astype("float32")[:, None])).cache()
            if shuffle:
                ds = ds.shuffle(len(arrays[0]), seed=cfg["train"]["seed"])
            return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

        return make(prepared.train, True), make(prepared.val, False)

    def build_model(self, cfg: dict, prepared: Prepared):
        from nnkit.builders import build_mlp, build_perceptron

        m = cfg["model"]
        features = len(prepared.state["features"])
        if m["arch"] == "perceptron":
            if m["activation"] not in ("step", "sigmoid"):
                raise DataError(f"model.activation = {m['activation']!r}: the perceptron takes 'step' or 'sigmoid'")
            return build_perceptron(features, activation=m["activation"])
        activation = "relu" if m["activation"] == "step" else m["activation"]
        return build_from_config(build_mlp, MLP_OPTIONS, m, (features,), 1, activation=activation)

    def compile_kwargs(self, cfg: dict, prepared: Prepared) -> dict:
        step = cfg["model"]["arch"] == "perceptron" and cfg["model"]["activation"] == "step"
        # a step output is 0/1: squared error (the perceptron rule), not a log loss
        return {"loss": "mean_squared_error" if step else "binary_crossentropy",
                "metrics": ["binary_accuracy"]}

    def evaluate(self, model, prepared: Prepared, cfg: dict) -> Evaluation:
        x_test, y_test = prepared.test
        names = prepared.state["class_names"]
        p = model.predict(x_test, verbose=0)[:, 0]
        headline, details = clf.classification_metrics(y_test, (p >= 0.5).astype(int), names,
                                                       np.stack([1 - p, p], axis=1))
        baselines = clf.sklearn_baselines(*prepared.train, x_test, y_test, names, which=("majority", "logistic"),
                                          seed=cfg["train"]["seed"])
        return Evaluation(primary="accuracy", higher_is_better=True, model=headline, baselines=baselines,
                          details=details, verdict=_verdict(headline, baselines),
                          tables=[("Per class (test)", clf.per_class_table(details))])

    def plots(self, model, prepared: Prepared, evaluation: Evaluation, run) -> list:
        return [clf.plot_confusion(evaluation.details, run.plot_dir / "confusion_matrix.png")]

    def serving(self, model, state: dict, cfg: dict):
        from nnkit.tasks.classification_serving import TableClassifierServing

        features = len(state["features"])
        example = (np.asarray(state["mean"]) + np.asarray(state["std"]) *
                   np.random.default_rng(0).normal(size=(4, features))).astype("float32")
        return TableClassifierServing(model, state), {"classify": {"features": example}}

    def predict(self, ctx, inputs: list, options: dict) -> None:
        run, echo = ctx.run, ctx.echo
        from nnkit.datasets.tables import read_csv

        state = run.state()
        if len(inputs) != 1:
            raise DataError("predict: give one CSV file with the feature columns")
        path = Path(inputs[0])
        frame = read_csv(path)
        missing = [f for f in state["features"] if f not in frame.columns]
        if missing:
            raise DataError(f"{path}: missing feature column(s) {', '.join(map(repr, missing[:5]))}")
        try:
            x = frame[state["features"]].to_numpy(dtype="float32")
        except ValueError as exc:
            raise DataError(f"{path}: non-numeric feature values ({exc})") from None
        if not np.isfinite(x).all():
            row = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0]) + 2
            raise DataError(f"{path}, line {row}: missing or non-finite feature value")
        out = ctx.call_endpoint("classify", features=x)
        rows = [{"row": i + 1, "class": c.decode() if isinstance(c, bytes) else str(c), "probability": float(p)}
                for i, (c, p) in enumerate(zip(out["class_name"], out["probability"]))]
        write_predictions(rows, options.get("out"), echo)


def _verdict(model: dict, baselines: dict) -> str:
    gap = model["accuracy"] - baselines["logistic"]["accuracy"]
    return (f"Test accuracy {model['accuracy']:.4f} vs logistic regression {baselines['logistic']['accuracy']:.4f} "
            f"({gap * 100:+.1f} points).")
