"""Forecasting plots: forecasts vs actual, residuals, error by step, backtest folds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnkit.report import pyplot, save_figure
from nnkit.tasks.base import Evaluation


def plot_evaluation(evaluation: Evaluation, plot_dir: Path) -> list:
    plt = pyplot()
    a = evaluation.artifacts
    dates = a["dates"].astype("datetime64[D]")
    H = a["horizon"]
    paths = []
    # forecasts vs actual (one step ahead), full test part and its last 120 windows
    fig, axes = plt.subplots(2, 1, figsize=(11, 7))
    for ax, part in zip(axes, (slice(None), slice(-120, None))):
        x = dates[part]
        ax.plot(x, a["actual"][part, 0], color="black", lw=1.4, label="actual")
        ax.plot(x, a["model"][part, 0], color="tab:red", lw=1.1, label="model")
        ax.plot(x, a["persistence"][part, 0], color="tab:gray", lw=0.9, ls="--", label="persistence")
        ax.plot(x, a["ridge"][part, 0], color="tab:blue", lw=0.9, ls=":", label="ridge")
        if a.get("lower_upper") is not None:
            lo, hi = a["lower_upper"]
            ax.fill_between(x, lo[part, 0], hi[part, 0], color="tab:red", alpha=0.15, label="model interval")
        ax.legend(loc="upper left", fontsize=8)
    axes[0].set_title("Test part: one-step-ahead forecasts vs actual")
    axes[1].set_title("Last 120 test windows")
    fig.tight_layout()
    paths.append(save_figure(fig, plot_dir / "forecast_test.png"))
    # residuals
    residual = a["actual"][:, 0] - a["model"][:, 0]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    axes[0].plot(dates, residual, lw=0.8, color="tab:red", label="model")
    axes[0].plot(dates, a["actual"][:, 0] - a["persistence"][:, 0], lw=0.6, color="tab:gray", alpha=0.7,
                 label="persistence")
    axes[0].axhline(0, color="black", lw=0.6)
    axes[0].set_title("Residuals (actual - forecast), step 1")
    axes[0].legend(fontsize=8)
    axes[1].hist(residual, bins=50, color="tab:red", alpha=0.7)
    axes[1].set_title("Residual distribution, step 1")
    fig.tight_layout()
    paths.append(save_figure(fig, plot_dir / "residuals.png"))
    # error by horizon step
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    steps = np.arange(1, H + 1)
    for name, values in a["rmse_by_step"].items():
        ax.plot(steps, values, marker="o", label=name, lw=2.0 if name == "model" else 1.0)
    ax.set_xlabel("horizon step")
    ax.set_ylabel("RMSE (price units)")
    ax.set_title("Error by horizon step")
    ax.set_xticks(steps)
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(save_figure(fig, plot_dir / "error_by_step.png"))
    return paths


def backtest_figure(series, folds, rows):
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    dates = series.dates.astype("datetime64[D]")
    axes[0].plot(dates, series.target, color="black", lw=0.8)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (n_train, n_val, a, b) in enumerate(folds):
        axes[0].axvspan(dates[a], dates[b - 1], color=colours[i % len(colours)], alpha=0.25,
                        label=f"fold {i + 1} test")
    axes[0].set_title("Walk-forward folds (test blocks)")
    axes[0].legend(fontsize=7)
    x = np.arange(len(rows))
    names = [("model", None), ("persistence", "persistence"), ("ridge", "ridge")]
    for j, (label, key) in enumerate(names):
        values = [r["model"]["rmse"] if key is None else r["baselines"][key]["rmse"] for r in rows]
        axes[1].bar(x + (j - 1) * 0.27, values, width=0.27, label=label)
    axes[1].set_xticks(x, [f"fold {r['fold']}" for r in rows])
    axes[1].set_ylabel("RMSE (price units)")
    axes[1].set_title("RMSE per fold")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig
