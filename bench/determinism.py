"""What `train.deterministic = true` costs: training time with and without it, same seed.

Each measurement is a fresh process (op determinism is process-wide):
resolve the recipe, load the data, then time `nnkit.train.fit` alone.
Prints seconds per setting and the ratio deterministic / default.

    python bench/determinism.py [--recipes digits,stock] [--epochs 5] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent('''
    import json, sys, tempfile, time
    from nnkit.pipeline import resolve
    from nnkit.runs import create_run
    recipe, epochs, deterministic = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
    resolved = resolve(recipe, overrides=[f"train.epochs={epochs}", "train.early_stopping=false",
                                          f"train.deterministic={str(deterministic).lower()}", "train.verbose=false"])
    prepared = resolved.task.load(resolved.cfg)
    from nnkit import train
    with tempfile.TemporaryDirectory() as tmp:
        run = create_run(recipe, out=tmp + "/run")
        run.update_meta(recipe=recipe, task=resolved.task.name, versions={})
        start = time.perf_counter()
        train.fit(resolved.task, resolved.cfg, prepared, run)
        print(json.dumps({"seconds": time.perf_counter() - start}))
''')


def measure(recipe: str, epochs: int, deterministic: bool) -> float:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CHILD, recipe, str(epochs), "1" if deterministic else "0"],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="digits,stock")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"{'recipe':<10} {'default s':>10} {'determ. s':>10} {'ratio':>6}")
    for recipe in args.recipes.split(","):
        times = {False: [], True: []}
        for _ in range(args.repeats):  # alternate, so load on a shared machine hits both alike
            for deterministic in (False, True):
                times[deterministic].append(measure(recipe, args.epochs, deterministic))
        off, on = min(times[False]), min(times[True])
        print(f"{recipe:<10} {off:>10.2f} {on:>10.2f} {on / off:>6.2f}")


if __name__ == "__main__":
    main()
