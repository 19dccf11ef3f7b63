"""Figures for lessons: one Agg backend setting, one way to save into ``plots/``."""

from __future__ import annotations

from pathlib import Path


def figure(ncols: int = 1, nrows: int = 1, width: float = 4.8, height: float = 3.6, **kwargs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kwargs)
    return fig, axes


def save(ctx, fig, name: str, title: str | None = None) -> Path:
    from nnkit.report import save_figure

    from matplotlib.ticker import MaxNLocator

    for ax in fig.axes:  # epochs are whole numbers
        if ax.get_xlabel() == "epoch" and ax.get_xscale() == "linear":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, Path(ctx.plot_dir) / f"{name}.png")
