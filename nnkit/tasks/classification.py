"""Shared parts of classification tasks: stratified splits, metrics, sklearn baselines, plots.

Kept free of TensorFlow so any task (images, tables, sequences) can reuse it.
"""

from __future__ import annotations

import numpy as np

from nnkit.errors import DataError


def stratified_split(n_or_labels, *, test_fraction: float, val_fraction: float, seed: int):
    """Indices (train, val, test), stratified by label, shuffled with ``seed``."""
    from sklearn.model_selection import train_test_split

    labels = np.asarray(n_or_labels)
    index = np.arange(len(labels))
    counts = np.bincount(labels) if labels.dtype.kind in "iu" else np.unique(labels, return_counts=True)[1]
    stratify = labels if counts[counts > 0].min() >= 3 else None  # tiny classes cannot be stratified
    try:
        rest, test = train_test_split(index, test_size=test_fraction, random_state=seed, stratify=stratify)
        train, val = train_test_split(rest, test_size=val_fraction / (1.0 - test_fraction), random_state=seed,
                                      stratify=stratify[rest] if stratify is not None else None)
    except ValueError as exc:
        raise DataError(f"cannot split {len(labels)} samples into train/validation/test "
                        f"(test {test_fraction}, validation {val_fraction}): {exc}") from None
    return np.sort(train), np.sort(val), np.sort(test)


def classification_metrics(y_true, y_pred, class_names, probabilities=None) -> tuple[dict, dict]:
    """(headline metrics, details) with accuracy, macro-F1, per-class P/R and the confusion matrix."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    labels = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    headline = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
    }
    if probabilities is not None and len(class_names) == 2:
        from sklearn.metrics import roc_auc_score

        if len(np.unique(y_true)) == 2:
            headline["roc_auc"] = float(roc_auc_score(y_true, probabilities[:, 1]))
    details = {
        "per_class": {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for name, p, r, f, s in zip(class_names, precision, recall, f1, support)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "class_names": list(class_names),
    }
    return headline, details


def per_class_table(details: dict) -> str:
    lines = ["| class | precision | recall | f1 | support |", "|---|---|---|---|---|"]
    for name, row in details["per_class"].items():
        lines.append(f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |")
    return "\n".join(lines)


def sklearn_baselines(x_train, y_train, x_test, y_test, class_names, which=("majority", "logistic", "svc"),
                      max_train: int = 20000, seed: int = 0) -> dict:
    """Classical baselines on flattened features, fitted on the training part only."""
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    x_train = x_train.reshape(len(x_train), -1).astype("float32")
    x_test = x_test.reshape(len(x_test), -1).astype("float32")
    if len(x_train) > max_train:  # kernels scale quadratically; say so in the report
        pick = np.random.default_rng(seed).choice(len(x_train), max_train, replace=False)
        x_train, y_train = x_train[pick], y_train[pick]
    # features arrive scaled (pixels / 255, standardised tables); no per-feature standardisation here:
    # on pixels it inflates near-empty border pixels and costs the RBF SVC several points on MNIST
    models = {
        "majority": lambda: DummyClassifier(strategy="most_frequent"),
        "logistic": lambda: LogisticRegression(max_iter=2000),
        "svc": lambda: SVC(kernel="rbf"),
    }
    results = {}
    for name in which:
        estimator = models[name]().fit(x_train, y_train)
        predicted = estimator.predict(x_test)
        results[name], _ = classification_metrics(y_test, predicted, class_names)
    return results


def plot_confusion(details: dict, path, title: str = "confusion matrix (test)"):
    from nnkit.report import pyplot, save_figure

    plt = pyplot()
    matrix = np.asarray(details["confusion_matrix"])
    names = details["class_names"]
    size = max(4.0, 0.45 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=90 if len(names) > 10 else 0)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), value in np.ndenumerate(matrix):
        if value:
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                    color="white" if value > matrix.max() / 2 else "black")
    ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


def verdict(primary: str, model: dict, baselines: dict, higher_is_better: bool = True) -> str:
    """One plain sentence: does the model beat the best baseline on the primary metric?"""
    if not baselines:
        return ""
    scored = {name: m[primary] for name, m in baselines.items() if m.get(primary) is not None}
    best_name = (max if higher_is_better else min)(scored, key=scored.get)
    best, ours = scored[best_name], model[primary]
    better = ours > best if higher_is_better else ours < best
    relation = "beats" if better else ("ties" if ours == best else "does not beat")
    return (f"The model {relation} the best baseline ({best_name}) on {primary}: "
            f"{ours:.4f} vs {best:.4f}.")
