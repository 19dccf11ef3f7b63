"""Sequence tasks on recurrent networks, one file per role.

``task``: what both tasks share (data, scaling, model, prediction);
``classification``: many-to-one (collision); ``labeling``: synced
many-to-many (driving); ``serving``: the exported module. The driving
simulator and its features live in ``nnkit.datasets.driving``.
"""
