"""Item embeddings (item2vec), one file per role.

``task``: the EmbeddingTask; ``data``: sessions and query items; ``baselines``:
neighbours, category metrics (several categories per item), co-occurrence SVD and random baselines;
``next_item``: held-out session ends, hit rate / MRR, popularity and co-occurrence baselines;
``serving``: the exported embed/similar module.
"""
