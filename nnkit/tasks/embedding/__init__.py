"""Item embeddings (item2vec), one file per role.

``task``: the EmbeddingTask; ``data``: sessions and query items; ``baselines``:
neighbours, category metrics, co-occurrence SVD and random baselines;
``serving``: the exported embed/similar module.
"""
