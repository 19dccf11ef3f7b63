"""Throughput of the vectorised driving simulator against the same physics one scenario at a time.

    python bench/sequence_simulator.py [N]

Prints sequences per second of ``nnkit.datasets.driving.generate`` (vectorised
over scenarios) and the ratio against a reference measured in this script:
the same ``simulate`` called on one scenario at a time (numpy on [1] arrays,
the shape a per-car Python simulator has), extrapolated from 300 scenarios.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from nnkit.datasets import driving


def main(n: int = 20000) -> None:
    start = time.perf_counter()
    data = driving.generate(n, seed=0)
    vectorised = time.perf_counter() - start
    print(f"generate({n}): {vectorised:.2f} s, {n / vectorised:,.0f} sequences/s "
          f"({data.collision.mean():.1%} collision labels, mean length {data.lengths.mean():.0f} steps)")

    rng = np.random.default_rng(0)
    k, steps = 300, 130
    sc = driving.draw_scenarios(k, steps, rng, window_end=rng.integers(40, 101, k))
    start = time.perf_counter()
    for i in range(k):
        driving.simulate(sc.take([i]), steps)
    per_one = (time.perf_counter() - start) / k
    start = time.perf_counter()
    driving.simulate(sc, steps)
    batch = (time.perf_counter() - start) / k
    print(f"simulate, one scenario at a time: {1 / per_one:,.0f} scenarios/s; vectorised: {1 / batch:,.0f} "
          f"scenarios/s; ratio {per_one / batch:.0f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
