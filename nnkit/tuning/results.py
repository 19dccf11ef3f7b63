"""What a search leaves in ``tune/``: trials.csv, search.png, report.md, summary.json.

The report states the space, the budget used, the best trial, and the test
score of the tuned run beside the default recipe's; it is also appended to
the run's report.md.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from nnkit.runs import Run, read_json, write_json, write_text
from nnkit.tuning import space


def trial_rows(oracle, dims, tune_dir: Path) -> list[dict]:
    """One row per trial the oracle knows: its values, status and validation score."""
    rows = []
    for trial_id in sorted(oracle.trials, key=int):
        trial = oracle.trials[trial_id]
        found = tune_dir / "trials" / trial_id / "score.json"
        detail = read_json(found) if found.is_file() else {}
        values = space.from_hyperparameters(dims, trial.hyperparameters.values)
        score = trial.metrics.get_last_value("val_score") if trial.metrics.exists("val_score") else None
        rows.append({"trial": int(trial_id) + 1, "status": trial.status, "score": score,
                     "values": values, "epochs": detail.get("epochs", ""), "seconds": detail.get("seconds", ""),
                     "default": bool(detail.get("default", False)),
                     "worker": detail.get("worker", "")})
    return rows


def influence(rows: list[dict], dims) -> list[tuple[str, float]]:
    """How much of the score's spread each key explains (eta squared over its values or quartiles)."""
    done = [r for r in rows if r["score"] is not None and np.isfinite(r["score"])]
    scores = np.array([r["score"] for r in done], dtype=float)
    total = float(((scores - scores.mean()) ** 2).sum()) if len(done) > 1 else 0.0
    ranked = []
    for dim in dims:
        values = [r["values"].get(dim.key) for r in done]
        if dim.kind == "choice":
            labels = [str(v) for v in values]
        else:  # numbers: quantile bins of two or more trials, so unique values explain nothing by themselves
            numbers = np.array(values, dtype=float)
            bins = max(1, min(4, len(numbers) // 2))
            edges = np.unique(np.quantile(numbers, np.arange(1, bins) / bins)) if bins > 1 else []
            labels = list(np.digitize(numbers, edges))
        between = 0.0
        for label in set(labels):
            group = scores[[i for i, x in enumerate(labels) if x == label]]
            between += len(group) * (group.mean() - scores.mean()) ** 2
        ranked.append((dim.key, between / total if total > 0 else 0.0))
    return sorted(ranked, key=lambda item: -item[1])


def write_csv(path: Path, rows: list[dict], dims, metric: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["trial", "status", f"val_{metric}", *[d.key for d in dims], "epochs", "seconds", "default",
                     "worker"])
    for row in rows:
        values = [row["values"].get(d.key, "") for d in dims]
        writer.writerow([row["trial"], row["status"], "" if row["score"] is None else row["score"],
                         *[str(v) if isinstance(v, list) else v for v in values], row["epochs"], row["seconds"],
                         row["default"], row["worker"]])
    write_text(path, buffer.getvalue())


def plot(path: Path, rows: list[dict], dims, ranked, metric: str, higher: bool) -> Path | None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nnkit.report import save_figure

    done = [r for r in rows if r["score"] is not None]
    if not done:
        return None
    keys = [key for key, _ in ranked[:3]]
    fig, axes = plt.subplots(1, 1 + len(keys), figsize=(4.2 * (1 + len(keys)), 3.4), squeeze=False)
    ax = axes[0, 0]
    trials = [r["trial"] for r in done]
    scores = [r["score"] for r in done]
    ax.plot(trials, scores, "o", color="tab:blue", label="trial")
    best = np.maximum.accumulate(scores) if higher else np.minimum.accumulate(scores)
    ax.step(trials, best, where="post", color="tab:orange", label="best so far")
    for r in done:
        if r["default"]:
            ax.plot([r["trial"]], [r["score"]], "s", mfc="none", mec="black", ms=10, label="recipe's values")
    ax.set(xlabel="trial", ylabel=f"validation {metric}", title="score by trial")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.legend(fontsize=7)
    by_key = {d.key: d for d in dims}
    for ax, (key, share) in zip(axes[0, 1:], ranked[:3]):
        dim = by_key[key]
        values = [r["values"].get(key) for r in done]
        if dim.kind == "choice":
            labels = [str(v) for v in dim.values]
            xs = [labels.index(str(v)) for v in values]
            ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=7)
        else:
            xs = values
            if dim.kind == "log":
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.plot(xs, scores, "o", color="tab:blue")
        ax.set(xlabel=key, title=f"{key} (explains {share:.0%})")
    fig.tight_layout()
    return save_figure(fig, path)


def write(run: Run, tune_dir: Path, dims, oracle, limits, algorithm: str, best_id: str, default: dict) -> str:
    """Every result file; returns the summary text (the report's section)."""
    metrics = read_json(run.metrics_file)
    metric, higher = metrics["primary"], bool(metrics["higher_is_better"])
    rows = trial_rows(oracle, dims, tune_dir)
    ranked = influence(rows, dims)
    write_csv(tune_dir / "trials.csv", rows, dims, metric)
    plot(tune_dir / "search.png", rows, dims, ranked, metric, higher)
    best = next(r for r in rows if r["trial"] == int(best_id) + 1)
    tuned = float(metrics["model"][metric])
    default_row = next((r for r in rows if r["default"] and r["score"] is not None), None)
    completed = sum(r["status"] == "COMPLETED" for r in rows)
    budget = "none" if limits.budget_s is None else f"{limits.budget_s / 60:.1f} min"
    summary = {
        "algorithm": algorithm, "trials_requested": limits.trials, "trials": len(rows), "completed": completed,
        "budget_minutes": None if limits.budget_s is None else limits.budget_s / 60,
        "used_minutes": round(limits.used_s() / 60, 2), "metric": metric, "higher_is_better": higher,
        "best_trial": best["trial"], "best_values": best["values"], "best_val_score": best["score"],
        "default_val_score": default_row["score"] if default_row else None,
        "test": {"tuned": tuned, "default": default["score"], "default_source": default["source"]},
        "influence": dict(ranked),
    }
    write_json(tune_dir / "summary.json", summary)
    lines = [
        "## Hyperparameter search (nnkit tune)", "",
        f"KerasTuner {algorithm} search: {len(rows)} trials ({completed} completed; asked for "
        f"{limits.trials if limits.trials else 'no limit'}), time budget {budget}, used "
        f"{limits.used_s() / 60:.1f} min. Every trial trained with the recipe's training path and "
        f"was scored on the validation part; the test part was read only after the search.", "",
        "| key | searched | recipe | best | explains |", "|---|---|---|---|---|",
    ]
    share = dict(ranked)
    for dim in dims:
        default_value = default_row["values"].get(dim.key) if default_row else ""
        lines.append(f"| {dim.key} | {dim.describe()} | {default_value} | {best['values'].get(dim.key)} | "
                     f"{share.get(dim.key, 0):.0%} |")
    lines += [
        "",
        f"Best trial: {best['trial']}, validation {metric} {best['score']:.4g}"
        + (f" (recipe's values: {default_row['score']:.4g}, trial {default_row['trial']})." if default_row else "."),
        "",
        f"**Test {metric}: tuned {tuned:.4g} vs default recipe {default['score']:.4g}** "
        f"({'higher' if higher else 'lower'} is better; default from {default['source']}).",
        "",
        "Files: tune/trials.csv (every trial), tune/search.png (score by trial and by the most influential keys), "
        "tune/best.toml (`nnkit run RECIPE --config tune/best.toml` trains this config again).",
    ]
    text = "\n".join(lines) + "\n"
    write_text(tune_dir / "report.md", text)
    if run.report_file.is_file() and "## Hyperparameter search" not in run.report_file.read_text():
        write_text(run.report_file, run.report_file.read_text().rstrip("\n") + "\n\n" + text)
    return text
