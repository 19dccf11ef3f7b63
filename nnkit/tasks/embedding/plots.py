"""The embedding run's pictures and projector files: TensorBoard Projector TSVs and a 2-D PCA map."""

from __future__ import annotations

import numpy as np

from nnkit.tasks.embedding.baselines import normalize


def write_plots(vectors: np.ndarray, data, e: dict, run) -> list:
    """Write ``embeddings.tsv``/``metadata.tsv`` (most frequent items) and the PCA map; return their paths."""
    from sklearn.decomposition import PCA

    from nnkit.report import pyplot, save_figure
    from nnkit.runs import atomic_path

    plt = pyplot()
    paths = []
    # TensorBoard Projector files: the most frequent items (rows are in count order)
    top = min(e["projector_items"], data.vocab_size)
    with atomic_path(run.path / "embeddings.tsv") as tmp:
        np.savetxt(tmp, vectors[:top], delimiter="\t", fmt="%.6g")
    with atomic_path(run.path / "metadata.tsv") as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write("item_id\tcategory\tname\tcount\n")
            for r in range(top):
                cat = data.category_names[data.categories[r]] if data.categories[r] >= 0 else ""
                name = data.names[r] if data.names is not None else ""
                handle.write("\t".join(_tsv(v) for v in (data.item_ids[r], cat, name, data.counts[r])) + "\n")
    paths += [run.path / "embeddings.tsv", run.path / "metadata.tsv"]
    # a 2-D PCA map of a sample of items, coloured by their ten most common categories
    rng = np.random.default_rng(0)
    known = np.flatnonzero(data.categories >= 0)
    pool = known if known.size else np.arange(data.vocab_size)
    sample = np.sort(rng.choice(pool, min(e["map_items"], pool.size), replace=False))
    if sample.size >= 3:
        xy = PCA(n_components=2, random_state=0).fit_transform(normalize(vectors[sample]))
        fig, ax = plt.subplots(figsize=(7, 6))
        cats = data.categories[sample]
        common = [c for c in np.argsort(-np.bincount(cats[cats >= 0], minlength=1))[:10]
                  if (cats == c).any()] if known.size else []
        other = ~np.isin(cats, common)
        ax.scatter(xy[other, 0], xy[other, 1], s=4, c="lightgrey", label="other" if common else "items")
        cmap = plt.get_cmap("tab10")
        for i, c in enumerate(common):
            sel = cats == c
            ax.scatter(xy[sel, 0], xy[sel, 1], s=6, color=cmap(i), label=str(data.category_names[c])[:20])
        ax.set_title(f"item vectors, PCA of {sample.size} items (coloured: 10 largest categories)")
        ax.legend(fontsize=7, markerscale=2, loc="best")
        fig.tight_layout()
        path = run.plot_dir / "embedding_map.png"
        save_figure(fig, path)
        paths.append(path)
    return paths


def _tsv(value) -> str:
    return str(value).replace("\t", " ").replace("\n", " ")
