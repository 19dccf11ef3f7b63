"""metrics.json, plots and report.md (the model card) for a run.

``metrics.json`` has one shape for every task::

    {"recipe", "task", "split", "primary", "higher_is_better",
     "model": {metric: value}, "baselines": {name: {metric: value}}, "details": {...}}
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from nnkit.runs import Run, write_json, write_text


def metrics_document(run: Run, evaluation) -> dict:
    meta = run.meta()
    return {
        "recipe": meta["recipe"],
        "task": meta["task"],
        "split": evaluation.split,
        "primary": evaluation.primary,
        "higher_is_better": evaluation.higher_is_better,
        "model": _clean(evaluation.model),
        "baselines": _clean(evaluation.baselines),
        "verdict": evaluation.verdict,
        "details": _clean(evaluation.details),
        "tables": [list(t) for t in evaluation.tables],  # (title, markdown) for report.md
    }


def _clean(value):
    """JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "tolist"):
        value = value.tolist()
        return _clean(value) if isinstance(value, list) else (
            None if isinstance(value, float) and not math.isfinite(value) else value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_metrics(run: Run, evaluation, path: Path | None = None) -> dict:
    document = metrics_document(run, evaluation)
    write_json(path or run.metrics_file, document)
    return document


def read_history(run: Run) -> list[dict]:
    if not run.history_file.is_file():
        return []
    with open(run.history_file, newline="") as handle:
        rows = list(csv.DictReader(handle))
    # a resumed run appends: keep the last row written for each epoch
    by_epoch = {}
    for row in rows:
        if row.get("epoch", "").isdigit():
            by_epoch[int(row["epoch"])] = row
    return [by_epoch[k] for k in sorted(by_epoch)]


def plot_history(run: Run) -> Path | None:
    """Learning curves (every metric with its validation twin) from history.csv."""
    rows = read_history(run)
    if not rows:
        return None
    plt = pyplot()
    names = [k for k in rows[0] if k not in ("epoch", "learning_rate") and not k.startswith("val_")]
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.2), squeeze=False)
    epochs = [int(r["epoch"]) + 1 for r in rows]
    for ax, name in zip(axes[0], names):
        for key, label in ((name, "train"), ("val_" + name, "validation")):
            if key in rows[0]:
                ax.plot(epochs, [_finite(r[key]) for r in rows], label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    path = run.plot_dir / "learning_curves.png"
    save_figure(fig, path)
    return path


def _finite(text) -> float:
    """A history cell as a number to draw: NaN for NA, inf and anything unreadable (a diverged epoch)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend: the one place nnkit chooses a backend."""
    import matplotlib

    matplotlib.use("Agg")
    # text is drawn as written: a user's label such as a price tier "$$" is not maths (mathtext raised
    # a ParseException after training, so the run could never finish); no nnkit plot uses mathtext
    matplotlib.rcParams["text.parse_math"] = False
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Save a matplotlib figure atomically and close it."""
    import matplotlib.pyplot as plt

    from nnkit.runs import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def metrics_table(document: dict) -> str:
    rows = [("**model**", document["model"])] + list(document["baselines"].items())
    columns = []
    for _, metrics in rows:
        columns += [k for k, v in metrics.items() if not isinstance(v, (dict, list)) and k not in columns]
    lines = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, metrics in rows:
        lines.append(f"| {name} | " + " | ".join(_fmt(metrics.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def selection_section(selection: dict) -> list[str]:
    """The settings tried on the validation part before training (``nnkit.select``)."""
    chosen = ", ".join(f"{k} = {v!r}" for k, v in selection["chosen"].items())
    budget = ", ".join(f"{k} {v}" for k, v in selection["budget"].items())
    lines = ["## Settings chosen on validation", "",
             f"Each candidate trained with {budget} and was scored by {selection['metric']}; the test part "
             f"was not used. Chosen: {chosen}.", "", "| candidate | validation | seconds |", "|---|---|---|"]
    scores = [row["validation"] for row in selection["candidates"]]
    if len(scores) > 1 and None not in scores and len(set(scores)) == 1:  # a tiny validation part ties all
        lines[2] += (" Every candidate scored the same, so this is the first candidate, not a choice the data "
                     "made (a larger validation part would separate them).")
    for row in selection["candidates"]:
        lines.append("| " + ", ".join(f"{k} = {v!r}" for k, v in row["settings"].items()) +
                     f" | {'diverged' if row['validation'] is None else format(row['validation'], '.4g')} |"
                     f" {row['seconds']} |")
    return lines + [""]


def finished_section(finished: dict) -> list[str]:
    """What ``Task.finish_model`` did after training (e.g. a post-processing chosen on validation)."""
    lines = [f"## {finished['title']}", "", finished["text"], ""]
    if finished.get("scores"):
        lines += [f"| {finished['setting']} | validation |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in finished["scores"].items()] + [""]
    return lines


def write_report(run: Run, document: dict, summary: dict | None = None) -> Path:
    meta = run.meta()
    cfg_text = run.config_file.read_text(encoding="utf-8")
    history = read_history(run)
    primary = document["primary"]
    direction = "higher" if document["higher_is_better"] else "lower"
    parts = [
        f"# {meta['recipe']} — {meta['task'].replace('_', ' ')}",
        "",
        f"Run `{run.path.name}`, created {meta.get('created', '?')}. "
        f"Seed {meta.get('seed')}, deterministic ops: {'on' if meta.get('deterministic') else 'off'}.",
        "",
        "## Result",
        "",
        f"Primary metric: **{primary}** ({direction} is better), on the {document['split']} part. "
        "Baselines are measured on the same part.",
        "",
        metrics_table(document),
        "",
    ]
    if document.get("verdict"):
        parts += [f"**Verdict.** {document['verdict']}", ""]
    for title, table in document.get("tables", []):
        parts += [f"### {title}", "", table, ""]
    if meta.get("selection"):
        parts += selection_section(meta["selection"])
    if meta.get("finished"):
        parts += finished_section(meta["finished"])
    if summary:
        parts += ["## Data", "", "| | |", "|---|---|"]
        parts += [f"| {k} | {_fmt(v)} |" for k, v in summary.items()]
        parts += [""]
    if history:
        last = history[-1]
        parts += ["## Training", "",
                  f"{len(history)} epochs; last epoch: " +
                  ", ".join(f"{k} {_finite(v):.4g}" for k, v in last.items() if k != "epoch" and v and v != "NA"),
                  ""]
        if meta.get("steps_per_epoch"):
            r = meta["steps_per_epoch"]
            parts += [f"Each epoch made {r['steps']} optimizer steps, repeating the training data (reshuffled), "
                      f"which make {r['steps_per_pass']} a pass: `train.min_steps = {r['min_steps']}` over all "
                      "epochs. Set `train.min_steps=0` for one pass an epoch.", ""]
    plot_paths = sorted(run.plot_dir.glob("*.png")) if run.plot_dir.is_dir() else []
    if plot_paths:
        parts += ["## Plots", ""]
        parts += [f"![{p.stem}](plots/{p.name})" for p in plot_paths]
        parts += [""]
    versions = meta.get("versions", {})
    parts += ["## Reproduce", "", "```", " ".join(meta.get("command", [])), "```", "",
              "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()), "",
              "## Config", "", "```toml", cfg_text.rstrip(), "```", ""]
    write_text(run.report_file, "\n".join(parts))
    return run.report_file
