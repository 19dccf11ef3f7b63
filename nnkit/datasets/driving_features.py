"""The driving simulator as a sequence source: sequences for the sequence tasks, sensor columns, examples.

Beside the simulator (``nnkit.datasets.driving``) so the sequence tasks stay
generic: they read sequences and never need to know which sensors a car has.
"""

from __future__ import annotations

import numpy as np

from nnkit.datasets import driving

# sensor names that carry the gap and the relative speed (the TTC rule needs both)
GAP_NAMES = ("gap", "distance", "headway_m")
REL_NAMES = ("rel_speed", "relative_speed", "range_rate")


def simulated_sequences(d: dict, per_step: bool):
    """``(Sequences, DrivingData)`` from the simulator, configured by a ``data`` config section."""
    from nnkit.datasets.sequences import Sequences

    data = driving.generate(d["sequences"], seed=d["seed"], min_seconds=d["min_seconds"],
                            max_seconds=d["max_seconds"], horizon=d.get("horizon", 3.0), noise=d["noise"],
                            dropout=d["dropout"], brake_ttc=d["brake_ttc"], ease_ttc=d["ease_ttc"],
                            events="anywhere" if per_step else "end")
    if per_step:
        y, names = data.actions.astype(np.int32), list(driving.ACTIONS)
    else:
        y, names = data.collision.astype(np.int32), list(driving.COLLISION_CLASSES)
    seqs = Sequences(data.x, data.lengths, y, names, list(driving.FEATURES),
                     [str(i) for i in range(len(data.x))], f"driving simulator (seed {d['seed']})")
    return seqs, data


def ttc_feature_indices(names) -> list | None:
    """``[gap, rel_speed]`` column indices when the sensors allow a TTC rule, else None."""
    names = list(names)
    gap = next((names.index(n) for n in GAP_NAMES if n in names), None)
    rel = next((names.index(n) for n in REL_NAMES if n in names), None)
    return None if gap is None or rel is None else [gap, rel]


def ttc_from_sensors(x, ttc_features) -> np.ndarray:
    """Time-to-collision [s] from the noisy gap and relative-speed sensors, [N, T]."""
    gap, rel = ttc_features
    return driving.time_to_collision(x[..., gap], x[..., rel])


def example_sequences(feature_names, mean, std):
    """Three raw example sequences of different lengths, with a dropout; not training data."""
    if list(feature_names) == list(driving.FEATURES):
        data = driving.generate(3, seed=12345, min_seconds=2.0, max_seconds=4.0)
        x, lengths = data.x, data.lengths
    else:
        rng = np.random.default_rng(0)
        lengths = np.array([12, 7, 3], np.int32)
        x = (rng.normal(size=(3, 12, len(mean))) * std + mean).astype(np.float32)
        x[np.arange(12)[None, :] >= lengths[:, None]] = 0.0
    x = x.astype(np.float32).copy()
    x[0, 1] = np.nan
    return x, lengths.astype(np.int32)
