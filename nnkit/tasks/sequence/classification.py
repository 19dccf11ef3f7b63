"""Many-to-one sequence classification (the ``collision`` recipe): ROC-AUC, F1, TTC rule and logistic baselines."""

from __future__ import annotations

import numpy as np

from nnkit.config import Field
from nnkit.report import pyplot, save_figure
from nnkit.tasks.base import Evaluation, Prepared
from nnkit.tasks.sequence.task import _decode, _last_observed, _SequenceTask, MODEL_FIELDS, DATA_FIELDS


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


        plt = pyplot()
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
        plt = pyplot()
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
