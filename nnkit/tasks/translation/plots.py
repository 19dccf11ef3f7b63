"""Translation plots: attention heatmaps of greedy decoding."""

from __future__ import annotations

from pathlib import Path

from nnkit.errors import NnkitError
from nnkit.report import pyplot, save_figure


def prepared_cfg_heatmaps(run) -> int:
    try:
        return int(run.config().get("eval", {}).get("heatmaps", 4))
    except NnkitError:
        return 4


def attention_heatmaps(texts, src_tokens, out_tokens, weights, path):
    """One heatmap per sentence: output tokens (rows) over source tokens (columns)."""
    plt = pyplot()
    n = len(texts)
    cols = 2 if n > 1 else 1
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(7.5 * cols, 5.0 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, src, out, w in zip(axes.flat, src_tokens, out_tokens, weights):
        src = src + ["[END]"]
        out = out + ["[END]"]
        matrix = w[: len(out), : len(src)]
        ax.imshow(matrix, aspect="auto", cmap="viridis", vmin=0.0)
        ax.set_xticks(range(len(src)))
        ax.set_xticklabels([s if s != " " else "␣" for s in src], rotation=90, fontsize=7)
        ax.set_yticks(range(len(out)))
        ax.set_yticklabels([s if s != " " else "␣" for s in out], fontsize=7)
        ax.set_xlabel("source")
        ax.set_ylabel("output")
    fig.suptitle("Attention weights (greedy decoding, test sentences)")
    fig.tight_layout()
    return save_figure(fig, Path(path))
