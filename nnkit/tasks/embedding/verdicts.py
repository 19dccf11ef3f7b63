"""The embedding report's words: the verdict beside the baselines, and the nearest-neighbour table."""

from __future__ import annotations

import numpy as np

from nnkit.tasks.embedding.baselines import nearest, normalize


def neighbour_table(vectors, data, k: int, n: int = 5) -> str:
    """A markdown table: the ``n`` most frequent items and their nearest items by cosine."""
    queries = np.arange(min(n, data.vocab_size))
    rows, scores = nearest(normalize(vectors), queries, min(k, 5))

    def label(r):
        text = str(data.item_ids[r])
        if data.names is not None and data.names[r]:
            text += f" {data.names[r][:30]}"
        if data.categories[r] >= 0:
            text += f" [{data.category_names[data.categories[r]]}]"
        return text.replace("|", "/")

    lines = ["| item | nearest (cosine) |", "|---|---|"]
    for q, (nr, ns) in zip(queries, zip(rows, scores)):
        lines.append(f"| {label(q)} | " + "; ".join(f"{label(r)} {s:.2f}" for r, s in zip(nr, ns)) + " |")
    return "\n".join(lines)


def category_verdict(model: dict, baselines: dict, k: int) -> str:
    best_name = max((n for n in baselines if "knn_accuracy" in baselines[n]),
                    key=lambda n: baselines[n]["knn_accuracy"])
    best = baselines[best_name]["knn_accuracy"]
    gap = model["knn_accuracy"] - best
    word = "above" if gap > 0 else "not above"
    text = (f"item2vec's kNN category accuracy ({k} nearest) is {model['knn_accuracy']:.3f}, {word} the best "
            f"baseline ({best_name} {best:.3f}, {gap * 100:+.1f} points); random vectors give "
            f"{baselines['random']['knn_accuracy']:.3f}.")
    key = f"hit_rate_at_{k}"
    if key in model:
        rivals = {n: b[key] for n, b in baselines.items() if key in b}
        best_rival = max(rivals, key=rivals.get)
        text += (f" Next item (held-out session ends): hit rate@{k} {model[key]:.3f}, best baseline "
                 f"{best_rival} {rivals[best_rival]:.3f}.")
    return text


def next_item_verdict(model: dict, baselines: dict, k: int, cases: int, with_category: int = 0,
                      items: int = 0) -> str:
    """The next-item verdict; ``with_category``: items that have one (too few to score), ``items``: the vocabulary."""
    key = f"hit_rate_at_{k}"
    best_name = max(baselines, key=lambda n: baselines[n][key])
    best = baselines[best_name][key]
    word = "above" if model[key] > best else "not above"
    why = (f"Only {with_category} items have a category, too few to score kNN accuracy with eval.k = {k} (more "
           f"than {k} are needed)" if with_category else "No item categories were given")
    text = (f"{why}, so the score is next-item retrieval: each of {cases} held-out session ends (test) is among "
            f"the {k} nearest of the item before it {model[key]:.3f} of the time, {word} the best baseline "
            f"({best_name} {best:.3f}); popularity {baselines['popularity'][key]:.3f}, random "
            f"{baselines['random'][key]:.3f}.")
    if items and k >= (items - 1) / 2:
        text += (f" With {items} items, the {k} nearest hold half of them or more: even random ranking scores "
                 "well, and the methods can hardly be told apart (a smaller eval.k separates them).")
    return text
