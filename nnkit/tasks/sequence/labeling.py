"""Synced many-to-many sequence labelling (the ``driving`` recipe): per-step accuracy, macro-F1, TTC rule baseline."""

from __future__ import annotations

import numpy as np

from nnkit.config import Field
from nnkit.errors import ConfigError
from nnkit.report import pyplot, save_figure
from nnkit.tasks.base import Evaluation, Prepared
from nnkit.tasks.sequence.task import _decode, _hold_last, _SequenceTask, MODEL_FIELDS, DATA_FIELDS


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
        plt = pyplot()
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
